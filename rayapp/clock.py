"""The system's clock: wall time, or the replay server's simulated market time.

With `sources=replay` and a replay clock running (`replay.speed > 0`), "now" for the scheduler, the
freshness view and the pipeline status is the market time the replay server serves up to, so a
simulated day runs its schedule in minutes and ages read in market time (an offline demo's data
is not "1611 days old"). Otherwise it is UTC wall time.

A `ReplayClock` reads the server's `/replay/stats` once and extrapolates from the monotonic clock
(`market = m0 + (t - t0) * speed`), re-reading every `resync_s` so drift stays small. Its `id`
("replay:<session>") names the simulated timeline: slots recorded against one replay session are
never confused with another's or with wall-clock slots.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from rayapp.errors import InputError, StoreUnavailable

if TYPE_CHECKING:
    from rayapp.config import Settings


class Clock(Protocol):
    id: str
    kind: str  # "wall" | "market"
    speed: float  # clock seconds per wall second

    def now(self) -> datetime: ...


class WallClock:
    id = "wall"
    kind = "wall"
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class ReplayClock:
    url: str
    resync_s: float = 30.0
    id: str = "replay:?"
    kind: str = "market"
    speed: float = 0.0
    _m0: datetime = field(default_factory=lambda: datetime.now(UTC))
    _t0: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self) -> ReplayClock:
        try:
            with urllib.request.urlopen(f"{self.url.rstrip('/')}/replay/stats", timeout=5) as resp:
                t1 = time.monotonic()
                body = json.loads(resp.read())
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(f"replay clock unreadable at {self.url}: {exc}") from exc
        if not body.get("now") or not float(body.get("speed") or 0) > 0:
            raise InputError(f"the replay server at {self.url} runs no clock (start it with replay.speed > 0)")
        with self._lock:
            self._m0 = datetime.fromisoformat(body["now"]).astimezone(UTC)
            self._t0, self.speed = t1, float(body["speed"])
            self.id = f"replay:{body.get('session') or '?'}"
        return self

    def now(self) -> datetime:
        if time.monotonic() - self._t0 > self.resync_s:
            with contextlib.suppress(StoreUnavailable, InputError):  # keep extrapolating from the last reading
                self.sync()
        with self._lock:
            return self._m0 + timedelta(seconds=(time.monotonic() - self._t0) * self.speed)


def is_wall_clock(settings: Settings) -> bool:
    """True when `system_clock` is wall time without asking a replay server (no I/O)."""
    mode = settings.schedule.clock
    return mode == "wall" or (mode == "auto" and (settings.sources.mode != "replay" or not settings.sources.replay_url))


def system_clock(settings: Settings) -> Clock:
    """The clock the scheduler and the status views use for these settings.

    `schedule.clock=auto` follows the replay server when sources=replay and the server runs a
    clock (it is the one that knows its speed), wall time otherwise; `replay` insists on it.
    """
    mode, url = settings.schedule.clock, settings.sources.replay_url
    if mode == "wall" or (mode == "auto" and (settings.sources.mode != "replay" or not url)):
        return WallClock()
    if not url:
        raise InputError("schedule.clock=replay needs sources.replay_url (sources=replay)")
    try:
        return ReplayClock(url).sync()
    except InputError:
        if mode == "replay":
            raise
        return WallClock()  # a replay server that serves all history at once has no clock


def clock_or_wall(settings: Settings) -> tuple[Clock, str | None]:
    """`system_clock`, or wall time and the reason when the replay clock cannot be read: for the
    status views, whose history stays readable while the replay server is away."""
    try:
        return system_clock(settings), None
    except (StoreUnavailable, InputError) as exc:
        return WallClock(), str(exc)


def wall_seconds(clock: Clock, clock_seconds: float) -> float:
    """How long `clock_seconds` on `clock` take in wall time."""
    return clock_seconds / clock.speed if clock.speed > 0 else clock_seconds
