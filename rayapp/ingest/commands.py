"""`rayapp backfill prices|news|fear-greed PATH`, and the per-source summary table every ingest prints."""

from __future__ import annotations

import argparse
import glob
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rayapp.config import Settings
from rayapp.ingest.silver import SourceSummary
from rayapp.log import get_logger
from rayapp.terminal import add_overrides, out, print_error, progress

log = get_logger(__name__)

BACKFILL_KINDS = {
    "prices": (
        "hourly candles: CryptoCompare-style export (time,date,hour,open,high,close,low,"
        "volumefrom,volumeto) or Binance data-portal klines",
        ("cryptocompare", "binance"),
    ),
    "news": ("news CSV (';'-separated, day-first D-M-YYYY HH:MM dates, treated as UTC)", ("cryptonews",)),
    "fear-greed": ("alternative.me Fear & Greed CSV (value,value_classification,timestamp)", ("fear-greed",)),
}


SUMMARY_COLUMNS = ("read", "written", "unchanged", "quarantined", "skipped")


def summary_table(summaries: Iterable[SourceSummary], title: str, *, requests: bool = False) -> Table:
    """One row per source: the counts, how many errors and a short status. The errors themselves
    are printed whole below the table by :func:`print_summaries` (a table cell would cut them);
    the tables each source wrote and its request count are in the JSON (`summaries_json`)."""
    summaries = list(summaries)
    table = Table(title=title, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False)
    table.add_column("source", no_wrap=True, min_width=max([6, *(len(s.source) for s in summaries)]))
    counts_cols = [*SUMMARY_COLUMNS, *(["requests"] if requests else []), "errors"]
    for col in counts_cols:  # numbers and their headers are never cut
        table.add_column(col, justify="right", no_wrap=True, min_width=len(col))
    table.add_column("status", overflow="fold", min_width=8)
    for s in summaries:
        if not s.ok:
            status = "[red]failed[/red]"
        else:
            status = f"[yellow]{escape(s.note)}[/yellow]" if s.note else "[green]ok[/green]"
        counts = [s.read, s.written, s.unchanged, s.quarantined, s.skipped, *([s.requests] if requests else [])]
        table.add_row(s.source, *(f"{n:,}" for n in counts), f"{len(s.errors):,}", status)
    return table


def first_errors(summaries: Iterable[SourceSummary]) -> list[str]:
    """`source: first error (+N more)` per failed source, each whole."""
    lines = []
    for s in summaries:
        if s.errors:
            more = f" (+{len(s.errors) - 1} more)" if len(s.errors) > 1 else ""
            lines.append(f"{s.source}: {s.errors[0]}{more}")
    return lines


def print_summaries(
    console: Console, summaries: Iterable[SourceSummary], title: str, *, requests: bool = False
) -> None:
    """The summary table, then each failed source's first error on a line of its own, untruncated."""
    summaries = list(summaries)
    console.print(summary_table(summaries, title, requests=requests))
    for line in first_errors(summaries):
        # soft_wrap: never cut or folded, so it can be copied and searched for whole
        console.print(f"[red]error[/red] {escape(line)}", highlight=False, soft_wrap=True)


def summaries_json(summaries: Iterable[SourceSummary]) -> list[dict[str, Any]]:
    """The same as the table, as JSON-ready dicts (every error, not only the first)."""
    rows = []
    for s in summaries:
        d = s.as_dict()
        d["ok"] = s.ok
        d["first_error"] = s.errors[0] if s.errors else None
        rows.append(d)
    return rows


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

    paths = resolve_paths(args.kind, args.path, args.format)  # BackfillError: exit 2, nothing written
    symbol = args.symbol or settings.symbols[0]
    summaries: dict[str, SourceSummary] = {}
    failed = 0
    pool = get_pool(settings)
    bar = progress()
    with bar, pool.connection() as conn:
        task = bar.add_task(f"backfill {args.kind}", total=len(paths))
        for path in paths:
            bar.update(task, description=f"backfill {args.kind}: {path.name}")
            try:
                s = backfill_file(
                    conn, args.kind, path, args.format, symbol=symbol, lags=settings.ingest.backfill_lag_min
                )
            except BackfillError as exc:
                failed += 1
                print_error(exc)  # this file is skipped, the others still load; exit 1 at the end
                s = SourceSummary(source=path.name, errors=[str(exc)])
            summaries.setdefault(s.source, SourceSummary(source=s.source)).add(s)
            bar.advance(task)
    print_summaries(out, summaries.values(), f"backfill {args.kind} ({len(paths)} file(s))")
    return 1 if failed else 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
