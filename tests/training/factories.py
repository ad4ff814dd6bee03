"""Generated training frames: pure noise, or a signal planted in chosen feature groups."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rayapp.training.data import TrainingFrame, build_training_frame, feature_groups

COLUMNS = [c for cols in feature_groups().values() for c in cols]

# Overrides that keep a Tune search, its CV and the ablation small enough for a test.
SMALL = [
    "tune.num_samples=2",
    "tune.max_concurrent=2",
    "tune.cv.n_splits=3",
    "lifecycle.gate.n_splits=6",  # the gate's long walk-forward: 6 x 168 h fits a 1,300-hour frame
    "lifecycle.gate.n_boot=300",
    "tune.ablation.n_boot=300",
    "model.params.n_estimators=80",
    "model.params.max_depth=3",
    "tune.space.n_estimators.high=120",
    "tune.space.max_depth.high=4",
]


def make_frame(
    n_hours: int = 1400,
    planted: dict[str, float] | None = None,
    seed: int = 0,
    horizon: int = 1,
    start: str = "2022-01-01",
    nan_groups: tuple[str, ...] = (),
) -> TrainingFrame:
    """Hourly features and prices; `planted={"sentiment_mean": 1.0}` makes the next return depend
    on that column (weight = strength relative to the noise); no plant = a pure random walk."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n_hours, freq="h", tz="UTC")
    feats = pd.DataFrame(rng.standard_normal((n_hours, len(COLUMNS))), index=idx, columns=COLUMNS)
    feats["hour_of_day"] = idx.hour.astype(float)
    drift = np.zeros(n_hours)
    for col, w in (planted or {}).items():
        drift += w * feats[col].to_numpy()
    # r[t] is the return from close(t) to close(t+1): it may depend on features at t only.
    r = 0.004 * (drift + rng.standard_normal(n_hours))
    close = pd.Series(
        20000 * np.exp(np.concatenate([[0.0], np.cumsum(r)])),
        index=pd.date_range(start, periods=n_hours + 1, freq="h", tz="UTC"),
    )
    for g in nan_groups:
        feats[feature_groups()[g]] = np.nan
    return build_training_frame(feats, close, horizon=horizon, feature_set_version="test_v1")
