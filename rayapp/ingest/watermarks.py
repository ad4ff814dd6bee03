"""Ingest watermarks: how far each (source, key) is complete in silver, moved only forward.

Windows finish out of order; the driver advances each watermark over the finished windows in
order. A window whose silver write did not commit never moves it, so a killed run restarted
refetches from the first unfinished window: no gap; upserts make the refetch of a
finished-but-not-yet-counted window harmless: no duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.ingest.plan import Partition, Plan
    from rayapp.ingest.types import FetchResult

log = get_logger(__name__)


def utc(value: Any) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def read_watermark(conn: psycopg.Connection, source: str, key: str) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    row = conn.execute(
        "SELECT covered_from, watermark FROM watermarks WHERE source = %s AND symbol = %s", (source, key)
    ).fetchone()
    if row is None:
        return None
    return utc(row[0] or row[1]), utc(row[1])


def reset_watermark(conn: psycopg.Connection, source: str, key: str, at: pd.Timestamp) -> None:
    """Start a new covered range at `at` (nothing fetched yet)."""
    conn.execute(
        "INSERT INTO watermarks (source, symbol, watermark, covered_from) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (source, symbol) DO UPDATE SET watermark = EXCLUDED.watermark, "
        "covered_from = EXCLUDED.covered_from, updated_at = now()",
        (source, key, at.to_pydatetime(), at.to_pydatetime()),
    )


def advance_watermark(conn: psycopg.Connection, source: str, key: str, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Move the watermark to `end` if it sits inside [start, end): only contiguous progress."""
    cur = conn.execute(
        "UPDATE watermarks SET watermark = %s, updated_at = now() WHERE source = %s AND symbol = %s "
        "AND watermark >= %s AND watermark < %s",
        (end.to_pydatetime(), source, key, start.to_pydatetime(), end.to_pydatetime()),
    )
    return cur.rowcount > 0


def complete_until(part: Partition, results: list[FetchResult]) -> pd.Timestamp:
    """How far the window is complete: the last page's `complete_until` (the still-open bar, a
    day not yet published, the replay's clock), else the window's end; within [start, end]."""
    until = part.end
    for r in results:
        if r.complete_until is not None:
            until = utc(r.complete_until)
    return min(max(until, part.start), part.end)


class WatermarkTracker:
    """Moves each (source, key)'s watermark over its finished windows, in window order.

    Called as results stream in, so a run killed at any moment has committed every contiguous
    finished window; a window that finished ahead of a missing one waits (and is refetched if
    the run dies first: an idempotent upsert, never a gap).
    """

    def __init__(self, pool: Any, plan: Plan) -> None:
        self.pool = pool
        self.pending: dict[tuple[str, str], list[Partition]] = {}
        for p in sorted(plan.partitions, key=lambda p: p.seq):
            self.pending.setdefault((p.source, p.key), []).append(p)
        self.done: dict[tuple[str, str], dict[int, pd.Timestamp]] = {}

    def finished(self, part: Partition, until: pd.Timestamp | None = None) -> None:
        """`part` committed; complete up to `until` (default: its end)."""
        k = (part.source, part.key)
        self.done.setdefault(k, {})[part.seq] = part.end if until is None else until
        queue = self.pending[k]
        moved = False
        with self.pool.connection() as conn:
            while queue and queue[0].seq in self.done[k]:
                p = queue.pop(0)
                upto = self.done[k][p.seq]
                moved |= advance_watermark(conn, p.source, p.key, p.start, upto)
                if upto < p.end:
                    queue.clear()  # complete only part-way: later windows wait for the next run
            conn.commit()
        if moved:
            log.debug("watermark advanced", source=part.source, key=part.key)

    def current(self) -> dict[tuple[str, str], pd.Timestamp]:
        out = {}
        with self.pool.connection() as conn:
            for source, key in self.pending:
                wm = read_watermark(conn, source, key)
                if wm:
                    out[(source, key)] = wm[1]
        return out
