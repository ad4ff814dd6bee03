"""Serving: the Ray Serve application (FeatureLookup, Predictor, Explainer behind one FastAPI
ingress with REST, WebSockets, Prometheus metrics and the dashboard), and its launch from a driver.

Public API, loaded on first use (importing the package does not import Ray Serve).
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.serving.deployments import apply_serve_env, build_app, resolve_settings, run, serve_env
    from rayapp.serving.launch import Serving, print_urls, serve_forever, start, start_ray, with_api_key
    from rayapp.serving.prediction_log import resolve_outcomes
    from rayapp.serving.staleness import human_age, staleness

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.serving.deployments": ("apply_serve_env", "build_app", "resolve_settings", "run", "serve_env"),
        "rayapp.serving.launch": ("Serving", "print_urls", "serve_forever", "start", "start_ray", "with_api_key"),
        "rayapp.serving.prediction_log": ("resolve_outcomes",),
        "rayapp.serving.staleness": ("human_age", "staleness"),
    },
)

__all__ = [
    "Serving",
    "apply_serve_env",
    "build_app",
    "human_age",
    "print_urls",
    "resolve_outcomes",
    "resolve_settings",
    "run",
    "serve_env",
    "serve_forever",
    "staleness",
    "start",
    "start_ray",
    "with_api_key",
]
