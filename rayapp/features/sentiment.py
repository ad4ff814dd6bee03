"""News and social sentiment aggregated point in time, per feature hour.

An item counts in hour t only if its `available_at` falls within [t, t+1h). An hour without items
has count 0 and a missing (NaN) mean: no score is ever invented. The only carry-forward is the
explicit, bounded one of `sentiment_change_1h` (the previous known mean, at most
`sentiment_change_max_gap_h` hours back).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.features.definitions import FeatureParams
from rayapp.features.pit import UTC_NS, hour_bucket
from rayapp.features.windows import window_sum

AGG_COLUMNS = ["count", "score_sum", "n_extreme"]


def hourly_items(items: pd.DataFrame, extreme_threshold: float) -> pd.DataFrame:
    """Per feature hour: item count, sum of scores, items with |score| >= threshold.

    Items are sorted by (available_at, score) first and a group's sum reads only that group's
    values in order, so a bucket's sum is the same bits whatever slice of history it came in.
    """
    if items.empty:
        return pd.DataFrame(
            {c: pd.Series(dtype="float64") for c in AGG_COLUMNS}, index=pd.DatetimeIndex([], dtype=UTC_NS, name="hour")
        )
    df = items.sort_values(["available_at", "score"], kind="mergesort")
    bucket = hour_bucket(df["available_at"])
    score = df["score"].astype("float64")
    frame = pd.DataFrame(
        {
            "hour": bucket.to_numpy(),
            "count": 1.0,
            "score_sum": score.to_numpy(),
            "n_extreme": (score.abs() >= extreme_threshold).astype("float64").to_numpy(),
        }
    )
    agg = frame.groupby("hour", sort=True).agg(
        count=("count", "sum"), score_sum=("score_sum", "sum"), n_extreme=("n_extreme", "sum")
    )
    agg.index = pd.DatetimeIndex(agg.index).astype(UTC_NS)
    return agg


def _on_grid(agg: pd.DataFrame, grid: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = agg.reindex(grid)
    return (
        a["count"].fillna(0.0).to_numpy(dtype="float64"),
        a["score_sum"].fillna(0.0).to_numpy(dtype="float64"),
        a["n_extreme"].fillna(0.0).to_numpy(dtype="float64"),
    )


def _mean(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / count, np.nan)


def sentiment_features(
    news: pd.DataFrame, grid: pd.DatetimeIndex, rows: np.ndarray, p: FeatureParams, extended: bool
) -> dict[str, np.ndarray]:
    count, total, n_ext = _on_grid(news, grid)
    mean = _mean(total, count)
    prev_known = pd.Series(mean).ffill(limit=p.sentiment_change_max_gap_h - 1).shift(1).to_numpy()
    out = {
        "sentiment_mean": mean[rows],
        "sentiment_count": count[rows],
        "sentiment_change_1h": (mean - prev_known)[rows],
        "sentiment_extreme": _mean(n_ext, count)[rows],
    }
    if extended:
        c24, s24 = window_sum(count, 24), window_sum(total, 24)
        c6, s6 = window_sum(count, 6), window_sum(total, 6)
        m24 = _mean(s24, c24)
        out["sentiment_mean_24h"] = m24[rows]
        out["sentiment_count_24h"] = c24[rows]
        out["sentiment_momentum"] = (_mean(s6, c6) - m24)[rows]
    return out


def social_sentiment(social: pd.DataFrame, grid: pd.DatetimeIndex, rows: np.ndarray) -> np.ndarray:
    count, total, _ = _on_grid(social, grid)
    return _mean(total, count)[rows]
