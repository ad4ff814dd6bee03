"""`rayapp.testing.wait_until`: the value it returns, what it ignores, and how it fails."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from rayapp.testing import WaitTimeout, wait_until


def scripted(outcomes: Iterable[object]) -> tuple[Callable[[], object], list[int]]:
    """A predicate that plays `outcomes` one per call (an exception instance is raised); calls[0]
    counts the calls. Past the end it repeats the last outcome."""
    items = list(outcomes)
    calls = [0]

    def predicate() -> object:
        out = items[min(calls[0], len(items) - 1)]
        calls[0] += 1
        if isinstance(out, BaseException):
            raise out
        return out

    return predicate, calls


def test_returns_the_first_truthy_value_without_waiting_when_it_holds_at_once():
    predicate, calls = scripted([{"ready": True}])
    assert wait_until(predicate, 5, what="readiness") == {"ready": True}
    assert calls[0] == 1


def test_polls_until_the_predicate_holds():
    predicate, calls = scripted([None, 0, [], "done"])
    assert wait_until(predicate, 30, interval_s=0.001) == "done"
    assert calls[0] == 4


def test_timeout_names_what_was_awaited_and_the_last_value():
    predicate, calls = scripted([0])
    with pytest.raises(WaitTimeout) as exc:
        wait_until(predicate, 0.02, interval_s=0.001, what="the counter to move")
    assert isinstance(exc.value, AssertionError)  # a test failure, not an error
    assert "waiting for the counter to move" in str(exc.value) and "last value: 0" in str(exc.value)
    assert calls[0] >= 2  # called at once and again at the deadline


def test_a_zero_timeout_calls_once():
    predicate, calls = scripted([False])
    with pytest.raises(WaitTimeout, match="last value: False"):
        wait_until(predicate, 0)
    assert calls[0] == 1


def test_ignored_exceptions_count_as_not_yet():
    predicate, calls = scripted([ConnectionError("refused"), ConnectionError("refused"), 7])
    assert wait_until(predicate, 30, interval_s=0.001, ignore=(OSError,)) == 7
    assert calls[0] == 3


def test_timeout_reports_the_last_ignored_exception():
    predicate, _ = scripted([ConnectionRefusedError("nobody listens")])
    with pytest.raises(WaitTimeout, match="last error: ConnectionRefusedError: nobody listens"):
        wait_until(predicate, 0.02, interval_s=0.001, ignore=(OSError,), what="the server")


def test_other_exceptions_propagate_at_once():
    predicate, calls = scripted([KeyError("version")])
    with pytest.raises(KeyError):
        wait_until(predicate, 30, ignore=(OSError,))
    assert calls[0] == 1


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="interval_s"):
        wait_until(lambda: True, 1, interval_s=0)
    with pytest.raises(ValueError, match="timeout_s"):
        wait_until(lambda: True, -1)
