"""`ray job submit --working-dir . -- python jobs/train.py ...` against a real `ray start --head`
(the `ray_head` fixture, tests/ray_head.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import mlflow
import pytest

from tests.ray_head import head_env
from tests.training.factories import SMALL, make_frame

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_submitted_training_job_succeeds_and_registers_a_model(ray_head, tmp_path: Path):
    data = tmp_path / "frame.parquet"
    make_frame(1300, {"sentiment_mean": 0.9}, seed=4).to_frame().rename_axis("ts").to_parquet(data)
    state = tmp_path / "state"
    overrides = [f"state_dir={state}", f"tune.report_dir={tmp_path / 'reports'}", *SMALL, "tune.num_samples=1"]
    cmd = [
        "ray",
        "job",
        "submit",
        "--address",
        ray_head.dashboard_url,
        "--working-dir",
        ".",
        "--",
        "python",
        "jobs/train.py",
        "--data",
        str(data),
        *overrides,
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=head_env(), capture_output=True, text=True, timeout=480)
    out = r.stdout + r.stderr
    print(out[-6000:])
    assert r.returncode == 0, out[-4000:]
    assert "succeeded" in out and "bitcoin_predictor v1" in out
    mlflow.set_tracking_uri(f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    mv = mlflow.MlflowClient().get_model_version_by_alias("bitcoin_predictor", "challenger")
    assert str(mv.version) == "1" and mv.tags["feature_set_version"] == "file:frame.parquet"
    assert (tmp_path / "reports" / "report.md").exists()
