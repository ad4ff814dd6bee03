"""`GET /drift`: PSI per served feature from the newest drift check, with its thresholds.

The scheduler's `drift` job (rayapp/flows/jobs.py) compares the vectors served over its window
with the champion's training window and records one report per symbol in its run's stats
(`pipeline_runs`): PSI per feature and the features past the alert threshold. This route reads the
newest successful run that checked (a run without a champion checks nothing) and answers it as it
was recorded, with the two thresholds the monitoring stage applies (`PSI_WARN`, `PSI_ALERT` in
rayapp/monitoring/drift.py; tests/serving/test_drift_api.py keeps the two copies equal, since the
serving stage does not import the monitoring one). No drift run yet: `checked_at` is null and
`symbols` empty, a 200 (the System page says so).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from rayapp.log import get_logger

if TYPE_CHECKING:
    import psycopg
    from fastapi import FastAPI

    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
PSI_WARN, PSI_ALERT = 0.1, 0.25  # the monitoring stage's (rayapp.monitoring.PSI_WARN / PSI_ALERT)


class FeatureDrift(BaseModel):
    feature: str
    psi: float | None = Field(description="population stability index; null when it could not be computed")
    drifted: bool = Field(description="PSI above the alert threshold (the drift job's own verdict)")


class SymbolDrift(BaseModel):
    symbol: str
    feature_set_version: str | None
    reference_rows: int = Field(description="training-window rows the served vectors were compared with")
    current_rows: int = Field(description="vectors served in the window")
    features: list[FeatureDrift] = Field(description="highest PSI first")
    drifted: list[str]


class Drift(BaseModel):
    checked_at: datetime | None = Field(description="when the newest drift check finished (wall time)")
    run_id: int | None
    model_version: str | None = Field(description="the champion whose training window is the reference")
    hours: int | None = Field(description="the window of served vectors, in hours")
    warn: float = Field(description="PSI above this: a moderate shift")
    alert: float = Field(description="PSI above this: drifted")
    symbols: list[SymbolDrift]


def _psi(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def latest(conn: psycopg.Connection) -> dict[str, Any]:
    row = conn.execute(
        "SELECT run_id, finished_at, stats FROM pipeline_runs"
        " WHERE job = 'drift' AND status = 'succeeded' AND (stats->>'checked')::boolean"
        " ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    out: dict[str, Any] = {"warn": PSI_WARN, "alert": PSI_ALERT, "symbols": []}
    if row is None:
        return {**out, "checked_at": None, "run_id": None, "model_version": None, "hours": None}
    run_id, finished, stats = row
    symbols = []
    for rep in stats.get("reports") or []:
        drifted = [str(f) for f in rep.get("drifted") or []]
        feats = [
            {"feature": str(f), "psi": _psi(v), "drifted": str(f) in drifted} for f, v in (rep.get("psi") or {}).items()
        ]
        feats.sort(key=lambda x: -1.0 if x["psi"] is None else x["psi"], reverse=True)
        symbols.append(
            {
                "symbol": str(rep.get("symbol")),
                "feature_set_version": rep.get("feature_set_version"),
                "reference_rows": int(rep.get("reference_rows") or 0),
                "current_rows": int(rep.get("current_rows") or 0),
                "features": feats,
                "drifted": drifted,
            }
        )
    finished_at = None if finished is None else finished.astimezone(UTC)
    model_version = stats.get("model_version")
    return {
        **out,
        "checked_at": finished_at,
        "run_id": int(run_id),
        "model_version": None if model_version is None else str(model_version),
        "hours": stats.get("hours"),
        "symbols": symbols,
    }


def install(app: FastAPI, service: PredictionService) -> None:
    @app.get("/drift", response_model=Drift, tags=["ops"])
    async def drift() -> dict[str, Any]:
        """PSI per feature of the served vectors against the champion's training window, from the
        newest drift check, with the warn and alert thresholds; the drifted features marked."""
        return dict(await service.db(latest))
