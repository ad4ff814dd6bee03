"""Loading registered models from MLflow per the training → serving contract.

A model version is the xgboost-flavour `model` plus the run artifact `serving/bundle.json`
(rayapp.registry.bundle.ModelBundle). Both are read by version, never by alias, so one load is one
consistent pair even while training moves the alias.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger
from rayapp.registry.aliases import CHAMPION, ModelNotFound, alias_version
from rayapp.registry.bundle import BUNDLE_ARTIFACT, ModelBundle
from rayapp.registry.tracking import client as registry_client

if TYPE_CHECKING:
    import xgboost as xgb

    from rayapp.config import Settings

log = get_logger(__name__)


@dataclass
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    booster: xgb.Booster
    bundle: ModelBundle
    tags: dict[str, str] = field(default_factory=dict)
    source: str = "registry"  # registry | cache
    loaded_at: float = field(default_factory=time.time)

    @property
    def feature_names(self) -> list[str]:
        return self.bundle.feature_names

    @property
    def feature_set_version(self) -> str:
        return self.bundle.feature_set_version


def cache_dir(settings: Settings) -> Path:
    """Where loaded versions are cached on this machine (per registry and model name)."""
    # Keyed by registry and model name: two registries sharing a state dir never mix versions.
    key = hashlib.sha1(f"{settings.mlflow_tracking_uri}|{settings.mlflow.registered_model}".encode())
    return settings.state_path / "serving" / "model-cache" / key.hexdigest()[:16]


def _check(model: LoadedModel) -> LoadedModel:
    # One row per call: OpenMP threads only add wake-up latency, and busy-wait badly when several
    # replicas share few cores. Parallelism comes from replicas and concurrent requests instead.
    model.booster.set_param({"nthread": 1})
    b, tags = model.bundle, model.tags
    # The version tags and the bundle must agree, or the booster would see misordered columns.
    if tags.get("feature_set_version") not in (None, b.feature_set_version):
        raise ValueError(
            f"{model.name} v{model.version}: tag feature_set_version="
            f"{tags['feature_set_version']} but bundle has {b.feature_set_version}"
        )
    if model.booster.num_features() != len(b.feature_names):
        raise ValueError(
            f"{model.name} v{model.version}: booster has {model.booster.num_features()} "
            f"features, bundle names {len(b.feature_names)}"
        )
    return model


def _write_cache(settings: Settings, model: LoadedModel) -> None:
    """Save a loaded version locally (atomically): a registered version never changes, so a
    replacement replica can start from disk without importing MLflow or asking the registry."""
    d = cache_dir(settings) / model.version
    if (d / "meta.json").exists():
        return
    tmp = d.parent / f".{model.version}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.booster.save_model(str(tmp / "model.ubj"))
    (tmp / "bundle.json").write_text(model.bundle.to_json())
    (tmp / "meta.json").write_text(
        json.dumps({"name": model.name, "version": model.version, "run_id": model.run_id, "tags": model.tags})
    )
    try:
        os.replace(tmp, d)
    except OSError:  # another replica cached it first: theirs is the same version
        shutil.rmtree(tmp, ignore_errors=True)


def _read_cache(settings: Settings, version: str) -> LoadedModel | None:
    import xgboost as xgb

    d = cache_dir(settings) / str(version)
    if not (d / "meta.json").exists():
        return None
    meta = json.loads((d / "meta.json").read_text())
    booster = xgb.Booster()
    booster.load_model(str(d / "model.ubj"))
    return _check(
        LoadedModel(
            name=meta["name"],
            version=meta["version"],
            run_id=meta["run_id"],
            booster=booster,
            bundle=ModelBundle.from_json((d / "bundle.json").read_text()),
            tags=meta["tags"],
            source="cache",
        )
    )


def remember_alias(settings: Settings, alias: str, version: str) -> None:
    d = cache_dir(settings)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{alias}.{os.getpid()}.tmp"
    tmp.write_text(str(version))
    os.replace(tmp, d / alias)


def forget_alias(settings: Settings, alias: str) -> None:
    """Drop the warm-start record of an alias that no longer names a version (the shadow)."""
    (cache_dir(settings) / alias).unlink(missing_ok=True)


def last_known_alias(settings: Settings, alias: str = CHAMPION) -> str | None:
    """The version this alias pointed at when a replica last loaded it (may be outdated)."""
    f = cache_dir(settings) / alias
    return f.read_text().strip() if f.exists() else None


def load_version(settings: Settings, version: str) -> LoadedModel:
    """Booster and bundle of one registered version (from the local cache when present)."""
    try:
        cached = _read_cache(settings, version)
    except Exception as exc:  # a damaged cache entry: fall back to the registry
        log.warning("model cache unreadable", version=str(version), error=type(exc).__name__)
        cached = None
    if cached is not None:
        log.info(
            "model loaded",
            model=cached.name,
            version=cached.version,
            source="cache",
            features=len(cached.feature_names),
            feature_set_version=cached.feature_set_version,
        )
        return cached
    import mlflow.artifacts
    import mlflow.xgboost

    name = settings.mlflow.registered_model
    client = registry_client(settings)
    mv = client.get_model_version(name, str(version))
    booster = mlflow.xgboost.load_model(f"models:/{name}/{mv.version}")
    if mv.run_id is None:
        raise ModelNotFound(f"{name} v{mv.version} has no run: the serving bundle cannot be found")
    local = mlflow.artifacts.download_artifacts(
        run_id=mv.run_id, artifact_path=BUNDLE_ARTIFACT, tracking_uri=settings.mlflow_tracking_uri
    )
    bundle = ModelBundle.from_json(Path(local).read_text())
    model = _check(
        LoadedModel(
            name=name,
            version=str(mv.version),
            run_id=mv.run_id,
            booster=booster,
            bundle=bundle,
            tags=dict(mv.tags or {}),
        )
    )
    log.info(
        "model loaded",
        model=name,
        version=str(mv.version),
        run_id=mv.run_id,
        source="registry",
        features=len(bundle.feature_names),
        feature_set_version=bundle.feature_set_version,
    )
    try:
        _write_cache(settings, model)
    except OSError as exc:  # a read-only state dir only costs the fast restart
        log.warning("model cache not written", version=model.version, error=type(exc).__name__)
    return model


def load_alias(settings: Settings, alias: str = CHAMPION) -> LoadedModel:
    return load_version(settings, alias_version(settings, alias))


def _json_artifacts(
    client: Any, settings: Settings, run_id: str, folders: tuple[str, ...], skip: tuple[str, ...] = ()
) -> dict[str, Any]:
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
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=item.path, tracking_uri=settings.mlflow_tracking_uri
                )
            )
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


def _newest_stage_run(
    client: Any,
    settings: Settings,
    experiment_id: str,
    stage: str,
    folders: tuple[str, ...],
    skip: tuple[str, ...] = (),
) -> dict[str, Any] | None:
    """The newest run tagged `stage=<stage>` in the experiment: its id, metrics and JSON artifacts."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.stage = '{stage}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    r = runs[0]
    return {
        "run_id": r.info.run_id,
        "metrics": dict(r.data.metrics),
        "artifacts": _json_artifacts(client, settings, r.info.run_id, folders, skip=skip),
    }


