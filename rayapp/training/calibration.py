"""Calibrated P(up) and a split-conformal return interval from out-of-fold predictions.

The candidate maps are isotonic, Platt, identity (the raw output) and climatology (the constant
training base rate: what a model without skill should say). One is chosen by the log loss of a
blocked cross-validation over the calibration hours: each of `folds` contiguous blocks is scored
by the maps fitted on the other blocks, with `purge` hours (the horizon) left out on each side so
that no overlapping label is shared. Every hour is thus a selection hour, which a single
fit/select split wastes: on 24 h targets a third of half a year holds about sixty independent
outcomes, too few to tell a map from climatology. The chosen map is then refitted on all the
calibration hours.

In training (`calibrate_oof`) the out-of-fold hours are split in time: the first three quarters
select and fit the map and the expected-return model, and the last quarter, seen by neither,
gives the conformal residual quantiles and every reported number (Brier, log loss, ECE,
reliability curve, coverage). That keeps the interval's coverage guarantee and makes the
reported calibration out of sample.

Every map is bounded to [CLIP, 1 - CLIP]: a probability of 0 or 1 for an hourly coin-flip market
is a defect (one wrong hour costs an infinite log loss), whatever the fit on a few hours says.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from rayapp.registry import Calibration, Conformal, ReturnModel

CLIP = 0.02  # every calibrated P(up) lies in [CLIP, 1 - CLIP]
METHODS = ("isotonic", "platt", "identity")  # the maps a configuration may name
CANDIDATES = ("climatology", "identity", "platt", "isotonic")  # "auto" chooses among these
SELECTION_FOLDS = 4


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


def log_loss_per_hour(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each hour's log loss, with P(up) clipped to [1e-6, 1 - 1e-6]."""
    pp = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    yy = np.asarray(y, float)
    return -(yy * np.log(pp) + (1 - yy) * np.log(1 - pp))


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(log_loss_per_hour(p, y)))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean |mean predicted - observed frequency| over equal-width bins."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    if len(p) == 0:
        return float("nan")
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    total = 0.0
    for b in np.unique(bins):
        m = bins == b
        total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(p))


def _identity() -> Calibration:
    return Calibration(method="identity", x=[0.0, CLIP, 1 - CLIP, 1.0], y=[CLIP, CLIP, 1 - CLIP, 1 - CLIP])


def climatology_map(base_rate: float) -> Calibration:
    """The constant map: every hour gets the base rate (bounded like every other map)."""
    c = float(np.clip(base_rate, CLIP, 1 - CLIP))
    return Calibration(method="climatology", x=[0.0, 1.0], y=[c, c])


