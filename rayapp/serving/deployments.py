"""The Ray Serve application: FeatureLookup, Predictor, Explainer and the Ingress over them.

`build_app(settings)` binds the graph (handles passed in `bind()`); `app_builder(args)` is the
`import_path` of serve_config.yaml, so `serve run serve_config.yaml` and `rayapp serve` deploy the
same application. Settings are resolved once in the process that builds the app (embedded
services started, URLs and paths made absolute) so replicas never start services themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray import serve

from rayapp.config import Settings, load_settings
from rayapp.log import configure
from rayapp.serving.explainer import Explainer
from rayapp.serving.feature_lookup import FeatureLookup
from rayapp.serving.ingress import Ingress
from rayapp.serving.predictor import Predictor

if TYPE_CHECKING:
    from ray.serve import Application

# Serve replicas of this app do little CPU work per request; fractional CPUs let the whole app
# share a 2-core laptop with Ray Data/Train jobs instead of reserving four whole cores.
REPLICA_CPUS = {"FeatureLookup": 0.1, "Predictor": 0.1, "Explainer": 0.1, "Ingress": 0.1}


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
    common = {"max_ongoing_requests": s.max_ongoing_requests, "graceful_shutdown_timeout_s": 5,
              "health_check_period_s": 2,
              # A flushed log line per call per deployment costs more CPU than the model itself;
              # requests are counted and timed by the Prometheus metrics instead.
              "logging_config": {"enable_access_log": s.access_log}}

    def opts(name: str) -> dict[str, Any]:
        return {"name": name, "ray_actor_options": {"num_cpus": REPLICA_CPUS[name]}, **common}

    lookup = serve.deployment(**opts("FeatureLookup"))(FeatureLookup).bind(settings)
    predictor = serve.deployment(num_replicas=s.predictor_replicas,
                                 **opts("Predictor"))(Predictor).bind(settings)
    explainer = serve.deployment(**opts("Explainer"))(Explainer).bind(settings)
    ingress = serve.deployment(**opts("Ingress"))(Ingress)
    return ingress.bind(settings, lookup, predictor, explainer)


def app_builder(args: dict[str, Any]) -> Application:
    """serve_config.yaml entry: `args: {overrides: ["key=value", ...]}`."""
    overrides = list((args or {}).get("overrides", []))
    settings = load_settings(overrides)
    configure(settings.log.level, settings.log.format)
    return build_app(resolve_settings(settings))


def run(settings: Settings, *, blocking: bool = False) -> str:
    """Deploy on the connected Ray cluster; returns the base URL."""
    s = settings.serving
    serve.start(http_options={"host": s.host, "port": s.port})
    serve.run(build_app(settings), name=s.app_name, route_prefix="/", blocking=blocking)
    return f"http://{s.host}:{s.port}"


def build_local_api(settings: Settings, *, background: bool = True) -> Any:
    """The same FastAPI app with the same classes in-process (no Ray): the benchmark's baseline
    and a debugging aid. Each class runs in a worker thread per call, as Serve runs sync methods."""
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import LocalHandle, PredictionService
    from rayapp.warehouse import get_pool

    assert settings.database.url, "resolve_settings() first"
    metrics = ServingMetrics()
    service = PredictionService(
        settings, LocalHandle(FeatureLookup(settings)), LocalHandle(Predictor(settings)),
        LocalHandle(Explainer(settings)), metrics, get_pool(settings.database.url, migrate_schema=False))
    return build_api(settings, service, metrics, background=background)
