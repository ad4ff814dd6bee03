"""The commands that run flows: `rayapp ingest` (ingest → feature refresh) and `rayapp demo`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from rayapp.terminal import add_overrides, console, out, progress

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.ingest import Partition, Plan, SourceSummary


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.flows.preflight import mark, state_for_mode
    from rayapp.flows.refresh import ingest_and_refresh
    from rayapp.ingest import client_class, print_summaries, summaries_json

    for name in settings.ingest.sources or settings.sources.enabled:
        client_class(name)  # an unknown source is an InputError (exit 2) before anything else
    settings = state_for_mode(settings, reuse=args.reuse_state)
    mark(settings, by="rayapp ingest")
    bar = progress(disable=args.no_progress or args.json)
    task = bar.add_task("ingest: planning", total=None)

    def on_plan(plan: Plan) -> None:
        bar.update(task, total=len(plan.partitions), description="ingest")

    def on_partition(part: Partition, s: SourceSummary) -> None:
        bar.update(task, description=f"ingest {part.source} {part.key} {part.start:%Y-%m-%d}")
        bar.advance(task)

    with bar:  # an unknown source is an InputError (exit 2) before anything is fetched
        report = ingest_and_refresh(settings, on_plan=on_plan, on_partition=on_partition)
    ingest = report.ingest
    failed = [s.source for s in ingest.summaries.values() if not s.ok]
    if args.json:
        print(
            json.dumps(
                {
                    "partitions": len(ingest.plan.partitions),
                    "sources": summaries_json(ingest.summaries.values()),
                    "watermarks": {
                        f"{src}/{key}": wm.isoformat() for (src, key), wm in sorted(ingest.watermarks.items())
                    },
                    "feature_error": report.feature_error,
                    "failed": failed,
                    "state_dir": str(settings.state_path),
                },
                default=str,
            )
        )
        return 1 if failed else 0
    print_summaries(out, ingest.summaries.values(), f"ingest ({len(ingest.plan.partitions)} partitions)")
    for (source, key), wm in sorted(ingest.watermarks.items()):
        console.print(f"watermark {source}/{key}: {wm.isoformat()}", highlight=False)
    if report.feature_error:
        console.print(f"[yellow]features not refreshed:[/yellow] {report.feature_error}", highlight=False)
    if failed:
        console.print(f"[red]failed sources:[/red] {', '.join(failed)}", highlight=False)
        return 1
    return 0


REUSE_HELP = (
    "use the state directory even when its data came from the other sources mode (live vs replay); "
    "without it such a run uses <state_dir>/<mode>/ (docs/OPERATIONS.md)"
)


_SHORT = {"start": "ingest.start", "end": "ingest.end"}


def ingest_override(item: str) -> str:
    """Shorthands of `rayapp ingest`: start=, end=, sources=a,b -> ingest.*; sources=live|replay
    stays the config group."""
    key, sep, value = item.partition("=")
    if not sep:
        return item
    if key in _SHORT:
        return f"{_SHORT[key]}={value}"
    if key == "sources" and value not in ("live", "replay"):
        names = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        return f"ingest.sources=[{','.join(names)}]"
    return item


def _demo(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.flows.demo import run_demo

    return run_demo(
        settings,
        days=args.days,
        trials=args.trials,
        duration_s=args.duration,
        skip_sentiment=args.skip_sentiment,
        reuse_state=args.reuse_state,
    )


def register(subparsers: Any) -> None:
    text = (
        "Fetch new data from every enabled source into bronze and silver, in parallel (source, "
        "time window) partitions on Ray Data; resumes from per-(source, symbol) watermarks; then "
        "refreshes the newest feature rows and the online vector when candles were written. "
        "Narrow it with start=ISO end=ISO sources=binance,fear_greed (short for ingest.start, "
        "ingest.end, ingest.sources); sources=replay reads from `rayapp replay`. Exits 1 when "
        "a source failed (the others still finish). The summary is a table with each failed source's "
        "first error whole below it (--json: the same as JSON)."
    )
    p = subparsers.add_parser("ingest", help="incremental, parallel ingest of every source", description=text)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.add_argument(
        "--json", action="store_true", help="print the per-source summary (every error whole) as JSON on stdout"
    )
    p.add_argument("--reuse-state", action="store_true", help=REUSE_HELP)
    add_overrides(p)
    for action in p._actions:
        if action.dest == "overrides":
            action.type = ingest_override
    p.set_defaults(handler=_ingest)

    text = (
        "run the whole system end to end on embedded defaults: ingest the last N days (live APIs, "
        "or offline with `sources=replay replay.data=DIR`), score sentiment, build features, train "
        "on a small budget, register the champion, then serve it while the feed advances; prints "
        "the URLs (API, docs, Ray dashboard, MLflow). With live sources it first checks the markets "
        "answer (one request per source) and stops with the cause and the ways on when no price "
        "source does; a state directory holding the other mode's data is not reused (--reuse-state)"
    )
    p = subparsers.add_parser(
        "demo", help="end-to-end demo: ingest → score → features → train → serve", description=text
    )
    p.add_argument("--days", type=int, default=60, help="days of history to ingest (default 60)")
    p.add_argument("--trials", type=int, default=4, help="hyperparameter trials (default 4)")
    p.add_argument("--duration", type=float, help="stop serving after this many seconds (default: Ctrl-C)")
    p.add_argument(
        "--skip-sentiment", action="store_true", help="do not score articles (sentiment features stay missing)"
    )
    p.add_argument("--reuse-state", action="store_true", help=REUSE_HELP)
    add_overrides(p)
    p.set_defaults(handler=_demo)