def load_report(settings: Settings, run_id: str | None) -> dict[str, Any]:
    """The latest training and ablation reports as JSON.

    Training: the served version's run (its metrics, params, the `training/`, `explain/` and
    `report/` artifacts; the masked settings dump is left out). Ablation: the newest run tagged
    `stage=ablation` in the same experiment (`ablation/` artifacts). Backtest: the newest run tagged
    `stage=backtest` there (`rayapp backtest`, its `backtest/` artifacts). Files are keyed by path, so
    the API needs no change when training adds a report.
    """
    if run_id is None:
        return {}
    client = registry_client(settings)
    run = client.get_run(run_id)
    training = {
        "run_id": run_id,
        "metrics": dict(run.data.metrics),
        "params": dict(run.data.params),
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "artifacts": _json_artifacts(
            client, settings, run_id, ("training", "explain", "report"), skip=("training/settings.json",)
        ),
    }
    exp = run.info.experiment_id
    ablation = _newest_stage_run(client, settings, exp, "ablation", ("ablation",))
    # summary.json: the full backtest.json (MBs of per-hour detail) stays in MLflow
    backtest = _newest_stage_run(client, settings, exp, "backtest", ("backtest",), skip=("backtest/backtest.json",))
    return {"training": training, "ablation": ablation, "backtest": backtest}
