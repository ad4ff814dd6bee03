"""Shadow scoring and champion hot swap on the deployed app, under load.

The lifecycle's sequence on the real stack: a challenger carries the `shadow` alias and scores
every logged champion forecast in the ShadowPredictor deployment (rows with role `shadow`, never
returned to a client); it is promoted under load (champion alias moved, the previous champion
put in shadow for the watch period) without a failed request; the alias is removed and shadow
scoring stops. A shadow that cannot load or whose replica is killed never fails a request.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pandas as pd
import pytest
from websockets.sync.client import connect

from rayapp.testing import wait_until
from rayapp.testing.serving import (
    FEATURE_NAMES,
    FSV,
    SYMBOL,
    Market,
    fit_bundle,
    log_and_promote,
    train_booster,
    write_online,
)
from tests.serving.factories import load


@pytest.fixture(scope="module")
def registry(world: Any) -> Iterator[str]:
    """The registered model's name, MLflow pointed at the world's registry; no shadow left after."""
    from rayapp.registry import SHADOW, clear_alias, setup_mlflow

    setup_mlflow(world.settings)
    name = world.settings.mlflow.registered_model
    yield name
    clear_alias(name, SHADOW)


# ---- helpers -----------------------------------------------------------------------------------
def _predict(app_url: str, auth: dict[str, str]) -> dict[str, Any]:
    r = httpx.post(f"{app_url}/predict", json={"symbol": SYMBOL}, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _register(world: Any, rounds: int) -> tuple[str, Any]:
    """A new version trained on the world's rows, registered as challenger (champion unmoved).
    Boosters differ by their number of rounds (the seed alone changes nothing without subsampling);
    the other serving tests use 15 and 40."""
    booster = train_booster(world.market, depth=2, rounds=rounds)
    return log_and_promote(world.settings, booster, fit_bundle(booster, world.market), alias="challenger"), booster


def _register_without_bundle(world: Any) -> str:
    """A registered version whose run has no serving bundle: it cannot be loaded."""
    import mlflow
    import mlflow.xgboost

    booster = train_booster(world.market, depth=2, rounds=5)
    with mlflow.start_run(run_name="no-bundle"):
        info = mlflow.xgboost.log_model(booster, name="model")
    return str(mlflow.register_model(info.model_uri, world.settings.mlflow.registered_model).version)


def _served(app_url: str) -> dict[str, Any]:
    """GET /models' `serving` part (the call also refreshes the ingress's view of the shadow)."""
    r = httpx.get(f"{app_url}/models", timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["serving"]


def _wait_shadow(app_url: str, version: str | None) -> dict[str, Any]:
    """Until the ShadowPredictor serves `version` (None: holds no model)."""

    def there() -> dict[str, Any] | None:
        sh = _served(app_url)["shadow"]
        ok = (not sh["loaded"]) if version is None else (sh["loaded"] and sh["version"] == version)
        return sh if ok else None

    return wait_until(there, 120, interval_s=0.5, ignore=(httpx.HTTPError,), what=f"the shadow to serve {version}")


def _rows(pool: Any, name: str, ts: pd.Timestamp) -> dict[tuple[str, str], dict[str, Any]]:
    """(model_version, role) -> row of every forecast of the hour."""
    with pool.connection() as conn:
        recs = conn.execute(
            "SELECT model_version, role, prediction_id, p_up, features, realized_return FROM predictions"
            " WHERE symbol = %s AND ts = %s AND model_name = %s",
            (SYMBOL, ts.to_pydatetime(), name),
        ).fetchall()
    return {
        (r[0], r[1]): {"prediction_id": r[2], "p_up": r[3], "features": r[4], "realized_return": r[5]} for r in recs
    }


def _wait_row(pool: Any, name: str, ts: pd.Timestamp, version: str, role: str) -> dict[str, Any]:
    return wait_until(
        lambda: _rows(pool, name, ts).get((version, role)),
        60,
        interval_s=0.25,
        what=f"a {role} forecast of version {version} for {ts}",
    )


def _shadow_count(app_url: str, outcome: str) -> float:
    prefix = f'rayapp_shadow_predictions_total{{outcome="{outcome}"}}'
    for line in httpx.get(f"{app_url}/metrics", timeout=30).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    raise AssertionError(f"{prefix} not in /metrics")


def _land_hour(world: Any, pool: Any, redis_url: str, row: int) -> pd.Timestamp:
    """A new feature hour after the newest (offline row, then the online vector, as the feature
    stage writes them), with the values of one of the world's rows."""
    ts = world.latest_ts + pd.Timedelta(hours=1)
    values = world.market.features.iloc[row]
    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO features (symbol, ts, feature_set_version, vals) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (symbol, ts, feature_set_version) DO UPDATE SET vals = EXCLUDED.vals",
            (SYMBOL, ts.to_pydatetime(), FSV, [float(v) for v in values]),
        )
        conn.commit()
    shifted = world.market.features.iloc[[row]].copy()
    shifted.index = pd.DatetimeIndex([ts])
    write_online(redis_url, Market(shifted, world.market.close, world.market.ret_next[:1]))
    world.latest_ts = ts
    return ts


