"""The Ray Serve application: FeatureLookup, Predictor, ShadowPredictor, Explainer and the Ingress.

`build_app(settings)` binds the graph (handles passed in `bind()`); `app_builder(args)` is the
`import_path` of serve_config.yaml, so `serve run serve_config.yaml` and `rayapp serve` deploy the
same application. Settings are resolved once in the process that builds the app (embedded
services started, URLs and paths made absolute) so replicas never start services themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import serve

from rayapp.config import Settings, load_settings
from rayapp.log import configure, get_logger
from rayapp.serving.explainer import Explainer
from rayapp.serving.feature_lookup import FeatureLookup
from rayapp.serving.ingress import Ingress
from rayapp.serving.limits import ingress_max_ongoing
from rayapp.serving.predictor import Predictor, ShadowPredictor

if TYPE_CHECKING:
    from ray.serve import Application

log = get_logger(__name__)

# Serve replicas of this app do little CPU work per request; fractional CPUs let the whole app
# share a 2-core laptop with Ray Data/Train jobs instead of reserving four whole cores.
REPLICA_CPUS = {"FeatureLookup": 0.1, "Predictor": 0.1, "ShadowPredictor": 0.1, "Explainer": 0.1, "Ingress": 0.1}


def resolve_settings(settings: Settings) -> Settings:
    """Settings with service URLs and paths resolved, migrations applied (run in the driver)."""
    from rayapp.config import conf_dir
    from rayapp.services import ensure_services
    from rayapp.warehouse import get_pool

    urls = None if settings.database.url and settings.redis.url else ensure_services(settings)
    static = settings.serving.static_dir
    if not static.startswith("/"):
        static = str((conf_dir().parent / static).resolve())
    resolved = settings.model_copy(deep=True)
    resolved.state_dir = str(settings.state_path)
    resolved.database.url = settings.database.url or (urls.postgres if urls else None)
    resolved.redis.url = settings.redis.url or (urls.redis if urls else None)
    resolved.mlflow.tracking_uri = settings.mlflow_tracking_uri
    resolved.serving.static_dir = static
    get_pool(resolved)  # applies pending migrations once, here, not in every replica
    return resolved


def build_app(settings: Settings) -> Application:
    s = settings.serving
    common = {
        "max_ongoing_requests": s.max_ongoing_requests,
        "graceful_shutdown_timeout_s": 5,
        "health_check_period_s": 2,
        # A flushed log line per call per deployment costs more CPU than the model itself;
        # requests are counted and timed by the Prometheus metrics instead.
        "logging_config": {"enable_access_log": s.access_log},
    }

    def opts(name: str) -> dict[str, Any]:
        return {"name": name, "ray_actor_options": {"num_cpus": REPLICA_CPUS[name]}, **common}

    lookup = serve.deployment(**opts("FeatureLookup"))(FeatureLookup).bind(settings)
    predictor = serve.deployment(num_replicas=s.predictor_replicas, **opts("Predictor"))(Predictor).bind(settings)
    explainer = serve.deployment(**opts("Explainer"))(Explainer).bind(settings)
    # The lifecycle's shadow (ShadowPredictor says why a deployment of its own). One replica: it
    # is off the request path, and a lost one only costs shadow rows until it is replaced.
    shadow = (
        serve.deployment(num_replicas=1, **opts("ShadowPredictor"))(ShadowPredictor).bind(settings)
        if settings.lifecycle.enabled
        else None
    )
    # The Ingress's Serve slots: everything the edge limits let in at once (WebSockets, bodies
    # being read, queued and running REST requests); the REST cap itself is the edge's
    # (serving.max_ongoing_requests, limits.EdgeLimits), apart from the WebSockets' own cap.
    ingress = serve.deployment(**{**opts("Ingress"), "max_ongoing_requests": ingress_max_ongoing(s)})(Ingress)
    return ingress.bind(settings, lookup, predictor, explainer, shadow)


def app_builder(args: dict[str, Any]) -> Application:
    """serve_config.yaml entry: `args: {overrides: ["key=value", ...]}`."""
    overrides = list((args or {}).get("overrides", []))
    settings = load_settings(overrides)
    configure(settings.log.level, settings.log.format)
    return build_app(resolve_settings(settings))


def serve_env(settings: Settings) -> dict[str, str]:
    """Environment Ray must start with for Serve's throughput-optimized mode (empty when off).

    Direct ingress: the Ingress replica runs the HTTP server itself, on `serving.port` (the next
    ports for further ingress replicas), so a request is one process, not proxy -> replica; handle
    calls go over gRPC; user code runs on the replica's main event loop. Ingress replicas drain
    for 2 s instead of 30 on shutdown (there is no load balancer in front to drain from here).
    """
    if not settings.serving.throughput_optimized:
        return {}
    port = settings.serving.port
    return {
        "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(min(65535, port + 100)),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",
    }


def apply_serve_env(settings: Settings) -> None:
    """Put `serve_env` into this process's environment: call before `ray.init` starts a local
    cluster (its processes inherit it). Values already set by the operator win."""
    import os

    for k, v in serve_env(settings).items():
        os.environ.setdefault(k, v)


def _direct_ingress() -> bool:
    import os

    return (
        os.environ.get("RAY_SERVE_ENABLE_DIRECT_INGRESS", os.environ.get("RAY_SERVE_THROUGHPUT_OPTIMIZED", "0")) == "1"
    )


def app_url(settings: Settings) -> str:
    """Where the app answers HTTP: the ingress replica's own port with direct ingress (asked of
    the Serve controller), else the proxy's."""
    host = settings.serving.host
    try:
        import ray
        from ray.serve.context import _get_global_client

        client = _get_global_client()
        assert client is not None
        groups = ray.get(client._controller.get_target_groups.remote(settings.serving.app_name), timeout=10)
        for g in groups:
            if str(getattr(g.protocol, "value", g.protocol)).upper() == "HTTP" and g.targets:
                return f"http://{host}:{g.targets[0].port}"
    except Exception as exc:  # an older Serve, or the controller busy: the configured port
        log.warning("serve target lookup failed", error=type(exc).__name__)
    return f"http://{host}:{settings.serving.port}"


