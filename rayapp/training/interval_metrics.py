"""Scores of interval, quantile and volatility forecasts (per hour, so paired tests can read them).

- Winkler interval score (Winkler 1972; Gneiting & Raftery 2007, eq. 43) of a central (1 - a)
  interval [l, u]: (u - l) + (2/a)(l - y) if y < l, + (2/a)(y - u) if y > u. Lower is better; it
  rewards narrow intervals and penalises misses in proportion to their size.
- Pinball (quantile) loss at level p: (p - 1{y < q}) (y - q).
- QLIKE of a variance forecast s2 against the squared return r2 (Patton 2011, robust to noise in
  the proxy): r2 / s2 - log(r2 / s2) - 1, written log(s2) + r2 / s2 (the same ranking, defined
  when r2 = 0). MSE: (r2 - s2)^2.
"""

from __future__ import annotations

import numpy as np


def winkler(lo: np.ndarray, hi: np.ndarray, y: np.ndarray, level: float) -> np.ndarray:
    lo, hi, y = (np.asarray(v, float) for v in (lo, hi, y))
    a = 1.0 - float(level)
    return (hi - lo) + (2.0 / a) * np.maximum(lo - y, 0.0) + (2.0 / a) * np.maximum(y - hi, 0.0)


def covered(lo: np.ndarray, hi: np.ndarray, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, float)
    return ((y >= np.asarray(lo, float)) & (y <= np.asarray(hi, float))).astype(float)


def pinball(q: np.ndarray, y: np.ndarray, p: float) -> np.ndarray:
    q, y = np.asarray(q, float), np.asarray(y, float)
    return (float(p) - (y < q).astype(float)) * (y - q)


def qlike(var_forecast: np.ndarray, r2: np.ndarray) -> np.ndarray:
    s2 = np.maximum(np.asarray(var_forecast, float), 1e-18)
    return np.log(s2) + np.asarray(r2, float) / s2


def mse_var(var_forecast: np.ndarray, r2: np.ndarray) -> np.ndarray:
    return (np.asarray(r2, float) - np.asarray(var_forecast, float)) ** 2


def interval_summary(lo: np.ndarray, hi: np.ndarray, y: np.ndarray, level: float) -> dict[str, float]:
    """Coverage, mean width and mean Winkler score of one level's intervals."""
    return {
        "coverage": float(covered(lo, hi, y).mean()) if len(y) else float("nan"),
        "width": float(np.mean(np.asarray(hi, float) - np.asarray(lo, float))) if len(y) else float("nan"),
        "winkler": float(winkler(lo, hi, y, level).mean()) if len(y) else float("nan"),
    }
