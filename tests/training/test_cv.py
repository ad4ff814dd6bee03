"""Walk-forward splitter: no training row within the horizon of a test row, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rayapp.training.cv import WalkForwardSplit


def _hours(n: int, gap_at: int | None = None, gap: int = 0) -> pd.DatetimeIndex:
    idx = pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC")
    if gap_at is not None:
        idx = idx[:gap_at].append(idx[gap_at:] + pd.Timedelta(hours=gap))
    return idx


@settings(max_examples=60, deadline=None)
@given(
    horizon=st.integers(1, 24),
    n_splits=st.integers(1, 5),
    test_size=st.integers(5, 60),
    extra_purge=st.integers(0, 10),
    window=st.sampled_from(["expanding", "sliding"]),
    gap_at=st.integers(50, 400),
    gap=st.integers(0, 30),
)
def test_no_training_hour_within_horizon_of_a_test_hour(horizon, n_splits, test_size, extra_purge, window, gap_at, gap):
    times = _hours(700, gap_at, gap)
    hours = times.as_unit("s").asi8 // 3600
    cv = WalkForwardSplit(
        n_splits, test_size, horizon, window, train_size=100, purge=horizon + extra_purge, min_train=20
    )
    folds = cv.folds(times)
    assert len(folds) == n_splits
    for f in folds:
        tr, te = hours[f.train], hours[f.test]
        # The label window of train row t is (t, t+h]; it must end before the first test hour.
        dist = np.abs(tr[:, None] - te[None, :]).min()
        assert dist > horizon
        assert tr.max() < te.min()  # walk-forward: never train on the future
        assert len(f.test) == test_size
        if window == "sliding":
            assert te.min() - tr.min() <= 100 + cv.purge + 1
    # Test blocks are consecutive and do not overlap.
    tests = np.concatenate([f.test for f in folds])
    assert len(np.unique(tests)) == len(tests)
    assert np.all(np.diff(tests) == 1)


def test_expanding_window_grows_and_sliding_keeps_its_length():
    times = _hours(1000)
    exp = WalkForwardSplit(3, 100, horizon=4, window="expanding").folds(times)
    # First test hour 700, horizon 4: rows 0..695 train (row 695's label ends at hour 699).
    assert [len(f.train) for f in exp] == [696, 796, 896]
    sl = WalkForwardSplit(3, 100, horizon=4, window="sliding", train_size=200).folds(times)
    assert {len(f.train) for f in sl} == {200}


def test_purge_or_embargo_shorter_than_the_horizon_is_refused():
    with pytest.raises(ValueError, match="purge"):
        WalkForwardSplit(3, 24, horizon=4, purge=2)
    with pytest.raises(ValueError, match="embargo"):
        WalkForwardSplit(3, 24, horizon=4, embargo=3)


def test_too_little_data_and_unsorted_times_give_clear_errors():
    with pytest.raises(ValueError, match="not enough rows"):
        WalkForwardSplit(5, 168, horizon=1).folds(_hours(900))
    times = _hours(800)
    with pytest.raises(ValueError, match="strictly increasing"):
        WalkForwardSplit(2, 24, horizon=1).folds(times[::-1])
