"""The quality gate: whether a freshly trained challenger may become the champion.

The gate passes a challenger only if, on the same long walk-forward (lifecycle.gate: 26 weekly
folds by default), it beats the best naive baseline (higher mean accuracy and a one-sided
moving-block bootstrap p-value below `lifecycle.gate.alpha` on per-hour correctness, blocks at
least the horizon long), beats the current champion's configuration re-evaluated on those folds,
its calibrated P(up) does not lose to climatology (a constant P(up) equal to the training base
rate) in Brier score on out-of-fold hours neither the calibration fit nor its selection saw, and
its 90 % intervals do not lose to the champion's on the same out-of-fold hours: the one-sided
Diebold-Mariano test (HAC variance) that the challenger's Winkler score is larger must not reject
at `lifecycle.gate.alpha` (docs/INTERVALS.md). The decision and every reason are logged to the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.registry import current_champion
from rayapp.training.cv import Fold
from rayapp.training.data import TrainingFrame
from rayapp.training.model import cv_evaluate

log = get_logger(__name__)


@dataclass
class GateDecision:
    promote: bool
    reasons: list[str] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "reasons": self.reasons, "checks": self.checks}


def quality_gate(
    challenger_scores: np.ndarray,
    baseline_name: str,
    baseline_scores: np.ndarray,
    p_vs_baseline: float,
    champion_scores: np.ndarray | None,
    alpha: float,
    champion_note: str = "",
    *,
    brier: float | None = None,
    brier_climatology: float | None = None,
    interval: dict[str, Any] | None = None,
) -> GateDecision:
    """Decide on fold scores computed on the same folds; every failed check adds a reason."""
    ch, bl = float(np.mean(challenger_scores)), float(np.mean(baseline_scores))
    checks: dict[str, Any] = {
        "challenger_mean": ch,
        "best_baseline": baseline_name,
        "baseline_mean": bl,
        "p_vs_baseline": p_vs_baseline,
        "alpha": alpha,
    }
    reasons: list[str] = []
    ok = True
    if ch <= bl:
        ok = False
        reasons.append(f"mean accuracy {ch:.4f} does not beat the best baseline {baseline_name} ({bl:.4f})")
    elif p_vs_baseline >= alpha:
        ok = False
        reasons.append(
            f"beats {baseline_name} by {ch - bl:+.4f} but not significantly "
            f"(block-bootstrap p={p_vs_baseline:.3f} >= {alpha})"
        )
    else:
        reasons.append(f"beats {baseline_name} by {ch - bl:+.4f} (p={p_vs_baseline:.3f})")
    if brier is not None and brier_climatology is not None:
        checks["brier_calibrated"] = brier
        checks["brier_climatology"] = brier_climatology
        if brier > brier_climatology:
            ok = False
            reasons.append(f"calibrated Brier {brier:.4f} loses to climatology {brier_climatology:.4f} out of sample")
        else:
            reasons.append(f"calibrated Brier {brier:.4f} <= climatology {brier_climatology:.4f}")
    if interval is not None:
        checks["interval"] = interval
        if interval.get("judged"):
            if interval["loses"]:
                ok = False
                reasons.append(
                    f"90% interval score {interval['challenger']:.5f} loses to the champion's "
                    f"{interval['champion']:.5f} (DM p={interval['p_worse']:.3f} < {alpha})"
                )
            else:
                reasons.append(
                    f"90% interval score {interval['challenger']:.5f} vs the champion's "
                    f"{interval['champion']:.5f} (DM p={interval['p_worse']:.3f}): not worse"
                )
        else:
            reasons.append(f"interval score not compared: {interval.get('note', '')}")
    if champion_scores is None:
        checks["champion_mean"] = None
        reasons.append(champion_note or "no current champion")
    else:
        cm = float(np.mean(champion_scores))
        checks["champion_mean"] = cm
        if ch <= cm:
            ok = False
            reasons.append(f"mean accuracy {ch:.4f} does not beat the champion ({cm:.4f}) on the same folds")
        else:
            reasons.append(f"beats the champion {cm:.4f} by {ch - cm:+.4f} on the same folds")
    return GateDecision(ok, reasons, checks)


def interval_check(
    challenger_rows: np.ndarray,
    challenger_w: np.ndarray,
    champion_rows: np.ndarray | None,
    champion_w: np.ndarray | None,
    horizon: int,
    alpha: float,
    note: str = "",
) -> dict[str, Any]:
    """The paired interval-score comparison on the hours both were evaluated on: the challenger
    loses when the one-sided Diebold-Mariano test (HAC lag max(h-1, Newey-West rule of thumb):
    hourly interval scores are autocorrelated beyond the overlap) says its Winkler score is larger."""
    from rayapp.training.dm import auto_lag, diebold_mariano

    if champion_rows is None or champion_w is None:
        return {"judged": False, "note": note}
    common, ia, ib = np.intersect1d(challenger_rows, champion_rows, return_indices=True)
    if len(common) < 24:
        return {"judged": False, "note": f"{len(common)} common hours"}
    a, b = np.asarray(challenger_w)[ia], np.asarray(champion_w)[ib]
    lag = max(int(horizon) - 1, auto_lag(len(common)))
    res = diebold_mariano(a, b, horizon, alternative="greater", lag=lag)
    return {
        "judged": True,
        "note": note,
        "n": len(common),
        "challenger": float(a.mean()),
        "champion": float(b.mean()),
        "p_worse": res.p_value,
        "lag": lag,
        "loses": bool(res.p_value < alpha and a.mean() > b.mean()),
    }


def champion_config(client: Any, version: Any) -> dict[str, Any] | None:
    """The champion's hyperparameters, feature names and fold scores, from its run's artifacts."""
    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="training/config.json")
        return json.loads(Path(path).read_text())
    except Exception as exc:  # an older or foreign version without our artifact
        log.warning("champion has no training/config.json", version=version.version, error=str(exc)[:200])
        return None


def champion_bundle(name: str) -> tuple[Any, str]:
    """The current champion's serving bundle (None and a note when there is none or it is unreadable)."""
    import mlflow

    from rayapp.registry import BUNDLE_ARTIFACT, ModelBundle

    client = mlflow.MlflowClient()
    champ = current_champion(client, name)
    if champ is None:
        return None, "no current champion: no interval comparison"
    try:
        path = mlflow.artifacts.download_artifacts(run_id=champ.run_id, artifact_path=BUNDLE_ARTIFACT)
        return ModelBundle.from_json(Path(path).read_text()), f"champion v{champ.version}"
    except Exception as exc:  # a foreign version without our bundle
        return None, f"champion v{champ.version} has no readable bundle ({type(exc).__name__})"


