"""The interval part of the model contract: quantiles, volatility and calibrated intervals.

Training (rayapp.training.intervals) fits an `IntervalModel` and stores it in the serving bundle
(`ModelBundle.intervals`); serving calls `IntervalModel.forecast` on the interval model's feature
row (the core features plus the realised-volatility group, `feature_names` order) and keeps one
`AciState` per level, updated by `aci_update` each time a forecast resolves.

Calibration is conformalized quantile regression (CQR; Romano, Patterson & Candès, "Conformalized
Quantile Regression", NeurIPS 2019) with the score scaled by the raw interval's width (so the
correction grows with the forecast volatility): for a level L with raw quantiles (q_lo, q_hi) and
width w = q_hi - q_lo, the score of an outcome y is E = max(q_lo - y, y - q_hi) / w and the interval
is [q_lo - Q w, q_hi + Q w], Q the ceil((n+1)L)-th smallest of n held-out scores.

Online, adaptive conformal inference (ACI; Gibbs & Candès, "Adaptive Conformal Inference Under
Distribution Shift", NeurIPS 2021) moves the miscoverage level used for Q after every resolved
forecast: alpha_{t+1} = alpha_t + gamma (alpha - err_t), err_t = 1 when y_t fell outside. Long-run
coverage then tends to L whatever the shift. An alpha_t <= 0 would mean an infinite interval; the
largest held-out score is used instead (the interval stays finite, and is the widest seen).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_SCORES = 2000  # order statistics of the held-out scores kept for ACI (evenly spaced ranks)


def level_key(level: float) -> str:
    return f"{float(level):.4g}"


def conformal_rank_quantile(sorted_scores: np.ndarray, level: float) -> float:
    """The ceil((n+1) level)-th smallest score (the split-conformal quantile); above the largest
    rank, the largest score (the finite stand-in for +inf); below the smallest, the smallest."""
    s = np.asarray(sorted_scores, float)
    n = len(s)
    if n == 0:
        return 0.0
    k = math.ceil((n + 1) * float(level))
    return float(s[min(max(k, 1), n) - 1])


def thin_scores(scores: np.ndarray, keep: int = MAX_SCORES) -> list[float]:
    """At most `keep` order statistics of the sorted scores, evenly spaced in rank (the ends kept)."""
    s = np.sort(np.asarray(scores, float))
    if len(s) <= keep:
        return [float(v) for v in s]
    idx = np.unique(np.round(np.linspace(0, len(s) - 1, keep)).astype(int))
    return [float(v) for v in s[idx]]


@dataclass
class AciState:
    """Adaptive conformal inference for one nominal level: the current miscoverage `alpha_t`, and
    the running coverage of resolved forecasts (the live metric)."""

    level: float
    alpha_t: float
    resolved: int = 0
    covered: int = 0

    @classmethod
    def start(cls, level: float) -> AciState:
        return cls(level=float(level), alpha_t=1.0 - float(level))

    @property
    def coverage(self) -> float | None:
        return self.covered / self.resolved if self.resolved else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "alpha_t": self.alpha_t,
            "resolved": self.resolved,
            "covered": self.covered,
            "coverage": self.coverage,
        }


def aci_update(state: AciState, covered: bool, gamma: float) -> AciState:
    """One resolved forecast: alpha_{t+1} = alpha_t + gamma (alpha - err_t) (Gibbs & Candès 2021).
    Returns a new state; alpha_t is kept in [-1, 2] so a long streak cannot wind it up for ever."""
    err = 0.0 if covered else 1.0
    a = state.alpha_t + float(gamma) * ((1.0 - state.level) - err)
    return AciState(
        level=state.level,
        alpha_t=float(min(2.0, max(-1.0, a))),
        resolved=state.resolved + 1,
        covered=state.covered + (1 if covered else 0),
    )


@dataclass
class IntervalModel:
    """What serving needs to turn an interval-feature row into quantiles, a volatility and
    calibrated intervals. `method`: "quantile" (one multi-quantile XGBoost booster,
    `reg:quantileerror`, predicting the h-hour log return's quantiles in units of `target_scale`)
    or "vol" (an XGBoost booster predicting log squared h-hour returns; quantiles =
    sigma * `z_quantiles`)."""

    method: str
    horizon_h: int
    feature_names: list[str]
    quantiles: list[float]  # probability levels of the raw quantiles, increasing
    levels: list[float]  # nominal coverages of the served intervals, e.g. 0.5, 0.8, 0.9
    booster_ubj: str  # base64 of the booster's UBJSON (booster.save_raw("ubj"))
    target_scale: float = 1.0  # the booster predicts in units of this (quantile) ...
    vol_bias: float = 0.0  # ... or log sigma^2 = prediction + vol_bias (vol)
    z_quantiles: list[float] = field(default_factory=list)  # vol: standardised-return quantiles
    cqr: dict[str, float] = field(default_factory=dict)  # level -> Q (scaled CQR correction)
    scores: dict[str, list[float]] = field(default_factory=dict)  # level -> held-out scores (sorted)
    aci_gamma: float = 0.005
    report: dict[str, Any] = field(default_factory=dict)
    _booster: Any = field(default=None, repr=False, compare=False)

    # ---- serialisation ---------------------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "horizon_h": self.horizon_h,
            "feature_names": list(self.feature_names),
            "quantiles": [float(q) for q in self.quantiles],
            "levels": [float(v) for v in self.levels],
            "booster_ubj": self.booster_ubj,
            "target_scale": float(self.target_scale),
            "vol_bias": float(self.vol_bias),
            "z_quantiles": [float(z) for z in self.z_quantiles],
            "cqr": {k: float(v) for k, v in self.cqr.items()},
            "scores": {k: [float(x) for x in v] for k, v in self.scores.items()},
            "aci_gamma": float(self.aci_gamma),
            "report": self.report,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalModel:
        return cls(
            method=str(d["method"]),
            horizon_h=int(d["horizon_h"]),
            feature_names=list(d["feature_names"]),
            quantiles=[float(q) for q in d["quantiles"]],
            levels=[float(v) for v in d["levels"]],
            booster_ubj=str(d["booster_ubj"]),
            target_scale=float(d.get("target_scale", 1.0)),
            vol_bias=float(d.get("vol_bias", 0.0)),
            z_quantiles=[float(z) for z in d.get("z_quantiles", [])],
            cqr={str(k): float(v) for k, v in d.get("cqr", {}).items()},
            scores={str(k): [float(x) for x in v] for k, v in d.get("scores", {}).items()},
            aci_gamma=float(d.get("aci_gamma", 0.005)),
            report=dict(d.get("report", {})),
        )

    @staticmethod
    def encode_booster(booster: Any) -> str:
        return base64.b64encode(bytes(booster.save_raw("ubj"))).decode("ascii")

    @property
    def booster(self) -> Any:
        if self._booster is None:
            import xgboost as xgb

            b = xgb.Booster()
            b.load_model(bytearray(base64.b64decode(self.booster_ubj)))
            b.set_param({"nthread": 1})
            self._booster = b
        return self._booster

    # ---- prediction ------------------------------------------------------------------------------
    def raw(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """(quantiles (n, k), sorted along each row so they never cross; sigma (n,))."""
        import xgboost as xgb

        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr.reshape(1, -1)
        pred = np.asarray(self.booster.predict(xgb.DMatrix(arr, missing=np.nan, feature_names=self.feature_names)))
        return raw_quantiles(self, pred)

    def interval(self, q: np.ndarray, level: float, alpha_t: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated interval at `level` from raw quantiles `q`; `alpha_t` (ACI) replaces the
        nominal miscoverage when given."""
        key = level_key(level)
        lo_i, hi_i = self.pair(level)
        lo, hi = q[:, lo_i], q[:, hi_i]
        w = np.maximum(hi - lo, 1e-12)
        if alpha_t is None:
            qq = self.cqr.get(key, 0.0)
        else:
            qq = conformal_rank_quantile(np.asarray(self.scores.get(key, [0.0])), 1.0 - alpha_t)
        return lo - qq * w, hi + qq * w

    def pair(self, level: float) -> tuple[int, int]:
        """Positions of the raw quantiles (1 - L)/2 and (1 + L)/2 in `quantiles`."""
        qs = np.asarray(self.quantiles)
        lo = int(np.argmin(np.abs(qs - (1 - level) / 2)))
        hi = int(np.argmin(np.abs(qs - (1 + level) / 2)))
        return lo, hi

    def forecast(self, X: Any, aci: dict[str, AciState] | None = None) -> list[dict[str, Any]]:
        """Per row: the raw quantiles (probability level -> h-hour log return), the volatility
        (std of the h-hour log return) and one interval per nominal level (nested: a higher level
        is never narrower), with the ACI level in use and its running coverage when `aci` is given."""
        q, sigma = self.raw(X)
        bounds: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        for level in sorted(self.levels):
            st = (aci or {}).get(level_key(level))
            lo, hi = self.interval(q, level, None if st is None else st.alpha_t)
            bounds[level] = (lo, hi)
        nest_intervals(bounds)
        out = []
        for i in range(q.shape[0]):
            ivs = []
            for level in sorted(self.levels):
                st = (aci or {}).get(level_key(level))
                lo, hi = bounds[level]
                ivs.append(
                    {
                        "level": level,
                        "low": float(lo[i]),
                        "high": float(hi[i]),
                        "alpha_t": None if st is None else st.alpha_t,
                        "coverage": None if st is None else st.coverage,
                    }
                )
            out.append(
                {
                    "method": f"cqr_{self.method}" + ("_aci" if aci else ""),
                    "horizon_h": self.horizon_h,
                    "quantiles": {level_key(p): float(v) for p, v in zip(self.quantiles, q[i], strict=True)},
                    "volatility": float(sigma[i]),
                    "intervals": ivs,
                }
            )
        return out


def raw_quantiles(model: IntervalModel, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The booster's output -> (sorted quantiles (n, k), sigma (n,)) for either method."""
    pred = np.asarray(pred, float)
    if model.method == "vol":
        sigma = np.sqrt(np.exp(pred.reshape(-1) + model.vol_bias))
        q = sigma[:, None] * np.asarray(model.z_quantiles)[None, :]
    else:
        q = np.sort(pred.reshape(len(pred), -1), axis=1) * model.target_scale
        sigma = sigma_from_quantiles(q, model.quantiles)
    return np.sort(q, axis=1), sigma


def sigma_from_quantiles(q: np.ndarray, probs: list[float]) -> np.ndarray:
    """A volatility from quantiles: the outermost pair's width over the normal's for that pair."""
    from scipy.stats import norm

    lo, hi = 0, len(probs) - 1
    span = float(norm.ppf(probs[hi]) - norm.ppf(probs[lo]))
    return np.asarray((q[:, hi] - q[:, lo]) / span, float)


def nest_intervals(bounds: dict[float, tuple[np.ndarray, np.ndarray]]) -> None:
    """In place: each level's interval contains every lower level's (the fan never inverts)."""
    prev: tuple[np.ndarray, np.ndarray] | None = None
    for level in sorted(bounds):
        lo, hi = bounds[level]
        if prev is not None:
            lo, hi = np.minimum(lo, prev[0]), np.maximum(hi, prev[1])
            bounds[level] = (lo, hi)
        prev = (lo, hi)


def legacy_interval(conformal: Any, expected_return: np.ndarray | float) -> dict[str, Any]:
    """The interval an old bundle (no `intervals`) serves: today's constant-width split-conformal
    band around the expected return, labelled as such."""
    lo, hi = conformal.interval(expected_return)
    return {
        "method": "constant_conformal_legacy",
        "level": 1.0 - float(conformal.alpha),
        "low": np.asarray(lo, float),
        "high": np.asarray(hi, float),
    }
