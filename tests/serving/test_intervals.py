"""The served distribution (issue 20): quantiles, volatility and the 50/80/90 % intervals on
/predict, the WebSocket and the prediction log; adaptive conformal inference online, shared by the
replicas through PostgreSQL; a bundle from before the interval model still serving its band.

The champion is the serving world's (tests/serving/fixtures.py), whose bundle carries a real
interval model (rayapp.testing.serving.fit_interval_model).
"""

from __future__ import annotations

import itertools
import math
import threading
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from rayapp.registry import AciState, aci_update, level_key
from rayapp.testing import wait_until
from rayapp.testing.serving import FEATURE_NAMES, FSV, SYMBOL, make_market, write_offline
from tests.serving.factories import log_served_forecasts, logged_interval_hits

LEVELS = [0.5, 0.8, 0.9]
RV = ["rv_1h", "rv_6h", "rv_24h", "rv_168h"]


def _predict(app_url: str, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    r = httpx.post(f"{app_url}/predict", json={"symbol": SYMBOL, **body}, headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def _check_distribution(p: dict[str, Any], close: float | None) -> None:
    """Monotone quantiles, a positive volatility, three nested intervals, `interval` = the 90 % one,
    prices = close(t) exp(log return)."""
    qs = p["quantiles"]
    assert [q["p"] for q in qs] == sorted(q["p"] for q in qs) and {0.05, 0.25, 0.5, 0.75, 0.95} <= {q["p"] for q in qs}
    values = [q["log_return"] for q in qs]
    assert values == sorted(values) and values[0] < values[-1]
    assert p["volatility"] > 0
    bands = p["intervals"]
    assert [b["level"] for b in bands] == LEVELS
    for inner, outer in itertools.pairwise(bands):
        assert outer["low"] <= inner["low"] < inner["high"] <= outer["high"]
    head = bands[-1]
    iv = p["interval"]
    assert iv["level"] == 0.9 and (iv["low"], iv["high"]) == (head["low"], head["high"])
    assert iv["method"].startswith("cqr_vol")
    assert iv["method"].endswith("_aci") == bool(iv["resolved"])
    for b in [*bands, iv]:
        if close is None:
            assert b["price_low"] is None and b["price_high"] is None
        else:
            assert b["price_low"] == pytest.approx(close * math.exp(b["low"]))
            assert b["price_high"] == pytest.approx(close * math.exp(b["high"]))


def _state(pool: Any, name: str, version: str, level: float = 0.9) -> dict[str, Any] | None:
    with pool.connection() as conn:
        r = conn.execute(
            "SELECT alpha_t, resolved, covered FROM interval_aci WHERE model_name = %s AND model_version = %s"
            " AND horizon_h = 1 AND level = %s",
            (name, version, level),
        ).fetchone()
    return None if r is None else {"alpha_t": r[0], "resolved": r[1], "covered": r[2]}


def _replay(pool: Any, name: str, version: str) -> tuple[dict[str, AciState], dict[str, AciState]]:
    """(the stored states, the states replayed from the counted forecasts), read in one snapshot:
    every counted forecast in feature-hour order, covered or not at each logged level, with its
    logged step."""
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        rows = conn.execute(
            "SELECT intervals, realized_return, aci_gamma FROM predictions WHERE model_name = %s"
            " AND model_version = %s AND aci_applied_at IS NOT NULL ORDER BY ts, prediction_id",
            (name, version),
        ).fetchall()
        stored = {
            level_key(r[0]): AciState(float(r[0]), float(r[1]), int(r[2]), int(r[3]))
            for r in conn.execute(
                "SELECT level, alpha_t, resolved, covered FROM interval_aci WHERE model_name = %s"
                " AND model_version = %s",
                (name, version),
            ).fetchall()
        }
    replayed: dict[str, AciState] = {}
    for intervals, y, gamma in rows:
        for iv in intervals:
            k = level_key(iv["level"])
            st = replayed.get(k) or AciState.start(iv["level"])
            replayed[k] = aci_update(st, iv["low"] <= y <= iv["high"], gamma or 0.0)
    return stored, replayed


def _resolve(settings: Any, pool: Any) -> None:
    from rayapp.serving import resolve_outcomes

    with pool.connection() as conn:
        resolve_outcomes(conn, settings.serving.price_sources)


# ---- /predict and the prediction log -----------------------------------------------------------
def test_predict_serves_quantiles_volatility_and_nested_intervals(app_url, auth, world, pool) -> None:
    p = _predict(app_url, auth)
    assert p["ts"] == world.latest_ts.isoformat()
    close = float(world.market.close[world.latest_ts])
    _check_distribution(p, close)
    assert p["interval"]["missing"] == []  # 300 hours of closes: every volatility feature computed
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT interval_method, interval_level, quantiles, volatility, intervals, interval_low, interval_high,"
            " aci_gamma FROM predictions WHERE prediction_id = %s",
            (p["prediction_id"],),
        ).fetchone()
    method, level, quantiles, vol, intervals, lo, hi, gamma = row
    # The log keeps the first forecast served for an hour (the one the track record and the
    # coverage count); a later answer for the same hour may already use newer ACI states, but
    # its quantiles and volatility are the model's alone.
    assert vol == pytest.approx(p["volatility"]) and quantiles == p["quantiles"]
    assert level == 0.9 and method.startswith("cqr_vol") and [iv["level"] for iv in intervals] == LEVELS
    assert (lo, hi) == (intervals[-1]["low"], intervals[-1]["high"])  # interval_low/high: the 90 % one
    assert gamma == pytest.approx(0.005)  # the bundle's step (tune.intervals.aci_gamma / h, h = 1)
    # the history and the latest-forecast routes give the logged distribution back
    latest = httpx.get(f"{app_url}/predictions/latest", timeout=30).json()
    assert latest["prediction_id"] == p["prediction_id"]
    assert latest["intervals"] == intervals and latest["quantiles"] == quantiles
    assert (latest["interval"]["method"], latest["interval"]["low"]) == (method, lo)
    _check_distribution(latest, close)


def test_a_what_if_vector_has_no_closes_and_still_gets_its_intervals(app_url, auth, world) -> None:
    row = world.market.features.iloc[50]
    vec = {n: (None if math.isnan(row[n]) else float(row[n])) for n in FEATURE_NAMES}
    p = _predict(app_url, auth, features=vec, explain=False)
    assert p["interval"]["missing"] == RV  # no feature hour, so no closes to compute them from
    _check_distribution(p, None)


def test_missing_and_bad_closes_leave_those_inputs_missing_and_never_fail(world, pool) -> None:
    """Fewer than 169 hours of closes: the long windows are missing, the short ones computed; no
    candles, or a non-positive close: missing as well. Closes after the hour change nothing."""
    from rayapp.registry import load_version
    from rayapp.serving.intervals import interval_inputs
    from rayapp.serving.predictor import score

    end = pd.Timestamp("2002-03-01T00:00:00Z")
    short = make_market(40, end, seed=7)
    write_offline(pool, short, fsv="intervals-short", symbol="SHORTUSDT")
    ts = short.features.index[-1]
    model = load_version(world.settings, world.version)
    with pool.connection() as conn:
        got = interval_inputs(conn, "SHORTUSDT", "intervals-short", ts.isoformat())
        assert (
            got["missing"] == ["rv_168h"] and got["rv"]["rv_24h"] > 0 and got["close"] == pytest.approx(short.close[ts])
        )
        nothing = interval_inputs(conn, "NOCANDLEUSDT", "intervals-short", ts.isoformat())
        assert nothing["missing"] == RV and nothing["close"] is None
        # point in time: a close altered after t, and one more candle, leave the inputs at t alone
        conn.execute(
            "UPDATE candles SET close = close * 3 WHERE symbol = 'SHORTUSDT' AND open_time > %s", (ts.to_pydatetime(),)
        )
        conn.commit()
        assert interval_inputs(conn, "SHORTUSDT", "intervals-short", ts.isoformat()) == got
        # a bad close two hours back breaks the windows that contain its returns
        conn.execute(
            "UPDATE candles SET close = 0 WHERE symbol = 'SHORTUSDT' AND open_time = %s",
            ((ts - pd.Timedelta(hours=2)).to_pydatetime(),),
        )
        conn.commit()
        bad = interval_inputs(conn, "SHORTUSDT", "intervals-short", ts.isoformat())
        assert bad["rv"]["rv_1h"] is not None and set(bad["missing"]) == {"rv_6h", "rv_24h", "rv_168h"}
        for table in ("candles", "features"):
            conn.execute(f"DELETE FROM {table} WHERE symbol = 'SHORTUSDT'")
        conn.commit()
    values = {k: (None if np.isnan(v) else float(v)) for k, v in short.features.iloc[-1].items()}
    for inputs in (got, nothing, bad):
        pred = score(model, values, FSV, {"inputs": inputs})
        assert pred["interval_method"] == "cqr_vol" and pred["volatility"] > 0
        assert pred["interval_low"] < pred["interval_high"] and pred["interval_missing"] == inputs["missing"]


# ---- adaptive conformal inference --------------------------------------------------------------
def test_resolving_counts_each_forecast_once_and_predict_serves_the_live_coverage(app_url, auth, world, pool) -> None:
    name = world.settings.mlflow.registered_model
    hours = world.market.features.index[-40:-4]  # 36 served hours whose outcomes are known
    log_served_forecasts(world.settings, pool, world.market, world.version, hours)
    # the app's own resolve loop runs too (every 2 s here); two more resolvers at once on top
    threads = [threading.Thread(target=_resolve, args=(world.settings, pool)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    _resolve(world.settings, pool)
    stored, replayed = _replay(pool, name, world.version)
    assert set(stored) == {"0.5", "0.8", "0.9"} and stored["0.9"].resolved >= len(hours)
    for k, st in replayed.items():  # each forecast counted once, in order, with its step
        assert (stored[k].resolved, stored[k].covered) == (st.resolved, st.covered), k
        assert stored[k].alpha_t == pytest.approx(st.alpha_t, abs=1e-12), k
    # a re-run counts nothing again
    from rayapp.serving.aci import apply_resolved

    with pool.connection() as conn:
        assert apply_resolved(conn) == 0
    again, _ = _replay(pool, name, world.version)
    assert {k: (s.resolved, s.covered, s.alpha_t) for k, s in again.items()} == {
        k: (s.resolved, s.covered, s.alpha_t) for k, s in stored.items()
    }

    # the next forecasts serve the shared state: coverage = covered / resolved, at alpha_t
    def served() -> dict[str, Any] | None:
        p = _predict(app_url, auth)
        st = _state(pool, name, world.version)
        return p if st and p["interval"]["resolved"] == st["resolved"] else None

    p = wait_until(served, 30, interval_s=0.5, what="/predict to serve the resolved forecasts' coverage")
    st = _state(pool, name, world.version)
    assert p["interval"]["coverage"] == pytest.approx(st["covered"] / st["resolved"])
    assert p["interval"]["alpha_t"] == pytest.approx(st["alpha_t"]) and p["interval"]["method"] == "cqr_vol_aci"
    by_level = {b["level"]: b for b in p["intervals"]}
    for level in LEVELS:
        s = _state(pool, name, world.version, level)
        assert by_level[level]["coverage"] == pytest.approx(s["covered"] / s["resolved"])
    _check_distribution(p, float(world.market.close[world.latest_ts]))

    # the metric, read at scrape time from the same table
    def exported() -> float | None:
        prefix = f'rayapp_interval_coverage{{horizon_h="1",level="0.9",role="champion",version="{world.version}"}}'
        for line in httpx.get(f"{app_url}/metrics", timeout=30).text.splitlines():
            if line.startswith(prefix):
                return float(line.split()[-1])
        return None

    value = wait_until(exported, 30, interval_s=0.5, what="rayapp_interval_coverage for the champion")
    st = _state(pool, name, world.version)
    assert value == pytest.approx(st["covered"] / st["resolved"])
    text = httpx.get(f"{app_url}/metrics", timeout=30).text
    assert f'rayapp_interval_alpha{{horizon_h="1",level="0.5",role="champion",version="{world.version}"}}' in text
    assert "rayapp_interval_coverage_margin 0.03" in text

    # the track record: live coverage per level of the resolved champion forecasts
    rec = httpx.get(f"{app_url}/track-record", timeout=30).json()
    cov = {c["level"]: c for c in rec["coverage"]}
    assert sorted(cov) == LEVELS
    for level, hits in logged_interval_hits(pool, SYMBOL, LEVELS).items():
        assert (cov[level]["resolved"], cov[level]["covered"]) == (len(hits), sum(hits))
        assert cov[level]["methods"] and all(m.startswith("cqr_vol") for m in cov[level]["methods"])


def test_the_configured_step_overrides_the_bundles(world) -> None:
    from rayapp.registry import load_version
    from rayapp.serving.predictor import score

    model = load_version(world.settings, world.version)
    values = {n: float(world.market.features[n].iloc[-1]) for n in FEATURE_NAMES}
    assert score(model, values, FSV)["aci_gamma"] == pytest.approx(model.bundle.intervals.aci_gamma)
    assert score(model, values, FSV, aci_gamma=0.02)["aci_gamma"] == pytest.approx(0.02)  # / h, h = 1


# ---- a bundle from before the interval model ----------------------------------------------------
def test_a_legacy_bundle_still_serves_its_band_labelled(settings, pg_url, serving_redis, world, pool) -> None:
    from rayapp.serving.deployments import build_local_api
    from rayapp.testing.serving import fit_bundle, log_and_promote, train_booster
    from tests.serving.fixtures import make_serving_settings

    s = make_serving_settings(settings, pg_url, serving_redis, model="legacy_bundle_model")
    booster = train_booster(world.market, depth=2, rounds=10)
    bundle = fit_bundle(booster, world.market, intervals=False)
    version = log_and_promote(s, booster, bundle)
    with TestClient(build_local_api(s, background=False, shadow=False, poll=False)) as client:
        r = client.post("/predict", json={"symbol": SYMBOL}, headers={"X-API-Key": s.serving.api_key})
        assert r.status_code == 200, r.text
        p = r.json()
        assert p["model_version"] == version and p["logged"]
        iv = p["interval"]
        assert iv["method"] == "constant_conformal_legacy" and iv["level"] == pytest.approx(0.9)
        assert p["quantiles"] is None and p["volatility"] is None and len(p["intervals"]) == 1
        assert (iv["low"], iv["high"]) == pytest.approx(
            (p["expected_return"] + bundle.conformal.q_low, p["expected_return"] + bundle.conformal.q_high)
        )
        assert iv["coverage"] is None and iv["alpha_t"] is None
        with pool.connection() as conn:
            row = conn.execute(
                "SELECT interval_method, quantiles, volatility, aci_gamma FROM predictions WHERE prediction_id = %s",
                (p["prediction_id"],),
            ).fetchone()
        assert row == ("constant_conformal_legacy", None, None, None)
        # its coverage is counted too; with no ACI step its alpha_t stays nominal
        _resolve(s, pool)
        st = _state(pool, "legacy_bundle_model", version)
        assert st is not None and st["resolved"] == 1 and st["alpha_t"] == pytest.approx(0.1)

        def counted() -> dict[str, Any] | None:
            q = client.post("/predict", json={"symbol": SYMBOL}, headers={"X-API-Key": s.serving.api_key}).json()
            return q if q["interval"]["resolved"] else None

        got = wait_until(counted, 30, interval_s=0.5, what="the legacy forecast's coverage")
        assert got["interval"]["coverage"] == st["covered"] and got["interval"]["method"] == "constant_conformal_legacy"