def run(settings: Settings) -> str:
    """Deploy on the connected Ray cluster; returns the base URL."""
    s = settings.serving
    port = s.port
    if _direct_ingress():
        # The Ingress replica serves HTTP itself on serving.port; Serve still keeps a fallback
        # proxy on the head node (an extra hop): it gets port + 1000, out of the way.
        port = s.port + 1000 if s.port + 1000 <= 65535 else s.port - 1000
    serve.start(http_options={"host": s.host, "port": port, "keep_alive_timeout_s": s.keep_alive_timeout_s})
    serve.run(build_app(settings), name=s.app_name, route_prefix="/")
    return app_url(settings)


def build_local_api(
    settings: Settings, *, background: bool = True, shadow: bool | None = None, poll: bool = True
) -> Any:
    """The same FastAPI app with the same classes in-process (no Ray): the benchmark's baseline
    and a debugging aid. Each class runs in a worker thread per call, as Serve runs sync methods.
    `shadow`: score in shadow too (default: when the lifecycle is enabled, as the Serve app);
    `poll`: the predictors follow their aliases (False: the versions found at start)."""
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import LocalHandle, PredictionService
    from rayapp.warehouse import get_pool

    assert settings.database.url, "resolve_settings() first"
    metrics = ServingMetrics()
    with_shadow = settings.lifecycle.enabled if shadow is None else shadow
    service = PredictionService(
        settings,
        LocalHandle(FeatureLookup(settings)),
        LocalHandle(Predictor(settings, poll=poll)),
        LocalHandle(Explainer(settings)),
        metrics,
        get_pool(settings.database.url, migrate_schema=False),
        online_url=settings.redis.url,
        shadow=LocalHandle(ShadowPredictor(settings, poll=poll)) if with_shadow else None,
    )
    return build_api(settings, service, metrics, background=background)
