"""Hardening at the edge: security headers, error ids on every error, 405/HEAD, uvicorn's settings.

The ASGI middlewares `build_api` installs around the routes, outermost first:

- `SecurityHeaders`: on every HTTP response (API, static files, errors, the edge's own answers):
  `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
  `Cross-Origin-Opener-Policy: same-origin` and a `Content-Security-Policy` the built dashboard
  satisfies: scripts, styles, fonts, images and connections from the app's own origin only (its
  WebSockets included), plus the SHA-256 of each inline `<script>`/`<style>` of the dashboard's
  `index.html`, read from the built file (re-read when it changes), so a rebuilt dashboard never
  needs this file edited. The interactive docs (`/docs`, `/redoc`) load Swagger UI / ReDoc from
  their CDN and start them with an inline script: those two pages (and nothing else) get a policy
  that allows exactly that.
- `ErrorIds`: every error response (status >= 400) carries an `X-Error-Id` header, and a JSON
  error body an `error_id` (the one a 500 was logged with, else a new one).
- (CORS, request metrics and `limits.EdgeLimits` sit in between; see `build_api`.)
- `ErrorBoundary`: an unhandled exception becomes a 500 JSON body with an `error_id` *inside*
  the CORS middleware, so a browser can read it (Starlette's own last-resort handler sits outside
  every middleware: its 500s carried no CORS headers). The log line carries the id and the
  exception type only, never its message (messages can hold connection strings).
- `MethodGuard`: a path that is an API route but not for this method is answered here, before the
  static dashboard mount can take it: 405 with `Allow` naming the route's methods (`GET /predict`
  was a 404 from the static files, `PUT /predict` a 405 that named GET and HEAD), `OPTIONS` 204
  with `Allow`, and `HEAD` on a GET route is that GET without its body (FastAPI routes do not
  answer HEAD by themselves). A browser navigation (`Accept: text/html`) to such a path is left to
  the dashboard: its Predict page is `/predict` too.

`uvicorn_options(serving)` are the HTTP server's settings for the same edge: no `server` banner,
the WebSocket frame cap, a header timeout and a per-client connection cap (`HeaderTimeoutProtocol`)
and the keep-alive timeout. With direct ingress Ray Serve starts that server itself, in the
Ingress replica's process, after the replica's constructor ran and with a `uvicorn.Config` built
from its HTTP options (which set only host, port, root path and keep-alive): `harden_uvicorn`,
called from that constructor, makes that `Config` take these settings too.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from rayapp.config import ServingSettings

log = get_logger(__name__)

DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
# Swagger UI and ReDoc as FastAPI serves them: bundles from jsDelivr, an inline start-up script,
# FastAPI's favicon, ReDoc's Google font and its web worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; img-src 'self' data: https://fastapi.tiangolo.com "
    "https://cdn.redoc.ly; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_INLINE = re.compile(r"<(script|style)\b([^>]*)>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)


def new_error_id() -> str:
    return uuid.uuid4().hex[:12]


def inline_hashes(html: str) -> tuple[list[str], list[str]]:
    """CSP source expressions ('sha256-...') of the inline scripts and styles of a page."""
    scripts: list[str] = []
    styles: list[str] = []
    for tag, attrs, body in _INLINE.findall(html):
        if tag.lower() == "script" and re.search(r"\bsrc\s*=", attrs, re.IGNORECASE):
            continue
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        (scripts if tag.lower() == "script" else styles).append(f"'sha256-{digest}'")
    return scripts, styles


def dashboard_csp(index_html: str | None) -> str:
    """The policy for everything but the docs pages (`index_html`: the built dashboard's page)."""
    scripts, styles = inline_hashes(index_html) if index_html else ([], [])
    script_src = " ".join(["'self'", *scripts])
    style_src = " ".join(["'self'", *styles])
    return (
        f"default-src 'self'; script-src {script_src}; style-src {style_src}; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Pure ASGI middleware: the headers above on every HTTP response that does not set its own."""

    RECHECK_S = 2.0

    def __init__(self, app: ASGIApp, dist: Path | None) -> None:
        self.app = app
        self.index = dist / "index.html" if dist is not None else None
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._csp = dashboard_csp(None).encode()
        self._refresh(force=True)

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.index is None or (not force and now - self._checked < self.RECHECK_S):
            return
        self._checked = now
        try:
            st = self.index.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                self._csp = dashboard_csp(self.index.read_text(encoding="utf-8")).encode()
                self._stamp = stamp
        except OSError:
            pass

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self._refresh()
        csp = DOCS_CSP.encode() if scope.get("path") in DOCS_PATHS else self._csp

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [(k, v) for k, v in STATIC_HEADERS if k not in present]
                if b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", csp))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, with_headers)


class ErrorIds:
    """Pure ASGI middleware: `X-Error-Id` on every error response, `error_id` in a JSON error body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def tagging_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] < 400:
                    await send(message)
                    return
                held = message
                ctype = _header(message, b"content-type") or b""
                if not ctype.startswith(b"application/json") or scope.get("method") == "HEAD":
                    await _send_tagged(send, message, None, new_error_id())
                    held = None
                return
            if message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                error_id = new_error_id()
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                if isinstance(doc, dict):
                    if isinstance(doc.get("error_id"), str):
                        error_id = doc["error_id"]
                    else:
                        doc["error_id"] = error_id
                        body = json.dumps(doc, separators=(",", ":")).encode()
                await _send_tagged(send, held, body, error_id)
                if held["status"] < 500:
                    log.debug("request rejected", path=scope.get("path"), status=held["status"], error_id=error_id)
                return
            await send(message)

        await self.app(scope, receive, tagging_send)


def _header(message: Message, name: bytes) -> bytes | None:
    for k, v in message.get("headers", []):
        if k.lower() == name:
            return bytes(v)
    return None


async def _send_tagged(send: Send, start: Message, body: bytes | None, error_id: str) -> None:
    headers = [(k, v) for k, v in start.get("headers", []) if body is None or k.lower() != b"content-length"]
    if body is not None:
        headers.append((b"content-length", str(len(body)).encode()))
    headers.append((b"x-error-id", error_id.encode()))
    await send({**start, "headers": headers})
    if body is not None:
        await send({"type": "http.response.body", "body": body, "more_body": False})


class ErrorBoundary:
    """Pure ASGI middleware: an unhandled exception -> 500 `{"detail", "error_id"}`, logged by id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            error_id = new_error_id()
            log.error("request failed", path=scope.get("path"), error=type(exc).__name__, error_id=error_id)
            if not started:
                body = json.dumps({"detail": "internal error", "error_id": error_id}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body, "more_body": False})


class MethodGuard:
    """Pure ASGI middleware: 405 + `Allow`, `OPTIONS` and `HEAD` for the API routes (see above)."""

    CACHE_SIZE = 4096  # (method, path) verdicts kept; cleared whole when full

    def __init__(self, app: ASGIApp, api: FastAPI) -> None:
        self.app = app
        self.api = api
        self._verdicts: dict[tuple[str, str], tuple[set[str], Any] | None] = {}

    def _verdict(self, scope: Scope) -> tuple[set[str], Any] | None:
        """None: a route takes this method here, or no API route has this path; else the methods
        the API routes of this path take, and the first of those routes. Kept per (method, path):
        the routes are fixed once the app serves, and matching them all is the guard's cost."""
        key = (scope.get("method", "GET"), scope.get("path", ""))
        if key in self._verdicts:
            return self._verdicts[key]
        from starlette.routing import Match, Route

        methods: set[str] = set()
        matched: Any = None
        verdict: tuple[set[str], Any] | None = None
        for route in self.api.router.routes:
            if not isinstance(route, Route):  # static mounts, WebSocket routes
                continue
            match, _ = route.matches(scope)
            if match == Match.FULL:
                methods = set()
                break
            if match == Match.PARTIAL:
                methods |= set(route.methods or ())
                matched = matched or route
        if methods:
            verdict = (methods, matched)
        if len(self._verdicts) >= self.CACHE_SIZE:
            self._verdicts.clear()
        self._verdicts[key] = verdict
        return verdict

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        verdict = self._verdict(scope)
        if verdict is None:
            await self.app(scope, receive, send)
            return
        methods, matched = verdict
        method = scope.get("method", "GET")
        if method in ("GET", "HEAD") and "GET" not in methods and _wants_html(scope):
            # A browser navigating to a dashboard page that shares its path with a POST-only API
            # route (the Predict page is /predict): the dashboard mount answers, not a 405.
            await self.app(scope, receive, send)
            return
        if method == "HEAD" and "GET" in methods:
            inner = {**scope, "method": "GET"}

            async def without_body(message: Message) -> None:
                if message["type"] == "http.response.body":
                    message = {**message, "body": b""}
                await send(message)

            try:
                await self.app(inner, receive, without_body)
            finally:
                if "route" in inner:
                    scope["route"] = inner["route"]
            return
        scope["route"] = matched
        allow = set(methods) | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        allow_header = ", ".join(sorted(allow)).encode()
        if method == "OPTIONS":
            await send({"type": "http.response.start", "status": 204, "headers": [(b"allow", allow_header)]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = json.dumps({"detail": f"method {method} not allowed; allowed: {', '.join(sorted(allow))}"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 405,
                "headers": [
                    (b"allow", allow_header),
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _wants_html(scope: Scope) -> bool:
    for k, v in scope.get("headers", ()):
        if k == b"accept":
            return b"text/html" in v
    return False


# ---- error bodies ------------------------------------------------------------------------------
MAX_ECHO_CHARS = 100
MAX_ECHO_ITEMS = 10


def truncate_echo(value: Any, depth: int = 0) -> Any:
    """An input echoed in an error body, cut to size: strings to 100 characters, dicts and lists
    to 10 items (saying how much was left out), three levels deep."""
    if isinstance(value, str):
        if len(value) <= MAX_ECHO_CHARS:
            return value
        return f"{value[:MAX_ECHO_CHARS]}… ({len(value)} characters)"
    if isinstance(value, bytes):
        return truncate_echo(value.decode("utf-8", "replace"), depth)
    if depth >= 3 and isinstance(value, dict | list | tuple):
        return f"<{type(value).__name__} of {len(value)}>"
    if isinstance(value, dict):
        items = list(value.items())
        out = {truncate_echo(str(k), depth + 1): truncate_echo(v, depth + 1) for k, v in items[:MAX_ECHO_ITEMS]}
        if len(items) > MAX_ECHO_ITEMS:
            out["…"] = f"{len(items) - MAX_ECHO_ITEMS} more"
        return out
    if isinstance(value, list | tuple):
        head = [truncate_echo(v, depth + 1) for v in value[:MAX_ECHO_ITEMS]]
        if len(value) > MAX_ECHO_ITEMS:
            head.append(f"… {len(value) - MAX_ECHO_ITEMS} more")
        return head
    return value


def truncate_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation error items with their echoed `input` and `loc` parts cut to size."""
    out = []
    for e in errors[:50]:
        item = dict(e)
        if "input" in item:
            item["input"] = truncate_echo(item["input"])
        if "loc" in item:
            item["loc"] = [truncate_echo(p) if isinstance(p, str) else p for p in item["loc"]]
        if "ctx" in item and isinstance(item["ctx"], dict):
            item["ctx"] = {k: truncate_echo(v) for k, v in item["ctx"].items()}
        out.append(item)
    return out


# ---- OpenAPI -----------------------------------------------------------------------------------
EDGE_RESPONSES = {
    "429": "too many requests in progress from this client (serving.http_max_per_client); Retry-After",
    "503": "the server is at a limit (requests in progress, or a component is unavailable); retry",
}
BODY_RESPONSES = {
    "400": "the body could not be read as JSON (or its Content-Length is invalid)",
    "408": "the request body did not arrive within serving.body_timeout_s (the connection is closed)",
    "413": "the request body is larger than serving.max_body_bytes",
}


def refine_openapi(app: FastAPI, symbols: list[str], features: dict[str, tuple[float, float]]) -> None:
    """What the OpenAPI document says beyond the routes' own annotations:

    - the served symbols as an `enum` wherever a symbol is taken (the `symbol` query parameters,
      `PredictRequest.symbol`): a generated client or a fuzzer sends only symbols that can be
      answered (validation is unchanged: the pattern, then the served check's 422);
    - `PredictRequest.features` as the configured feature set (`features`: name -> range, in
      order): every feature required, each a number within its documented range or null
      (missing), no other names; what the served model accepts when it uses that set (the
      service still checks the vector against the model actually served);
    - the edge's answers on every operation (408/413 where there is a body, 429, 503), with the
      error body, so a client knows them.
    """
    original = app.openapi
    served = sorted(symbols)

    def with_enum(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch["enum"] = served

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = original()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        req = schemas.get("PredictRequest", {})
        props = req.get("properties", {})
        if "symbol" in props:
            with_enum(props["symbol"])
        if "features" in props and features:
            vector = {
                "type": "object",
                "properties": {
                    name: {"anyOf": [{"type": "number", "minimum": lo, "maximum": hi}, {"type": "null"}]}
                    for name, (lo, hi) in features.items()
                },
                "required": list(features),
                "additionalProperties": False,
            }
            props["features"] = {**props["features"], "anyOf": [vector, {"type": "null"}]}
        error_ref = {"$ref": "#/components/schemas/ErrorBody"} if "ErrorBody" in schemas else {}
        for ops in doc.get("paths", {}).values():
            for op in ops.values():
                if not isinstance(op, dict):
                    continue
                for p in op.get("parameters", []):
                    if p.get("name") == "symbol" and p.get("in") == "query":
                        with_enum(p.get("schema", {}))
                extra = {**EDGE_RESPONSES, **(BODY_RESPONSES if "requestBody" in op else {})}
                responses = op.setdefault("responses", {})
                for code, text in extra.items():
                    responses.setdefault(
                        code, {"description": text, "content": {"application/json": {"schema": error_ref}}}
                    )
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


# ---- uvicorn -----------------------------------------------------------------------------------
_EDGE: dict[str, float] = {"header_timeout_s": 10.0, "max_connections_per_client": 128.0}
_CONNECTIONS: Counter[str] = Counter()  # open HTTP connections per client address, this process
_PROTOCOL: Any = None


def _protocol_class() -> Any:
    """uvicorn's httptools protocol with a header timeout and a per-client connection cap
    (None where httptools is not installed: uvicorn's h11 protocol then runs without them)."""
    global _PROTOCOL
    if _PROTOCOL is not None:
        return _PROTOCOL
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools comes with ray[serve] / uvicorn[standard]
        log.warning("httptools missing: no header timeout or per-client connection cap")
        return None

    class HeaderTimeoutProtocol(HttpToolsProtocol):  # type: ignore[misc]
        """A connection must deliver a request's line and headers within `header_timeout_s` of
        connecting or of its last response (an idle keep-alive connection is closed sooner, by the
        keep-alive timeout), else it is closed; a client address holding
        `max_connections_per_client` open connections has the next one answered 503 and closed."""

        _rayapp_host: str | None = None
        _rayapp_timer: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            host = self.client[0] if self.client else "unknown"
            self._rayapp_host = host
            _CONNECTIONS[host] += 1
            if _CONNECTIONS[host] > _EDGE["max_connections_per_client"]:
                msg = b"too many connections from this client; retry later"
                transport.write(
                    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
                    b"x-content-type-options: nosniff\r\nretry-after: 1\r\nconnection: close\r\n"
                    b"content-length: " + str(len(msg)).encode() + b"\r\n\r\n" + msg
                )
                transport.close()
                return
            self._rayapp_arm()

        def _rayapp_arm(self) -> None:
            self._rayapp_cancel()
            self._rayapp_timer = self.loop.call_later(_EDGE["header_timeout_s"], self._rayapp_expired)

        def _rayapp_cancel(self) -> None:
            if self._rayapp_timer is not None:
                self._rayapp_timer.cancel()
                self._rayapp_timer = None

        def _rayapp_expired(self) -> None:
            self._rayapp_timer = None
            if not self.transport.is_closing():
                self.transport.close()

        def _rayapp_forget(self) -> None:
            self._rayapp_cancel()
            host, self._rayapp_host = self._rayapp_host, None
            if host is not None:
                _CONNECTIONS[host] -= 1
                if _CONNECTIONS[host] <= 0:
                    del _CONNECTIONS[host]

        def on_headers_complete(self) -> None:
            self._rayapp_cancel()
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self.pipeline:
                self._rayapp_arm()  # awaiting the next request's headers

        def handle_websocket_upgrade(self) -> None:
            self._rayapp_forget()  # a WebSocket is counted by the edge's WebSocket caps
            super().handle_websocket_upgrade()

        def connection_lost(self, exc: Exception | None) -> None:
            self._rayapp_forget()
            super().connection_lost(exc)

    _PROTOCOL = HeaderTimeoutProtocol
    return _PROTOCOL


def uvicorn_options(serving: ServingSettings) -> dict[str, Any]:
    """`uvicorn.Config` keyword arguments for the edge (also for `uvicorn.run`)."""
    _EDGE["header_timeout_s"] = float(serving.header_timeout_s)
    _EDGE["max_connections_per_client"] = float(serving.max_connections_per_client)
    opts: dict[str, Any] = {
        "server_header": False,
        "ws_max_size": serving.ws_max_message_bytes,
        "timeout_keep_alive": serving.keep_alive_timeout_s,
    }
    proto = _protocol_class()
    if proto is not None:
        opts["http"] = proto
    return opts


def harden_uvicorn(serving: ServingSettings) -> None:
    """Every `uvicorn.Config` built in this process from now on takes `uvicorn_options` (the
    keep-alive timeout aside: Serve passes its HTTP option, which `deployments.run` sets from the
    same setting). Called in the Ingress replica's constructor, before Serve starts its server."""
    import uvicorn

    opts = uvicorn_options(serving)
    opts.pop("timeout_keep_alive")
    current = uvicorn.Config
    base = getattr(current, "_rayapp_base", current)

    class HardenedConfig(base):  # type: ignore[misc, valid-type]
        _rayapp_base = base

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **{**kwargs, **opts})

    HardenedConfig.__name__ = HardenedConfig.__qualname__ = "Config"
    uvicorn.Config = HardenedConfig  # type: ignore[misc]
