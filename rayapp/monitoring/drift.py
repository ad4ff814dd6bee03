"""Population stability (PSI) of served features against the training window, and staleness.

Reference: the offline-store rows of the served model's feature set inside its training data
range. Current: the feature vectors actually served (the `predictions.features` log) in the last
`hours`. PSI per feature over the reference's deciles; missing values are their own bin, so a
feature that goes missing in serving shows up as drift instead of being dropped. The usual reading:
< 0.1 stable, 0.1-0.25 moderate shift, > 0.25 major shift.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

PSI_WARN, PSI_ALERT = 0.1, 0.25


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10, eps: float = 1e-4) -> float:
    """PSI of `current` against `reference` on the reference's quantile bins (+ a NaN bin)."""
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    if len(ref) == 0 or len(cur) == 0:
        return math.nan
    finite = ref[np.isfinite(ref)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))) if len(finite) else np.array([])

    def shares(x: np.ndarray) -> np.ndarray:
        nan = ~np.isfinite(x)
        if len(edges) >= 2:
            idx = np.clip(np.searchsorted(edges, x[~nan], side="right") - 1, 0, len(edges) - 2)
            counts = np.bincount(idx, minlength=len(edges) - 1).astype(float)
        else:  # a constant reference: one bin for everything finite
            counts = np.array([float((~nan).sum())])
        return np.append(counts, float(nan.sum())) / len(x)

    p, q = shares(ref) + eps, shares(cur) + eps
    return float(np.sum((q - p) * np.log(q / p)))


@dataclass
class DriftReport:
    symbol: str
    feature_set_version: str
    reference_rows: int
    current_rows: int
    psi: dict[str, float] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)  # PSI above PSI_ALERT
    newest_feature_ts: str | None = None
    staleness_s: float | None = None
    stale: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reference(conn: Any, symbol: str, feature_set_version: str, data_range: list[str]) -> tuple[list[str], np.ndarray]:
    """The feature set's names and its offline-store rows inside `data_range` (the training window)."""
    names_row = conn.execute(
        "SELECT feature_names FROM feature_sets WHERE feature_set_version = %s", (feature_set_version,)
    ).fetchone()
    if names_row is None:
        raise LookupError(f"unknown feature set {feature_set_version}")
    names = list(names_row[0])
    lo, hi = [*data_range, None, None][:2]
    ref_rows = conn.execute(
        "SELECT vals FROM features WHERE symbol = %s AND feature_set_version = %s "
        "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts <= %s) ORDER BY ts",
        (symbol, feature_set_version, lo, lo, hi, hi),
    ).fetchall()
    return names, np.array([r[0] for r in ref_rows], dtype=float).reshape(-1, len(names))


def drift_report(
    conn: Any, symbol: str, feature_set_version: str, data_range: list[str], hours: int = 168, max_age_s: float = 7200
) -> DriftReport:
    names, ref = _reference(conn, symbol, feature_set_version, data_range)
    cur_rows = conn.execute(
        "SELECT features FROM predictions WHERE symbol = %s AND feature_set_version = %s "
        "AND role = 'champion' AND created_at >= now() - make_interval(hours => %s)",
        (symbol, feature_set_version, hours),
    ).fetchall()
    cur = pd.DataFrame([r[0] for r in cur_rows], columns=names, dtype=float).to_numpy()
    report = DriftReport(symbol, feature_set_version, len(ref), len(cur))
    for j, n in enumerate(names):
        v = psi(ref[:, j], cur[:, j])
        report.psi[n] = v
        if math.isfinite(v) and v > PSI_ALERT:
            report.drifted.append(n)
    newest = conn.execute(
        "SELECT max(ts) FROM features WHERE symbol = %s AND feature_set_version = %s", (symbol, feature_set_version)
    ).fetchone()[0]
    if newest is not None:
        ts = pd.Timestamp(newest)
        report.newest_feature_ts = ts.isoformat()
        report.staleness_s = (pd.Timestamp.now(tz="UTC") - ts).total_seconds()
        report.stale = report.staleness_s > max_age_s
    return report


def benjamini_hochberg(pvalues: np.ndarray, alpha: float) -> np.ndarray:
    """Which hypotheses Benjamini-Hochberg rejects at false-discovery rate `alpha` (NaN = not tested)."""
    p = np.asarray(pvalues, float)
    out = np.zeros(len(p), dtype=bool)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok])]
    below = p[order] <= alpha * np.arange(1, m + 1) / m
    if below.any():
        k = int(np.flatnonzero(below).max())
        out[order[: k + 1]] = True
    return out


