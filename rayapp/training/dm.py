"""The Diebold-Mariano test of equal predictive accuracy, with a HAC variance.

Diebold & Mariano, "Comparing Predictive Accuracy", JBES 13 (1995): for per-period losses of two
forecasts, d_t = L_a,t - L_b,t; under equal accuracy E[d] = 0 and mean(d) / sqrt(V / T) is
asymptotically normal, V the long-run variance of d. h-step forecasts made every period overlap,
so d is MA(h-1) at best: V is the Newey-West (1987) estimate with Bartlett weights up to lag h-1
(`lag` overrides it; hourly losses of volatility forecasts are also autocorrelated beyond h-1, so
a caller may pass a longer lag as a robustness check). Harvey, Leybourne & Newbold, "Testing the
equality of prediction mean squared errors", IJF 13 (1997): the statistic is multiplied by
sqrt((T + 1 - 2h + h(h-1)/T) / T) and compared with Student's t on T - 1 degrees of freedom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def newey_west_variance(d: np.ndarray, lag: int) -> float:
    """Long-run variance of d: gamma_0 + 2 sum_{k=1..lag} (1 - k/(lag+1)) gamma_k."""
    x = np.asarray(d, float)
    x = x - x.mean()
    n = len(x)
    v = float(x @ x) / n
    for k in range(1, min(int(lag), n - 1) + 1):
        v += 2.0 * (1.0 - k / (lag + 1.0)) * float(x[k:] @ x[:-k]) / n
    return v


def auto_lag(n: int) -> int:
    """The Newey-West rule-of-thumb bandwidth floor(4 (n/100)^(2/9))."""
    return math.floor(4.0 * (n / 100.0) ** (2.0 / 9.0))


@dataclass
class DMResult:
    stat: float
    p_value: float
    mean_diff: float  # mean of loss_a - loss_b: > 0 means b is better
    n: int
    lag: int
    alternative: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "stat": self.stat,
            "p_value": self.p_value,
            "mean_diff": self.mean_diff,
            "n": self.n,
            "lag": self.lag,
            "alternative": self.alternative,
        }


def diebold_mariano(
    loss_a: np.ndarray,
    loss_b: np.ndarray,
    horizon: int = 1,
    *,
    alternative: str = "greater",
    lag: int | None = None,
    hln: bool = True,
) -> DMResult:
    """DM test of the per-period losses of forecast a against forecast b (same periods, in time
    order; NaN pairs dropped). `alternative="greater"`: a's loss is larger (b is better), the
    one-sided p-value of that; "less": a is better; "two-sided"."""
    from scipy import stats

    a, b = np.asarray(loss_a, float), np.asarray(loss_b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    n = len(d)
    h = max(1, int(horizon))
    L = h - 1 if lag is None else int(lag)
    if n < 3:
        return DMResult(float("nan"), float("nan"), float(d.mean()) if n else float("nan"), n, L, alternative)
    mean = float(d.mean())
    v = newey_west_variance(d, L)
    if v <= 0:  # an autocovariance sum can come out negative with few points: fall back to lag 0
        v = float(np.var(d))
    if v <= 0:
        return DMResult(0.0, 0.5 if alternative != "two-sided" else 1.0, mean, n, L, alternative)
    stat = mean / math.sqrt(v / n)
    if hln:
        stat *= math.sqrt(max((n + 1 - 2 * h + h * (h - 1) / n) / n, 1e-12))
        dist: Any = stats.t(df=n - 1)
    else:
        dist = stats.norm()
    if alternative == "greater":
        p = float(dist.sf(stat))
    elif alternative == "less":
        p = float(dist.cdf(stat))
    elif alternative == "two-sided":
        p = float(2 * dist.sf(abs(stat)))
    else:
        raise ValueError(f"unknown alternative {alternative!r} (greater | less | two-sided)")
    return DMResult(float(stat), p, mean, n, L, alternative)
