"""The volatility and interval baselines every interval model is measured against.

All of them read only the hourly log returns up to hour t (`r1[t]` = log close(t)/close(t-1)) and
forecast the h-hour log return from close(t) to close(t+h). Each one is fitted at a boundary on the
rows whose label is known then, and gives a volatility sigma_h (std of the h-hour return) and the
quantiles of the h-hour return at the requested probability levels.

- constant: today's split-conformal band, one width for every hour: the empirical quantiles of
  the h-hour returns of the calibration window (the trailing labelled hours).
- ewma: RiskMetrics (J.P. Morgan 1996), sigma^2_{t+1} = lambda sigma^2_t + (1 - lambda) r_t^2 with
  lambda = 0.94, sigma^2_h = h sigma^2_{t+1} (square-root-of-time); quantiles = sigma_h times the
  empirical quantiles of the standardised h-hour returns of the last training year.
- garch: GARCH(1,1) with Student-t errors (Bollerslev 1986, 1987), fitted by the `arch` package on
  the training window; the h-step variance is the sum of the 1..h-step forecasts. At h = 1 the
  quantiles are the fitted t's (unit variance); at h > 1 a sum of t shocks is no longer t, so the
  standardised h-hour returns of the last training year give them, as for EWMA.
- har: HAR-RV (Corsi 2009) on the hourly windows 1/6/24/168 h: OLS of log realised variance over
  the next h hours on the logs of the four trailing realised variances, back-transformed with
  Duan's (1983) smearing factor; quantiles as for EWMA.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayapp.registry import conformal_rank_quantile

LAMBDA = 0.94
YEAR_H = 8760
EPS_VAR = 1e-12


@dataclass
class VolForecast:
    sigma: np.ndarray  # (n,) std of the h-hour log return
    q: np.ndarray  # (n, k) quantiles at the probability levels, increasing along each row
    info: dict[str, Any] = field(default_factory=dict)


def forward_sum(x: np.ndarray, h: int) -> np.ndarray:
    """out[t] = x[t+1] + ... + x[t+h] (NaN past the end)."""
    x = np.asarray(x, float)
    c = np.concatenate([[0.0], np.cumsum(np.nan_to_num(x))])
    n = len(x)
    out = np.full(n, np.nan)
    if n > h:
        out[: n - h] = c[h + 1 : n + 1] - c[1 : n - h + 1]
    return out


def standardized_quantiles(ret_h: np.ndarray, sigma_h: np.ndarray, probs: list[float]) -> np.ndarray:
    """Empirical quantiles of ret_h / sigma_h (finite pairs only)."""
    z = np.asarray(ret_h, float) / np.asarray(sigma_h, float)
    z = z[np.isfinite(z)]
    if len(z) < 10:
        from scipy.stats import norm

        return np.asarray(norm.ppf(probs), float)
    return np.quantile(z, probs)


def _last_year(lo: int, hi: int) -> slice:
    return slice(max(lo, hi - YEAR_H), hi)


# ---- constant band -----------------------------------------------------------------------------
def constant_band(ret_h_cal: np.ndarray, probs: list[float], n_rows: int) -> VolForecast:
    """The same quantiles for every hour: split-conformal ranks of the calibration hours' returns
    (ceil((n+1)p) from below for p > 1/2, floor((n+1)p) for p < 1/2)."""
    r = np.sort(np.asarray(ret_h_cal, float)[np.isfinite(ret_h_cal)])
    qs = []
    for p in probs:
        if p >= 0.5:
            qs.append(conformal_rank_quantile(r, p))
        else:
            k = max(1, math.floor((len(r) + 1) * p))
            qs.append(float(r[k - 1]) if len(r) else 0.0)
    q = np.tile(np.asarray(qs, float), (n_rows, 1))
    from rayapp.registry import sigma_from_quantiles

    return VolForecast(sigma_from_quantiles(q, probs), np.sort(q, axis=1))


# ---- EWMA ----------------------------------------------------------------------------------------
def ewma_variance(r1: np.ndarray, lam: float = LAMBDA, warm: int = 168) -> np.ndarray:
    """v[t] = the one-step variance forecast for hour t+1 made at t (reads r1[..t]). A missing
    return leaves the variance unchanged."""
    r = np.asarray(r1, float)
    v = np.empty(len(r))
    first = r[np.isfinite(r)][:warm]
    s2 = float(np.mean(first**2)) if len(first) else 1e-6
    for t in range(len(r)):
        x = r[t]
        if np.isfinite(x):
            s2 = lam * s2 + (1.0 - lam) * x * x
        v[t] = s2
    return v


def ewma_forecast(
    v1: np.ndarray, ret_h: np.ndarray, h: int, lo: int, hi: int, rows: np.ndarray, probs: list[float]
) -> VolForecast:
    sig = np.sqrt(h * v1)
    yr = _last_year(lo, hi)
    z = standardized_quantiles(ret_h[yr], sig[yr], probs)
    s = sig[rows]
    return VolForecast(s, s[:, None] * z[None, :], {"z_quantiles": z.tolist()})


# ---- GARCH(1,1)-t ------------------------------------------------------------------------------------
def fit_garch_t(r1_train: np.ndarray) -> dict[str, float]:
    """GARCH(1,1), zero mean, Student-t errors, on returns in percent (arch's scale); returns the
    parameters on the original scale and the fit's wall time."""
    from arch import arch_model

    x = np.asarray(r1_train, float)
    x = x[np.isfinite(x)] * 100.0
    t0 = time.perf_counter()
    res = arch_model(x, mean="Zero", vol="GARCH", p=1, q=1, dist="t", rescale=False).fit(disp="off")
    wall = time.perf_counter() - t0
    p = res.params
    return {
        "omega": float(p["omega"]) / 1e4,
        "alpha": float(p["alpha[1]"]),
        "beta": float(p["beta[1]"]),
        "nu": float(p["nu"]),
        "fit_s": wall,
        "converged": float(res.convergence_flag == 0),
    }


def garch_variance(r1: np.ndarray, params: dict[str, float], lo: int) -> np.ndarray:
    """One-step variance forecasts v[t] (for t+1, made at t) from position `lo` on, filtered with
    the fitted parameters; started at the unconditional variance. Before `lo`: NaN."""
    w, a, b = params["omega"], params["alpha"], params["beta"]
    r = np.asarray(r1, float)
    v = np.full(len(r), np.nan)
    persist = a + b
    s2 = w / (1.0 - persist) if persist < 1 else float(np.nanvar(r[lo : lo + 720]))
    for t in range(lo, len(r)):
        x = r[t] if np.isfinite(r[t]) else math.sqrt(s2)
        s2 = w + a * x * x + b * s2
        v[t] = s2
    return v


def garch_h_variance(v1: np.ndarray, params: dict[str, float], h: int) -> np.ndarray:
    """sum_{k=1..h} E[sigma^2_{t+k}] = h s2bar + (v1 - s2bar)(1 - phi^h)/(1 - phi), phi = a + b."""
    phi = params["alpha"] + params["beta"]
    if h == 1:
        return np.asarray(v1, float)
    if phi >= 1.0:
        return h * np.asarray(v1, float)
    s2bar = params["omega"] / (1.0 - phi)
    return h * s2bar + (np.asarray(v1, float) - s2bar) * (1.0 - phi**h) / (1.0 - phi)


def garch_forecast(
    r1: np.ndarray, ret_h: np.ndarray, h: int, lo: int, hi: int, rows: np.ndarray, probs: list[float]
) -> VolForecast:
    from scipy.stats import t as student_t

    params = fit_garch_t(r1[lo : hi + 1])
    v1 = garch_variance(r1, params, lo)
    sig = np.sqrt(garch_h_variance(v1, params, h))
    if h == 1:
        nu = max(params["nu"], 2.05)
        z = student_t.ppf(probs, nu) * math.sqrt((nu - 2.0) / nu)
    else:
        yr = _last_year(lo, hi)
        z = standardized_quantiles(ret_h[yr], sig[yr], probs)
    s = sig[rows]
    return VolForecast(s, s[:, None] * np.asarray(z)[None, :], {"params": params})


# ---- HAR-RV ------------------------------------------------------------------------------------
def har_design(rv: np.ndarray) -> np.ndarray:
    """[1, log rv_1^2, log rv_6^2, log rv_24^2, log rv_168^2] from the RV feature columns."""
    rv = np.asarray(rv, float)
    return np.column_stack([np.ones(len(rv)), np.log(rv**2 + EPS_VAR)])


def har_forecast(
    rv: np.ndarray, r1: np.ndarray, ret_h: np.ndarray, h: int, lo: int, hi: int, rows: np.ndarray, probs: list[float]
) -> VolForecast:
    """`rv`: the four RV feature columns (rv_1h, rv_6h, rv_24h, rv_168h) of every row. Training
    rows are [lo, hi): their h-hour labels end before the boundary."""
    target = forward_sum(np.asarray(r1, float) ** 2, h)  # realised variance over the next h hours
    X = har_design(rv)
    tr = np.arange(lo, hi)
    ok = np.isfinite(X[tr]).all(axis=1) & np.isfinite(target[tr])
    Xt, yt = X[tr][ok], np.log(target[tr][ok] + EPS_VAR)
    beta, *_ = np.linalg.lstsq(Xt, yt, rcond=None)
    smear = float(np.mean(np.exp(yt - Xt @ beta)))  # Duan: E[exp(residual)]
    pred = X @ beta
    var_h = np.exp(pred) * smear
    med = float(np.nanmedian(var_h[tr]))
    var_h = np.where(np.isfinite(var_h), var_h, med)  # a row without its trailing window
    sig = np.sqrt(var_h)
    yr = _last_year(lo, hi)
    z = standardized_quantiles(ret_h[yr], sig[yr], probs)
    s = sig[rows]
    return VolForecast(s, s[:, None] * z[None, :], {"beta": beta.tolist(), "smear": smear})
