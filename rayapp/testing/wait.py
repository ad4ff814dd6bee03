"""Polling with a deadline: the one way tests and benchmarks wait for something to become true."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

_NOTHING = object()


class WaitTimeout(AssertionError):
    """What was awaited did not happen in time (an AssertionError, so pytest reports a failure)."""


def wait_until(
    predicate: Callable[[], T],
    timeout_s: float,
    *,
    interval_s: float = 0.2,
    what: str = "the condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `predicate()` until it returns a truthy value, and return that value.

    It is called at once, then every `interval_s` seconds, and once more at the deadline. An
    exception of a type in `ignore` counts as "not yet" (e.g. connection refused while a server
    starts); any other propagates at once. After `timeout_s` seconds, raises `WaitTimeout` naming
    `what`, the last value and the last ignored exception.

    A liveness deadline, not a measurement: how long the wait took is never asserted.
    """
    if timeout_s < 0 or interval_s <= 0:
        raise ValueError(f"timeout_s must be >= 0 and interval_s > 0 (got {timeout_s}, {interval_s})")
    deadline = time.monotonic() + timeout_s
    last: object = _NOTHING
    error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            error = exc
        else:
            if value:
                return value
            last, error = value, None
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimeout(_message(what, timeout_s, last, error))
        time.sleep(min(interval_s, left))


def _message(what: str, timeout_s: float, last: object, error: BaseException | None) -> str:
    parts = [f"timed out after {timeout_s:g} s waiting for {what}"]
    if last is not _NOTHING:
        parts.append(f"last value: {last!r}")
    if error is not None:
        parts.append(f"last error: {type(error).__name__}: {error}")
    return "; ".join(parts)
