"""Token-bucket state and the Ray actor that holds one source's budget for every worker.

Kept free of heavy imports (stdlib only): the limiter actor's process starts with just this
module, in a fraction of the second that importing the ingest clients (pandas, aiohttp) takes,
and every worker's first request waits for it.
"""

from __future__ import annotations

import time


class BucketState:
    """A token bucket that reserves ahead (tokens may go negative): ``reserve`` returns how long
    the caller must wait, so concurrent callers queue fairly without polling. Times are relative
    seconds so a Ray actor on another host never compares clocks with its callers."""

    def __init__(self, rate_per_s: float, capacity: float) -> None:
        self.rate = rate_per_s
        self.capacity = max(capacity, 1.0)
        self.tokens = self.capacity
        self.t = time.monotonic()
        self.paused_until = 0.0  # monotonic; a soft pause (weight header) or a ban (418)
        self.banned_until = 0.0

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.t) * self.rate)
        self.t = now

    def reserve(self, weight: float) -> tuple[float, float]:
        """(seconds to wait before sending, seconds of ban left); a banned caller reserves nothing."""
        now = time.monotonic()
        if self.banned_until > now:
            return 0.0, self.banned_until - now
        self._refill(now)
        self.tokens -= weight
        wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
        return max(wait, self.paused_until - now), 0.0

    def pause(self, seconds: float, banned: bool = False) -> None:
        until = time.monotonic() + max(seconds, 0.0)
        self.paused_until = max(self.paused_until, until)
        if banned:
            self.banned_until = max(self.banned_until, until)

    def observe_used_weight(self, used: int, limit: int, window_s: float, soft: float) -> float:
        """Past ``soft``·limit of the window's weight, pause to the window's end; returns the pause."""
        if used < soft * limit:
            return 0.0
        left = window_s - (time.time() % window_s) + 0.05  # Binance counts per clock minute
        self.pause(left)
        return left


class LimiterActor:
    """The state of one source's budget, living in one Ray actor (calls are serialised)."""

    def __init__(self, rate_per_s: float, capacity: float) -> None:
        self.state = BucketState(rate_per_s, capacity)
        self.reserved = 0.0

    def reserve(self, weight: float) -> tuple[float, float]:
        self.reserved += weight
        return self.state.reserve(weight)

    def pause(self, seconds: float, banned: bool = False) -> None:
        self.state.pause(seconds, banned)

    def observe_used_weight(self, used: int, limit: int, window_s: float, soft: float) -> float:
        return self.state.observe_used_weight(used, limit, window_s, soft)

    def total_reserved(self) -> float:
        return self.reserved
