"""The pure feature computation: silver inputs for one symbol -> the feature frame.

`compute_features(inputs, fs, start, end)` returns one row per candle hour t in [start, end),
reading only inputs available before t+1h and at most `fs.params.warmup_h` hours before t. That
bound is what lets the build cut history into chunks (each with `warmup_h` hours of overlap) and
get exactly the single-pass bits at every chunk edge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from rayapp.features.definitions import FeatureSet
from rayapp.features.pit import HOUR, UTC_NS
from rayapp.features.price import fill_gaps, price_features
from rayapp.features.sentiment import hourly_items, sentiment_features, social_sentiment
from rayapp.features.social import market_features, social_volume

CANDLE_COLUMNS = ["open", "high", "low", "close", "volume"]


def _empty(cols: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in cols.items()})


@dataclass(frozen=True)
class FeatureInputs:
    """Everything the features of one symbol read, with `available_at` already resolved.

    candles: index open_time (UTC, hourly), columns open/high/low/close/volume (one source).
    news, social: columns available_at, score (scored items of kind news / social).
    social_counts: columns source, hour, mentions, available_at.
    market: columns index_name, ts, value, available_at.
    """

    symbol: str
    candle_source: str
    candles: pd.DataFrame
    news: pd.DataFrame
    social: pd.DataFrame
    social_counts: pd.DataFrame
    market: pd.DataFrame

    @classmethod
    def empty_items(cls) -> pd.DataFrame:
        return _empty({"available_at": UTC_NS, "score": "float64"})

    @classmethod
    def empty_counts(cls) -> pd.DataFrame:
        return _empty({"source": "object", "hour": UTC_NS, "mentions": "float64", "available_at": UTC_NS})

    @classmethod
    def empty_market(cls) -> pd.DataFrame:
        return _empty({"index_name": "object", "ts": UTC_NS, "value": "float64", "available_at": UTC_NS})

    def window(self, lo: pd.Timestamp | None, hi: pd.Timestamp | None) -> FeatureInputs:
        """Only what rows in [lo + warm-up, hi) can read: candles opening in [lo, hi), items
        available in [lo, hi + 1h)."""

        def cut(df: pd.DataFrame, col: str, upper: pd.Timestamp | None) -> pd.DataFrame:
            if df.empty:
                return df
            m = np.ones(len(df), dtype=bool)
            t = df[col] if col != "index" else df.index.to_series()
            if lo is not None:
                m &= (t >= lo).to_numpy()
            if upper is not None:
                m &= (t < upper).to_numpy()
            return df[m]

        item_hi = None if hi is None else hi + HOUR
        return replace(
            self,
            candles=cut(self.candles, "index", hi),
            news=cut(self.news, "available_at", item_hi),
            social=cut(self.social, "available_at", item_hi),
            social_counts=cut(self.social_counts, "available_at", item_hi),
            market=cut(self.market, "available_at", item_hi),
        )


def output_hours(
    inputs: FeatureInputs, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DatetimeIndex:
    idx = inputs.candles.index
    m = np.ones(len(idx), dtype=bool)
    if start is not None:
        m &= idx >= start
    if end is not None:
        m &= idx < end
    return idx[m]


def compute_features(
    inputs: FeatureInputs, fs: FeatureSet, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The feature frame (index ts, columns `fs.names`, float64, NaN = missing) for the candle
    hours in [start, end)."""
    p = fs.params
    hours = output_hours(inputs, start, end)
    if len(hours) == 0:
        return pd.DataFrame(columns=fs.names, index=pd.DatetimeIndex([], dtype=UTC_NS, name="ts"), dtype="float64")
    first = inputs.candles.index[0]
    lo = max(first, hours[0] - pd.Timedelta(hours=p.warmup_h))
    grid = pd.date_range(lo, hours[-1], freq="h", name="ts").astype(UTC_NS)
    candles = inputs.candles.loc[(inputs.candles.index >= lo) & (inputs.candles.index <= hours[-1]), CANDLE_COLUMNS]
    on_grid = fill_gaps(candles.reindex(grid), p.gap_fill_h)
    rows = grid.get_indexer(hours)

    cols: dict[str, np.ndarray] = {}
    cols.update(price_features(on_grid, rows, p, fs.extended))
    news = hourly_items(inputs.news, p.extreme_threshold)
    cols.update(sentiment_features(news, grid, rows, p, fs.extended))
    cols["social_volume"] = social_volume(inputs.social_counts, grid, rows, p)
    cols["social_sentiment"] = social_sentiment(hourly_items(inputs.social, p.extreme_threshold), grid, rows)
    cols["hour_of_day"] = hours.hour.to_numpy(dtype="float64")
    if fs.extended:
        dow = hours.dayofweek.to_numpy(dtype="float64")
        cols["day_of_week"] = dow
        cols["is_weekend"] = (dow >= 5).astype("float64")
        cols.update(market_features(inputs.market, grid, rows, p))
    frame = pd.DataFrame(
        {n: np.asarray(cols[n], dtype="float64") for n in fs.names}, index=pd.DatetimeIndex(hours, name="ts")
    )
    return frame
