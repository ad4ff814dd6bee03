"""SHAP values from XGBoost's exact TreeSHAP (`pred_contribs=True`).

XGBoost computes the same TreeSHAP values as shap.TreeExplainer, natively and without a copy of
the model, so this is what both training (global importance) and serving (per prediction) use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xgboost as xgb


def contributions(booster: xgb.Booster, X: np.ndarray, feature_names: Sequence[str]) -> np.ndarray:
    """(n, n_features + 1) SHAP values in log-odds; the last column is the bias (expected value)."""
    d = xgb.DMatrix(np.asarray(X, dtype=np.float64), missing=np.nan, feature_names=list(feature_names))
    return np.asarray(booster.predict(d, pred_contribs=True), dtype=float)


def global_importance(booster: xgb.Booster, X: np.ndarray, feature_names: Sequence[str]) -> dict[str, float]:
    """Mean |SHAP| per feature over the rows of X, largest first."""
    if len(X) == 0:
        raise ValueError("global importance needs at least one row")
    shap = contributions(booster, X, feature_names)[:, :-1]
    imp = np.abs(shap).mean(axis=0)
    order = np.argsort(-imp)
    return {str(feature_names[i]): float(imp[i]) for i in order}


def plot_importance(importance: dict[str, float], path: str | Path, title: str = "Global SHAP importance") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(importance)[::-1]
    vals = [importance[n] for n in names]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(names) + 1)))
    ax.barh(names, vals, color="#3b82f6")
    ax.set_xlabel("mean |SHAP value| (log-odds)")
    ax.set_title(title)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
