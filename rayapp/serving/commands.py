"""`rayapp serve`: deploy the Ray Serve application and print its URLs."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rayapp.terminal import add_overrides


def _serve(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.serving.launch import print_urls, serve_forever, start

    s = settings.model_copy(deep=True)
    if args.port is not None:
        s.serving.port = args.port
    if args.replicas is not None:
        s.serving.predictor_replicas = args.replicas
    serving = start(s)
    print_urls(serving)
    if args.detach:
        return 0
    serve_forever(until=time.monotonic() + args.duration if args.duration else None)
    return 0


def register(subparsers: Any) -> None:
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
