"""The edge middlewares on the app `build_api` builds, in-process (fast tier: no stores, no Ray).

What needs no running server: a 500 inside CORS with its error id, error ids on every error,
the CSP's hashes of the dashboard's inline scripts, the method guard's HTML passthrough, the
body timeout and the limits' bookkeeping. The same behaviours against the Serve app:
test_hardening.py.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from rayapp.config import load_settings
from rayapp.serving.hardening import dashboard_csp, inline_hashes
from rayapp.serving.limits import EdgeLimits, origin_allowed


def _app(tmp_path: Path | None = None, *overrides: str) -> Any:
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

    extra = [f"serving.static_dir={tmp_path}"] if tmp_path is not None else ["serving.static_dir=/nonexistent"]
    s = load_settings(["serving.api_key=k", "serving.cors_origins=[http://dashboard.test]", *extra, *overrides])
    metrics = ServingMetrics()
    # no handles, no pool: a route that needs one raises, which is the 500 wanted here
    return build_api(s, PredictionService(s, None, None, None, metrics, None), metrics, background=False)


def test_a_500_carries_cors_headers_and_its_error_id() -> None:
    client = TestClient(_app(), raise_server_exceptions=False)
    r = client.get("/model", headers={"Origin": "http://dashboard.test"})
    assert r.status_code == 500
    body = r.json()
    assert body["detail"] == "internal error" and len(body["error_id"]) == 12
    assert r.headers["access-control-allow-origin"] == "http://dashboard.test"
    assert r.headers["x-error-id"] == body["error_id"]
    assert "x-error-id" in r.headers["access-control-expose-headers"].lower()
    for path, status in (("/predict", 401), ("/explain/x", 422), ("/nope", 404)):
        r = client.post(path) if path == "/predict" else client.get(path)
        assert r.status_code == status and r.headers["x-error-id"], path
        if r.headers["content-type"].startswith("application/json"):
            assert r.json()["error_id"] == r.headers["x-error-id"], path


def test_csp_hashes_the_dashboards_inline_scripts(tmp_path: Path) -> None:
    script = '\n      document.documentElement.classList.add("x");\n    '
    (tmp_path / "index.html").write_text(
        f"<html><head><script>{script}</script><script type=module src=/assets/a.js></script>"
        "<style>p{color:red}</style></head><body></body></html>"
    )
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    scripts, styles = inline_hashes((tmp_path / "index.html").read_text())
    assert scripts == [f"'sha256-{digest}'"] and len(styles) == 1
    client = TestClient(_app(tmp_path))
    csp = client.get("/", headers={"Accept": "text/html"}).headers["content-security-policy"]
    assert f"script-src 'self' 'sha256-{digest}'" in csp and "'unsafe-inline'" not in csp
    assert client.get("/health").headers["content-security-policy"] == csp
    assert "unsafe-inline" not in dashboard_csp(None)
    # a browser navigating to /predict (the dashboard's Predict page) gets the dashboard, not a 405
    page = client.get("/predict", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code != 405
    assert client.get("/predict").status_code == 405


def test_origin_rule() -> None:
    allowed = frozenset({"http://dashboard.test"})
    assert origin_allowed(b"http://dashboard.test", b"api:8000", allowed)
    assert origin_allowed(b"http://api:8000", b"api:8000", allowed)  # the app's own dashboard
    assert origin_allowed(b"https://api", b"api:443", allowed)
    assert not origin_allowed(b"http://evil.test", b"api:8000", allowed)
    assert not origin_allowed(b"null", b"api:8000", allowed)
    assert not origin_allowed(b"http://api:8001", b"api:8000", allowed)


def test_a_stalled_body_is_answered_408_and_frees_its_slots() -> None:
    s = load_settings(["serving.body_timeout_s=0.2", "serving.http_max_per_client=2"]).serving
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never reached for a stalled body
        seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    edge = EdgeLimits(app, s)

    async def call(stall: bool) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        first = True

        async def receive() -> dict[str, Any]:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"{", "more_body": stall}
            await asyncio.sleep(3600)  # the scenario: the rest of the body never comes
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/predict", "method": "POST", "headers": [], "client": ("10.0.0.1", 1)}
        await edge(scope, receive, send)
        return sent

    async def run() -> tuple[list[Any], list[Any], list[Any]]:
        stalled = await asyncio.gather(call(True), call(True))
        ok = await call(False)
        return list(stalled), ok, [edge.http_pending, dict(edge.http_by_client)]

    stalled, ok, left = asyncio.run(run())
    for sent in stalled:
        start = sent[0]
        assert start["status"] == 408 and (b"connection", b"close") in start["headers"]
    assert ok[0]["status"] == 200 and seen == ["/predict"]
    assert left == [0, {}]


@pytest.mark.parametrize("frame", [b"x" * 9000, "é" * 4097], ids=["bytes", "utf8-text"])
def test_a_large_websocket_message_closes_1009(frame: bytes | str) -> None:
    client = TestClient(_app())
    with client.websocket_connect("/ws/metrics") as ws:
        ws.receive_json()
        if isinstance(frame, bytes):
            ws.send_bytes(frame)
        else:
            ws.send_text(frame)  # 4097 two-byte characters: over 8 KiB in UTF-8
        message = ws.receive()
        while message["type"] != "websocket.close":
            message = ws.receive()
        assert message["code"] == 1009


def test_serve_config_gives_the_ingress_the_edge_limits_slots() -> None:
    import yaml

    from rayapp.config import conf_dir
    from rayapp.serving.limits import ingress_max_ongoing

    cfg = yaml.safe_load((conf_dir().parent / "serve_config.yaml").read_text())
    s = load_settings([]).serving
    ingress = next(d for d in cfg["applications"][0]["deployments"] if d["name"] == "Ingress")
    assert ingress["max_ongoing_requests"] == ingress_max_ongoing(s)
    assert cfg["http_options"]["keep_alive_timeout_s"] == s.keep_alive_timeout_s


def test_every_websocket_route_checks_the_origin() -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    app = _app()
    paths = [r.path for r in app.routes if isinstance(r, WebSocketRoute)]  # FastAPI's subclass them
    assert {"/ws/predictions", "/ws/metrics"} <= set(paths)
    client = TestClient(app)
    for path in paths:
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(path, headers={"origin": "http://evil.test"}),
        ):
            pass
        assert refused.value.code == 1008, path  # closed before accept: the handshake is refused (HTTP 403)
