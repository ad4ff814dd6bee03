"""Issue 19 against the real Serve app: slow clients, bounded inputs, headers, methods, errors.

Liveness, not speed: every request must succeed within a generous client timeout and every
stalled client must be closed by its timeout plus slack; the latency under this load is
benchmarks/serve_latency.py's `slow_clients` figure.
"""

from __future__ import annotations

import asyncio
import math
import re
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from rayapp.features import FEATURE_RANGES
from rayapp.testing import wait_until
from rayapp.testing.serving import FEATURE_NAMES
from rayapp.testing.slow_clients import SlowClients, timed_requests

SLACK_S = 20  # a closed-by-timeout client must be closed by its timeout plus this (a loaded 2-core box)


def _ws_clients(app_url: str) -> float:
    text = httpx.get(f"{app_url}/metrics", timeout=30).text
    return sum(float(v) for v in re.findall(r"^rayapp_websocket_clients\{[^}]*\} (\S+)$", text, re.M))


def test_slow_and_long_lived_clients_do_not_hold_up_serving(app_url: str, auth: dict[str, str], world: Any) -> None:
    s = world.settings.serving
    assert _ws_clients(app_url) == 0

    async def scenario() -> tuple[SlowClients, dict[str, Any], dict[str, Any], list[Any]]:
        clients = SlowClients(
            app_url, stalled=200, websockets=200, header_stalls=3, idle=3, keep_alive=3, content_length=4000
        )
        try:
            await clients.open()
            stop = asyncio.Event()
            load = asyncio.gather(
                timed_requests(
                    app_url, 300, concurrency=4, api_key=auth["X-API-Key"], body={"symbol": "BTCUSDT"}, stop=stop
                ),
                timed_requests(app_url, 300, concurrency=1, path="/health", stop=stop),
            )
            closed = await clients.wait_closed(
                {"stalled", "header", "idle", "keep_alive"}, max(s.body_timeout_s, s.header_timeout_s) + SLACK_S
            )
            stop.set()
            predict, health = await load
            assert clients.websockets_still_open() == 200, "the idle WebSockets stay open meanwhile"
            return clients, predict, health, closed
        finally:
            await clients.close()

    clients, predict, health, closed = asyncio.run(scenario())
    assert clients.ws_refused == [] and len(clients.ws_open) == 200
    by_kind: dict[str, list[Any]] = {}
    for c in closed:
        by_kind.setdefault(c.kind, []).append(c)
    assert len(by_kind["stalled"]) == 200 and {c.status for c in by_kind["stalled"]} == {408}
    limits = {"stalled": s.body_timeout_s, "header": s.header_timeout_s, "idle": s.header_timeout_s}
    limits["keep_alive"] = s.keep_alive_timeout_s
    for kind, limit in limits.items():
        late = [c.after_s for c in by_kind[kind] if c.after_s is None or c.after_s > limit + SLACK_S]
        assert len(by_kind[kind]) == (200 if kind == "stalled" else 3) and not late, (kind, late)
    # the API answered every request meanwhile
    assert predict["failed"] == [] and len(predict["latencies_ms"]) > 0, predict["failed"][:5]
    assert health["failed"] == [] and len(health["latencies_ms"]) > 0, health["failed"][:5]
    # everything is cleaned up: no WebSocket left on the server, a new client is served at once
    wait_until(lambda: _ws_clients(app_url) == 0, 60, what="the server to drop the closed WebSockets")
    assert httpx.get(f"{app_url}/health", timeout=30).status_code == 200


