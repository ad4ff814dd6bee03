"""Training targets: the forward log return close(t) -> close(t+h) and its direction.

Looked up by time on the hourly grid, so a missing candle at t+h leaves the target missing (NaN),
never filled. Targets are labels, not features: they are never stored in the `features` table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def target_columns(horizons: Sequence[int]) -> list[str]:
    return [c for h in horizons for c in (f"target_ret_{h}h", f"target_dir_{h}h")]


def forward_targets(close: pd.Series, horizons: Sequence[int] = (1, 4, 24)) -> pd.DataFrame:
    """For each hour t in `close.index`: log(close(t+h)/close(t)) and 1.0 if it is > 0 else 0.0
    (NaN when close(t+h) is unknown)."""
    if any(int(h) < 1 for h in horizons):
        raise ValueError(f"horizons must be >= 1 hour, got {list(horizons)}")
    close = close.sort_index()
    if close.index.has_duplicates:
        raise ValueError("close has duplicate timestamps")
    out = pd.DataFrame(index=close.index)
    now = close.to_numpy(dtype="float64")
    for h in horizons:
        later = close.reindex(close.index + pd.Timedelta(hours=int(h))).to_numpy(dtype="float64")
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.log(later / now)
        out[f"target_ret_{h}h"] = ret
        out[f"target_dir_{h}h"] = np.where(np.isnan(ret), np.nan, (ret > 0).astype("float64"))
    return out
