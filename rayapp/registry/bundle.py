"""The serving bundle: what a registered model carries besides the XGBoost booster.

Training writes it as the run artifact `serving/bundle.json` next to the `model` artifact (an
MLflow xgboost-flavour Booster predicting raw P(up) from the columns in `feature_names` order,
NaN = missing). Serving reads it to turn the raw probability into the calibrated P(up), the
expected return and its conformal interval. Nothing here is hard-coded: every number comes from
out-of-fold predictions of the training run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

BUNDLE_ARTIFACT = "serving/bundle.json"
MODEL_ARTIFACT = "model"


@dataclass
class Calibration:
    """Monotone piecewise-linear map raw P(up) -> calibrated P(up) (isotonic fit knots)."""

    method: str  # isotonic | platt | identity
    x: list[float] = field(default_factory=lambda: [0.0, 1.0])
    y: list[float] = field(default_factory=lambda: [0.0, 1.0])

    def __call__(self, p: np.ndarray | float) -> np.ndarray:
        return np.clip(np.interp(np.asarray(p, dtype=float), self.x, self.y), 0.0, 1.0)


@dataclass
class Conformal:
    """Split-conformal interval for the h-hour log return around the expected return."""

    alpha: float  # miscoverage: 0.1 -> a 90% interval
    q_low: float  # quantile of (realised - expected) residuals at alpha/2
    q_high: float  # ... at 1 - alpha/2

    def interval(self, expected: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        e = np.asarray(expected, dtype=float)
        return e + self.q_low, e + self.q_high


@dataclass
class ReturnModel:
    """E[r | p] = p * up_mean + (1 - p) * down_mean, means of realised returns in-sample of OOF."""

    up_mean: float
    down_mean: float

    def __call__(self, p_up: np.ndarray | float) -> np.ndarray:
        p = np.asarray(p_up, dtype=float)
        return p * self.up_mean + (1.0 - p) * self.down_mean


@dataclass
class ModelBundle:
    feature_set_version: str
    feature_names: list[str]
    horizon_h: int
    calibration: Calibration
    conformal: Conformal
    expected_return: ReturnModel
    cv_metrics: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    data_range: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)

    @classmethod
    def from_json(cls, text: str) -> ModelBundle:
        d = json.loads(text)
        return cls(
            feature_set_version=d["feature_set_version"],
            feature_names=list(d["feature_names"]),
            horizon_h=int(d["horizon_h"]),
            calibration=Calibration(**d["calibration"]),
            conformal=Conformal(**d["conformal"]),
            expected_return=ReturnModel(**d["expected_return"]),
            cv_metrics=d.get("cv_metrics", {}),
            baselines=d.get("baselines", {}),
            gate=d.get("gate", {}),
            data_range=d.get("data_range", []),
        )

    def predict(self, raw_p_up: np.ndarray) -> dict[str, np.ndarray]:
        """Calibrated P(up), direction, expected return and interval from raw booster output."""
        p = self.calibration(raw_p_up)
        er = self.expected_return(p)
        lo, hi = self.conformal.interval(er)
        return {
            "p_up": p,
            "direction": np.where(p >= 0.5, 1, -1),
            "expected_return": er,
            "interval_low": lo,
            "interval_high": hi,
        }
