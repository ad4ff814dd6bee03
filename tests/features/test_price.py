"""Each price and time feature against a value computed by hand; TA-Lib parity."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import talib

from rayapp.features.definitions import EXTENDED_GROUPS, FEATURE_GROUPS, make_feature_set
from rayapp.features.frame import compute_features
from tests.features import factories as F
from tests.features.helpers import to_inputs

N = 80


@pytest.fixture(scope="module")
def small():
    fs = make_feature_set("core", sentiment_model_id=F.MODEL_ID, regime_window_h=10, regime_min_periods=5)
    s = F.silver(N, n_news=0, n_social=0)
    s.social_counts = s.social_counts.iloc[0:0]
    return fs, s, compute_features(to_inputs(s, fs), fs)


def test_feature_names_are_exactly_the_documented_list():
    """The core set is the 15 features of docs/FEATURES.md, grouped and ordered as listed there."""
    assert FEATURE_GROUPS == {
        "price": [
            "sma_20",
            "rsi",
            "atr",
            "returns_1h",
            "returns_4h",
            "returns_24h",
            "volume_ratio",
            "volatility_regime",
        ],
        "sentiment": ["sentiment_mean", "sentiment_count", "sentiment_change_1h", "sentiment_extreme"],
        "social": ["social_volume", "social_sentiment"],
        "time": ["hour_of_day"],
    }
    ext = [n for g in EXTENDED_GROUPS.values() for n in g]
    assert 28 <= len(ext) <= 35 and len(set(ext)) == len(ext)
    assert make_feature_set("core").names == [n for g in FEATURE_GROUPS.values() for n in g]


def _wilder(values: list[float], period: int) -> list[float]:
    # TA-Lib's seeding: the first average is the plain mean of the first `period` values.
    avg = sum(values[:period]) / period
    out = [avg]
    for v in values[period:]:
        avg = (avg * (period - 1) + v) / period
        out.append(avg)
    return out


def test_price_features_by_hand(small):
    _fs, s, fr = small
    c = s.candles["close"].to_list()
    h, lo, v = s.candles["high"].to_list(), s.candles["low"].to_list(), s.candles["volume"].to_list()
    t = 60
    row = fr.iloc[t]
    assert row["sma_20"] == pytest.approx(sum(c[t - 19 : t + 1]) / 20 / c[t] - 1, rel=1e-12)
    assert row["returns_1h"] == pytest.approx(math.log(c[t] / c[t - 1]), rel=1e-12)
    assert row["returns_4h"] == pytest.approx(math.log(c[t] / c[t - 4]), rel=1e-12)
    assert row["returns_24h"] == pytest.approx(math.log(c[t] / c[t - 24]), rel=1e-12)
    assert row["volume_ratio"] == pytest.approx(v[t] / (sum(v[t - 23 : t + 1]) / 24), rel=1e-12)
    assert row["hour_of_day"] == s.candles["open_time"][t].hour

    diffs = [c[i] - c[i - 1] for i in range(1, t + 1)]
    gain = _wilder([max(d, 0.0) for d in diffs], 14)[-1]
    loss = _wilder([max(-d, 0.0) for d in diffs], 14)[-1]
    assert row["rsi"] == pytest.approx(100 * gain / (gain + loss), rel=1e-10)

    tr = [max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])) for i in range(1, t + 1)]
    assert row["atr"] == pytest.approx(_wilder(tr, 14)[-1] / c[t], rel=1e-10)

    # 24h realised volatility ranked against the last 10 hours of itself (regime_window_h=10).
    r = np.log(np.array(c[1:]) / np.array(c[:-1]))
    vol = {i: np.std(r[i - 24 : i], ddof=1) for i in range(24, t + 1)}
    window = [vol[i] for i in range(t - 9, t + 1)]
    rank = sum(w <= vol[t] for w in window) / len(window)
    assert row["volatility_regime"] == (0 if rank <= 1 / 3 else 1 if rank <= 2 / 3 else 2)


def test_warmup_rows_are_missing_not_invented(small):
    _fs, _s, fr = small
    assert fr["sma_20"].iloc[:19].isna().all() and fr["sma_20"].iloc[19:].notna().all()
    assert fr["rsi"].iloc[:14].isna().all() and fr["rsi"].iloc[14:].notna().all()
    assert fr["returns_24h"].iloc[:24].isna().all()
    assert fr["volatility_regime"].iloc[: 24 + 4].isna().all()  # 24 returns, then 5 ranked hours
    assert set(fr["volatility_regime"].dropna().unique()) <= {0.0, 1.0, 2.0}


def test_talib_parity_full_history():
    fs = make_feature_set("extended", sentiment_model_id=F.MODEL_ID)
    s = F.silver(1500, n_news=0, n_social=0, seed=7)
    fr = compute_features(to_inputs(s, fs), fs)
    c = s.candles["close"].to_numpy()
    h, lo = s.candles["high"].to_numpy(), s.candles["low"].to_numpy()
    L = fs.params.ta_window_h
    ref = {
        "rsi": talib.RSI(c, 14),
        "atr": talib.ATR(h, lo, c, 14) / c,
        "sma_20": talib.SMA(c, 20) / c - 1,
        "ema_26": talib.EMA(c, 26) / c - 1,
        "macd": talib.MACD(c, 12, 26, 9)[0] / c,
    }
    for name, want in ref.items():
        got = fr[name].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(want)), name
        # Inside the trailing window TA-Lib sees the same bars: same value to rounding (TA-Lib's
        # running sums drift in the last bits; x/close - 1 turns that into ~1e-15 absolute) ...
        np.testing.assert_allclose(got[:L], want[:L], rtol=1e-12, atol=1e-13, err_msg=name)
        # ... and beyond it the forgotten seed weighs less than (13/14)^(L-15) ~ 1e-16.
        np.testing.assert_allclose(got[L:], want[L:], rtol=1e-9, atol=1e-12, err_msg=name)
    # Exactly TA-Lib on the row's window, bit for bit: from L bars before the start of its
    # epoch-aligned block of ta_block_h hours.
    B = fs.params.ta_block_h
    hours = s.candles["open_time"].astype("datetime64[ns, UTC]").astype("int64") // 3_600_000_000_000
    for t in (600, 1000, 1234, 1499):
        anchor = t - int(hours.iloc[t]) % B
        w = max(anchor - L + 1, 0)
        assert fr["rsi"].iloc[t] == talib.RSI(c[w : t + 1], 14)[-1]
        assert fr["sma_20"].iloc[t] == talib.SMA(c[anchor - 19 : t + 1], 20)[-1] / c[t] - 1
    up, mid, dn = talib.BBANDS(c, 20, 2, 2, 0)
    np.testing.assert_allclose(fr["bb_width"].to_numpy()[19:], ((up - dn) / mid)[19:], rtol=1e-9)


def test_gap_fill_and_restart_after_long_gap():
    fs = make_feature_set("core", sentiment_model_id=F.MODEL_ID)
    s = F.silver(200, n_news=0, n_social=0)
    drop_short = s.candles.index[50:52]  # 2 h: filled as flat no-trade hours
    drop_long = s.candles.index[100:110]  # 10 h: stays missing
    s.candles = s.candles.drop(drop_short.append(drop_long))
    fr = compute_features(to_inputs(s, fs), fs)
    ts = s.candles.set_index("open_time")
    assert len(fr) == len(ts) and fr.index.equals(pd.DatetimeIndex(ts.index).astype(fr.index.dtype))
    t52 = F.START + pd.Timedelta(hours=52)
    # Across the short gap the 1h return compares with the carried close of hour 51 (= hour 49).
    assert fr.at[t52, "returns_1h"] == pytest.approx(math.log(ts.at[t52, "close"] / ts["close"].iloc[49]), rel=1e-12)
    t110 = F.START + pd.Timedelta(hours=110)
    assert math.isnan(fr.at[t110, "returns_1h"]) and math.isnan(fr.at[t110, "rsi"])
    # The indicators restart after the long gap: RSI needs 15 fresh bars again.
    assert math.isnan(fr.at[t110 + pd.Timedelta(hours=13), "rsi"])
    assert not math.isnan(fr.at[t110 + pd.Timedelta(hours=14), "rsi"])


def test_candle_source_choice():
    from rayapp.features.inputs import FeatureInputError, pick_source

    pref = ["binance", "coinbase", "cryptocompare"]
    assert pick_source({"cryptocompare": 100, "binance": 60}, pref) == "binance"
    # A short export of a preferred exchange does not replace the long history of another.
    assert pick_source({"cryptocompare": 48_000, "binance": 3_600}, pref) == "cryptocompare"
    assert pick_source({"x": 10, "y": 10}, pref) == "x"
    with pytest.raises(FeatureInputError):
        pick_source({"binance": 0}, pref)
