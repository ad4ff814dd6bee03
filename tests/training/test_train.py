"""`train` end to end on generated data: Tune search, MLflow registry, aliases and the gate."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pytest

from rayapp.registry import BUNDLE_ARTIFACT, ModelBundle
from rayapp.training.train import train_model
from tests.training.factories import make_frame

pytestmark = pytest.mark.slow


def _client(settings):
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return mlflow.MlflowClient()


def test_planted_signal_is_found_registered_and_a_worse_run_does_not_replace_the_champion(
    ray_cluster, small_settings, tmp_path: Path
):
    s = small_settings()
    # Strong signal in sentiment, weaker one in social.
    frame = make_frame(1300, {"sentiment_mean": 0.9, "social_sentiment": 0.45}, seed=1)
    out = train_model(s, frame)
    assert out.cv_mean > 0.62, out.cv_mean
    assert out.promoted, out.gate
    client = _client(s)
    name = s.mlflow.registered_model
    champ = client.get_model_version_by_alias(name, "champion")
    assert str(champ.version) == out.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == out.version
    assert champ.tags["feature_set_version"] == "test_v1" and champ.tags["horizon_h"] == "1"

    run = client.get_run(out.run_id)
    assert run.data.tags["git_commit"] and run.data.tags["data_start"].startswith("2022-01-01")
    assert run.data.tags["gate_decision"] == "promoted"
    assert "baseline_always_up_accuracy" in run.data.metrics
    nested = client.search_runs([run.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{out.run_id}'")
    assert len(nested) == 2
    assert all("fold_accuracy" in r.data.metrics for r in nested)
    arts = {a.path for a in client.list_artifacts(out.run_id)}
    assert {"serving", "report", "explain", "training"} <= arts
    shap = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=out.run_id, artifact_path="explain/shap_importance.json")
        ).read_text()
    )
    assert next(iter(shap)) == "sentiment_mean"  # the planted feature matters most
    bundle = ModelBundle.from_json(
        Path(mlflow.artifacts.download_artifacts(run_id=out.run_id, artifact_path=BUNDLE_ARTIFACT)).read_text()
    )
    assert bundle.feature_names == frame.feature_names and bundle.gate["promote"]
    booster = mlflow.xgboost.load_model(f"models:/{name}@champion")
    import xgboost as xgb

    raw = booster.predict(xgb.DMatrix(frame.X.to_numpy()[-50:], feature_names=frame.feature_names))
    pred = bundle.predict(raw)
    assert np.all((pred["p_up"] >= 0) & (pred["p_up"] <= 1))
    pyfunc = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert len(pyfunc.predict(frame.X.iloc[-5:].reset_index(drop=True))) == 5
    report = Path(s.tune.report_dir)
    for f in ("report.md", "equity_curve.png", "fold_accuracy.png", "feature_importance.png", "reliability.png"):
        assert (report / f).stat().st_size > 0
    assert "always_up" in (report / "report.md").read_text()

    # A second run without the strong group still beats the baselines but not the champion.
    weaker = [c for c in frame.feature_names if not c.startswith("sentiment")]
    out2 = train_model(s, frame, features=weaker, num_samples=0)
    assert not out2.promoted
    assert any("champion" in r and "does not beat" in r for r in out2.gate["reasons"]), out2.gate
    assert str(client.get_model_version_by_alias(name, "champion").version) == out.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == out2.version
    assert client.get_run(out2.run_id).data.tags["gate_decision"] == "refused"


def test_pure_noise_is_not_promoted(ray_cluster, small_settings):
    s = small_settings()
    out = train_model(s, make_frame(1300, None, seed=7), num_samples=0)
    assert not out.promoted, out.gate
    client = _client(s)
    with pytest.raises(mlflow.exceptions.MlflowException):
        client.get_model_version_by_alias(s.mlflow.registered_model, "champion")
    assert str(client.get_model_version_by_alias(s.mlflow.registered_model, "challenger").version) == out.version
