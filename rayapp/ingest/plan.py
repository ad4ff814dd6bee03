"""Planning an ingest run: which (source, key, time window) partitions to fetch.

Per (source, key) the watermark row says which range is already in silver:
``[covered_from, watermark)``. A run asked for ``[start, end)`` fetches only what is outside it
(``start`` defaults to the watermark, or ``ingest.lookback_days`` back on a first run; ``end`` to
"now" floored to the source's granularity, never later, so a still-open bar or day is never passed
by the watermark). The rest is cut into windows of ``ingest.window_h`` x granularity on a grid
aligned to the epoch, so every run cuts the same windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd
import psycopg

from rayapp.ingest.watermarks import read_watermark, reset_watermark, utc
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Partition:
    source: str
    key: str
    start: pd.Timestamp
    end: pd.Timestamp
    seq: int = 0  # order of the window within its (source, key)

    def to_row(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "key": self.key,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "seq": self.seq,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Partition:
        return cls(
            str(row["source"]),
            str(row["key"]),
            pd.Timestamp(str(row["start"])),
            pd.Timestamp(str(row["end"])),
            int(row["seq"]),
        )


@dataclass
class Plan:
    partitions: list[Partition] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it cannot run here
    history: dict[str, bool] = field(default_factory=dict)


def windows(start: pd.Timestamp, end: pd.Timestamp, size: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """[start, end) cut at multiples of `size` since the epoch: the same grid on every run."""
    out = []
    epoch = pd.Timestamp(0, tz="UTC")
    a = start
    while a < end:
        b = min(epoch + ((a - epoch) // size + 1) * size, end)
        out.append((a, b))
        a = b
    return out


def source_now(settings: Settings) -> pd.Timestamp:
    """Our clock, or the replay server's simulated one (it serves only what has happened)."""
    now = pd.Timestamp.now(tz="UTC")
    if settings.sources.mode != "replay" or not settings.sources.replay_url:
        return now
    import urllib.request

    try:
        with urllib.request.urlopen(f"{settings.sources.replay_url.rstrip('/')}/replay/stats", timeout=5) as resp:
            sim = json.loads(resp.read()).get("now")
    except (OSError, ValueError) as exc:
        log.warning("replay clock unreadable: using ours", error=str(exc))
        return now
    return min(now, utc(sim)) if sim else now


def make_plan(
    settings: Settings,
    conn: psycopg.Connection,
    sources: list[str],
    *,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    now: pd.Timestamp,
) -> Plan:
    from rayapp.ingest import CLIENTS

    plan = Plan()
    for source in sources:
        cls = CLIENTS[source]
        reason = cls.skip_reason(settings)
        if reason:
            plan.skipped[source] = reason
            log.info("source skipped", source=source, reason=reason)
            continue
        plan.history[source] = cls.history
        gran = cls.granularity
        hi = now.floor(gran)
        stop = min(end, hi) if end is not None else hi
        for key in cls.default_keys(settings):
            wm = read_watermark(conn, source, key)
            if not cls.history:
                # A feed without history: one call returns what it has now; the window only
                # tells the summary what this run covered.
                frm = wm[1] if wm else now - pd.Timedelta(days=settings.ingest.lookback_days)
                if wm is None:
                    reset_watermark(conn, source, key, frm)
                plan.partitions.append(Partition(source, key, frm, max(now, frm), 0))
                continue
            want = (
                start
                if start is not None
                else (wm[1] if wm else now - pd.Timedelta(days=settings.ingest.lookback_days))
            )
            want = want.floor(gran)
            if wm is not None and wm[0] <= want <= wm[1]:
                frm = wm[1]  # [want, watermark) is already in silver
            else:
                frm = want
                reset_watermark(conn, source, key, frm)
            size = gran * settings.ingest.window_h
            # Each partition costs a task and a transaction: a long backfill gets longer windows
            # (a multiple of window_h, so the grid stays aligned) rather than hundreds of them.
            cap = settings.ingest.max_windows_per_key
            parts = windows(frm, stop, size)
            factor = -(-len(parts) // cap)
            while len(parts) > cap:
                parts = windows(frm, stop, size * factor)
                factor += 1
            for i, (a, b) in enumerate(parts):
                plan.partitions.append(Partition(source, key, a, b, i))
    conn.commit()
    plan.partitions = interleave(plan.partitions)
    return plan


def interleave(parts: list[Partition]) -> list[Partition]:
    """Round-robin over (source, key), oldest window first in each: every source is in flight
    from the start instead of one source's windows queueing behind another's."""
    queues: dict[tuple[str, str], list[Partition]] = {}
    for p in parts:
        queues.setdefault((p.source, p.key), []).append(p)
    out: list[Partition] = []
    while queues:
        for k in list(queues):
            out.append(queues[k].pop(0))
            if not queues[k]:
                del queues[k]
    return out
