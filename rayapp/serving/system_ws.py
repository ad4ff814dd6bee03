"""`/ws/system`: component health and the scheduler's job status, pushed.

The System page's live channel. Every `serving.ws_metrics_interval_s` a client gets one `system`
message (JSON, with the per-connection `seq` every channel carries, rayapp/serving/ws.py):

    {"type": "system", "seq": 3, "ts": <unix s>, "data": {
        "components": [{"name": "predictor", "ok": true, "status": "v3", "detail": null}, ...],
        "pipeline": <the GET /pipeline body> | null, "pipeline_error": null | "<why>"}}

The components are what `GET /ready` reads (the model, Redis, PostgreSQL) plus the shadow
deployment; the pipeline is `GET /pipeline`'s view on the system clock. A part that cannot be read
is reported as down with the error's type (never its message), never by closing the socket. A
client may send `ping` (answered by `pong`), and the socket closes when it goes away or is too
slow to take a message (`SEND_TIMEOUT_S`, as on the other channels).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket, WebSocketDisconnect

from rayapp.log import get_logger
from rayapp.serving import api_models as m
from rayapp.serving.ws import Client
from rayapp.warehouse import pipeline

if TYPE_CHECKING:
    from fastapi import FastAPI

    from rayapp.config import Settings
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
CHANNEL = "system"
PART_TIMEOUT_S = 10.0  # a component that does not answer within this is reported down


def _component(name: str, ok: bool, status: str, detail: str | None = None) -> dict[str, Any]:
    return {"name": name, "ok": ok, "status": status, "detail": detail}


async def snapshot(settings: Settings, service: PredictionService) -> dict[str, Any]:
    """One reading of every component and of the pipeline (never raises)."""

    async def model() -> dict[str, Any]:
        try:
            info = await asyncio.wait_for(service.refresh_model(), PART_TIMEOUT_S)
        except Exception as exc:
            return _component("predictor", False, "unreachable", type(exc).__name__)
        if info.get("loaded"):
            return _component("predictor", True, f"v{info.get('version')}", info.get("last_error"))
        return _component("predictor", False, "no model", info.get("last_error"))

    async def stores() -> list[dict[str, Any]]:
        try:
            s = await asyncio.wait_for(service.call("FeatureLookup", service.lookup, "health"), PART_TIMEOUT_S)
        except Exception as exc:
            why = type(exc).__name__
            return [_component("redis", False, "unknown", why), _component("postgres", False, "unknown", why)]
        return [_component(name, bool(s.get(name)), "up" if s.get(name) else "down") for name in ("redis", "postgres")]

    async def shadow() -> dict[str, Any] | None:
        if service.shadow is None:
            return None
        info = await service.refresh_shadow()  # never raises
        if info.get("loaded"):
            return _component("shadow", True, f"v{info.get('version')}")
        return _component("shadow", True, "idle", info.get("last_error"))

    async def jobs() -> tuple[dict[str, Any] | None, str | None]:
        try:
            now, clock = await asyncio.to_thread(service.clock_now)

            def view(conn: Any) -> dict[str, Any]:
                return pipeline.status_view(conn, now=now, wall=datetime.now(UTC), clock=clock)

            body = await asyncio.wait_for(service.db(view), PART_TIMEOUT_S)
            return m.Pipeline.model_validate(body).model_dump(mode="json"), None
        except Exception as exc:
            return None, type(exc).__name__

    (mod, st, sh, (pipe, pipe_error)) = await asyncio.gather(model(), stores(), shadow(), jobs())
    components = [_component("ingress", True, "up"), mod, *st]
    if sh is not None:
        components.append(sh)
    return {"components": components, "pipeline": pipe, "pipeline_error": pipe_error}


class SystemChannel:
    def __init__(self, settings: Settings, service: PredictionService, metrics: ServingMetrics) -> None:
        self.settings, self.service, self.metrics = settings, service, metrics
        self.clients: set[Client] = set()
        metrics.ws_clients.labels(CHANNEL).set(0)

    def _count(self) -> None:
        self.metrics.ws_clients.labels(CHANNEL).set(len(self.clients))

    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        client = Client(ws, CHANNEL, self.metrics)
        self.clients.add(client)
        self._count()

        async def reader() -> None:
            while True:
                if (await ws.receive_text()).strip().lower() == "ping":
                    await client.send("pong", {"ts": time.time()})

        task = asyncio.create_task(reader())
        interval = self.settings.serving.ws_metrics_interval_s
        try:
            while not task.done():
                data = await snapshot(self.settings, self.service)
                await client.send(CHANNEL, {"ts": time.time(), "data": data})
                await asyncio.wait({task}, timeout=interval)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            self.clients.discard(client)
            self._count()


def install(app: FastAPI, settings: Settings, service: PredictionService, metrics: ServingMetrics) -> None:
    channel = SystemChannel(settings, service, metrics)

    @app.websocket("/ws/system")
    async def ws_system(ws: WebSocket) -> None:
        await channel.serve(ws)
