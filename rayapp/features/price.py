"""Price features from hourly candles: TA-Lib indicators (scale-free), returns, volume, regime.

Input is the candle frame on a complete hourly grid (missing hours NaN, short gaps already filled
as flat no-trade hours, see `fill_gaps`); `rows` are the grid positions to compute. Every value at
row t reads only bars at or before t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from talib import _ta_lib as ta  # the C functions, without the pandas wrapper

from rayapp.features.definitions import FeatureParams
from rayapp.features.windows import trailing_apply, trailing_rank, window_std, window_sum


def fill_gaps(grid: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Up to `limit` consecutive missing hours become flat bars at the last close with volume 0.

    That is what a missing hour means on an exchange without trades (Coinbase leaves them out);
    longer gaps stay missing and the indicators restart after them. Forward only: no value
    moves backwards in time.
    """
    out = grid.copy()
    missing = out["close"].isna()
    if limit <= 0 or not missing.any():
        return out
    carried = out["close"].ffill(limit=limit)
    fill = missing & carried.notna()
    for col in ("open", "high", "low", "close"):
        out.loc[fill, col] = carried[fill]
    out.loc[fill, "volume"] = 0.0
    return out


def _shift(x: np.ndarray, h: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    if h < len(x):
        out[h:] = x[:-h]
    return out


def log_returns(close: np.ndarray, h: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(close / _shift(close, h))


def volatility_24h(close: np.ndarray, n: int) -> np.ndarray:
    """Sample std of the last n hourly log returns (not annualised)."""
    return window_std(log_returns(close, 1), n)


def regime_from_rank(rank: np.ndarray) -> np.ndarray:
    """0 = low (rank <= 1/3), 1 = normal, 2 = high (rank > 2/3); NaN stays NaN."""
    reg = np.where(rank <= 1 / 3, 0.0, np.where(rank <= 2 / 3, 1.0, 2.0))
    return np.where(np.isnan(rank), np.nan, reg)


def price_features(grid: pd.DataFrame, rows: np.ndarray, p: FeatureParams, extended: bool) -> dict[str, np.ndarray]:
    h = grid["high"].to_numpy(dtype="float64")
    lo = grid["low"].to_numpy(dtype="float64")
    c = grid["close"].to_numpy(dtype="float64")
    v = grid["volume"].to_numpy(dtype="float64")
    cr = c[rows]
    epoch_h = grid.index.asi8 // 3_600_000_000_000  # hours since the epoch (ns index)
    blk = p.ta_block_h

    def ta_last(
        fn: object, arrays: list[np.ndarray], window: int, min_len: int, n_out: int = 1, **kw: object
    ) -> np.ndarray:
        return trailing_apply(fn, arrays, rows, epoch_h, window, blk, min_len, n_out, **kw)  # type: ignore[arg-type]

    out: dict[str, np.ndarray] = {}

    sma = ta_last(ta.SMA, [c], p.sma_period, p.sma_period, timeperiod=p.sma_period)
    out["sma_20"] = sma / cr - 1.0
    out["rsi"] = ta_last(ta.RSI, [c], p.ta_window_h, p.rsi_period + 1, timeperiod=p.rsi_period)
    atr = ta_last(ta.ATR, [h, lo, c], p.ta_window_h, p.atr_period + 1, timeperiod=p.atr_period)
    out["atr"] = atr / cr
    for hh in (1, 4, 24):
        out[f"returns_{hh}h"] = log_returns(c, hh)[rows]
    mean_vol = window_sum(v, p.volume_window_h) / p.volume_window_h
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = v / mean_vol
    out["volume_ratio"] = np.where(mean_vol > 0, ratio, np.nan)[rows]
    vol = volatility_24h(c, p.vol_window_h)
    rank = trailing_rank(vol, p.regime_window_h, p.regime_min_periods)
    out["volatility_regime"] = regime_from_rank(rank)[rows]
    if not extended:
        return out

    for name, period in (("ema_12", p.ema_fast), ("ema_26", p.ema_slow)):
        ema = ta_last(ta.EMA, [c], p.ta_window_h, period, timeperiod=period)
        out[name] = ema / cr - 1.0
    macd = ta_last(
        ta.MACD,
        [c],
        p.ta_window_h,
        p.ema_slow + p.macd_signal - 1,
        n_out=3,
        fastperiod=p.ema_fast,
        slowperiod=p.ema_slow,
        signalperiod=p.macd_signal,
    )
    out["macd"], out["macd_signal"], out["macd_hist"] = (macd[:, i] / cr for i in range(3))
    bb = ta_last(
        ta.BBANDS,
        [c],
        p.bb_period,
        p.bb_period,
        n_out=3,
        timeperiod=p.bb_period,
        nbdevup=p.bb_k,
        nbdevdn=p.bb_k,
        matype=0,
    )
    upper, middle, lower = bb[:, 0], bb[:, 1], bb[:, 2]
    out["bb_upper"] = upper / cr - 1.0
    out["bb_lower"] = lower / cr - 1.0
    width = upper - lower
    with np.errstate(divide="ignore", invalid="ignore"):
        out["bb_width"] = width / middle
        out["bb_pct"] = np.where(width > 0, (cr - lower) / width, np.nan)
    out["volatility_24h"] = vol[rows]
    out["returns_168h"] = log_returns(c, 168)[rows]
    return out
