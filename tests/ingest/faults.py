"""A fault-injecting HTTP server on 127.0.0.1 for the ingest client tests.

Each path gets a script: a queue of behaviours played one per request (429 with Retry-After,
418, 5xx, a hang past the client's timeout, a dropped connection, a body cut short of its
Content-Length, malformed or truncated JSON, API errors, empty pages...). When a path's script
is empty its default handler answers (e.g. klines generated from a list of bars). Every request
is recorded (path, query, headers, arrival time) so tests assert what the client really sent.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

Behaviour = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # case-insensitive, as HTTP headers are
    at: float
    method: str = "GET"
    body: str = ""


def respond(
    status: int = 200,
    body: Any = None,
    *,
    text: str | None = None,
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
) -> Behaviour:
    async def run(request: web.Request) -> web.StreamResponse:
        payload = text if text is not None else json.dumps(body)
        return web.Response(status=status, text=payload, headers=headers, content_type=content_type)

    return run


def retry_after(status: int, seconds: float, body: Any = None) -> Behaviour:
    return respond(status, body or {"code": -1003, "msg": "Too many requests."}, headers={"Retry-After": str(seconds)})


def hang(seconds: float) -> Behaviour:
    async def run(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)  # the fault itself: answer only after the client's timeout
        return web.Response(text="[]", content_type="application/json")

    return run


def drop() -> Behaviour:
    """Close the connection without an answer (the client sees ServerDisconnectedError)."""

    async def run(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    return run


def cut(body: str, promised: int | None = None) -> Behaviour:
    """Promise ``promised`` bytes, send only ``body``, close: a truncated transfer."""

    async def run(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": str(promised or len(body) * 2)}
        )
        await resp.prepare(request)
        await resp.write(body.encode())
        assert request.transport is not None
        request.transport.close()
        return resp

    return run


@dataclass
class FaultServer:
    defaults: dict[str, Behaviour] = field(default_factory=dict)
    scripts: dict[str, deque[Behaviour]] = field(default_factory=lambda: defaultdict(deque))
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    def script(self, path: str, *behaviours: Behaviour) -> FaultServer:
        self.scripts[path].extend(behaviours)
        return self

    def requests(self, path: str | None = None) -> list[Seen]:
        return [s for s in self.seen if path is None or s.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text() if request.can_read_body else ""
        self.seen.append(
            Seen(
                request.path, dict(request.query), CIMultiDict(request.headers), time.monotonic(), request.method, body
            )
        )
        queue = self.scripts.get(request.path)
        if queue:
            return await queue.popleft()(request)
        if request.path in self.defaults:
            return await self.defaults[request.path](request)
        return web.json_response({"code": -1, "msg": f"no route {request.path}"}, status=404)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FaultServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


# ---- realistic payload factories --------------------------------------------------------------
HOUR_MS = 3_600_000


def kline(open_ms: int, price: float = 20000.0, *, trades: int = 100) -> list[Any]:
    """One Binance kline array, consistent (low <= open, close <= high)."""
    o, c = price, price * 1.001
    return [
        open_ms,
        f"{o:.2f}",
        f"{c * 1.002:.2f}",
        f"{o * 0.997:.2f}",
        f"{c:.2f}",
        "12.5",
        open_ms + HOUR_MS - 1,
        f"{12.5 * o:.2f}",
        trades,
        "6.1",
        f"{6.1 * o:.2f}",
        "0",
    ]


def klines_handler(rows: list[list[Any]], *, weight_header: Callable[[], str] | None = None) -> Behaviour:
    """Binance /api/v3/klines semantics over ``rows``: startTime/endTime/limit, oldest first."""

    async def run(request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("symbol") != "BTCUSDT":
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        start = int(q.get("startTime", 0))
        end = int(q.get("endTime", 2**62))
        limit = int(q.get("limit", 500))
        sel = [r for r in rows if start <= r[0] <= end][:limit]
        headers = {"X-MBX-USED-WEIGHT-1M": weight_header()} if weight_header else None
        return web.json_response(sel, headers=headers)

    return run