@dataclass
class DriftTest:
    """Per-feature PSI of a current window against a reference, judged against the PSI that
    windows of the same size drawn from the reference itself show (its own noise level)."""

    n_reference: int
    n_current: int
    psi: dict[str, float] = field(default_factory=dict)
    threshold: dict[str, float] = field(default_factory=dict)  # (1 - alpha) quantile of the null PSI
    p_value: dict[str, float] = field(default_factory=dict)
    drifted: list[str] = field(default_factory=list)  # rejected by Benjamini-Hochberg
    share: float = 0.0
    tested: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _shares(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin shares along axis -1 (quantile bins of the reference + a NaN bin)."""
    nan = ~np.isfinite(x)
    nb = max(1, len(edges) - 1)
    filled = np.where(nan, edges[0] if len(edges) else 0.0, x)
    idx = np.clip(np.searchsorted(edges, filled, side="right") - 1, 0, nb - 1)
    idx = np.where(nan, nb, idx)
    counts = np.stack([(idx == b).sum(axis=-1) for b in range(nb + 1)], axis=-1).astype(float)
    return counts / x.shape[-1]


def psi_drift_test(
    reference: np.ndarray,
    current: np.ndarray,
    names: list[str],
    *,
    n_boot: int = 200,
    alpha: float = 0.01,
    bins: int = 10,
    seed: int = 0,
    eps: float = 1e-4,
) -> DriftTest:
    """PSI per feature with a bootstrap null at the current window's size, and BH across features.

    The null draws `n_boot` contiguous windows of len(current) rows from the reference (hourly
    features are autocorrelated: a week is not 168 independent hours, so an i.i.d. resample would
    make every ordinary week look drifted). A feature's p-value is the share of null windows with a
    PSI at least the observed one; Benjamini-Hochberg at `alpha` decides which features drifted.
    """
    ref = np.asarray(reference, float).reshape(len(reference), -1)
    cur = np.asarray(current, float).reshape(len(current), -1)
    n, m = len(ref), len(cur)
    out = DriftTest(n_reference=n, n_current=m)
    if n < 2 * m or m == 0:
        return out  # too little reference for a null at this window size: not judged
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n - m + 1, size=n_boot)
    win = starts[:, None] + np.arange(m)[None, :]
    pvals = np.full(len(names), np.nan)
    for j, name in enumerate(names):
        col = ref[:, j]
        finite = col[np.isfinite(col)]
        if len(finite) == 0:
            continue
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([finite[0], finite[0] + 1.0])
        p = _shares(col, edges) + eps
        q_obs = _shares(cur[:, j], edges) + eps
        obs = float(np.sum((q_obs - p) * np.log(q_obs / p)))
        q_null = _shares(col[win], edges) + eps
        null = np.sum((q_null - p) * np.log(q_null / p), axis=-1)
        pvals[j] = (1 + np.sum(null >= obs)) / (n_boot + 1)
        out.psi[name] = obs
        out.threshold[name] = float(np.quantile(null, 1 - alpha))
        out.p_value[name] = float(pvals[j])
    rejected = benjamini_hochberg(pvals, alpha)
    out.drifted = [names[j] for j in np.flatnonzero(rejected)]
    out.tested = int(np.isfinite(pvals).sum())
    out.share = len(out.drifted) / out.tested if out.tested else 0.0
    return out


def drift_inputs(
    conn: Any, symbol: str, feature_set_version: str, data_range: list[str], now: Any, hours: int = 168
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(feature names, reference rows, current rows): the offline-store rows of the champion's
    training window, and the champion's served vectors of the last `hours` before `now` (feature
    hours on the policy's clock, so a replay judges market weeks, not wall minutes)."""
    names, ref = _reference(conn, symbol, feature_set_version, data_range)
    cur_rows = conn.execute(
        "SELECT DISTINCT ON (ts) features FROM predictions WHERE symbol = %s AND feature_set_version = %s "
        "AND role = 'champion' AND ts > %s::timestamptz - make_interval(hours => %s) AND ts <= %s ORDER BY ts",
        (symbol, feature_set_version, now, hours, now),
    ).fetchall()
    cur = pd.DataFrame([r[0] for r in cur_rows], columns=names, dtype=float).to_numpy()
    return names, ref, cur.reshape(-1, len(names))
