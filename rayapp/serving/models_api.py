"""What the Models page needs beyond `GET /models`: live scores with their intervals, and each
version's global feature importance.

- `GET /models/scores`: per (version, role) the live directional accuracy with its Wilson 95%
  interval and the mean log loss with a normal 95% interval (mean ± 1.96·sd/√n), over every
  resolved forecast in the prediction log (PostgreSQL).
- `GET /models/importance`: mean |SHAP| per feature of the newest `limit` registered versions, as
  each version's training run logged it (`explain/shap_importance.json` in MLflow): feature
  importance over the model's history. A run's artifact never changes, so it is read once per
  process; a version whose artifact is missing says so (`error`) instead of failing the others.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from rayapp.log import get_logger
from rayapp.serving import api_models as m
from rayapp.serving import models_view

if TYPE_CHECKING:
    import psycopg
    from fastapi import FastAPI

    from rayapp.config import Settings
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
Z95 = 1.959964
IMPORTANCE_ARTIFACT = "explain/shap_importance.json"
_importance_cache: dict[str, dict[str, float]] = {}


class VersionScore(BaseModel):
    version: str
    role: Literal["champion", "shadow"]
    served: int
    resolved: int
    accuracy: float | None
    accuracy_ci: tuple[float, float] | None = Field(description="Wilson 95% interval")
    log_loss: float | None
    log_loss_ci: tuple[float, float] | None = Field(description="mean ± 1.96·sd/√n (n ≥ 2)")
    first_ts: datetime | None
    last_ts: datetime | None


class VersionScores(BaseModel):
    items: list[VersionScore] = Field(description="oldest version first")


class VersionImportance(BaseModel):
    version: str
    run_id: str | None
    created_at: str | None
    aliases: list[str]
    importance: dict[str, float] | None = Field(description="mean |SHAP| per feature (null: not logged)")
    error: str | None = None


class Importance(BaseModel):
    items: list[VersionImportance] = Field(description="newest version first")


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion k/n (None for n = 0)."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def mean_ci(mean: float | None, sd: float | None, n: int, z: float = Z95) -> tuple[float, float] | None:
    if mean is None or sd is None or n < 2:
        return None
    h = z * sd / math.sqrt(n)
    return (max(0.0, mean - h), mean + h)


def scores(conn: psycopg.Connection, model_name: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        WITH p AS (
            SELECT model_version, role, ts, realized_return,
                   CASE WHEN realized_return IS NULL THEN NULL
                        WHEN direction = realized_direction THEN 1 ELSE 0 END AS hit,
                   CASE WHEN realized_return IS NULL THEN NULL
                        WHEN realized_direction = 1 THEN -ln(greatest(p_up, 1e-6))
                        ELSE -ln(greatest(1 - p_up, 1e-6)) END AS ll
            FROM predictions WHERE model_name = %s
        )
        SELECT model_version, role, count(*), count(realized_return), sum(hit), avg(ll), stddev_samp(ll),
               min(ts), max(ts)
        FROM p GROUP BY model_version, role ORDER BY min(ts), role
        """,
        (model_name,),
    ).fetchall()
    out = []
    for version, role, served, resolved, hits, ll, ll_sd, first, last in rows:
        n, k = int(resolved), int(hits or 0)
        mean = None if ll is None else float(ll)
        out.append(
            {
                "version": str(version),
                "role": role,
                "served": int(served),
                "resolved": n,
                "accuracy": k / n if n else None,
                "accuracy_ci": wilson(k, n),
                "log_loss": mean,
                "log_loss_ci": mean_ci(mean, None if ll_sd is None else float(ll_sd), n),
                "first_ts": first,
                "last_ts": last,
            }
        )
    return out


def _importance(mlflow_client: Any, run_id: str) -> dict[str, float]:
    """One run's logged importance (blocking; cached: a run's artifacts never change)."""
    if run_id not in _importance_cache:
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow_client.download_artifacts(run_id, IMPORTANCE_ARTIFACT, tmp)
            raw = json.loads(Path(local).read_text())
        _importance_cache[run_id] = {str(k): float(v) for k, v in raw.items() if isinstance(v, int | float)}
    return _importance_cache[run_id]


def importance_view(settings: Settings, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` versions with their importance (blocking: run it in a thread). Raises
    models_view.RegistryUnavailable when the registry does not answer."""
    from rayapp.registry import client

    reg = models_view.registry_view(settings)
    c = client(settings)  # the registry's own client: its store is open already
    out = []
    for v in reg["versions"][:limit]:
        item = {
            "version": v["version"],
            "run_id": v["run_id"],
            "created_at": v["created_at"],
            "aliases": v["aliases"],
            "importance": None,
            "error": None,
        }
        if v["run_id"]:
            try:
                item["importance"] = _importance(c, v["run_id"])
            except Exception as exc:  # artifact absent (an older training), or unreadable
                item["error"] = f"{IMPORTANCE_ARTIFACT} not read ({type(exc).__name__})"
        out.append(item)
    return out


def install(app: FastAPI, settings: Settings, service: PredictionService) -> None:
    name = settings.mlflow.registered_model

    @app.get("/models/scores", response_model=VersionScores, tags=["model"])
    async def model_scores() -> dict[str, Any]:
        """Live accuracy and log loss per (version, role) with 95% intervals (resolved forecasts)."""
        return {"items": await service.db(scores, name)}

    @app.get(
        "/models/importance",
        response_model=Importance,
        tags=["model"],
        responses={503: {"model": m.ErrorBody, "description": "the model registry is unavailable"}},
    )
    async def model_importance(limit: Annotated[int, Query(ge=1, le=50)] = 10) -> Any:
        """Global feature importance (mean |SHAP|) of the newest `limit` versions, newest first."""
        try:
            items = await asyncio.wait_for(
                asyncio.to_thread(importance_view, settings, limit), models_view.REGISTRY_TIMEOUT_S
            )
        except models_view.RegistryUnavailable as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        except TimeoutError:
            return JSONResponse({"detail": "model registry unavailable (TimeoutError)"}, status_code=503)
        return {"items": items}
