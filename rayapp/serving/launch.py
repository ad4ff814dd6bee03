"""Starting the Serve application from a driver and telling the operator where it is.

`start(settings)` resolves the settings (embedded services, absolute paths, migrations), gives the
app an API key (the configured one or a random one for this run), starts or joins Ray with the
Serve environment and deploys; `print_urls` prints every URL a person needs. `rayapp serve` and
the flows (`rayapp demo`) both start serving through here.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from rayapp.runtime import ensure_ray
from rayapp.serving.deployments import resolve_settings, run, serve_env
from rayapp.terminal import out


@dataclass
class Serving:
    settings: Any  # resolved, with the API key the app runs with
    base_url: str
    dashboard_url: str | None
    generated_key: bool


def with_api_key(settings: Any) -> tuple[Any, bool]:
    """Settings with an API key: the configured one, or a random one for this run only."""
    if settings.serving.api_key:
        return settings, False
    s = settings.model_copy(deep=True)
    s.serving.api_key = secrets.token_urlsafe(24)
    return s, True


def start_ray(settings: Any) -> str | None:
    """Ray with the Serve environment (a local cluster's processes inherit it); the dashboard URL."""
    return ensure_ray(settings, dashboard=True, env=serve_env(settings))


def start(settings: Any, *, resolved: bool = False) -> Serving:
    """Resolve, start Ray, deploy: the running app and its URLs."""
    s = settings if resolved else resolve_settings(settings)
    s, generated = with_api_key(s)
    dashboard = start_ray(s)
    return Serving(s, run(s), dashboard, generated)


def print_urls(serving: Serving) -> None:
    settings, base = serving.settings, serving.base_url
    out.print(f"[bold green]rayapp is serving[/bold green] model {settings.mlflow.registered_model}@champion")
    out.print(f"  API        {base}")
    out.print(f"  docs       {base}/docs   (OpenAPI: {base}/openapi.json)")
    out.print(f"  live feed  {base.replace('http', 'ws', 1)}/ws/predictions")
    out.print(f"  metrics    {base}/metrics")
    out.print(f"  dashboard  {base}/  (React build from {settings.serving.static_dir} when present)")
    out.print(f"  Ray        {serving.dashboard_url or 'dashboard not running'}")
    out.print(f"  MLflow     mlflow ui --backend-store-uri {settings.mlflow_tracking_uri}")
    if serving.generated_key:
        # Printed to the terminal for the operator only; never logged.
        out.print(
            f"  API key    {settings.serving.api_key}  (generated for this run; header "
            f"{settings.serving.api_key_header}; set serving.api_key to fix one)"
        )


def serve_forever(*, until: float | None = None) -> None:
    """Keep the driver (and so a local cluster) alive until `until` (monotonic) or Ctrl-C."""
    from ray import serve

    try:
        while until is None or time.monotonic() < until:
            time.sleep(1)
    finally:
        serve.shutdown()