def champion_scores(
    frame: TrainingFrame,
    folds: list[Fold],
    name: str,
    seed: int,
    device: str,
    nthread: int,
    fee_bps: float,
    metric: str,
) -> tuple[np.ndarray | None, str]:
    """The current champion's configuration refitted on the challenger's folds: its fold scores
    and a note, or inf scores (not comparable: never replaced automatically), or None (no champion)."""
    import mlflow

    client = mlflow.MlflowClient()
    champ = current_champion(client, name)
    if champ is None:
        return None, "no current champion: the first model that passes the baseline check becomes champion"
    cfg = champion_config(client, champ)
    if cfg is None or "params" not in cfg or "feature_names" not in cfg:
        return np.array([np.inf]), f"champion v{champ.version} has no training config: not replaced automatically"
    if int(cfg.get("horizon_h", frame.horizon)) != frame.horizon:
        return np.array([np.inf]), (
            f"champion v{champ.version} predicts a {cfg.get('horizon_h')}h horizon, this run "
            f"{frame.horizon}h: not comparable, not replaced automatically"
        )
    cols = cfg["feature_names"]
    missing = [c for c in cols if c not in frame.X.columns]
    if missing:
        return np.array([np.inf]), (
            f"champion v{champ.version} uses features not in this frame {missing}: "
            "cannot compare on the same folds, not replaced automatically"
        )
    # The champion's configuration, refitted on exactly the challenger's training windows.
    res = cv_evaluate(frame, folds, cfg["params"], seed, device, nthread, fee_bps, columns=cols)
    return res.fold_scores(metric), f"champion v{champ.version} re-evaluated on the same folds"
