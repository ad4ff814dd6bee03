"""`GET /models`: the registered model's versions and aliases (MLflow) beside the lifecycle's
state, history and live scores (PostgreSQL), read independently so one store being down leaves the
other's part standing.

The registry part is required: without it the answer is a 503 saying the registry is unavailable.
The database part degrades: PostgreSQL down, the registry part still answers and `lifecycle` says
`available: false` with the error's type (never its message: it can hold a connection string).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rayapp.warehouse import model_events

if TYPE_CHECKING:
    import psycopg

    from rayapp.config import Settings

EVENTS_SHOWN = 50
REGISTRY_TIMEOUT_S = 20.0  # an HTTP tracking server that does not answer: 503 after this
COMPARISON_KINDS = ("shadow_verdict", "watch_verdict")


class RegistryUnavailable(RuntimeError):
    """The model registry could not be read (the API answers 503)."""


def _ms(ts: Any) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts) / 1000, tz=UTC).isoformat()


def registry_view(settings: Settings) -> dict[str, Any]:
    """Versions newest first with their tags and aliases, and the alias map (blocking: run it in
    a thread). Raises RegistryUnavailable when MLflow does not answer."""
    from rayapp.registry import CHALLENGER, CHAMPION, SHADOW, client

    name = settings.mlflow.registered_model
    aliases: dict[str, str | None] = {CHAMPION: None, CHALLENGER: None, SHADOW: None}
    try:
        from mlflow.exceptions import MlflowException

        c = client(settings)
        try:
            rm = c.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            return {"name": name, "registered": False, "aliases": aliases, "versions": []}
        versions = c.search_model_versions(f"name='{name}'")
    except Exception as exc:
        raise RegistryUnavailable(f"model registry unavailable ({type(exc).__name__})") from exc
    aliases.update({str(a): str(v) for a, v in (rm.aliases or {}).items()})
    by_version: dict[str, list[str]] = {}
    for a, v in aliases.items():
        if v is not None:
            by_version.setdefault(v, []).append(a)
    out = [
        {
            "version": str(mv.version),
            "run_id": mv.run_id,
            "status": mv.status,
            "created_at": _ms(mv.creation_timestamp),
            "last_updated_at": _ms(mv.last_updated_timestamp),
            "aliases": sorted(by_version.get(str(mv.version), [])),
            "tags": {str(k): str(v) for k, v in (mv.tags or {}).items()},
            "description": mv.description or None,
        }
        for mv in versions
    ]
    out.sort(key=lambda v: int(v["version"]) if v["version"].isdigit() else -1, reverse=True)
    return {"name": name, "registered": True, "aliases": aliases, "versions": out}


def lifecycle_view(conn: psycopg.Connection, model_name: str) -> dict[str, Any]:
    """The policy's state, live accuracy/log loss per (version, role), the newest shadow or watch
    verdict and the last `EVENTS_SHOWN` events (oldest first)."""
    comparison = model_events.events(conn, model_name, kinds=COMPARISON_KINDS, limit=1)
    return {
        "available": True,
        "error": None,
        "state": model_events.state(conn, model_name).as_dict(),
        "live": model_events.version_stats(conn, model_name),
        "latest_comparison": comparison[-1] if comparison else None,
        "events": model_events.events(conn, model_name, limit=EVENTS_SHOWN),
    }


def lifecycle_unavailable(exc: BaseException) -> dict[str, Any]:
    return {
        "available": False,
        "error": f"database unavailable ({type(exc).__name__})",
        "state": None,
        "live": [],
        "latest_comparison": None,
        "events": [],
    }


def serving_view(champion: dict[str, Any], shadow: dict[str, Any] | None) -> dict[str, Any]:
    """What this app serves now: the champion's version and the shadow's state (None: no shadow
    deployment)."""

    def brief(info: dict[str, Any]) -> dict[str, Any]:
        return {
            "loaded": bool(info.get("loaded")),
            "version": None if info.get("version") is None else str(info["version"]),
            "feature_set_version": info.get("feature_set_version"),
            "last_error": info.get("last_error"),
        }

    return {"champion": brief(champion), "shadow": None if shadow is None else brief(shadow)}
