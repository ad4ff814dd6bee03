"""`rayapp ingest` and `rayapp backfill prices|news|fear-greed PATH`."""

from __future__ import annotations

import argparse
import glob
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rayapp.cli import print_error
from rayapp.config import Settings
from rayapp.ingest.silver import SourceSummary
from rayapp.log import get_logger

log = get_logger(__name__)
console = Console(stderr=True)
# Piped into a log or CI the default 80 columns would cut source names: keep the table whole.
out = Console(width=None if sys.stdout.isatty() else 160)

BACKFILL_KINDS = {
    "prices": (
        "hourly candles: CryptoCompare-style export (time,date,hour,open,high,close,low,"
        "volumefrom,volumeto) or Binance data-portal klines",
        ("cryptocompare", "binance"),
    ),
    "news": ("news CSV (';'-separated, day-first D-M-YYYY HH:MM dates, treated as UTC)", ("cryptonews",)),
    "fear-greed": ("alternative.me Fear & Greed CSV (value,value_classification,timestamp)", ("fear-greed",)),
}


def summary_table(summaries: Iterable[SourceSummary], title: str, *, requests: bool = True) -> Table:
    cols = [
        "source",
        "table",
        "read",
        "written",
        "unchanged",
        "quarantined",
        "skipped",
        *(["requests"] if requests else []),
        "status",
    ]
    table = Table(*cols, title=title)
    for s in summaries:
        if not s.ok:
            status = f"[red]failed[/red] ({len(s.errors)}): " + "; ".join(s.errors)[:200]
        else:
            status = f"[yellow]{s.note}[/yellow]" if s.note else "[green]ok[/green]"
        counts = [s.read, s.written, s.unchanged, s.quarantined, s.skipped, *([s.requests] if requests else [])]
        table.add_row(s.source, s.table, *(f"{n:,}" for n in counts), status)
    return table


def _named_like(kind: str, path: Path) -> bool:
    # In a directory, news and fear & greed files are told apart by name (their headers are
    # checked when they are parsed).
    return {"news": "news", "fear-greed": "fear"}[kind] in path.name.lower()


def resolve_paths(kind: str, path: str, fmt: str | None) -> list[Path]:
    """A file, a directory (its *.csv files of this kind) or a glob pattern."""
    from rayapp.ingest.backfill import BackfillError, detect_price_format

    p = Path(path)
    if p.is_file():
        return [p]
    if p.is_dir():
        candidates = sorted(p.glob("*.csv"))
    else:
        candidates = sorted(Path(x) for x in glob.glob(path))
        if not candidates:
            raise BackfillError(f"{path}: no such file, directory or matching files")
    picked = []
    for c in candidates:
        if kind == "prices":
            try:
                found = detect_price_format(c)
            except BackfillError:
                log.debug("not a price file, left out", path=str(c))
                continue
            if fmt and found != fmt:
                continue
        elif not _named_like(kind, c):
            continue
        picked.append(c)
    if not picked:
        raise BackfillError(f"{path}: no {kind} CSV files found")
    return picked


def _backfill(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.ingest.backfill import BackfillError, backfill_file
    from rayapp.warehouse import get_pool

    try:
        paths = resolve_paths(args.kind, args.path, args.format)
    except BackfillError as exc:
        print_error(exc)
        return 2
    symbol = args.symbol or settings.symbols[0]
    summaries: dict[str, SourceSummary] = {}
    failed = 0
    pool = get_pool(settings)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress, pool.connection() as conn:
        task = progress.add_task(f"backfill {args.kind}", total=len(paths))
        for path in paths:
            progress.update(task, description=f"backfill {args.kind}: {path.name}")
            try:
                s = backfill_file(
                    conn, args.kind, path, args.format, symbol=symbol, lags=settings.ingest.backfill_lag_min
                )
            except BackfillError as exc:
                failed += 1
                print_error(exc)
                s = SourceSummary(source=path.name, errors=[str(exc)])
            summaries.setdefault(s.source, SourceSummary(source=s.source)).add(s)
            progress.advance(task)
    out.print(summary_table(summaries.values(), f"backfill {args.kind} ({len(paths)} file(s))", requests=False))
    return 1 if failed else 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.ingest.pipeline import Partition, Plan, run_ingest

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=args.no_progress,
    )
    task = progress.add_task("ingest: planning", total=None)

    def on_plan(plan: Plan) -> None:
        progress.update(task, total=len(plan.partitions), description="ingest")

    def on_partition(part: Partition, s: SourceSummary) -> None:
        progress.update(task, description=f"ingest {part.source} {part.key} {part.start:%Y-%m-%d}")
        progress.advance(task)

    try:
        with progress:
            report = run_ingest(settings, on_plan=on_plan, on_partition=on_partition)
    except ValueError as exc:
        print_error(exc)
        return 2
    out.print(summary_table(report.summaries.values(), f"ingest ({len(report.plan.partitions)} partitions)"))
    for (source, key), wm in sorted(report.watermarks.items()):
        console.print(f"watermark {source}/{key}: {wm.isoformat()}", highlight=False)
    if any(s.table == "candles" and s.written for s in report.summaries.values()):
        _refresh_online_features(settings)
    failed = [s.source for s in report.summaries.values() if not s.ok]
    if failed:
        console.print(f"[red]failed sources:[/red] {', '.join(failed)}", highlight=False)
        return 1
    return 0


