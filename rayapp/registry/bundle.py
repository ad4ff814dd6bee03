"""The serving bundle: what a registered model carries besides the XGBoost booster.

Training writes it as the run artifact `serving/bundle.json` next to the `model` artifact (an
MLflow xgboost-flavour Booster predicting raw P(up) from the columns in `feature_names` order,
NaN = missing). Serving reads it to turn the raw probability into the calibrated P(up), the
expected return and its conformal interval. Nothing here is hard-coded: every number comes from
out-of-fold predictions of the training run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from rayapp.registry.intervals import IntervalModel, legacy_interval

BUNDLE_ARTIFACT = "serving/bundle.json"
MODEL_ARTIFACT = "model"


@dataclass
class Calibration:
    """Monotone piecewise-linear map raw P(up) -> calibrated P(up) (isotonic fit knots)."""

    method: str  # climatology | identity | platt | isotonic
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
    # Quantiles, volatility and calibrated intervals (rayapp.registry.intervals). None in bundles
    # written before them: those serve the constant-width band, labelled as legacy.
    intervals: IntervalModel | None = None

    def to_json(self) -> str:
        # asdict would deep-copy the interval model's loaded booster: it serialises itself
        d = asdict(replace(self, intervals=None))
        d["intervals"] = None if self.intervals is None else self.intervals.as_dict()
        return json.dumps(d, indent=2, default=float)

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
            intervals=IntervalModel.from_dict(d["intervals"]) if d.get("intervals") else None,
        )

    @property
    def interval_method(self) -> str:
        """What interval this bundle serves: the conformalized quantiles, or the legacy band."""
        return f"cqr_{self.intervals.method}" if self.intervals is not None else "constant_conformal_legacy"

    def forecast_intervals(
        self, interval_row: Any = None, expected_return: float | None = None, aci: Any = None
    ) -> dict[str, Any]:
        """One row's quantiles, volatility and intervals, whichever bundle this is. A bundle with
        `intervals` needs the interval model's feature row (`intervals.feature_names` order; `aci`:
        level -> AciState); an older one serves its constant band around `expected_return`."""
        if self.intervals is not None and interval_row is not None:
            return self.intervals.forecast(interval_row, aci)[0]
        er = 0.0 if expected_return is None else float(expected_return)
        band = legacy_interval(self.conformal, er)
        return {
            "method": band["method"],
            "horizon_h": self.horizon_h,
            "quantiles": None,
            "volatility": None,
            "intervals": [
                {
                    "level": band["level"],
                    "low": float(band["low"]),
                    "high": float(band["high"]),
                    "alpha_t": None,
                    "coverage": None,
                }
            ],
        }

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