def _raw_p(booster: Any, features: dict[str, float | None]) -> float:
    row = np.array([[np.nan if features[n] is None else features[n] for n in FEATURE_NAMES]], dtype=np.float32)
    return float(np.asarray(booster.inplace_predict(row)).reshape(-1)[0])


# ---- tests -------------------------------------------------------------------------------------
def test_shadow_forecast_is_logged_and_never_returned(
    app_url: str, auth: dict[str, str], world: Any, pool: Any, serving_redis: Any, registry: str
) -> None:
    from rayapp.registry import SHADOW, clear_alias, last_known_alias, set_alias

    champion = world.version
    shadow, booster = _register(world, rounds=9)
    set_alias(registry, SHADOW, shadow)
    _wait_shadow(app_url, shadow)
    logged_before = _shadow_count(app_url, "logged")

    p = _predict(app_url, auth)
    assert p["model_version"] == champion and p["logged"]
    ts = pd.Timestamp(p["ts"])
    row = _wait_row(pool, registry, ts, shadow, "shadow")
    # the shadow scored the champion's vector of that hour, with its own model
    champ_row = _rows(pool, registry, ts)[(champion, "champion")]
    assert champ_row["prediction_id"] == p["prediction_id"]
    assert row["features"] == champ_row["features"] == p["features"]
    assert row["p_up"] == pytest.approx(_raw_p(booster, p["features"]), abs=1e-6)  # identity calibration
    assert row["p_up"] != pytest.approx(p["p_up"], abs=1e-9)  # another model, another number
    assert _shadow_count(app_url, "logged") >= logged_before + 1
    # with its own served distribution (its interval model, its ACI states), as the champion's row
    with pool.connection() as conn:
        method, intervals, quantiles = conn.execute(
            "SELECT interval_method, intervals, quantiles FROM predictions WHERE prediction_id = %s",
            (row["prediction_id"],),
        ).fetchone()
    assert method.startswith("cqr_vol") and [iv["level"] for iv in intervals] == [0.5, 0.8, 0.9] and quantiles

    # ---- no client read path shows it
    again = _predict(app_url, auth)
    assert again["model_version"] == champion and again["prediction_id"] == p["prediction_id"]
    latest = httpx.get(f"{app_url}/predictions/latest", params={"symbol": SYMBOL}, timeout=30).json()
    assert latest["prediction_id"] == p["prediction_id"] and latest["model_version"] == champion
    since = (ts - pd.Timedelta(hours=1)).isoformat()
    listing = httpx.get(f"{app_url}/predictions", params={"since": since, "limit": 1000}, timeout=30).json()["items"]
    assert p["prediction_id"] in {i["prediction_id"] for i in listing if i["ts"] == p["ts"]}
    assert all(i["model_version"] != shadow for i in listing)  # (an earlier champion may have served it too)
    assert httpx.get(f"{app_url}/explain/{row['prediction_id']}", timeout=30).status_code == 404
    ws_url = app_url.replace("http://", "ws://") + "/ws/predictions"
    with connect(f"{ws_url}?since={quote(since)}", open_timeout=30) as ws:
        replayed = []
        while True:
            msg = json.loads(ws.recv(timeout=30))
            if msg["type"] == "heartbeat":  # sent after the replay
                break
            replayed.append(msg["data"])
    assert p["prediction_id"] in {d["prediction_id"] for d in replayed}
    assert all(d["model_version"] != shadow for d in replayed)
    # resolved outcomes: the shadow's too (the lifecycle compares them), but the track record is the champion's
    assert httpx.post(f"{app_url}/admin/resolve-outcomes", headers=auth, timeout=30).status_code == 200
    wait_until(
        lambda: _rows(pool, registry, ts)[(shadow, "shadow")]["realized_return"] is not None,
        30,
        what="the shadow forecast's outcome",
    )

    def counted() -> int:  # its coverage is counted into the shadow version's own ACI state
        with pool.connection() as conn:
            r = conn.execute(
                "SELECT resolved FROM interval_aci WHERE model_name = %s AND model_version = %s AND level = 0.9",
                (registry, shadow),
            ).fetchone()
        return 0 if r is None else int(r[0])

    wait_until(lambda: counted() >= 1, 30, what="the shadow forecast counted into its ACI state")
    rec = httpx.get(f"{app_url}/track-record", params={"model_version": shadow}, timeout=30).json()
    assert rec["resolved"] == 0
    assert httpx.get(f"{app_url}/track-record", params={"model_version": champion}, timeout=30).json()["resolved"] >= 1

    # ---- alias removed: the model is unloaded and forgotten, and shadow scoring stops
    clear_alias(registry, SHADOW)
    _wait_shadow(app_url, None)
    assert last_known_alias(world.settings, SHADOW) is None  # a restarted replica warm-starts no shadow
    no_shadow = _shadow_count(app_url, "no_shadow")
    new_ts = _land_hour(world, pool, serving_redis.url, row=50)
    p2 = wait_until(
        lambda: (b := _predict(app_url, auth))["ts"] == new_ts.isoformat() and b, 30, what="a forecast of the new hour"
    )
    assert p2["model_version"] == champion and p2["logged"]
    # the ingress decided there is no shadow for this forecast (counted), and wrote none
    wait_until(lambda: _shadow_count(app_url, "no_shadow") >= no_shadow + 1, 30, what="no_shadow counted")
    assert set(_rows(pool, registry, new_ts)) == {(champion, "champion")}