def _refresh_online_features(settings: Settings) -> None:
    """New candles: recompute the newest feature rows and the online (Redis) vector."""
    from rayapp.features.build import update_after_ingest

    try:
        summaries = update_after_ingest(settings)
    except Exception as exc:  # the ingest itself succeeded; a feature failure is reported, not fatal
        log.warning("online features not refreshed", error=f"{type(exc).__name__}: {exc}")
        console.print(f"[yellow]features not refreshed:[/yellow] {exc}", highlight=False)
        return
    log.info("online features refreshed", symbols=len(summaries))


_SHORT = {"start": "ingest.start", "end": "ingest.end"}


def ingest_override(item: str) -> str:
    """The issue's shorthand: start=, end=, sources=a,b -> ingest.*; sources=live|replay stays the
    config group."""
    key, sep, value = item.partition("=")
    if not sep:
        return item
    if key in _SHORT:
        return f"{_SHORT[key]}={value}"
    if key == "sources" and value not in ("live", "replay"):
        names = [v.strip() for v in value.strip("[]").split(",") if v.strip()]
        return f"ingest.sources=[{','.join(names)}]"
    return item


def register(subparsers: argparse._SubParsersAction) -> None:
    from rayapp.cli import add_overrides

    register_backfill(subparsers, add_overrides)
    register_ingest(subparsers, add_overrides)


def register_ingest(subparsers: argparse._SubParsersAction, add_overrides: Callable) -> None:
    text = (
        "Fetch new data from every enabled source into bronze and silver, in parallel (source, "
        "time window) partitions on Ray Data; resumes from per-(source, symbol) watermarks. "
        "Narrow it with start=ISO end=ISO sources=binance,fear_greed (short for ingest.start, "
        "ingest.end, ingest.sources); sources=replay reads from `rayapp replay`. Exits 1 when "
        "a source failed (the others still finish)."
    )
    p = subparsers.add_parser("ingest", help="incremental, parallel ingest of every source", description=text)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    add_overrides(p)
    for action in p._actions:
        if action.dest == "overrides":
            action.type = ingest_override  # start=/end=/sources= shorthands of the issue
    p.set_defaults(handler=_ingest)


def register_backfill(subparsers: argparse._SubParsersAction, add_overrides: Callable) -> None:
    p = subparsers.add_parser(
        "backfill",
        help="import CSV history (prices, news, fear & greed) into silver",
        description="Import CSV exports through the same validation and upserts as ingest; "
        "bad rows go to quarantine with the failed check and the raw row.",
    )
    bsub = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    for kind, (what, formats) in BACKFILL_KINDS.items():
        q = bsub.add_parser(kind, help=what, description=f"Backfill {what}.")
        q.add_argument("path", metavar="PATH", help="a CSV file, a directory of them, or a quoted glob pattern")
        q.add_argument(
            "--format", choices=formats, default=None, help="file format (default: detected from the header)"
        )
        if kind == "prices":
            q.add_argument(
                "--symbol",
                default=None,
                help="symbol to store candles under (default: the first of `symbols`; "
                "Binance files named SYMBOL-1h-... use SYMBOL)",
            )
        add_overrides(q)
        q.set_defaults(handler=_backfill, symbol=None)
