"""The model contract between training, serving and monitoring.

A registered model version is an MLflow xgboost-flavour `model` plus the run artifact
`serving/bundle.json` (`ModelBundle`: calibration, conformal interval, expected-return model, CV
metrics, baselines, gate decision, data range, and the interval model: `IntervalModel`, with
`AciState`/`aci_update` for serving's online calibration). Training writes versions and moves aliases through
`register`/`promote`; serving and monitoring resolve an alias (`alias_version`) and load a version
by number (`load_version`, with a local cache so a replica restarts without the registry).
"""

from rayapp.registry.aliases import (
    CHALLENGER,
    CHAMPION,
    SHADOW,
    ModelNotFound,
    alias_version,
    clear_alias,
    current_champion,
    promote,
    register,
    set_alias,
    tag_version,
)
from rayapp.registry.bundle import (
    BUNDLE_ARTIFACT,
    MODEL_ARTIFACT,
    Calibration,
    Conformal,
    ModelBundle,
    ReturnModel,
)
from rayapp.registry.intervals import (
    AciState,
    IntervalModel,
    aci_update,
    conformal_rank_quantile,
    legacy_interval,
    level_key,
    nest_intervals,
    raw_quantiles,
    sigma_from_quantiles,
    thin_scores,
)
from rayapp.registry.store import (
    LoadedModel,
    cache_dir,
    forget_alias,
    last_known_alias,
    load_alias,
    load_report,
    load_version,
    remember_alias,
)
from rayapp.registry.tracking import client, git_commit, setup_mlflow

__all__ = [
    "BUNDLE_ARTIFACT",
    "CHALLENGER",
    "CHAMPION",
    "MODEL_ARTIFACT",
    "SHADOW",
    "AciState",
    "Calibration",
    "Conformal",
    "IntervalModel",
    "LoadedModel",
    "ModelBundle",
    "ModelNotFound",
    "ReturnModel",
    "aci_update",
    "alias_version",
    "cache_dir",
    "clear_alias",
    "client",
    "conformal_rank_quantile",
    "current_champion",
    "forget_alias",
    "git_commit",
    "last_known_alias",
    "legacy_interval",
    "level_key",
    "load_alias",
    "load_report",
    "load_version",
    "nest_intervals",
    "promote",
    "raw_quantiles",
    "register",
    "remember_alias",
    "set_alias",
    "setup_mlflow",
    "sigma_from_quantiles",
    "tag_version",
    "thin_scores",
]
