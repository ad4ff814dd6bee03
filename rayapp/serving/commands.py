"""`rayapp serve` (the Ray Serve app) and `rayapp demo` (the whole system end to end)."""

from __future__ import annotations

import argparse
import secrets
import time
from typing import Any

from rich.console import Console

from rayapp.log import get_logger

log = get_logger(__name__)
out = Console()


def ensure_ray(settings: Any, *, dashboard: bool = True) -> str | None:
    """Connect to the configured cluster or start a local one; returns the dashboard URL if any."""
    import ray

    ctx = None
    if not ray.is_initialized():
        if settings.ray.address:
            ctx = ray.init(address=settings.ray.address, log_to_driver=False)
        else:
            from rayapp.serving.deployments import apply_serve_env

            apply_serve_env(settings)  # the local cluster's processes inherit it
            try:
                ctx = ray.init(
                    num_cpus=settings.ray.num_cpus,
                    include_dashboard=dashboard,
                    dashboard_host="127.0.0.1",
                    log_to_driver=False,
                )
            except Exception as exc:  # the dashboard needs optional packages: run without it
                log.warning("ray dashboard unavailable", error=type(exc).__name__)
                ctx = ray.init(num_cpus=settings.ray.num_cpus, include_dashboard=False, log_to_driver=False)
    url = getattr(ctx, "dashboard_url", None) if ctx is not None else None
    if not url:
        return None
    return url if url.startswith("http") else f"http://{url}"


def with_api_key(settings: Any) -> tuple[Any, bool]:
    """Settings with an API key: the configured one, or a random one for this run only."""
    if settings.serving.api_key:
        return settings, False
    s = settings.model_copy(deep=True)
    s.serving.api_key = secrets.token_urlsafe(24)
    return s, True


def print_urls(settings: Any, base: str, dashboard: str | None, generated_key: bool) -> None:
    out.print(f"[bold green]rayapp is serving[/bold green] model {settings.mlflow.registered_model}@champion")
    out.print(f"  API        {base}")
    out.print(f"  docs       {base}/docs   (OpenAPI: {base}/openapi.json)")
    out.print(f"  live feed  {base.replace('http', 'ws', 1)}/ws/predictions")
    out.print(f"  metrics    {base}/metrics")
    out.print(f"  dashboard  {base}/  (React build from {settings.serving.static_dir} when present)")
    out.print(f"  Ray        {dashboard or 'dashboard not running'}")
    out.print(f"  MLflow     mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}")
    if generated_key:
        # Printed to the terminal for the operator only; never logged.
        out.print(
            f"  API key    {settings.serving.api_key}  (generated for this run; header "
            f"{settings.serving.api_key_header}; set serving.api_key to fix one)"
        )


def serve_forever(settings: Any, *, until: float | None = None) -> None:
    from ray import serve

    try:
        while until is None or time.monotonic() < until:
            time.sleep(1)
    finally:
        serve.shutdown()


def _serve(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.serving.deployments import resolve_settings, run

    s = settings.model_copy(deep=True)
    if args.port is not None:
        s.serving.port = args.port
    if args.replicas is not None:
        s.serving.predictor_replicas = args.replicas
    s, generated = with_api_key(resolve_settings(s))
    dashboard = ensure_ray(s)
    base = run(s)
    print_urls(s, base, dashboard, generated)
    if args.detach:
        return 0
    serve_forever(s, until=time.monotonic() + args.duration if args.duration else None)
    return 0


def _demo(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.serving.demo import run_demo

    return run_demo(
        settings, days=args.days, trials=args.trials, duration_s=args.duration, skip_sentiment=args.skip_sentiment
    )


def register(subparsers: Any) -> None:
    from rayapp.cli import add_overrides

    text = (
        "deploy the Ray Serve application (feature lookup, champion model, SHAP explainer behind "
        "one FastAPI ingress) and print its URLs; the same app as `serve run serve_config.yaml`"
    )
    p = subparsers.add_parser("serve", help="serve predictions over HTTP/WebSocket (Ray Serve)", description=text)
    p.add_argument("--port", type=int, help="HTTP port (default serving.port)")
    p.add_argument("--replicas", type=int, help="Predictor replicas (default serving.predictor_replicas)")
    p.add_argument(
        "--detach", action="store_true", help="return after deploying (the app keeps running on a connected cluster)"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    add_overrides(p)
    p.set_defaults(handler=_serve)

    text = (
        "run the whole system end to end on embedded defaults: ingest the last N days (live APIs, "
        "or offline with `sources=replay replay.data=DIR`), score sentiment, build features, train "
        "on a small budget, register the champion, then serve it while the feed advances; prints "
        "the URLs (API, docs, Ray dashboard, MLflow)"
    )
    p = subparsers.add_parser(
        "demo", help="end-to-end demo: ingest → score → features → train → serve", description=text
    )
    p.add_argument("--days", type=int, default=60, help="days of history to ingest (default 60)")
    p.add_argument("--trials", type=int, default=4, help="hyperparameter trials (default 4)")
    p.add_argument("--duration", type=float, help="stop serving after this many seconds (default: Ctrl-C)")
    p.add_argument(
        "--skip-sentiment", action="store_true", help="do not score articles (sentiment features stay missing)"
    )
    add_overrides(p)
    p.set_defaults(handler=_demo)
