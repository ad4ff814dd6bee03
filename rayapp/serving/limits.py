"""Edge limits: slow and long-lived clients cannot hold up request serving.

Why (issue 19): in Serve every ASGI call into the ingress holds one of the Ingress replica's
`max_ongoing_requests` slots for as long as it lasts, and that includes a WebSocket (for its whole
life) and a request whose body never arrives (forever: nothing timed the body out). 64 idle
WebSockets, or 64 uploads that sent their headers and one byte, took every slot, and the next
`GET /health` waited behind them for as long as they stayed.

`EdgeLimits` is the ASGI middleware that separates them, in the ingress app itself (so it holds in
Serve, in the plain-uvicorn baseline and under a test client alike). The Ingress deployment gets as
many Serve slots as these limits can let in at once (`ingress_max_ongoing`), so Serve's own cap is
never what a client waits on; these limits are.

HTTP, per ingress replica:
- at most `serving.http_max_pending` requests in progress (reading a body, queued or running):
  503 with `Retry-After` beyond; at most `serving.http_max_per_client` of them from one client
  address: 429 with `Retry-After` beyond;
- the body is read whole first, within `serving.body_timeout_s` (else 408 and the connection is
  closed: `Connection: close`) and `serving.max_body_bytes` (else 413, by header or by counted
  chunks), and only then does the request take one of `serving.max_ongoing_requests` REST slots
  (requests beyond wait for one, as Serve's slots made them wait before). A stalled upload holds a
  connection and a coroutine, never a REST slot.

WebSocket, on every WebSocket route (those of `build_api` and any registered later: the guard is
ASGI middleware on the `websocket` scope, not code in a handler):
- `Origin`: a browser's handshake is refused (HTTP 403) unless its Origin is one of
  `serving.cors_origins` or the app's own origin (the dashboard it serves); a client that sends no
  Origin (not a browser) is let through, since only a browser's Origin can be trusted to be the
  page's and the check exists to stop other sites' pages from reading the feed;
- its own cap, apart from the REST slots: at most `serving.ws_max_connections` open at once and
  `serving.ws_max_per_client` from one client address; one more is accepted and closed at once
  with 1013 (Try Again Later) and a reason, which a browser client can read (a refused handshake
  shows only as a bare failure there);
- a message from the client larger than `serving.ws_max_message_bytes` closes the socket with 1009
  (Message Too Big). With direct ingress uvicorn enforces the same cap on the frame itself, before
  buffering it (`hardening.uvicorn_options`).

Connections that never send a complete request (idle, or headers trickled byte by byte) never
reach ASGI; the header and keep-alive timeouts and the per-client connection cap for those are
uvicorn's, set in `hardening.uvicorn_options`.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from rayapp.config import ServingSettings

# RFC 6455 close codes
WS_POLICY_VIOLATION = 1008
WS_MESSAGE_TOO_BIG = 1009
WS_TRY_AGAIN_LATER = 1013
REJECTED = "rayapp.rejected"  # scope key: set when the edge answered the request itself


def ingress_max_ongoing(serving: ServingSettings) -> int:
    """Serve's `max_ongoing_requests` for the Ingress: everything these limits can let in at once
    (HTTP in progress and WebSockets), so a Serve slot is never what a request waits for."""
    return serving.http_max_pending + serving.ws_max_connections


def client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope.get("headers", ()):
        if k == name:
            return bytes(v)
    return None


def origin_allowed(origin: bytes, host: bytes | None, allowed: frozenset[str]) -> bool:
    """A WebSocket handshake's Origin: one of `serving.cors_origins`, or the app's own origin
    (the Origin's host and port are the Host the request was sent to)."""
    try:
        text = origin.decode("ascii").strip()
    except UnicodeDecodeError:
        return False
    if text.rstrip("/") in allowed:
        return True
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or host is None:
        return False
    default = "443" if parts.scheme == "https" else "80"
    netloc = parts.netloc.lower()
    own = host.decode("latin-1").strip().lower()
    return netloc == own or netloc == f"{own}:{default}" or f"{netloc}:{default}" == own


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    pass


async def respond(send: Send, status: int, detail: str, *, close: bool = False, retry_after: int | None = None) -> None:
    """A small JSON error answer of the edge's own (the outer middleware adds the error id)."""
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class EdgeLimits:
    """Pure ASGI middleware: the HTTP and WebSocket limits above (one instance per app)."""

    def __init__(self, app: ASGIApp, serving: ServingSettings) -> None:
        self.app = app
        self.s = serving
        self.allowed_origins = frozenset(o.rstrip("/") for o in serving.cors_origins)
        self.rest_slots = asyncio.Semaphore(serving.max_ongoing_requests)
        self.http_pending = 0
        self.http_by_client: Counter[str] = Counter()
        self.ws_open = 0
        self.ws_by_client: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def stats(self) -> dict[str, int]:
        return {"http_pending": self.http_pending, "ws_open": self.ws_open}

    # ---- HTTP ------------------------------------------------------------------------------
    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        s = self.s
        client = client_host(scope)
        if self.http_pending >= s.http_max_pending:
            scope[REJECTED] = True
            await respond(send, 503, "the server is at its limit of requests in progress; retry", retry_after=1)
            return
        if self.http_by_client[client] >= s.http_max_per_client:
            scope[REJECTED] = True
            await respond(
                send,
                429,
                f"too many requests in progress from this client (limit {s.http_max_per_client}); retry",
                retry_after=1,
            )
            return
        self.http_pending += 1
        self.http_by_client[client] += 1
        try:
            length = header(scope, b"content-length")
            if length is not None:
                try:
                    declared = int(length)
                except ValueError:
                    scope[REJECTED] = True
                    await respond(send, 400, "invalid Content-Length header", close=True)
                    return
                if declared > s.max_body_bytes:
                    scope[REJECTED] = True
                    await respond(send, 413, f"request body larger than {s.max_body_bytes} bytes", close=True)
                    return
            try:
                async with asyncio.timeout(s.body_timeout_s):
                    body = await self._read_body(receive)
            except TimeoutError:
                scope[REJECTED] = True
                await respond(send, 408, f"the request body did not arrive within {s.body_timeout_s:g} s", close=True)
                return
            except _TooLarge:
                scope[REJECTED] = True
                await respond(send, 413, f"request body larger than {s.max_body_bytes} bytes", close=True)
                return
            except _Disconnected:
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            async with self.rest_slots:
                await self.app(scope, replay, send)
        finally:
            self.http_pending -= 1
            self.http_by_client[client] -= 1
            if self.http_by_client[client] <= 0:
                del self.http_by_client[client]

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            if message["type"] != "http.request":
                continue
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.s.max_body_bytes:
                raise _TooLarge
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    # ---- WebSocket -------------------------------------------------------------------------
    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        s = self.s
        origin = header(scope, b"origin")
        if origin is not None and not origin_allowed(origin, header(scope, b"host"), self.allowed_origins):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})  # before accept: HTTP 403
            return
        client = client_host(scope)
        if self.ws_open >= s.ws_max_connections or self.ws_by_client[client] >= s.ws_max_per_client:
            full = self.ws_open >= s.ws_max_connections
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            reason = (
                f"the server has {s.ws_max_connections} WebSockets open; retry later"
                if full
                else f"too many WebSockets from this client (limit {s.ws_max_per_client}); retry later"
            )
            await send({"type": "websocket.close", "code": WS_TRY_AGAIN_LATER, "reason": reason})
            return
        self.ws_open += 1
        self.ws_by_client[client] += 1
        closed = False
        limit = s.ws_max_message_bytes

        async def guarded_send(message: Message) -> None:
            if closed:  # the edge closed the socket: what the app sends after that goes nowhere
                return
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > limit:
                    closed = True
                    await send(
                        {
                            "type": "websocket.close",
                            "code": WS_MESSAGE_TOO_BIG,
                            "reason": f"message larger than {limit} bytes",
                        }
                    )
                    return {"type": "websocket.disconnect", "code": WS_MESSAGE_TOO_BIG}
            return message

        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            self.ws_open -= 1
            self.ws_by_client[client] -= 1
            if self.ws_by_client[client] <= 0:
                del self.ws_by_client[client]
