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


def drift_report(
    conn: Any, symbol: str, feature_set_version: str, data_range: list[str], hours: int = 168, max_age_s: float = 7200
) -> DriftReport:
    names_row = conn.execute(
        "SELECT feature_names FROM feature_sets WHERE feature_set_version = %s", (feature_set_version,)
    ).fetchone()
    if names_row is None:
        raise LookupError(f"unknown feature set {feature_set_version}")
    names = list(names_row[0])
    lo, hi = [*data_range, None, None][:2]
    ref_rows = conn.execute(
        "SELECT vals FROM features WHERE symbol = %s AND feature_set_version = %s "
        "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts <= %s)",
        (symbol, feature_set_version, lo, lo, hi, hi),
    ).fetchall()
    ref = np.array([r[0] for r in ref_rows], dtype=float).reshape(-1, len(names))
    cur_rows = conn.execute(
        "SELECT features FROM predictions WHERE symbol = %s AND feature_set_version = %s "
        "AND created_at >= now() - make_interval(hours => %s)",
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
