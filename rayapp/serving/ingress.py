"""Ingress: the FastAPI app as a Ray Serve deployment, composing the others by handle.

The app is built late (`__serve_build_asgi_app__`, run on the replica after `__init__`) because
its CORS origins, body limit and API key come from the settings the deployment was bound with.
The replica's Serve slots (`max_ongoing_requests`) are as many as the edge limits let in at once
(limits.ingress_max_ongoing): WebSockets and bodies being read never take a REST slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import serve

from rayapp.log import configure
from rayapp.serving.app import build_api
from rayapp.serving.hardening import harden_uvicorn
from rayapp.serving.metrics import ServingMetrics
from rayapp.serving.service import PredictionService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rayapp.config import Settings


@serve.ingress()
class Ingress:
    def __init__(self, settings: Settings, lookup: Any, predictor: Any, explainer: Any, shadow: Any = None) -> None:
        from rayapp.warehouse import get_pool

        configure(settings.log.level, settings.log.format)
        assert settings.database.url, "resolve_settings() must run before binding the app"
        # With direct ingress Serve starts this replica's HTTP server after this constructor:
        # no server banner, header timeout, per-client connection and WebSocket frame caps.
        harden_uvicorn(settings.serving)
        self.settings = settings
        self.metrics = ServingMetrics()
        pool = get_pool(settings.database.url, migrate_schema=False)
        self.service = PredictionService(
            settings, lookup, predictor, explainer, self.metrics, pool, online_url=settings.redis.url, shadow=shadow
        )

    def __serve_build_asgi_app__(self) -> FastAPI:
        return build_api(self.settings, self.service, self.metrics)
