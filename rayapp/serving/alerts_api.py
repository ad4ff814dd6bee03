"""The in-app alert feed: Alertmanager's webhook in (POST /alerts/webhook), the dashboard's list
out (GET /alerts).

The webhook demands `Authorization: Bearer <token>`, the token being the content of the file
Alertmanager's config names (`credentials_file`; settings.alert_token_path, created by
`rayapp alerting render`). A post without it, with another token, or with a payload that is not
an Alertmanager v4 notification of rayapp's alerts (alertname, severity info|medium|high) is
answered 401/422 and nothing of it is stored; with no token file the webhook is off (503).
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from rayapp.log import get_logger
from rayapp.serving import api_models as m

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rayapp.config import Settings
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
_ZERO = datetime(1, 1, 1, tzinfo=UTC)  # Alertmanager's endsAt of an alert still firing


def _bearer(settings: Settings) -> Any:
    path = settings.alert_token_path
    cache: dict[str, Any] = {"mtime": None, "token": None}

    def token() -> str | None:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return None
        if cache["mtime"] != mtime:  # re-read on rotation
            cache["token"] = path.read_text().strip() or None
            cache["mtime"] = mtime
        return cache["token"]  # type: ignore[no-any-return]

    async def require(request: Request) -> None:
        expected = token()
        if expected is None:
            raise HTTPException(
                503, f"the alert webhook is off: no token in {path} (create it with `rayapp alerting render`)"
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(401, "missing or invalid bearer token", headers={"WWW-Authenticate": "Bearer"})

    return require


def _row(r: dict[str, Any], stale_after: timedelta, now: datetime) -> dict[str, Any]:
    labels, ann = dict(r["labels"]), dict(r["annotations"])
    return {
        "fingerprint": r["fingerprint"],
        "alertname": r["alertname"],
        "severity": r["severity"],
        "status": r["status"],
        "summary": ann.get("summary"),
        "runbook": ann.get("runbook"),
        "area": labels.get("area"),
        "labels": labels,
        "annotations": ann,
        "starts_at": r["starts_at"],
        "ends_at": r["ends_at"],
        "received_at": r["received_at"],
        "first_received_at": r["first_received_at"],
        "notifications": r["notifications"],
        "generator_url": r["generator_url"],
        "stale": r["status"] == "firing" and now - r["received_at"] > stale_after,
    }


def install(app: FastAPI, settings: Settings, service: PredictionService, metrics: ServingMetrics) -> None:
    from rayapp.warehouse import alerts as store

    require = Depends(_bearer(settings))
    # a firing alert is repeated to the feed every feed_repeat_s: twice that without news is stale
    stale_after = timedelta(seconds=2 * settings.alerting.routes.feed_repeat_s + 60)

    @app.post(
        "/alerts/webhook",
        response_model=m.AlertWebhookResult,
        tags=["alerts"],
        dependencies=[require],
        responses={
            401: {"model": m.ErrorBody, "description": "missing or invalid bearer token"},
            503: {"model": m.ErrorBody, "description": "no token configured, or the alert store is down"},
        },
    )
    async def alert_webhook(body: m.AlertmanagerWebhook) -> Any:
        """Alertmanager's webhook receiver (`rayapp-feed` in deploy/alertmanager.yml)."""
        items = [
            {
                "fingerprint": a.fingerprint,
                "starts_at": a.starts_at,
                "alertname": a.labels["alertname"],
                "severity": a.labels["severity"],
                "status": a.status,
                "ends_at": None if a.ends_at is None or a.ends_at <= _ZERO else a.ends_at,
                "labels": a.labels,
                "annotations": a.annotations,
                "generator_url": a.generator_url,
            }
            for a in body.alerts
        ]

        def write(conn: Any) -> dict[str, int]:
            return store.store_notification(conn, receiver=body.receiver, group_key=body.group_key, alerts=items)

        try:
            res = await service.db(write)
        except Exception as exc:
            # Alertmanager retries a failed delivery: 503 tells it to, and nothing was stored
            log.warning("alert notification not stored", error=type(exc).__name__, alerts=len(items))
            return JSONResponse({"detail": "the alert store is unavailable; retry"}, status_code=503)
        for a in body.alerts:
            metrics.alerts_received.labels(a.status).inc()
        log.info(
            "alert notification stored",
            receiver=body.receiver,
            status=body.status,
            alerts=len(items),
            new=res["new"],
            updated=res["updated"],
            truncated=body.truncated_alerts,
        )
        return {"received": len(items), **res}

    @app.get(
        "/alerts",
        response_model=m.Alerts,
        tags=["alerts"],
        responses={503: {"model": m.ErrorBody, "description": "the alert store is unavailable"}},
    )
    async def list_alerts(limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
        """Firing alerts (most severe first) and the newest `limit` alerts of any status, as
        Alertmanager reported them to the feed."""

        def read(conn: Any) -> dict[str, Any]:
            return {**store.list_alerts(conn, limit=limit), "counts": store.active_counts(conn)}

        try:
            data = await service.db(read)
        except Exception as exc:
            log.warning("alerts not read", error=type(exc).__name__)
            return JSONResponse({"detail": "the alert store is unavailable"}, status_code=503)
        now = datetime.now(UTC)
        return {
            "active": [_row(r, stale_after, now) for r in data["active"]],
            "recent": [_row(r, stale_after, now) for r in data["recent"]],
            "counts": data["counts"],
        }