def test_per_client_limits(app_url: str, world: Any) -> None:
    s = world.settings.serving
    ws_url = app_url.replace("http://", "ws://") + "/ws/predictions"
    socks = [connect(ws_url, open_timeout=60, source_address=("127.0.3.1", 0)) for _ in range(s.ws_max_per_client)]
    try:
        extra = connect(ws_url, open_timeout=60, source_address=("127.0.3.1", 0))  # accepted, then closed
        with extra, pytest.raises(ConnectionClosed) as closed:
            while True:
                extra.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
        assert "too many WebSockets from this client" in closed.value.rcvd.reason
        # another client address is not affected
        with connect(ws_url, open_timeout=60, source_address=("127.0.3.9", 0)) as other:
            assert other.recv(timeout=30)
    finally:
        for ws in socks:
            ws.close()

    async def uploads() -> tuple[bytes, list[Any]]:
        host, port = "127.0.0.1", int(app_url.rsplit(":", 1)[1])
        conns = []
        head = f"POST /predict HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n{{".encode()
        try:
            for _ in range(s.http_max_per_client):
                r, w = await asyncio.open_connection(host, port, local_addr=("127.0.3.2", 0))
                w.write(head)
                await w.drain()
                conns.append((r, w))
            await asyncio.sleep(1)  # the scenario: the uploads are in progress (their bodies awaited)
            r, w = await asyncio.open_connection(host, port, local_addr=("127.0.3.2", 0))
            conns.append((r, w))
            w.write(head)
            await w.drain()
            return await asyncio.wait_for(r.read(4096), 60), conns
        finally:
            for _, w in conns:
                w.close()

    answer, _ = asyncio.run(uploads())
    assert answer.startswith(b"HTTP/1.1 429 "), answer[:200]
    assert b"retry-after: 1" in answer.lower() and b"x-error-id: " in answer.lower()
    # closed uploads free their client's slots
    transport = httpx.HTTPTransport(local_address="127.0.3.2")
    with httpx.Client(transport=transport, timeout=30) as client:
        wait_until(lambda: client.get(f"{app_url}/health").status_code == 200, 60, what="the client's slots freed")


SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy", "content-security-policy")


def test_security_headers_banner_methods_and_head(app_url: str, auth: dict[str, str]) -> None:
    responses = {
        "health": httpx.get(f"{app_url}/health"),
        "dashboard": httpx.get(f"{app_url}/", headers={"Accept": "text/html"}),
        "not found": httpx.get(f"{app_url}/no-such-file.js"),
        "unauthorized": httpx.post(f"{app_url}/predict", json={"symbol": "BTCUSDT"}),
        "docs": httpx.get(f"{app_url}/docs"),
        "openapi": httpx.get(f"{app_url}/openapi.json"),
    }
    for name, r in responses.items():
        for h in SECURITY_HEADERS:
            assert r.headers.get(h), (name, h, dict(r.headers))
        assert "server" not in r.headers, (name, r.headers.get("server"))
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY"
    csp = responses["health"].headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "cdn.jsdelivr.net" in responses["docs"].headers["content-security-policy"]  # Swagger UI's bundle
    # methods: 405 naming POST for /predict (GET too), OPTIONS with Allow, HEAD on GET routes
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        r = httpx.request(method, f"{app_url}/predict")
        assert r.status_code == 405, (method, r.status_code, r.text)
        assert r.headers["allow"] == "OPTIONS, POST" and r.json()["error_id"]
    opt = httpx.options(f"{app_url}/predict")
    assert opt.status_code == 204 and "POST" in opt.headers["allow"].split(", ")
    head = httpx.head(f"{app_url}/health")
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "15"
    assert httpx.head(f"{app_url}/model", timeout=30).status_code == 200
    assert httpx.post(f"{app_url}/health").status_code == 405
    assert httpx.post(f"{app_url}/health").headers["allow"] == "GET, HEAD, OPTIONS"


