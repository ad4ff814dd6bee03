"""Security at the edge: API key for mutating/admin endpoints, CORS, safe errors (body and
connection limits: limits.py; headers, error ids, 405/HEAD: hardening.py).

The key is compared in constant time and never logged or echoed. Unhandled errors answer a
generic 500 with an error id; the log line carries the id and the exception type only, because
exception messages can hold connection strings.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
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


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def install(app: FastAPI, serving: ServingSettings, *, dist: Path | None) -> None:
    """The outer middlewares (error ids, CORS from config, security headers: see hardening.py)
    and the error handlers. Installed after the inner ones (`build_api`): each one added wraps
    those before it."""
    from rayapp.serving import hardening

    app.add_middleware(hardening.ErrorIds)
    if serving.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(serving.cors_origins),
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Content-Type", serving.api_key_header],
            expose_headers=["X-Error-Id", "Retry-After"],
            allow_credentials=False,
        )
    app.add_middleware(hardening.SecurityHeaders, dist=dist)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: Exception) -> JSONResponse:
        # FastAPI's default handler echoes the input whole (a 10,000-character string comes back
        # whole) and a NaN/inf input (a JSON extension some clients send) cannot be encoded back,
        # which would turn a 422 into a 500.
        assert isinstance(exc, RequestValidationError)
        errors = hardening.truncate_errors(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": _json_safe(errors)}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # The last resort, outside every middleware (hardening.ErrorBoundary answers first).
        error_id = hardening.new_error_id()
        log.error("request failed", path=request.url.path, error=type(exc).__name__, error_id=error_id)
        return JSONResponse({"detail": "internal error", "error_id": error_id}, status_code=500)