def fit_calibration(
    p: np.ndarray, y: np.ndarray, method: str = "isotonic", base_rate: float | None = None
) -> Calibration:
    """One bounded monotone map fitted on (p, y); an unknown method is a ValueError.
    "climatology" is the constant `base_rate` (default: the mean of y)."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    if method == "climatology":
        return climatology_map(float(np.mean(y)) if base_rate is None else base_rate)
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r} (isotonic | platt | identity | climatology)")
    if method == "identity" or len(np.unique(y)) < 2:
        return _identity()
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=CLIP, y_max=1 - CLIP, out_of_bounds="clip").fit(p, y)
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
        yg = np.clip(lr.predict_proba(zg)[:, 1], CLIP, 1 - CLIP)
        return Calibration(method="platt", x=grid.tolist(), y=yg.tolist())
    raise AssertionError("unreachable")


@dataclass
class Selection:
    calibration: Calibration  # the chosen map, refitted on every calibration hour
    scores: dict[str, float]  # cross-validated log loss of each candidate
    oof: np.ndarray  # the chosen method's cross-fitted output: each hour mapped by a fit without it


def select_calibration(
    p: np.ndarray,
    y: np.ndarray,
    base_rate: float,
    *,
    folds: int = SELECTION_FOLDS,
    purge: int = 1,
    candidates: tuple[str, ...] = CANDIDATES,
) -> Selection:
    """Choose the map by blocked cross-validation over (p, y), in time order: each of `folds`
    contiguous blocks is scored by every candidate fitted on the other blocks less `purge` hours
    on each side (the horizon, so that overlapping labels never straddle fit and score). The
    lowest pooled log loss wins and is refitted on every hour. Identity is always a candidate,
    so the chosen map never loses to the raw output on these held-out scores; climatology (the
    constant `base_rate`) is one unless `candidates` leaves it out. A tie goes to the simpler map
    (climatology, identity, Platt, isotonic)."""
    p = np.asarray(p, float)
    y = np.asarray(y, float)
    n = len(p)
    if n < 2 * folds:
        raise ValueError(f"too few hours to select a calibration ({n} for {folds} folds)")
    order = [m for m in CANDIDATES if m in {*candidates, "identity"}]
    edges = np.linspace(0, n, folds + 1).astype(int)
    cross = {m: np.empty(n) for m in order}
    for a, b in pairwise(edges):
        fit = np.r_[0 : max(0, a - purge), min(n, b + purge) : n]
        if len(fit) < 2:
            raise ValueError(f"too few hours to select a calibration ({n} with a purge of {purge})")
        for m in order:
            cross[m][a:b] = fit_calibration(p[fit], y[fit], m, base_rate)(p[a:b])
    scores = {m: float(log_loss_per_hour(cross[m], y).mean()) for m in order}
    best = min(order, key=lambda m: (round(scores[m], 6), order.index(m)))
    return Selection(fit_calibration(p, y, best, base_rate), scores, cross[best])


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
    method: str = "auto",
    alpha: float = 0.1,
    purge: int = 1,
) -> CalibrationResult:
    """`method`: "auto" chooses among climatology / identity / Platt / isotonic by blocked
    cross-validation on the first three quarters of the out-of-fold hours; a named method is
    compared with identity only (the raw output is never beaten by a worse map). `purge`: the
    horizon."""
    idx = np.sort(np.asarray(test_idx))
    if len(idx) < 20:
        raise ValueError(f"too few out-of-fold predictions to calibrate ({len(idx)})")
    if method != "auto" and method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r} (auto | isotonic | platt | identity)")
    three_q = (3 * len(idx)) // 4
    sel_i, hold_i = idx[:three_q], idx[three_q:]
    base_rate = float(np.mean(y[sel_i]))
    sel = select_calibration(
        oof_p[sel_i], y[sel_i], base_rate, purge=purge, candidates=CANDIDATES if method == "auto" else (method,)
    )
    cal = sel.calibration
    p_hold = oof_p[hold_i]
    rm = fit_return_model(ret[sel_i])
    p_cal = cal(p_hold)
    conf = fit_conformal(ret[hold_i] - rm(p_cal), alpha)
    lo, hi = conf.interval(rm(p_cal))
    clim = np.full(len(hold_i), base_rate)
    report = {
        "method": cal.method,
        "requested": method,
        "selection_logloss": sel.scores,
        "selection_folds": SELECTION_FOLDS,
        "n_select": len(sel_i),
        "n_holdout": len(hold_i),
        "base_rate": base_rate,
        "brier_raw": brier_score(p_hold, y[hold_i]),
        "brier_calibrated": brier_score(p_cal, y[hold_i]),
        "brier_climatology": brier_score(clim, y[hold_i]),
        "logloss_raw": log_loss(p_hold, y[hold_i]),
        "logloss_calibrated": log_loss(p_cal, y[hold_i]),
        "logloss_climatology": log_loss(clim, y[hold_i]),
        "ece_raw": expected_calibration_error(p_hold, y[hold_i]),
        "ece_calibrated": expected_calibration_error(p_cal, y[hold_i]),
        "p_up_range": [float(p_cal.min()), float(p_cal.max())],
        "reliability_raw": reliability_curve(p_hold, y[hold_i]),
        "reliability_calibrated": reliability_curve(p_cal, y[hold_i]),
        "conformal_alpha": alpha,
        "conformal_q_low": conf.q_low,
        "conformal_q_high": conf.q_high,
        "interval_coverage_holdout": float(np.mean((ret[hold_i] >= lo) & (ret[hold_i] <= hi))),
    }
    return CalibrationResult(cal, conf, rm, report)
