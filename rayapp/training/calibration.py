"""Calibrated P(up) and a split-conformal return interval from out-of-fold predictions.

The out-of-fold hours are split in time: the earlier half fits the calibration map and the
expected-return model, the later half (never seen by those fits) gives the conformal residual
quantiles and the reported Brier score and reliability curve. That keeps the interval's coverage
guarantee and makes the reported calibration honest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rayapp.registry import Calibration, Conformal, ReturnModel


def brier_score(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, float) - np.asarray(y, float)) ** 2))


def reliability_curve(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Mean predicted vs observed frequency in equal-width probability bins (empty bins left out)."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out.append(
                {
                    "bin_low": b / n_bins,
                    "bin_high": (b + 1) / n_bins,
                    "mean_pred": float(p[m].mean()),
                    "observed": float(y[m].mean()),
                    "count": int(m.sum()),
                }
            )
    return out


def fit_calibration(p: np.ndarray, y: np.ndarray, method: str = "isotonic") -> Calibration:
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    if method == "identity" or len(np.unique(y)) < 2:
        return Calibration(method="identity")
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
        xs = [float(v) for v in iso.X_thresholds_]
        ys = [float(v) for v in iso.y_thresholds_]
        if len(xs) < 2:  # a constant fit: one knot, stretch it over [0, 1]
            xs, ys = [0.0, 1.0], [ys[0], ys[0]]
        return Calibration(method="isotonic", x=xs, y=ys)
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6))).reshape(-1, 1)
        lr = LogisticRegression(C=1e6).fit(z, y.astype(int))
        # Serving's Calibration is a piecewise-linear map: tabulate the sigmoid on a fine grid.
        grid = np.linspace(0.0, 1.0, 201)
        zg = np.log(np.clip(grid, 1e-6, 1 - 1e-6) / (1 - np.clip(grid, 1e-6, 1 - 1e-6))).reshape(-1, 1)
        return Calibration(method="platt", x=grid.tolist(), y=lr.predict_proba(zg)[:, 1].tolist())
    raise ValueError(f"unknown calibration method {method!r} (isotonic | platt | identity)")


def fit_return_model(ret: np.ndarray) -> ReturnModel:
    r = np.asarray(ret, float)
    up, down = r[r > 0], r[r <= 0]
    return ReturnModel(up_mean=float(up.mean()) if len(up) else 0.0, down_mean=float(down.mean()) if len(down) else 0.0)


def fit_conformal(residuals: np.ndarray, alpha: float = 0.1) -> Conformal:
    """Split-conformal quantiles with the finite-sample correction ceil((n+1)(1-a/2))/n."""
    r = np.sort(np.asarray(residuals, float))
    n = len(r)
    if n < 2:
        raise ValueError("conformal calibration needs at least 2 residuals")
    k_hi = min(n, int(np.ceil((n + 1) * (1 - alpha / 2))))
    k_lo = max(1, int(np.floor((n + 1) * (alpha / 2))))
    return Conformal(alpha=alpha, q_low=float(r[k_lo - 1]), q_high=float(r[k_hi - 1]))


@dataclass
class CalibrationResult:
    calibration: Calibration
    conformal: Conformal
    expected_return: ReturnModel
    report: dict[str, Any]


def calibrate_oof(
    oof_p: np.ndarray,
    y: np.ndarray,
    ret: np.ndarray,
    test_idx: np.ndarray,
    method: str = "isotonic",
    alpha: float = 0.1,
) -> CalibrationResult:
    idx = np.sort(np.asarray(test_idx))
    if len(idx) < 20:
        raise ValueError(f"too few out-of-fold predictions to calibrate ({len(idx)})")
    half = len(idx) // 2
    fit_i, hold_i = idx[:half], idx[half:]
    p_fit, p_hold = oof_p[fit_i], oof_p[hold_i]
    cal = fit_calibration(p_fit, y[fit_i], method)
    rm = fit_return_model(ret[fit_i])
    p_cal = cal(p_hold)
    conf = fit_conformal(ret[hold_i] - rm(p_cal), alpha)
    lo, hi = conf.interval(rm(p_cal))
    report = {
        "method": cal.method,
        "n_fit": len(fit_i),
        "n_holdout": len(hold_i),
        "brier_raw": brier_score(p_hold, y[hold_i]),
        "brier_calibrated": brier_score(p_cal, y[hold_i]),
        "brier_climatology": brier_score(np.full(len(hold_i), y[fit_i].mean()), y[hold_i]),
        "reliability_raw": reliability_curve(p_hold, y[hold_i]),
        "reliability_calibrated": reliability_curve(p_cal, y[hold_i]),
        "conformal_alpha": alpha,
        "conformal_q_low": conf.q_low,
        "conformal_q_high": conf.q_high,
        "interval_coverage_holdout": float(np.mean((ret[hold_i] >= lo) & (ret[hold_i] <= hi))),
    }
    return CalibrationResult(cal, conf, rm, report)
