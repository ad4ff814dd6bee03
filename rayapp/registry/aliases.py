"""Registered versions and their aliases: `challenger` (newest registered) and `champion` (served).

Training registers every run's model as `challenger`; only the quality gate (or an operator)
moves `champion`. Serving and monitoring resolve an alias to a version number here and then load
that version by number, so one load is one consistent (booster, bundle) pair even while the
alias moves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rayapp.errors import InputError
from rayapp.log import get_logger
from rayapp.registry.tracking import client

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)

CHALLENGER, CHAMPION = "challenger", "champion"
# The version scoring in shadow beside the champion (a gated challenger, or the previous champion
# during a promotion's watch period). Set and removed only by the lifecycle policy.
SHADOW = "shadow"


class ModelNotFound(InputError, LookupError):
    """No registered version carries the alias (nothing trained and promoted yet)."""


def alias_version(settings: Settings, alias: str = CHAMPION) -> str:
    """The version number the alias points at now (cheap: one registry query)."""
    from mlflow.exceptions import MlflowException

    name = settings.mlflow.registered_model
    try:
        mv = client(settings).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelNotFound(f"registered model {name!r} has no {alias!r} alias yet") from exc
    return str(mv.version)


def current_champion(mlflow_client: Any, name: str) -> Any | None:
    """The champion's ModelVersion, or None when no version carries the alias."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def register(run_id: str, model_uri: str, name: str, tags: dict[str, str]) -> Any:
    """Register a run's model as a new version of `name` and point `challenger` at it."""
    import mlflow

    mv = mlflow.register_model(model_uri, name, tags=tags)
    mlflow.MlflowClient().set_registered_model_alias(name, CHALLENGER, mv.version)
    log.info("model registered", name=name, version=mv.version, alias=CHALLENGER, run_id=run_id)
    return mv


def promote(name: str, version: str) -> None:
    """Point `champion` at `version` (the gate's decision, or an operator's)."""
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, CHAMPION, version)
    log.info("champion promoted", name=name, version=version)


def set_alias(name: str, alias: str, version: str) -> None:
    """Point `alias` at `version` (the lifecycle policy: shadow, champion, rollback)."""
    import mlflow

    mlflow.MlflowClient().set_registered_model_alias(name, alias, version)
    log.info("alias moved", name=name, alias=alias, version=version)


def clear_alias(name: str, alias: str) -> bool:
    """Remove `alias` from whichever version carries it; False when none did."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        mlflow.MlflowClient().delete_registered_model_alias(name, alias)
    except MlflowException:
        return False
    log.info("alias removed", name=name, alias=alias)
    return True


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set lifecycle tags on a registered version (gate, shadow verdict, promotion, rollback)."""
    import mlflow

    c = mlflow.MlflowClient()
    for k, v in tags.items():
        c.set_model_version_tag(name, version, k, str(v)[:4900])
