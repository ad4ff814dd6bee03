"""MLflow tracking: where runs and registered models live, and the provenance every run records.

`setup_mlflow` points MLflow at the configured tracking server (embedded SQLite under the state
dir when `mlflow.tracking_uri` is unset) and makes sure the experiment exists with our artifact
root; `client` is a registry client for the same URI; `git_commit` is the code version a run
records.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rayapp.config import Settings


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


def client(settings: Settings) -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
