"""Realised-volatility features over 1, 6, 24 and 168 hours: the HAR-RV structure (Corsi 2009).

Corsi's heterogeneous autoregressive model of realised volatility explains tomorrow's variance by
today's, the last week's and the last month's: traders at different frequencies leave their
footprint at different window lengths. The hourly analogue here is the root mean square of the
hourly log returns over the last 1, 6, 24 and 168 hours.

They are a separate group (`RV_FEATURES`), not part of the 15-feature core set the direction model
and serving use: the interval model (rayapp.training.intervals) reads them beside the core set.

Point in time: the value at hour t reads only closes of candles that opened at or before t (the
return of hour t is log close(t) / close(t-1)). Missing hours stay missing: a window with a
missing return is NaN, never filled. Windows are summed with `windows.window_sum`, so a value's
bits do not depend on where a chunk started.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.features.windows import window_sum

RV_WINDOWS: tuple[int, ...] = (1, 6, 24, 168)
RV_FEATURES: list[str] = [f"rv_{w}h" for w in RV_WINDOWS]
RV_WARMUP_H = max(RV_WINDOWS) + 1  # hours of closes before t that the row at t reads


def realized_vol_from_returns(r: np.ndarray) -> dict[str, np.ndarray]:
    """rv_wh[t] = sqrt(mean(r[t-w+1..t]^2)) for hourly log returns `r` on a complete hourly grid."""
    r = np.asarray(r, dtype="float64")
    sq = r * r
    return {f"rv_{w}h": np.sqrt(window_sum(sq, w) / w) for w in RV_WINDOWS}


def realized_vol_features(candles: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """One row per candle hour (index = open time, UTC), columns `RV_FEATURES`, NaN = not enough
    unbroken history. `candles` is a candle frame with a `close` column, or a close series."""
    close = candles["close"] if isinstance(candles, pd.DataFrame) else candles
    close = pd.Series(close, dtype="float64").sort_index()
    close = close[~close.index.duplicated(keep="last")]
    if close.empty:
        return pd.DataFrame(columns=RV_FEATURES, index=close.index, dtype="float64")
    grid = pd.date_range(close.index[0], close.index[-1], freq="h")
    c = close.reindex(grid).to_numpy()
    r = np.full(len(c), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        r[1:] = np.log(c[1:] / c[:-1])
    cols = realized_vol_from_returns(r)
    out = pd.DataFrame(cols, index=pd.DatetimeIndex(grid, name="ts"))[RV_FEATURES]
    return out.reindex(close.index)


def returns_on_grid(times: pd.DatetimeIndex, last_ret: np.ndarray) -> pd.Series:
    """The hourly log returns of a frame's rows (each row's `last_ret`, close(t-1) -> close(t)) on
    the complete hourly grid between its first and last hour; hours without a row are NaN."""
    idx = pd.DatetimeIndex(times)
    s = pd.Series(np.asarray(last_ret, dtype="float64"), index=idx)
    s = s[~s.index.duplicated(keep="last")].sort_index()
    if s.empty:
        return s
    return s.reindex(pd.date_range(s.index[0], s.index[-1], freq="h"))


def realized_vol_for_rows(times: pd.DatetimeIndex, last_ret: np.ndarray) -> pd.DataFrame:
    """`RV_FEATURES` at each row of a training frame from its own `last_ret` column (no candles
    needed): the same values `realized_vol_features` gives from the closes."""
    grid = returns_on_grid(times, last_ret)
    cols = realized_vol_from_returns(grid.to_numpy())
    out = pd.DataFrame(cols, index=grid.index)[RV_FEATURES]
    return out.reindex(pd.DatetimeIndex(times))
