"""`rayapp features [build]` and `rayapp features online-check [--hours N]`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from rayapp.terminal import add_overrides, console, out

if TYPE_CHECKING:
    from rayapp.config import Settings


def _build(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.features.build import run_build

    # FeatureInputError (no candles for a symbol, ...): exit 1
    summaries = run_build(
        settings,
        symbols=getattr(args, "symbols", None) or None,
        start=getattr(args, "start", None),
        end=getattr(args, "end", None),
        last_hours=getattr(args, "last_hours", None),
        online=not getattr(args, "no_online", False),
        parallel=not getattr(args, "serial", False),
    )
    if getattr(args, "json", False):
        print(json.dumps([s.as_dict() for s in summaries]))
    for s in summaries:
        console.print(
            f"[bold]{s.symbol}[/bold] {s.feature_set_version}: {s.rows:,} rows "
            f"({s.inserted:,} inserted, {s.updated:,} updated, {s.unchanged:,} unchanged, "
            f"{s.quarantined:,} quarantined) from {s.candle_source} in {s.chunks} chunk(s); "
            f"online ts {s.online_ts}",
            highlight=False,
        )
    return 0


def _online_check(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from rayapp.features.online import online_check

    report = online_check(settings, hours=args.hours, symbols=args.symbols or None)
    if args.json:
        print(json.dumps(report.as_dict(), default=str))
    else:
        console.print(
            f"{report.feature_set_version}: {report.checked_online} online and "
            f"{report.checked_offline} offline values compared, "
            f"{len(report.mismatches)} mismatches",
            highlight=False,
        )
        if report.mismatches:
            table = Table("symbol", "where", "ts", "feature", "expected", "got")
            for m in report.mismatches[:50]:
                table.add_row(m.symbol, m.where, str(m.ts), m.feature, str(m.expected), str(m.got))
            out.print(table)
    return 1 if report.mismatches else 0


def _build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols (default: config symbols)")
    p.add_argument("--start", help="first feature hour, ISO UTC (default: all history)")
    p.add_argument("--end", help="end hour, exclusive, ISO UTC (default: newest candle)")
    p.add_argument(
        "--last-hours", type=int, metavar="N", help="only the newest N candle hours per symbol (incremental refresh)"
    )
    p.add_argument("--no-online", action="store_true", help="do not write the latest rows to Redis")
    p.add_argument("--serial", action="store_true", help="one process, no Ray tasks")
    p.add_argument("--json", action="store_true", help="print the build summaries as JSON")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    desc = (
        "Compute the feature set over the whole history in parallel (Ray tasks over time "
        "chunks), upsert the offline store (PostgreSQL `features`) and write the latest row "
        "per symbol to the online store (Redis). `rayapp features` alone runs `build`."
    )
    p = subparsers.add_parser("features", help="build the offline/online feature store; check them", description=desc)
    p.set_defaults(handler=_build, overrides=[])
    sub = p.add_subparsers(dest="action", metavar="ACTION")

    q = sub.add_parser("build", help="compute features and upsert offline + online stores", description=desc)
    _build_args(q)
    add_overrides(q)
    q.set_defaults(handler=_build)

    q = sub.add_parser(
        "online-check",
        help="compare online (Redis) with offline (PostgreSQL) values",
        description="Compare the online vector of each symbol with its newest "
        "offline row, and the offline rows of the last N hours with a "
        "fresh recomputation from silver. Exit 1 on any mismatch.",
    )
    q.add_argument("--hours", type=int, default=24, help="hours of offline rows to recompute (default 24)")
    q.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols (default: config symbols)")
    q.add_argument("--json", action="store_true", help="print the report as JSON")
    add_overrides(q)
    q.set_defaults(handler=_online_check)
