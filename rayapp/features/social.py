"""Social volume and market-index features: as-of lookups with a bounded age.

`social_volume` at t is the sum over sources of the mentions in the newest counted hour that was
available before t+1h and is at most `social_max_age_h` old; a source with nothing fresh adds
nothing, and the feature is NaN when no source has a fresh count. Fear & greed is the newest
daily value available before t+1h, at most `market_max_age_h` old.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.features.definitions import FeatureParams
from rayapp.features.pit import asof_latest


def social_volume(counts: pd.DataFrame, grid: pd.DatetimeIndex, rows: np.ndarray, p: FeatureParams) -> np.ndarray:
    max_age = pd.Timedelta(hours=p.social_max_age_h)
    per_source = (
        [asof_latest(grid, part, "hour", "mentions", max_age) for _, part in counts.groupby("source", sort=True)]
        if not counts.empty
        else []
    )
    if not per_source:
        return np.full(len(rows), np.nan)
    stacked = np.vstack(per_source)
    any_fresh = np.isfinite(stacked).any(axis=0)
    # Sources are added in name order, so the sum's bits never depend on the chunk.
    total = np.zeros(len(grid))
    for row in stacked:
        total += np.nan_to_num(row, nan=0.0)
    return np.where(any_fresh, total, np.nan)[rows]


def market_features(
    market: pd.DataFrame, grid: pd.DatetimeIndex, rows: np.ndarray, p: FeatureParams
) -> dict[str, np.ndarray]:
    fg_rows = market[market["index_name"] == "fear_greed"] if not market.empty else market
    fg = asof_latest(grid, fg_rows, "ts", "value", pd.Timedelta(hours=p.market_max_age_h))
    before = np.full(len(fg), np.nan)
    before[24:] = fg[:-24] if len(fg) > 24 else before[24:]
    return {"fear_greed": fg[rows], "fear_greed_change_24h": (fg - before)[rows]}
