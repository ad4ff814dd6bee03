"""Significance of a difference between two forecasters evaluated on the same hours and folds."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_ttest(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Two-sided paired t-test on fold scores a - b, with Cohen's d of the paired differences."""
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    mean = float(d.mean()) if n else float("nan")
    sd = float(d.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        return {"mean_diff": mean, "t": float("nan"), "p_ttest": 1.0, "cohens_d": float("nan"), "n_folds": n}
    if sd == 0:
        # Identical differences in every fold: no variance to test against; say so with p = 1
        # unless the difference itself is non-zero in every fold, where a t-test is undefined.
        return {
            "mean_diff": mean,
            "t": float("nan"),
            "p_ttest": 1.0 if mean == 0 else 0.0,
            "cohens_d": float("nan") if mean == 0 else math.copysign(float("inf"), mean),
            "n_folds": n,
        }
    t, p = stats.ttest_rel(np.asarray(a, float), np.asarray(b, float))
    return {"mean_diff": mean, "t": float(t), "p_ttest": float(p), "cohens_d": mean / sd, "n_folds": n}


def block_bootstrap_pvalue(
    diff: np.ndarray, block: int = 24, n_boot: int = 1000, seed: int = 0, alternative: str = "two-sided"
) -> float:
    """Moving-block bootstrap p-value for mean(diff) = 0 on a per-hour series of differences.

    Blocks of `block` consecutive hours keep the autocorrelation of hourly correctness; the
    bootstrap distribution is centred on the observed mean (the null is imposed by centring).
    """
    x = np.asarray(diff, float)
    n = len(x)
    if n == 0:
        return 1.0
    obs = x.mean()
    if np.all(x == x[0]):
        return 1.0 if obs == 0 else 0.0
    b = max(1, min(block, n))
    rng = np.random.default_rng(seed)
    k = math.ceil(n / b)
    starts = rng.integers(0, n - b + 1, size=(n_boot, k))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(n_boot, -1)[:, :n]
    means = x[idx].mean(axis=1) - obs
    if alternative == "greater":
        hits = np.sum(means >= obs)
    elif alternative == "less":
        hits = np.sum(means <= obs)
    else:
        hits = np.sum(np.abs(means) >= abs(obs))
    return float((hits + 1) / (n_boot + 1))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error over one table)."""
    p = np.asarray(pvalues, float)
    m = len(p)
    order = np.argsort(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()