def test_promotion_under_load_drops_no_request(
    app_url: str, auth: dict[str, str], world: Any, pool: Any, serving_redis: Any, registry: str
) -> None:
    """Challenger in shadow → promoted under 8 concurrent clients (champion moved to it, the old
    champion put in shadow for the watch period): no failed request, both versions served, the
    challenger's shadow row of the hour becomes its champion row, the old champion scores in shadow."""
    from rayapp.registry import CHAMPION, SHADOW, clear_alias, set_alias

    old = world.version
    new, _ = _register(world, rounds=10)
    set_alias(registry, SHADOW, new)
    _wait_shadow(app_url, new)
    first = _predict(app_url, auth)
    ts = pd.Timestamp(first["ts"])
    assert first["model_version"] == old
    _wait_row(pool, registry, ts, new, "shadow")
    duplicates = _shadow_count(app_url, "duplicate")

    with load(app_url, auth, clients=8, timeout_s=60) as traffic:
        wait_until(lambda: len(traffic.results) >= 16, 60, what="traffic on the old champion")
        set_alias(registry, CHAMPION, new)  # the promotion, as the lifecycle policy does it
        set_alias(registry, SHADOW, old)

        def all_new() -> bool:
            recent = traffic.recent(16)
            return len(recent) == 16 and all(s == 200 and v == new for _, s, v, _ in recent)

        wait_until(all_new, 120, what="every predictor replica to serve the new champion")
    world.version = new
    assert not traffic.failed, traffic.failed[:5]
    versions = {v for _, _, v, _ in traffic.results}
    assert {old, new} <= versions, versions

    # the hour the challenger scored in shadow is now its champion forecast (what clients got)
    rows = _rows(pool, registry, ts)
    assert (new, "shadow") not in rows
    promoted = rows[(new, "champion")]
    latest = httpx.get(f"{app_url}/predictions/latest", params={"symbol": SYMBOL}, timeout=30).json()
    assert latest["model_version"] == new and latest["prediction_id"] == promoted["prediction_id"]
    assert httpx.get(f"{app_url}/explain/{promoted['prediction_id']}", timeout=30).status_code == 200
    # the old champion in shadow for an hour it served as champion: a duplicate, its row untouched
    _wait_shadow(app_url, old)
    _predict(app_url, auth)
    wait_until(lambda: _shadow_count(app_url, "duplicate") >= duplicates + 1, 30, what="the duplicate counted")
    assert (old, "champion") in _rows(pool, registry, ts) and (old, "shadow") not in _rows(pool, registry, ts)

    # a new hour: the new champion answers, the old one scores it in shadow
    new_ts = _land_hour(world, pool, serving_redis.url, row=60)
    p = wait_until(
        lambda: (b := _predict(app_url, auth))["ts"] == new_ts.isoformat() and b, 30, what="a forecast of the new hour"
    )
    assert p["model_version"] == new
    _wait_row(pool, registry, new_ts, old, "shadow")
    assert set(_rows(pool, registry, new_ts)) == {(new, "champion"), (old, "shadow")}
    clear_alias(registry, SHADOW)
    _wait_shadow(app_url, None)


