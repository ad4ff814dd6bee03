"""MLflow tracking and the model registry: runs, registration, aliases and the quality gate.

The gate promotes the challenger to `champion` only if, on the same walk-forward folds, it beats
the best naive baseline (higher mean accuracy and a one-sided moving-block bootstrap p-value
below `gate_alpha` on per-hour correctness) and beats the current champion's configuration
re-evaluated on those folds. The decision and every reason are logged to the run.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.log import get_logger

log = get_logger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"


def setup_mlflow(settings: Any) -> str:
    """Point MLflow at the configured backend; create the experiment with our artifact root."""
    import mlflow

    if not settings.mlflow.tracking_uri:
        (settings.state_path / "mlflow").mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    name = settings.mlflow.experiment
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        root = None if settings.mlflow.tracking_uri else f"{settings.mlflow_artifact_root}/{name}"
        exp_id = mlflow.create_experiment(name, artifact_location=root)
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return str(exp_id)


def git_commit(repo: Path | None = None) -> str:
    """HEAD of the checkout; RAYAPP_GIT_COMMIT wins (a `ray job submit` working dir has no .git)."""
    env = os.environ.get("RAYAPP_GIT_COMMIT")
    if env:
        return env
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=repo or Path(__file__).resolve().parents[2],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"  # e.g. a `ray job submit` working dir without .git


def log_trials(trials: list[dict[str, Any]], metric: str) -> int:
    """One nested run per Tune trial: its params and per-fold metrics (step = fold)."""
    import mlflow

    n = 0
    for i, t in enumerate(trials):
        with mlflow.start_run(run_name=f"trial_{i:03d}", nested=True):
            mlflow.log_params({k: v for k, v in t["params"].items()})
            for row in t["folds"]:
                step = int(row.get("fold", 0))
                mlflow.log_metrics(
                    {
                        k: float(v)
                        for k, v in row.items()
                        if k.startswith("fold_") and isinstance(v, int | float) and np.isfinite(v)
                    },
                    step=step,
                )
            mlflow.log_metrics({metric: t["score"], "completed_folds": t["completed_folds"]})
        n += 1
    return n


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


def current_champion(client: Any, name: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def champion_config(client: Any, version: Any) -> dict[str, Any] | None:
    """The champion's hyperparameters, feature names and fold scores, from its run's artifacts."""
    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path="training/config.json")
        return json.loads(Path(path).read_text())
    except Exception as exc:  # an older or foreign version without our artifact
        log.warning("champion has no training/config.json", version=version.version, error=str(exc)[:200])
        return None


def register(run_id: str, model_uri: str, name: str, tags: dict[str, str]) -> Any:
    import mlflow

    client = mlflow.MlflowClient()
    mv = mlflow.register_model(model_uri, name, tags=tags)
    client.set_registered_model_alias(name, CHALLENGER, mv.version)
    log.info("model registered", name=name, version=mv.version, alias=CHALLENGER, run_id=run_id)
    return mv


def promote(name: str, version: str) -> None:
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    log.info("champion promoted", name=name, version=version)
