"""WebSockets: a push when new features are materialised, heartbeats, safe reconnect, metrics."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rayapp.testing.serving import FSV, SYMBOL, write_online


def recv_until(ws: Any, pred: Any, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no matching WebSocket message in time"
        msg = json.loads(ws.recv(timeout=left))
        if pred(msg):
            return msg


def test_push_after_new_features_then_reconnect(app_url: str, world, pool, serving_redis) -> None:
    ws_url = app_url.replace("http://", "ws://") + "/ws/predictions"
    new_ts = world.latest_ts + pd.Timedelta(hours=1)
    with connect(ws_url, open_timeout=30) as ws:
        hb = recv_until(ws, lambda m: m["type"] == "heartbeat")
        hb2 = recv_until(ws, lambda m: m["type"] == "heartbeat")
        assert hb2["seq"] > hb["seq"]
        ws.send("ping")
        recv_until(ws, lambda m: m["type"] == "pong")
        # materialise a new hour: the offline row, then the online vector (as the feature stage does)
        values = world.market.features.iloc[40]
        with pool.connection() as conn:
            conn.execute(
                "INSERT INTO features (symbol, ts, feature_set_version, vals) VALUES (%s, %s, %s, %s)",
                (SYMBOL, new_ts.to_pydatetime(), FSV, [float(v) for v in values]),
            )
            conn.commit()
        shifted = world.market.features.iloc[[40]].copy()
        shifted.index = [new_ts]
        write_online(serving_redis.url, type(world.market)(shifted, world.market.close, world.market.ret_next[:1]))
        push = recv_until(ws, lambda m: m["type"] == "prediction" and m["data"]["ts"] == new_ts.isoformat())
        assert not push.get("replay")
    p = push["data"]
    assert p["logged"] and p["prediction_id"] and p["explanation"]["text"]
    assert p["features"]["rsi"] == float(values["rsi"])
    # the forecast message carries the served distribution, as /predict does (issue 20)
    assert [b["level"] for b in p["intervals"]] == [0.5, 0.8, 0.9] and p["volatility"] > 0
    assert p["interval"]["level"] == 0.9 and p["interval"]["method"].startswith("cqr_vol")
    assert (p["interval"]["low"], p["interval"]["high"]) == (p["intervals"][-1]["low"], p["intervals"][-1]["high"])
    # its volatility inputs are what the stored closes up to that hour allow (an earlier test may
    # have landed hours past the world's candles: then some are missing, and said so)
    from rayapp.serving.intervals import interval_inputs

    with pool.connection() as conn:
        expected = interval_inputs(conn, SYMBOL, FSV, new_ts.isoformat())
    assert p["quantiles"][0]["p"] == 0.05 and p["interval"]["missing"] == expected["missing"]
    world.latest_ts = new_ts
    # reconnect: everything after the last hour the client saw is replayed from the table first
    since = (new_ts - pd.Timedelta(hours=1)).isoformat()
    with connect(f"{ws_url}?since={quote(since)}", open_timeout=30) as ws:
        again = recv_until(ws, lambda m: m["type"] == "prediction")
        assert again["replay"] and again["data"]["prediction_id"] == p["prediction_id"]
        assert again["data"]["intervals"] == p["intervals"] and again["data"]["quantiles"] == p["quantiles"]
    with connect(f"{ws_url}?since=not-a-time", open_timeout=30) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert "ISO" in closed.value.rcvd.reason


def test_metrics_channel(app_url: str, auth: dict[str, str]) -> None:
    httpx.post(f"{app_url}/predict", json={"symbol": SYMBOL}, headers=auth, timeout=30)
    with connect(app_url.replace("http://", "ws://") + "/ws/metrics", open_timeout=30) as ws:
        first = recv_until(ws, lambda m: m["type"] == "metrics")
        second = recv_until(ws, lambda m: m["type"] == "metrics")
    assert second["seq"] > first["seq"]
    data = second["data"]
    assert data["ws_clients"]["metrics"] >= 1
    assert any(k.startswith("POST /predict") for k in data["requests"])
    assert data["model"]["version"]
