"""Security at the edge: API key for mutating/admin endpoints, CORS, body size limit, safe errors.

The key is compared in constant time and never logged or echoed. Unhandled errors answer a
generic 500 with an error id; the log line carries the id and the exception type only, because
exception messages can hold connection strings.
"""

from __future__ import annotations

import hmac
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader

from rayapp.log import get_logger

if TYPE_CHECKING:
    from fastapi import FastAPI
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from rayapp.config import ServingSettings

log = get_logger(__name__)


def api_key_dependency(serving: ServingSettings) -> Callable[..., Awaitable[None]]:
    """A FastAPI dependency that demands `serving.api_key_header` (documented in OpenAPI)."""
    header = APIKeyHeader(
        name=serving.api_key_header, auto_error=False, description="required by mutating and admin endpoints"
    )
    expected = serving.api_key

    async def require_key(request: Request) -> None:
        given = await header(request)
        if expected is None:
            raise HTTPException(
                503, "mutating endpoints are disabled: no API key is configured (set serving.api_key or RAYAPP_API_KEY)"
            )
        if not given or not hmac.compare_digest(given.encode(), expected.encode()):
            raise HTTPException(
                401, f"missing or invalid {serving.api_key_header} header", headers={"WWW-Authenticate": "ApiKey"}
            )

    return require_key


class BodySizeLimit:
    """Pure ASGI middleware: 413 for a body over the limit, by header or by counted chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                    await _reject(send, 400, "invalid Content-Length header")
                    return
                if too_big:
                    await _reject(send, 413, f"request body larger than {self.max_bytes} bytes")
                    return
        seen = 0
        started = exceeded = False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                # The app caught the error while reading the body (FastAPI answers 400): answer
                # 413 instead of whatever it produced.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await _reject(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reject(send, 413, f"request body larger than {self.max_bytes} bytes")


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


class _TooLarge(Exception):
    pass


async def _reject(send: Send, status: int, detail: str) -> None:
    response = JSONResponse({"detail": detail}, status_code=status)
    await response({"type": "http"}, _empty_receive, send)


async def _empty_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


def install(app: FastAPI, serving: ServingSettings) -> None:
    """CORS from config, the body limit, and the generic error handler."""
    app.add_middleware(BodySizeLimit, max_bytes=serving.max_body_bytes)
    if serving.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(serving.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", serving.api_key_header],
            allow_credentials=False,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's default handler echoes the input; a NaN/inf input (JSON extension some clients
        # send) cannot be encoded back and would turn a 422 into a 500.
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": _json_safe(jsonable_encoder(exc.errors()))}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex[:12]
        log.error("request failed", path=request.url.path, error=type(exc).__name__, error_id=error_id)
        return JSONResponse({"detail": "internal error", "error_id": error_id}, status_code=500)
