"""Walk-forward cross-validation with purge and embargo.

Rows are hourly feature rows ordered by time; the label of row t is the return from close(t) to
close(t+h). A training row t leaks into a test block [s0, s1] when its label window (t, t+h]
reaches into the block, so training rows with t > s0 - 1 - purge are dropped (purge >= h), and
rows within `embargo` hours after the block are dropped too (they matter only when a later
block trains on data after an earlier one, which walk-forward never does, but a splitter that
allows a smaller embargo than the horizon would be a trap for whoever reuses it).
Times are used, not positions, so a gap in the hours cannot shrink the purge.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rayapp.config import CvSettings


@dataclass(frozen=True)
class Fold:
    index: int
    train: np.ndarray  # positional indices
    test: np.ndarray

    def describe(self, times: np.ndarray) -> dict[str, object]:
        return {
            "fold": self.index,
            "n_train": len(self.train),
            "n_test": len(self.test),
            "train_start": str(pd.Timestamp(times[self.train[0]])),
            "train_end": str(pd.Timestamp(times[self.train[-1]])),
            "test_start": str(pd.Timestamp(times[self.test[0]])),
            "test_end": str(pd.Timestamp(times[self.test[-1]])),
        }


class WalkForwardSplit:
    """`n_splits` consecutive test blocks of `test_size` hours at the end of the data.

    window="expanding" trains on everything before the block (minus the purge); "sliding" keeps
    only the last `train_size` hours of that.
    """

    def __init__(
        self,
        n_splits: int = 5,
        test_size: int = 168,
        horizon: int = 1,
        window: str = "expanding",
        train_size: int | None = None,
        purge: int | None = None,
        embargo: int | None = None,
        min_train: int = 168,
    ) -> None:
        if n_splits < 1 or test_size < 1 or horizon < 1:
            raise ValueError("n_splits, test_size and horizon must be >= 1")
        if window not in ("expanding", "sliding"):
            raise ValueError(f"window must be expanding or sliding, got {window!r}")
        purge = horizon if purge is None else purge
        embargo = horizon if embargo is None else embargo
        if purge < horizon or embargo < horizon:
            raise ValueError(
                f"purge ({purge}h) and embargo ({embargo}h) must be >= the horizon "
                f"({horizon}h), or labels leak from the test block into training"
            )
        self.n_splits, self.test_size, self.horizon = n_splits, test_size, horizon
        self.window = window
        self.train_size = train_size if train_size is not None else 4 * test_size
        self.purge, self.embargo, self.min_train = purge, embargo, min_train

    @classmethod
    def from_settings(cls, cv: CvSettings, horizon: int) -> WalkForwardSplit:
        return cls(
            n_splits=cv.n_splits,
            test_size=cv.test_size_h,
            horizon=horizon,
            window=cv.window,
            train_size=cv.train_size_h,
            purge=cv.purge_h,
            embargo=cv.embargo_h,
            min_train=cv.min_train_h,
        )

    def params(self) -> dict[str, object]:
        return {
            "n_splits": self.n_splits,
            "test_size_h": self.test_size,
            "horizon_h": self.horizon,
            "window": self.window,
            "train_size_h": self.train_size if self.window == "sliding" else None,
            "purge_h": self.purge,
            "embargo_h": self.embargo,
        }

    def split(self, times: pd.DatetimeIndex | np.ndarray) -> Iterator[Fold]:
        hours = _as_hours(times)
        if len(hours) and np.any(np.diff(hours) <= 0):
            raise ValueError("times must be strictly increasing (sort and de-duplicate first)")
        n = len(hours)
        need = self.n_splits * self.test_size
        if n < need + self.purge + self.min_train:
            raise ValueError(
                f"not enough rows for walk-forward CV: have {n}, need "
                f"{need} test + {self.purge} purge + {self.min_train} min train"
            )
        first_test = n - need
        for k in range(self.n_splits):
            test = np.arange(first_test + k * self.test_size, first_test + (k + 1) * self.test_size)
            t0, t1 = hours[test[0]], hours[test[-1]]
            ok = (hours < t0 - self.purge) | (hours > t1 + self.embargo)
            ok &= hours < t0  # walk-forward: never train on the future
            if self.window == "sliding":
                ok &= hours >= t0 - self.purge - self.train_size
            train = np.flatnonzero(ok)
            if len(train) < self.min_train:
                raise ValueError(f"fold {k} has {len(train)} training rows, fewer than min_train {self.min_train}")
            yield Fold(k, train, test)

    def folds(self, times: pd.DatetimeIndex | np.ndarray) -> list[Fold]:
        return list(self.split(times))


def _as_hours(times: pd.DatetimeIndex | np.ndarray) -> np.ndarray:
    """Integer hours since the epoch (ints are taken as hours already)."""
    arr = np.asarray(times)
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64)
    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return (idx.as_unit("s").asi8 // 3600).astype(np.int64)
