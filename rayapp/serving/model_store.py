"""Loading registered models from MLflow per the training → serving contract.

A model version is the xgboost-flavour `model` plus the run artifact `serving/bundle.json`
(rayapp.training.bundle.ModelBundle). Both are read by version, never by alias, so one load is one
consistent pair even while training moves the alias.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger
from rayapp.training.bundle import BUNDLE_ARTIFACT, ModelBundle

if TYPE_CHECKING:
    import xgboost as xgb

    from rayapp.config import Settings

log = get_logger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"


class ModelNotFound(LookupError):
    """No registered version carries the alias (nothing trained and promoted yet)."""


@dataclass
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    booster: xgb.Booster
    bundle: ModelBundle
    tags: dict[str, str] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)

    @property
    def feature_names(self) -> list[str]:
        return self.bundle.feature_names

    @property
    def feature_set_version(self) -> str:
        return self.bundle.feature_set_version


def _client(settings: Settings) -> Any:
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri,
                        registry_uri=settings.mlflow_tracking_uri)


def alias_version(settings: Settings, alias: str = CHAMPION) -> str:
    """The version number the alias points at now (cheap: one registry query)."""
    from mlflow.exceptions import MlflowException

    name = settings.mlflow.registered_model
    try:
        mv = _client(settings).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotFound(f"registered model {name!r} has no {alias!r} alias yet") from exc
    return str(mv.version)


def load_version(settings: Settings, version: str) -> LoadedModel:
    """Booster and bundle of one registered version."""
    import mlflow.artifacts
    import mlflow.xgboost

    name = settings.mlflow.registered_model
    client = _client(settings)
    mv = client.get_model_version(name, str(version))
    booster = mlflow.xgboost.load_model(f"models:/{name}/{mv.version}")
    if mv.run_id is None:
        raise ModelNotFound(f"{name} v{mv.version} has no run: the serving bundle cannot be found")
    local = mlflow.artifacts.download_artifacts(run_id=mv.run_id, artifact_path=BUNDLE_ARTIFACT,
                                               tracking_uri=settings.mlflow_tracking_uri)
    bundle = ModelBundle.from_json(Path(local).read_text())
    tags = dict(mv.tags or {})
    # The version tags and the bundle must agree, or the booster would see misordered columns.
    if tags.get("feature_set_version") not in (None, bundle.feature_set_version):
        raise ValueError(f"{name} v{mv.version}: tag feature_set_version={tags['feature_set_version']} "
                         f"but bundle has {bundle.feature_set_version}")
    n_booster = booster.num_features()
    if n_booster != len(bundle.feature_names):
        raise ValueError(f"{name} v{mv.version}: booster has {n_booster} features, bundle names "
                         f"{len(bundle.feature_names)}")
    log.info("model loaded", model=name, version=str(mv.version), run_id=mv.run_id,
             features=len(bundle.feature_names), feature_set_version=bundle.feature_set_version)
    return LoadedModel(name=name, version=str(mv.version), run_id=mv.run_id, booster=booster,
                       bundle=bundle, tags=tags)


def load_alias(settings: Settings, alias: str = CHAMPION) -> LoadedModel:
    return load_version(settings, alias_version(settings, alias))


def _json_artifacts(client: Any, settings: Settings, run_id: str, folders: tuple[str, ...],
                    skip: tuple[str, ...] = ()) -> dict[str, Any]:
    import mlflow.artifacts

    out: dict[str, Any] = {}
    for folder in folders:
        try:
            items = client.list_artifacts(run_id, folder)
        except Exception:  # folder absent in this run
            continue
        for item in items:
            if item.is_dir or item.path in skip or not item.path.endswith((".json", ".md")):
                continue
            local = Path(mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=item.path, tracking_uri=settings.mlflow_tracking_uri))
            text = local.read_text()
            key = item.path.replace("/", ".").rsplit(".", 1)[0]
            if item.path.endswith(".md"):
                out[key + "_md"] = text
                continue
            try:
                out[key] = json.loads(text)
            except json.JSONDecodeError:
                log.warning("report artifact is not JSON", run_id=run_id, path=item.path)
    return out


def load_report(settings: Settings, run_id: str | None) -> dict[str, Any]:
    """The latest training and ablation reports as JSON.

    Training: the served version's run (its metrics, params, the `training/`, `explain/` and
    `report/` artifacts; the masked settings dump is left out). Ablation: the newest run tagged
    `stage=ablation` in the same experiment (`ablation/` artifacts). Files are keyed by path, so
    the API needs no change when training adds a report.
    """
    if run_id is None:
        return {}
    client = _client(settings)
    run = client.get_run(run_id)
    training = {
        "run_id": run_id,
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "artifacts": _json_artifacts(client, settings, run_id, ("training", "explain", "report"),
                                     skip=("training/settings.json",)),
    }
    ablation: dict[str, Any] | None = None
    runs = client.search_runs([run.info.experiment_id], filter_string="tags.stage = 'ablation'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    if runs:
        ab = runs[0]
        ablation = {"run_id": ab.info.run_id, "metrics": dict(ab.data.metrics),
                    "artifacts": _json_artifacts(client, settings, ab.info.run_id, ("ablation",))}
    return {"training": training, "ablation": ablation}
