"""Staleness is part of every forecast, and readiness tells "serving" from "serving live data".

The deployed Serve app serves the package's fresh world: its forecasts say `stale: false` and
/ready is 200 with `live_data`. Stale worlds run in the same app in-process (`build_local_api`:
the same FastAPI routes and deployment classes on the same stores and champion, without Ray),
under a symbol of their own so the deployed app's world is left as it is:

* features three days old under live sources: every forecast (REST, the prediction log, the
  WebSocket) is `stale: true` with its age, and /ready answers 503 with the reason while
  /health stays 200;
* the same under replay sources: not live data, but /ready stays 200;
* replayed history judged on the replay server's market clock: years old by the wall clock,
  fresh on the market it replays.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rayapp.testing.serving import FSV, make_market, write_offline, write_online
from tests.factories import write_replay_history

STALE = "STALEUSDT"
MARKET = "MKTUSDT"


def _predict(client: Any, symbol: str, key: str) -> dict[str, Any]:
    r = client.post("/predict", json={"symbol": symbol}, headers={"X-API-Key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return dict(r.json())


def _logged(pool: Any, prediction_id: str) -> tuple[float | None, bool | None]:
    with pool.connection() as conn:
        row = conn.execute("SELECT data_age_s, stale FROM predictions WHERE prediction_id = %s", (prediction_id,))
        return tuple(row.fetchone())  # type: ignore[return-value]


@pytest.fixture
def own_symbols(pool: Any, serving_redis: Any) -> Iterator[None]:
    yield
    import redis

    with pool.connection() as conn:
        for table, col in (("predictions", "symbol"), ("features", "symbol"), ("candles", "symbol")):
            conn.execute(f"DELETE FROM {table} WHERE {col} = ANY(%s)", ([STALE, MARKET],))
        conn.commit()
    r = redis.Redis.from_url(serving_redis.url)
    for key in r.scan_iter(match="*USDT*"):
        if STALE.encode() in key or MARKET.encode() in key:
            r.delete(key)


def _local(settings: Any, symbol: str, **sources: Any) -> TestClient:
    from rayapp.serving.deployments import build_local_api

    s = settings.model_copy(deep=True)
    s.symbols = [symbol]
    for k, v in sources.items():
        setattr(s.sources, k, v)
    return TestClient(build_local_api(s, background=False, shadow=False, poll=False))


def _seed(pool: Any, redis_url: str, symbol: str, end: pd.Timestamp) -> pd.Timestamp:
    market = make_market(30, end, seed=11)
    write_offline(pool, market, fsv=FSV, symbol=symbol)
    return write_online(redis_url, market, FSV, symbol)


# ---- the deployed app, fresh world -------------------------------------------------------------
def test_a_fresh_forecast_says_so_and_the_app_is_ready_with_live_data(app_url: str, auth: dict[str, str], world, pool):
    r = httpx.post(f"{app_url}/predict", json={"symbol": "BTCUSDT"}, headers=auth, timeout=30)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["as_of"] == p["ts"] and p["stale"] is False and p["stale_now"] is False
    limit = world.settings.serving.feature_staleness_s
    assert 0 <= p["data_age_s"] <= limit and p["data_age_now_s"] == p["data_age_s"]
    age, stale = _logged(pool, p["prediction_id"])
    assert stale is False and age is not None and age <= limit

    ready = httpx.get(f"{app_url}/ready", timeout=30)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and body["live_data"] and body["sources"] == "live" and body["reason"] is None
    assert [(d["symbol"], d["stale"]) for d in body["data"]] == [("BTCUSDT", False)]

    spec = httpx.get(f"{app_url}/openapi.json", timeout=30).json()["components"]["schemas"]
    for field in ("as_of", "data_age_s", "stale", "data_age_now_s", "stale_now"):
        assert field in spec["Prediction"]["properties"] and spec["Prediction"]["properties"][field]["description"]
    for field in ("live_data", "sources", "reason", "data"):
        assert field in spec["Ready"]["properties"]


# ---- stale features under live sources ---------------------------------------------------------
def test_stale_features_under_live_sources_flag_every_forecast_and_make_the_app_unready(
    world, pool, serving_redis, own_symbols
):
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(days=3)
    ts = _seed(pool, serving_redis.url, STALE, end)
    limit = world.settings.serving.feature_staleness_s
    key = world.settings.serving.api_key
    with _local(world.settings, STALE) as client:
        assert client.get("/health").json() == {"status": "ok"}  # alive: a liveness probe keeps it
        ready = client.get("/ready")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert not body["ready"] and not body["live_data"] and body["model_loaded"] and body["redis"]
        assert body["sources"] == "live"
        assert re.search(
            rf"stale features: {STALE} as of {re.escape(ts.isoformat())} is 3\.\d days old "
            rf"\(serving\.feature_staleness_s={limit:g} s\): the live sources are not feeding the stores",
            body["reason"],
        ), body["reason"]
        [d] = body["data"]
        assert d["symbol"] == STALE and d["stale"] and d["as_of"] == ts.isoformat() and d["data_age_s"] > limit

        p = _predict(client, STALE, key)
        assert p["as_of"] == p["ts"] == ts.isoformat()
        assert p["stale"] is True and p["stale_now"] is True and p["degraded"] is True
        assert p["data_age_s"] > 3 * 86400 - 3600 and p["logged"]

        latest = client.get("/predictions/latest", params={"symbol": STALE}).json()
        assert latest["prediction_id"] == p["prediction_id"]
        assert latest["stale"] is True and latest["stale_now"] is True and latest["data_age_now_s"] > limit
        listed = client.get("/predictions", params={"symbol": STALE}).json()["items"]
        assert [i["stale"] for i in listed] == [True]

        with client.websocket_connect(f"/ws/predictions?symbol={STALE}") as ws:
            msg = ws.receive_json()  # the newest logged forecast is replayed first
            assert msg["type"] == "prediction" and msg["replay"]
            assert msg["data"]["prediction_id"] == p["prediction_id"]
            assert msg["data"]["stale"] is True and msg["data"]["stale_now"] is True
    age, stale = _logged(pool, p["prediction_id"])
    assert stale is True and age is not None and age > limit


def test_stale_features_under_replay_sources_are_not_live_but_the_app_stays_ready(
    world, pool, serving_redis, own_symbols
):
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(days=3)
    _seed(pool, serving_redis.url, STALE, end)
    # replay sources without a replay server to ask: judged on wall time
    with _local(world.settings, STALE, mode="replay", replay_url=None) as client:
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert body["ready"] and not body["live_data"] and body["sources"] == "replay"
        assert "stale features" in body["reason"] and "replay feed is not advancing" in body["reason"]
        p = _predict(client, STALE, world.settings.serving.api_key)
        assert p["stale"] is True  # still flagged: stale is stale, whatever the sources


def test_replayed_history_is_judged_on_the_market_clock(world, pool, serving_redis, own_symbols, tmp_path):
    from rayapp.config import load_settings
    from rayapp.replay import ReplayServer, app_from_settings

    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    write_replay_history(tmp_path, 400, t0)
    rs = load_settings([]).replay.model_copy(deep=True)
    market_now = t0 + pd.Timedelta(hours=300)
    rs.start, rs.speed = market_now.isoformat(), 1.0
    ts = _seed(pool, serving_redis.url, MARKET, market_now.floor("h") - pd.Timedelta(hours=2))
    with (
        ReplayServer(app_from_settings(rs, str(tmp_path))) as url,
        _local(world.settings, MARKET, mode="replay", replay_url=url) as client,
    ):
        p = _predict(client, MARKET, world.settings.serving.api_key)
        ready = client.get("/ready").json()
    # two hours old on the market clock (years by the wall clock): fresh, and not a fallback
    assert p["as_of"] == ts.isoformat() and p["stale"] is False
    assert 2 * 3600 - 60 <= p["data_age_s"] <= world.settings.serving.feature_staleness_s
    assert p["feature_source"]["source"] == "online" and not p["feature_source"]["fallback"]
    assert ready["ready"] and not ready["live_data"] and ready["sources"] == "replay"
    assert ready["reason"] == "replay sources: the forecasts are of replayed history, not live data"
    assert [d["stale"] for d in ready["data"]] == [False]
