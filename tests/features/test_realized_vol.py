"""The realised-volatility group (HAR-RV windows 1/6/24/168 h): values by hand, point in time,
the same from candles and from a training frame's own returns, and outside the 15-feature core."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.features import FEATURE_GROUPS, RV_FEATURES, realized_vol_features, realized_vol_for_rows
from tests.features import factories as F


def _closes(n: int = 400, seed: int = 3) -> pd.Series:
    return F.candles(n, seed=seed).set_index("open_time")["close"].astype(float)


def test_values_by_hand():
    close = _closes()
    rv = realized_vol_features(close)
    r = np.log(close / close.shift(1)).to_numpy()
    t = 300
    for w in (1, 6, 24, 168):
        expect = np.sqrt(np.mean(r[t - w + 1 : t + 1] ** 2))
        assert np.isclose(rv[f"rv_{w}h"].iloc[t], expect, rtol=1e-12)
    assert rv["rv_168h"].iloc[:168].isna().all() and np.isfinite(rv["rv_168h"].iloc[168])
    assert list(rv.columns) == RV_FEATURES == ["rv_1h", "rv_6h", "rv_24h", "rv_168h"]


def test_point_in_time_later_candles_change_nothing():
    """Appending hours after t, or altering them, leaves every row up to t unchanged (bit for bit)."""
    close = _closes(500)
    t = close.index[350]
    before = realized_vol_features(close[close.index <= t])
    altered = close.copy()
    altered[altered.index > t] *= np.exp(np.linspace(0.0, 0.5, int((altered.index > t).sum())))
    after = realized_vol_features(altered)
    pd.testing.assert_frame_equal(after.loc[:t], before, check_exact=True)


def test_a_missing_hour_stays_missing_and_frame_returns_match_candles():
    close = _closes(300).drop(_closes(300).index[200])
    rv = realized_vol_features(close)
    # hour 201 follows a gap: its 1 h return is unknown, so are the windows that contain it
    assert np.isnan(rv["rv_1h"].iloc[200]) and np.isnan(rv["rv_168h"].iloc[250])
    last_ret = np.log(close / close.reindex(close.index - pd.Timedelta(hours=1)).to_numpy()).to_numpy()
    from_rows = realized_vol_for_rows(close.index, last_ret)
    pd.testing.assert_frame_equal(from_rows.set_axis(rv.index), rv, check_names=False)


def test_not_part_of_the_core_set():
    core = [n for g in FEATURE_GROUPS.values() for n in g]
    assert len(core) == 15 and not set(RV_FEATURES) & set(core)