def test_a_broken_or_dead_shadow_never_fails_a_request(
    app_url: str, auth: dict[str, str], world: Any, pool: Any, serving_redis: Any, registry: str
) -> None:
    from ray import serve

    from rayapp.registry import SHADOW, clear_alias, set_alias

    champion = world.version
    # ---- a shadow version that cannot be loaded: reported, nothing scored, requests unaffected
    broken = _register_without_bundle(world)
    set_alias(registry, SHADOW, broken)

    def load_failed() -> dict[str, Any] | None:
        sh = _served(app_url)["shadow"]
        return sh if (sh["last_error"] or "").startswith(f"loading version {broken} failed") else None

    sh = wait_until(load_failed, 120, interval_s=0.5, what="the shadow to report the failed load")
    assert not sh["loaded"]
    ts = _land_hour(world, pool, serving_redis.url, row=70)
    p = wait_until(
        lambda: (b := _predict(app_url, auth))["ts"] == ts.isoformat() and b, 30, what="a forecast of the new hour"
    )
    assert p["model_version"] == champion and p["logged"]
    assert httpx.get(f"{app_url}/ready", timeout=30).status_code == 200
    assert set(_rows(pool, registry, ts)) == {(champion, "champion")}

    # ---- a working shadow whose only replica is SIGKILLed under load, while a new hour lands
    shadow, _ = _register(world, rounds=11)
    set_alias(registry, SHADOW, shadow)
    _wait_shadow(app_url, shadow)
    app = world.settings.serving.app_name
    handle = serve.get_deployment_handle("ShadowPredictor", app_name=app)
    victim = handle.ping.remote().result(timeout_s=30)["pid"]

    def replaced() -> bool:
        d = serve.status().applications[app].deployments["ShadowPredictor"]
        return d.replica_states.get("RUNNING", 0) == 1 and handle.ping.remote().result(timeout_s=10)["pid"] != victim

    with load(app_url, auth, clients=8, timeout_s=60) as traffic:
        wait_until(lambda: len(traffic.results) >= 16, 60, what="traffic before the kill")
        os.kill(victim, signal.SIGKILL)
        during = _land_hour(world, pool, serving_redis.url, row=80)  # its shadow scoring meets the dead replica
        wait_until(
            lambda: any(t == during.isoformat() for _, _, _, t in traffic.recent(16)), 60, what="the new hour served"
        )
        wait_until(replaced, 180, interval_s=0.5, ignore=(Exception,), what="the ShadowPredictor replica replaced")
        n = len(traffic.results)
        wait_until(lambda: len(traffic.results) >= n + 16, 60, what="traffic after the replacement")
    assert not traffic.failed, traffic.failed[:5]
    assert {v for _, _, v, _ in traffic.results} == {champion}

    # scoring resumes on the replacement (it warm-starts the shadow version from the local cache)
    _wait_shadow(app_url, shadow)
    after = _land_hour(world, pool, serving_redis.url, row=90)
    wait_until(
        lambda: _predict(app_url, auth)["ts"] == after.isoformat(), 30, what="a forecast of the hour after the kill"
    )
    _wait_row(pool, registry, after, shadow, "shadow")
    clear_alias(registry, SHADOW)
    _wait_shadow(app_url, None)


def test_the_plain_baseline_scores_in_shadow_too(world: Any, pool: Any, registry: str) -> None:
    """build_local_api (the same app without Ray, LocalHandles around the same classes) scores a
    logged forecast in shadow as the Serve app does, and returns only the champion's."""
    from fastapi.testclient import TestClient

    from rayapp.registry import SHADOW, clear_alias, set_alias
    from rayapp.serving.deployments import build_local_api

    shadow, _ = _register(world, rounds=12)
    set_alias(registry, SHADOW, shadow)
    try:
        with TestClient(build_local_api(world.settings, background=False, shadow=True, poll=False)) as client:
            assert client.get("/models").json()["serving"]["shadow"]["version"] == shadow  # loaded at start
            r = client.post("/predict", json={"symbol": SYMBOL}, headers={"X-API-Key": world.settings.serving.api_key})
            assert r.status_code == 200, r.text
            p = r.json()
            assert p["model_version"] == world.version and p["logged"]
            _wait_row(pool, registry, pd.Timestamp(p["ts"]), shadow, "shadow")
            latest = client.get("/predictions/latest", params={"symbol": SYMBOL}).json()
            assert latest["model_version"] == world.version
        no_shadow = build_local_api(world.settings, background=False, shadow=False, poll=False)
        with TestClient(no_shadow) as client:
            assert client.get("/models").json()["serving"]["shadow"] is None
            r = client.post("/predict", json={"symbol": SYMBOL}, headers={"X-API-Key": world.settings.serving.api_key})
            assert r.status_code == 200 and r.json()["model_version"] == world.version
    finally:
        clear_alias(registry, SHADOW)
