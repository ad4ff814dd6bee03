"""The FastAPI application: REST + WebSocket endpoints over a PredictionService.

`build_api` is the one place routes are defined; the Ray Serve ingress and the plain-uvicorn
baseline both call it, with Serve handles or local handles inside the service. The built React
dashboard (`serving.static_dir`, e.g. frontend/dist) is mounted at `/` when that folder exists;
it is mounted last so that every API route wins over a file of the same name.

Around the routes, outermost first: security headers (hardening.SecurityHeaders), CORS, error
ids, request metrics, the edge limits (limits.EdgeLimits: slow clients, body timeout, REST slots,
WebSocket Origin/caps/frame size, for every WebSocket route), the error boundary (a 500 with its
error id inside CORS) and the method guard (405 + Allow, OPTIONS, HEAD for the API routes).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from rayapp.features import FEATURE_RANGES, make_feature_set, out_of_range
from rayapp.log import get_logger
from rayapp.serving import (
    alerts_api,
    drift_api,
    hardening,
    limits,
    market,
    models_api,
    prediction_log,
    security,
    system_ws,
)
from rayapp.serving import api_models as m
from rayapp.serving.ops_metrics import OpsReader
from rayapp.serving.predictor import FeatureSetMismatch, ModelNotLoaded
from rayapp.serving.service import FeatureValidation, NotFound, row_to_prediction
from rayapp.serving.ws import Hub
from rayapp.warehouse import pipeline

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from rayapp.config import Settings
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
SymbolQ = Annotated[str, Query(pattern=r"^[A-Z0-9]{2,20}$")]
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class RequestMetrics:
    """Pure ASGI middleware: count and time every HTTP request by route template and status."""

    def __init__(self, app: ASGIApp, metrics: ServingMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or (
                "edge" if scope.get(limits.REJECTED) else "static" if scope.get("path") else "unmatched"
            )
            method = scope.get("method", "GET")
            self.metrics.requests.labels(method, endpoint, str(status)).inc()
            self.metrics.latency.labels(method, endpoint).observe(time.perf_counter() - t0)


def _utc(dt: datetime | None) -> datetime | None:
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def static_dir(settings: Settings) -> Path | None:
    """The dashboard build folder if it exists (relative paths are from the repository root)."""
    from rayapp.config import conf_dir

    p = Path(settings.serving.static_dir).expanduser()
    if not p.is_absolute():
        p = conf_dir().parent / p
    return p if (p / "index.html").is_file() else None


def readiness(
    settings: Settings,
    info: dict[str, Any],
    stores: dict[str, Any],
    data: list[dict[str, Any]],
    data_error: str | None = None,
) -> dict[str, Any]:
    """The /ready body: serving at all (model, stores), and serving live data (live sources,
    fresh features); `reason` says what is missing, in words."""
    from rayapp.serving.staleness import human_age

    live = settings.sources.mode == "live"
    loaded, redis_ok, pg_ok = bool(info.get("loaded")), bool(stores.get("redis")), bool(stores.get("postgres"))
    serving = loaded and redis_ok and pg_ok
    stale = [d for d in data if d["stale"]]
    fresh = serving and bool(data) and not stale and data_error is None
    reason = None
    if not loaded:
        reason = f"no model loaded: {info.get('last_error') or 'no champion'}"
    elif not serving:
        down = [n for n, ok in (("Redis", redis_ok), ("PostgreSQL", pg_ok)) if not ok]
        reason = f"{' and '.join(down)} not answering"
    elif data_error is not None:
        reason = f"the newest features could not be read ({data_error})"
    elif stale:
        limit = settings.serving.feature_staleness_s
        parts = [
            f"{d['symbol']} as of {d['as_of']} is {human_age(d['data_age_s'])} old"
            if d["as_of"]
            else f"{d['symbol']} has no feature vector"
            for d in stale
        ]
        why = (
            "the live sources are not feeding the stores (unreachable? see GET /freshness)"
            if live
            else "the replay feed is not advancing (see GET /freshness)"
        )
        reason = f"stale features: {'; '.join(parts)} (serving.feature_staleness_s={limit:g} s): {why}"
    elif not live:
        reason = "replay sources: the forecasts are of replayed history, not live data"
    return {
        "ready": serving and (fresh or not live),
        "live_data": live and fresh,
        "sources": settings.sources.mode,
        "reason": reason,
        "model_loaded": loaded,
        "model_version": info.get("version"),
        "redis": redis_ok,
        "postgres": pg_ok,
        "data": data,
        "detail": {"model_error": info.get("last_error"), "stores": stores, "data_error": data_error},
    }


def build_api(
    settings: Settings, service: PredictionService, metrics: ServingMetrics, *, background: bool = True
) -> FastAPI:
    hub = Hub(service, metrics)
    service.hub = hub
    ops = OpsReader(settings, service, metrics.ops)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        with contextlib.suppress(Exception):
            await service.refresh_model()
        await service.refresh_shadow()  # never raises
        tasks = []
        if background:
            loops = [service.watch_features(), service.model_loop()]
            if settings.serving.resolve_interval_s > 0:  # 0: the scheduler's resolve job fills outcomes
                loops.append(service.resolve_loop())
            tasks = [asyncio.create_task(c) for c in loops]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()

    app = FastAPI(
        title="rayapp",
        version="0.1.0",
        lifespan=lifespan,
        description="Bitcoin direction forecasts with calibrated probabilities, conformal "
        "intervals and SHAP explanations, served by Ray Serve.",
    )
    # Middleware, innermost first: each one added wraps those before it (the order: module docstring).
    app.add_middleware(hardening.MethodGuard, api=app)
    app.add_middleware(hardening.ErrorBoundary)
    app.add_middleware(limits.EdgeLimits, serving=settings.serving)
    app.add_middleware(RequestMetrics, metrics=metrics)
    security.install(app, settings.serving, dist=static_dir(settings))
    require_key = Depends(security.api_key_dependency(settings.serving))
    symbols = set(settings.symbols)
    default_symbol = settings.symbols[0]
    max_age_s = settings.serving.feature_staleness_s

    def _known(symbol: str, where: str) -> None:
        if symbol not in symbols:
            raise FeatureValidation(
                [
                    {
                        "type": "value_error",
                        "loc": [where, "symbol"],
                        "msg": f"unknown symbol; served: {sorted(symbols)}",
                        "input": symbol,
                    }
                ]
            )

    def _in_range(values: dict[str, float | None]) -> None:
        bad = out_of_range(values)
        if bad:
            raise FeatureValidation(
                [
                    {
                        "type": "value_error",
                        "loc": ["body", "features", name],
                        "msg": f"{name} must be within {rng.describe()} ({rng.why}; docs/SERVING.md)",
                        "input": value,
                        "ctx": {"low": rng.low, "high": rng.high},
                    }
                    for name, value, rng in bad
                ]
            )

    # ---- errors --------------------------------------------------------------------------------
    @app.exception_handler(ModelNotLoaded)
    async def _no_model(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"no model loaded: {exc}"}, status_code=503)

    @app.exception_handler(FeatureSetMismatch)
    async def _mismatch(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "model changed during the request; retry"}, status_code=503)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(FeatureValidation)
    async def _invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, FeatureValidation)
        return JSONResponse({"detail": hardening.truncate_errors(exc.errors)}, status_code=422)

    for exc_type in service._retry_on:

        @app.exception_handler(cast(type[Exception], exc_type))
        async def _unavailable(_: Request, exc: Exception) -> JSONResponse:
            return JSONResponse({"detail": "a serving component is unavailable; retry"}, status_code=503)

    # ---- probes and model ----------------------------------------------------------------------
    @app.get("/health", response_model=m.Health, tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", response_model=m.Ready, tags=["ops"], responses={503: {"model": m.Ready}})
    async def ready() -> JSONResponse:
        """200 when a model is loaded, the stores answer and, with live sources, the newest
        features are fresh (serving live data); else 503 with the reason. A load balancer or a
        Kubernetes readiness probe on it stops routing traffic to an app serving stale data as
        live. With replay sources stale data does not make it unready (`live_data` stays false)."""
        try:
            info = await service.refresh_model()
        except Exception as exc:
            info = {"loaded": False, "last_error": type(exc).__name__}
        try:
            stores = await service.call("FeatureLookup", service.lookup, "health")
        except Exception as exc:
            stores = {"redis": False, "postgres": False, "error": type(exc).__name__}
        data: list[dict[str, Any]] = []
        data_error = None
        if info.get("loaded") and stores["postgres"]:
            try:
                data = await service.data_freshness(info["feature_set_version"])
            except Exception as exc:
                data_error = type(exc).__name__
        body = readiness(settings, info, stores, data, data_error)
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @app.get("/model", response_model=m.ModelInfo, tags=["model"])
    async def model() -> dict[str, Any]:
        return await service.model_info()

    @app.get(
        "/models",
        response_model=m.Models,
        tags=["model"],
        responses={503: {"model": m.ErrorBody, "description": "the model registry is unavailable"}},
    )
    async def models() -> Any:
        """The registered model's versions and aliases (MLflow), what this app serves, and the
        lifecycle: its state, live accuracy and log loss per version and role, the newest shadow
        or watch verdict and the last 50 events (PostgreSQL; `available: false` when it is down)."""
        from rayapp.serving import models_view

        name = settings.mlflow.registered_model

        async def champion() -> dict[str, Any]:
            try:
                return await service.refresh_model()
            except Exception as exc:
                return {"loaded": False, "last_error": f"predictor unreachable: {type(exc).__name__}"}

        async def lifecycle() -> dict[str, Any]:
            try:
                return cast(dict[str, Any], await service.db(models_view.lifecycle_view, name))
            except Exception as exc:
                log.warning("lifecycle state not read", error=type(exc).__name__)
                return models_view.lifecycle_unavailable(exc)

        async def registry() -> dict[str, Any] | str:
            """The registry part, or why it could not be read."""
            try:
                return await asyncio.wait_for(
                    asyncio.to_thread(models_view.registry_view, settings), models_view.REGISTRY_TIMEOUT_S
                )
            except models_view.RegistryUnavailable as exc:
                return str(exc)
            except Exception as exc:  # the wait timed out
                return f"model registry unavailable ({type(exc).__name__})"

        reg, live, champ, shadow = await asyncio.gather(registry(), lifecycle(), champion(), service.refresh_shadow())
        if isinstance(reg, str):
            log.warning("model registry not read", error=reg)
            return JSONResponse({"detail": reg}, status_code=503)
        shadow_info = None if service.shadow is None else shadow
        return {**reg, "serving": models_view.serving_view(champ, shadow_info), "lifecycle": live}

    @app.get("/report", response_model=m.Report, tags=["model"])
    async def report() -> dict[str, Any]:
        info = await service.refresh_model()
        if not info.get("loaded"):
            raise ModelNotLoaded(info.get("last_error") or "no champion model loaded")
        reports = await service.call("Predictor", service.predictor, "report")
        return {"model_version": info.get("version"), "run_id": info.get("run_id"), "reports": reports}

    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def prometheus_metrics() -> Response:
        try:  # the pipeline metrics come from the run history: read it at scrape time
            metrics.set_pipeline(await asyncio.wait_for(service.db(pipeline.metrics_snapshot), 10))
        except Exception as exc:
            metrics.pipeline_scrape_errors.inc()
            log.warning("pipeline metrics not read", error=type(exc).__name__)
        await ops.refresh()  # never raises: a part not read is left out and counted
        return Response(metrics.render(), media_type=metrics.content_type)

    alerts_api.install(app, settings, service, metrics)
    drift_api.install(app, service)
    models_api.install(app, settings, service)
    system_ws.install(app, settings, service, metrics)

    # ---- predictions ---------------------------------------------------------------------------
    @app.post(
        "/predict",
        response_model=m.Prediction,
        tags=["predictions"],
        dependencies=[require_key],
        responses={401: {"model": m.ErrorBody}, 404: {"model": m.ErrorBody}, 503: {"model": m.ErrorBody}},
    )
    async def predict(req: m.PredictRequest) -> dict[str, Any]:
        _known(req.symbol, "body")
        if req.features:
            _in_range(req.features)
        return await service.predict(req.symbol, req.features, req.explain)

    @app.get(
        "/predictions/latest",
        response_model=m.Prediction,
        tags=["predictions"],
        responses={404: {"model": m.ErrorBody}},
    )
    async def latest(symbol: SymbolQ = default_symbol) -> dict[str, Any]:
        _known(symbol, "query")
        row = await service.db(prediction_log.latest, symbol)
        if row is None:
            raise NotFound(f"no prediction logged for {symbol} yet")
        return row_to_prediction(row, await service.now(), max_age_s)

    @app.get("/predictions", response_model=m.PredictionList, tags=["predictions"])
    async def predictions(
        since: Annotated[m.IsoDatetime | None, Query(description="feature hour (ISO 8601), exclusive")] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        symbol: SymbolQ | None = None,
    ) -> dict[str, Any]:
        if symbol is not None:
            _known(symbol, "query")
        rows = await service.db(prediction_log.since, symbol, _utc(since), limit)
        now = await service.now()
        return {"count": len(rows), "items": [row_to_prediction(r, now, max_age_s) for r in rows]}

    @app.get(
        "/explain/{prediction_id}",
        response_model=m.Explanation,
        tags=["predictions"],
        responses={404: {"model": m.ErrorBody}},
    )
    async def explain(prediction_id: Annotated[str, PathParam(pattern=UUID_PATTERN)]) -> dict[str, Any]:
        row = await service.db(prediction_log.get, prediction_id)
        if row is None:
            raise NotFound(f"no prediction {prediction_id}")
        if row["explanation"] is not None:
            return row["explanation"]
        # Logged without one (explain=false): compute it now with the model that predicted.
        return await service.call(
            "Explainer", service.explainer, "explain", row["model_version"], row["features"], row["p_up"]
        )

    @app.get("/track-record", response_model=m.TrackRecord, tags=["predictions"])
    async def track_record(
        symbol: SymbolQ = default_symbol,
        horizon_h: Annotated[int | None, Query(ge=1, le=720)] = None,
        model_version: Annotated[str | None, Query(max_length=32)] = None,
    ) -> dict[str, Any]:
        if horizon_h is None and service.meta.get("loaded"):
            horizon_h = service.meta.get("horizon_h")
        _known(symbol, "query")
        return await service.db(prediction_log.track_record, symbol, horizon_h, model_version)

    # ---- market data for the dashboard ---------------------------------------------------------
    @app.get("/prices", response_model=m.PriceSeries, tags=["market"])
    async def prices(
        symbol: SymbolQ = default_symbol, hours: Annotated[int, Query(ge=1, le=24 * 90)] = 168
    ) -> dict[str, Any]:
        _known(symbol, "query")
        return await service.db(market.prices, symbol, hours, settings.features.candle_sources)

    @app.get("/freshness", response_model=m.Freshness, tags=["ops"])
    async def freshness() -> dict[str, Any]:
        now, clock = await asyncio.to_thread(service.clock_now)
        return await service.db(market.freshness, now, clock)

    @app.get("/pipeline", response_model=m.Pipeline, tags=["ops"])
    async def pipeline_status() -> dict[str, Any]:
        """The scheduler's jobs: next slot, last run, last success and its age on the clock."""
        now, clock = await asyncio.to_thread(service.clock_now)

        def view(conn: Any) -> dict[str, Any]:
            return pipeline.status_view(conn, now=now, wall=datetime.now(UTC), clock=clock)

        return cast(dict[str, Any], await service.db(view))

    @app.get("/pipeline/runs", response_model=m.PipelineRuns, tags=["ops"])
    async def pipeline_runs(
        job: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")] = None,
        status: m.PipelineStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 20,
    ) -> dict[str, Any]:
        """The run history, newest first."""

        def runs(conn: Any) -> list[dict[str, Any]]:
            return pipeline.list_runs(conn, job=job, status=status, limit=limit)

        return {"items": await service.db(runs)}

    # ---- admin (API key) -----------------------------------------------------------------------
    @app.post(
        "/admin/reload-model",
        response_model=m.AdminResult,
        tags=["admin"],
        dependencies=[require_key],
        responses={401: {"model": m.ErrorBody}},
    )
    async def reload_model() -> dict[str, Any]:
        info = await service.call("Predictor", service.predictor, "check_champion")
        await service.refresh_model()
        keep = ("loaded", "version", "last_error")
        result = {k: info.get(k) for k in keep}
        if service.shadow is not None:  # the shadow alias is looked up again too
            try:
                shadow = await service.call("ShadowPredictor", service.shadow, "check")
            except Exception as exc:
                shadow = {"loaded": False, "last_error": f"shadow unreachable: {type(exc).__name__}"}
            await service.refresh_shadow()
            result["shadow"] = {k: shadow.get(k) for k in keep}
        return {"action": "reload-model", "result": result}

    @app.post(
        "/admin/resolve-outcomes",
        response_model=m.AdminResult,
        tags=["admin"],
        dependencies=[require_key],
        responses={401: {"model": m.ErrorBody}},
    )
    async def resolve_outcomes() -> dict[str, Any]:
        return {"action": "resolve-outcomes", "result": {"resolved": await service.resolve()}}

    # ---- WebSockets ----------------------------------------------------------------------------
    @app.websocket("/ws/predictions")
    async def ws_predictions(ws: WebSocket, symbol: str | None = None, since: str | None = None) -> None:
        # Bad parameters: accept, then close with 1008 and a reason a browser client can read
        # (a rejected handshake only shows up as a bare 403 there).
        if symbol is not None and symbol not in symbols:
            await ws.accept()
            await ws.close(code=1008, reason="unknown symbol")
            return
        if since is not None:
            try:
                since_dt = _utc(datetime.fromisoformat(since))
            except ValueError:
                await ws.accept()
                await ws.close(code=1008, reason="since must be an ISO timestamp")
                return
            since = since_dt.isoformat() if since_dt else None
        await hub.predictions(ws, symbol, since)

    @app.websocket("/ws/metrics")
    async def ws_metrics(ws: WebSocket) -> None:
        await hub.metrics_channel(ws)

    # The served symbols and the feature set's ranges in /openapi.json, and the edge's answers.
    fs_names = make_feature_set(settings.features.set).names
    hardening.refine_openapi(
        app, settings.symbols, {n: (FEATURE_RANGES[n].low, FEATURE_RANGES[n].high) for n in fs_names}
    )

    # ---- dashboard -----------------------------------------------------------------------------
    dist = static_dir(settings)
    if dist is not None:
        from rayapp.serving import spa

        spa.install(app, dist)  # its files, and index.html for its pages (deep links, reloads)
    else:

        @app.get("/", include_in_schema=False)
        async def index() -> dict[str, Any]:
            return {
                "name": "rayapp",
                "docs": "/docs",
                "openapi": "/openapi.json",
                "dashboard": f"not built: {settings.serving.static_dir} has no index.html",
            }

    return app
