"""WebSocket channels: /ws/predictions (push on new features) and /ws/metrics.

Every message is JSON with a `type` (`prediction`, `heartbeat`, `metrics`, `pong`) and a
per-connection `seq`. A prediction carries its staleness like every forecast (`as_of`,
`data_age_s`, `stale`; a replayed one also how old its data is now: `data_age_now_s`, `stale_now`).
Reconnecting is safe: a client passes `since=<ts of the last prediction it
got>` and first receives every logged prediction after it (from the table, not from memory), then
live pushes; prediction ids are stable, so a client dedups by id. Sends to one client are
serialised by a lock, and a client too slow to take a message within the send timeout is dropped
rather than allowed to hold up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from fastapi import WebSocket, WebSocketDisconnect

from rayapp.log import get_logger
from rayapp.serving import prediction_log

if TYPE_CHECKING:
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
SEND_TIMEOUT_S = 5.0


class Client:
    def __init__(self, ws: WebSocket, channel: str, metrics: ServingMetrics) -> None:
        self.ws, self.channel, self.metrics = ws, channel, metrics
        self.seq = 0
        self.lock = asyncio.Lock()

    async def send(self, kind: str, payload: dict[str, Any]) -> None:
        async with self.lock:
            self.seq += 1
            await asyncio.wait_for(self.ws.send_json({"type": kind, "seq": self.seq, **payload}), SEND_TIMEOUT_S)
        self.metrics.pushes.labels(self.channel, kind).inc()


class Hub:
    def __init__(self, service: PredictionService, metrics: ServingMetrics) -> None:
        self.service = service
        self.metrics = metrics
        self.clients: dict[str, set[Client]] = {"predictions": set(), "metrics": set()}

    def _add(self, client: Client) -> None:
        self.clients[client.channel].add(client)
        self.metrics.ws_clients.labels(client.channel).set(len(self.clients[client.channel]))

    def _remove(self, client: Client) -> None:
        self.clients[client.channel].discard(client)
        self.metrics.ws_clients.labels(client.channel).set(len(self.clients[client.channel]))

    async def broadcast_prediction(self, pred: dict[str, Any]) -> int:
        clients = list(self.clients["predictions"])
        results = await asyncio.gather(*(c.send("prediction", {"data": pred}) for c in clients), return_exceptions=True)
        for client, res in zip(clients, results, strict=True):
            if isinstance(res, BaseException):
                self._remove(client)
                with contextlib.suppress(Exception):
                    await client.ws.close(code=1011)
        return sum(1 for r in results if not isinstance(r, BaseException))

    async def _serve(self, client: Client, interval_s: float, tick: Any) -> None:
        """Read the client (pings, close) in one task; send `tick()` every interval from this one."""

        async def reader() -> None:
            while True:
                text = await client.ws.receive_text()
                if text.strip().lower() == "ping":
                    await client.send("pong", {"ts": time.time()})

        task = asyncio.create_task(reader())
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval_s)
                if done:
                    break
                await tick()
        finally:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task

    async def predictions(self, ws: WebSocket, symbol: str | None, since: str | None) -> None:
        await ws.accept()
        client = Client(ws, "predictions", self.metrics)
        self._add(client)
        try:
            if self.service.pool is not None:
                if since is not None:
                    rows = await self.service.db(prediction_log.since, symbol, since, 1000)
                else:
                    sym = symbol or self.service.settings.symbols[0]
                    latest = await self.service.db(prediction_log.latest, sym)
                    rows = [latest] if latest else []
                from rayapp.serving.service import row_to_prediction

                now, max_age = await self.service.now(), self.service.settings.serving.feature_staleness_s
                for row in rows:
                    data = row_to_prediction(row, now, max_age)
                    await client.send("prediction", {"data": data, "replay": True})
            hb = self.service.settings.serving.ws_heartbeat_s

            async def heartbeat() -> None:
                await client.send("heartbeat", {"ts": time.time(), "model_version": self.service.meta.get("version")})

            await heartbeat()
            await self._serve(client, hb, heartbeat)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._remove(client)

    async def metrics_channel(self, ws: WebSocket) -> None:
        await ws.accept()
        client = Client(ws, "metrics", self.metrics)
        self._add(client)

        async def push() -> None:
            await client.send("metrics", {"ts": time.time(), "data": self.metrics.snapshot()})

        try:
            await push()
            await self._serve(client, self.service.settings.serving.ws_metrics_interval_s, push)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._remove(client)