def test_strict_types_bounded_inputs_and_error_bodies(app_url: str, auth: dict[str, str], world: Any) -> None:
    def predict(**body: object) -> httpx.Response:
        return httpx.post(
            f"{app_url}/predict",
            json={"symbol": "BTCUSDT", **body},
            headers={**auth, "Origin": "http://dashboard.test"},
            timeout=30,
        )

    def error_locs(r: httpx.Response) -> list[tuple[str, ...]]:
        assert r.status_code == 422, r.text
        assert r.json()["error_id"] and r.headers["x-error-id"] == r.json()["error_id"]
        assert r.headers["access-control-allow-origin"] == "http://dashboard.test"
        return [tuple(str(x) for x in e["loc"]) for e in r.json()["detail"]]

    vec = {n: float(world.market.features[n].iloc[30]) for n in FEATURE_NAMES}
    assert ("body", "explain") in error_locs(predict(explain="yes"))
    assert ("body", "explain") in error_locs(predict(explain=1))
    assert ("body", "features", "rsi") in error_locs(predict(features={**vec, "rsi": True}))
    assert ("body", "features", "rsi") in error_locs(predict(features={**vec, "rsi": "50"}))
    r = httpx.get(f"{app_url}/predictions", params={"since": "0.5"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "since"]
    assert httpx.get(f"{app_url}/predictions", params={"since": "2024-01-01T00:00:00Z"}).status_code == 200
    # huge finite values: a 422 naming the feature and its range, with explain on or off
    for explain in (True, False):
        r = predict(features={n: 1e308 for n in FEATURE_NAMES}, explain=explain)
        detail = {e["loc"][-1]: e for e in r.json()["detail"]} if r.status_code == 422 else {}
        assert set(detail) == set(FEATURE_NAMES), r.text
        assert "rsi must be within [0, 100]" in detail["rsi"]["msg"]
    r = predict(features={**vec, "rsi": 1e100})
    assert error_locs(r) == [("body", "features", "rsi")] and "[0, 100]" in r.json()["detail"][0]["msg"]
    # every accepted extreme is predicted and explained (the explainer never raises on one)
    for end in ("low", "high"):
        r = predict(features={n: getattr(FEATURE_RANGES[n], end) for n in FEATURE_NAMES}, explain=True)
        assert r.status_code == 200, r.text
        ex = r.json()["explanation"]
        assert math.isclose(1 / (1 + math.exp(-ex["margin"])), r.json()["p_up"], abs_tol=1e-4)
    # an echoed input is truncated
    r = predict(symbol="A" * 3000)
    assert r.status_code == 422 and len(r.text) < 1500, len(r.text)
    assert "(3000 characters)" in r.text
    # the schema lists the served symbols and the feature set's ranges
    doc = httpx.get(f"{app_url}/openapi.json").json()
    req = doc["components"]["schemas"]["PredictRequest"]["properties"]
    assert req["symbol"]["enum"] == ["BTCUSDT"]
    rsi = req["features"]["anyOf"][0]["properties"]["rsi"]["anyOf"][0]
    assert (rsi["minimum"], rsi["maximum"]) == (0, 100)
    params = doc["paths"]["/predictions/latest"]["get"]["parameters"]
    assert next(p for p in params if p["name"] == "symbol")["schema"]["enum"] == ["BTCUSDT"]
    assert httpx.get(f"{app_url}/predictions/latest", params={"symbol": "ETHUSDT"}).status_code == 422


def test_websocket_origin_and_frame_size(app_url: str) -> None:
    ws_url = app_url.replace("http://", "ws://") + "/ws/predictions"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, origin="http://evil.test", open_timeout=60)
    assert refused.value.response.status_code == 403
    host = app_url.split("://", 1)[1]
    for origin in ("http://dashboard.test", f"http://{host}", None):  # cors_origins, the app's own, no browser
        with connect(ws_url, origin=origin, open_timeout=60) as ws:  # type: ignore[arg-type]
            assert ws.recv(timeout=30)
    for size in (9000, 16 * 1024 * 1024):  # over ws_max_message_bytes (8 KiB): closed 1009
        with connect(ws_url, open_timeout=60, max_size=None) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.send("x" * size)
            while True:
                ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009, (size, closed.value)
