"""Point-in-time rules: when each silver row became available, and as-of lookups with a max age.

A feature row at hour t (the candle that opens at t and closes at t+1h) may use an item only if
the item's `available_at` is before t+1h. The rules (docs/FEATURES.md):

- articles: `available_at` = `first_seen_at` for live rows, `published_at` + lag(source) for
  `backfilled` rows, lag from `ingest.backfill_lag_min` (keyed by source, with a `default`);
- tables without a backfilled flag (social_counts, market_index): `first_seen_at`, but never
  before the value's natural time (the end of the counted hour; the index's timestamp) and, for
  history loaded long after the fact, no later than natural time + lag(source).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.features.definitions import FeatureParams

HOUR = pd.Timedelta(hours=1)
UTC_NS = "datetime64[ns, UTC]"


def utc_ns(values: object) -> pd.Series:
    """Any timestamps as a tz-aware UTC nanosecond series (pandas 3 may infer microseconds)."""
    s = (
        pd.Series(pd.to_datetime(values, utc=True))
        if not isinstance(values, pd.Series)
        else pd.to_datetime(values, utc=True)
    )
    return s.astype(UTC_NS)


def _lags(source: pd.Series, p: FeatureParams) -> pd.Series:
    minutes = source.astype(object).map(lambda s: p.lag_min(str(s))).astype("float64")
    return pd.to_timedelta(minutes, unit="min")


def article_available_at(df: pd.DataFrame, p: FeatureParams) -> pd.Series:
    """`first_seen_at` for live articles, `published_at` + lag(source) for backfilled ones."""
    published = utc_ns(df["published_at"])
    seen = utc_ns(df["first_seen_at"])
    backfilled = df["backfilled"].astype(bool).to_numpy()
    lagged = published + _lags(df["source"], p)
    return pd.Series(np.where(backfilled, lagged, seen), index=df.index).astype(UTC_NS)


def clamped_available_at(
    natural: pd.Series, first_seen_at: pd.Series, source: pd.Series, p: FeatureParams
) -> pd.Series:
    natural = utc_ns(natural)
    seen = utc_ns(first_seen_at)
    upper = natural + _lags(source, p)
    return seen.where(seen >= natural, natural).where(seen <= upper, upper).astype(UTC_NS)


def hour_bucket(available_at: pd.Series) -> pd.Series:
    """The feature hour t an item counts in: available_at within [t, t+1h)."""
    return utc_ns(available_at).dt.floor("h")


def asof_latest(
    grid: pd.DatetimeIndex, items: pd.DataFrame, time_col: str, value_col: str, max_age: pd.Timedelta
) -> np.ndarray:
    """At each hour t: the value of the item with the latest `time_col` among those available
    before t+1h, if that time is at most `max_age` before t; else NaN.

    Items that arrive after a newer one (a late backfill of an older hour) never replace it.
    """
    out = np.full(len(grid), np.nan)
    if items.empty or len(grid) == 0:
        return out
    df = items.sort_values(["available_at", time_col], kind="mergesort")
    newest = df[time_col].cummax()
    records = df[df[time_col] == newest]
    records = records.drop_duplicates("available_at", keep="last")
    left = pd.DataFrame({"close_at": (pd.Series(grid) + HOUR).astype(UTC_NS)})
    right = records[["available_at", time_col, value_col]].rename(columns={"available_at": "close_at"})
    right["close_at"] = right["close_at"].astype(UTC_NS)
    m = pd.merge_asof(left, right, on="close_at", direction="backward", allow_exact_matches=False)
    age = pd.Series(grid, dtype=UTC_NS).to_numpy() - m[time_col].astype(UTC_NS).to_numpy()
    fresh = (age <= max_age.to_timedelta64()) & m[value_col].notna().to_numpy()
    out[fresh] = m[value_col].to_numpy(dtype="float64")[fresh]
    return out
