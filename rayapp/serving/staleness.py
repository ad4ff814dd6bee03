"""How old a forecast's data is: part of every forecast, and of the readiness answer.

A forecast is for a feature hour (`as_of`). Its `data_age_s` is the time from that hour to "now"
on the system clock: wall time with live sources, the replay server's market clock in replay
mode (so a replayed hour is judged against the market it replays, not against today). Past
`serving.feature_staleness_s` the forecast is `stale`: the sources stopped feeding the stores
(unreachable, a stopped scheduler, a stopped replay) and it must not be taken for a live one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def as_utc(ts: Any) -> datetime | None:
    if ts is None:
        return None
    t = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if not isinstance(t, datetime):  # a pandas Timestamp is a datetime; anything else is not a time
        raise TypeError(f"not a time: {ts!r}")
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def staleness(as_of: Any, now: datetime, max_age_s: float) -> dict[str, Any]:
    """{as_of (ISO), data_age_s, stale} of a feature hour at `now`; no hour: not stale, no age."""
    t = as_utc(as_of)
    if t is None:
        return {"as_of": None, "data_age_s": None, "stale": False}
    # never negative: a market clock a moment behind the newest row is not "data from the future"
    age = max(0.0, (now - t).total_seconds())
    return {"as_of": t.isoformat(), "data_age_s": age, "stale": age > max_age_s}


def human_age(seconds: float) -> str:
    """ "4.2 years", "3.0 days", "5.0 h", "12 min": how a person says an age."""
    for unit, n, at_least in (("years", 365.25 * 86400, 1), ("days", 86400, 2), ("h", 3600, 1)):
        if seconds >= at_least * n:
            return f"{seconds / n:.1f} {unit}"
    return f"{seconds / 60:.0f} min"
