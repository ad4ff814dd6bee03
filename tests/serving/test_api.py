"""Every endpoint of the deployed Serve app, on the real stack, and its validation errors."""

from __future__ import annotations

import math

import httpx
import pandas as pd
import pytest

from rayapp.testing import wait_until
from rayapp.testing.serving import FEATURE_NAMES, FSV


def _predict(app_url: str, auth: dict[str, str], **body: object) -> httpx.Response:
    return httpx.post(f"{app_url}/predict", json={"symbol": "BTCUSDT", **body}, headers=auth, timeout=30)


def test_health_ready_and_docs(app_url: str) -> None:
    assert httpx.get(f"{app_url}/health").json() == {"status": "ok"}
    ready = httpx.get(f"{app_url}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["ready"] and body["model_loaded"] and body["redis"] and body["postgres"]
    spec = httpx.get(f"{app_url}/openapi.json").json()
    for path in (
        "/health",
        "/ready",
        "/predict",
        "/predictions/latest",
        "/predictions",
        "/explain/{prediction_id}",
        "/model",
        "/report",
        "/metrics",
        "/track-record",
    ):
        assert path in spec["paths"], path
    assert httpx.get(f"{app_url}/docs").status_code == 200


def test_predict_from_store_is_complete_and_logged(app_url: str, auth: dict[str, str], world, pool) -> None:
    r = _predict(app_url, auth)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["model_version"] == world.version
    assert p["feature_set_version"] == FSV
    assert p["ts"] == world.latest_ts.isoformat()
    assert 0 <= p["p_up"] <= 1
    assert p["direction"] == (1 if p["p_up"] >= 0.5 else -1)
    # the 90 % interval of the h-hour log return (tests/serving/test_intervals.py: the distribution)
    assert p["interval"]["low"] < 0 < p["interval"]["high"] and p["interval"]["level"] == pytest.approx(0.9)
    assert set(p["features"]) == set(FEATURE_NAMES)
    assert p["feature_source"]["source"] == "online" and not p["degraded"]
    ex = p["explanation"]
    assert ex["method"] in ("pred_contribs", "tree_explainer")
    # SHAP additivity: base + contributions = the booster's log-odds, which gives the raw P(up)
    # (the fixture's calibration is the identity, so that is the served P(up)).
    assert math.isclose(1 / (1 + math.exp(-ex["margin"])), p["p_up"], abs_tol=1e-4)
    assert ex["top_positive"] or ex["top_negative"]
    assert ex["text"].startswith("P(up)")
    assert p["logged"] and p["prediction_id"]
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT model_version, p_up, features->>'rsi' FROM predictions WHERE prediction_id = %s",
            (p["prediction_id"],),
        ).fetchone()
    assert row[0] == world.version and row[1] == pytest.approx(p["p_up"])
    assert float(row[2]) == pytest.approx(world.market.features["rsi"].iloc[-1])
    # same hour, same model: the same id, still one row
    again = _predict(app_url, auth).json()
    assert again["prediction_id"] == p["prediction_id"]


def _cache_counts(app_url: str) -> dict[str, float]:
    out = {"hit": 0.0, "miss": 0.0}
    for line in httpx.get(f"{app_url}/metrics").text.splitlines():
        for k in out:
            if line.startswith(f'rayapp_prediction_cache_total{{result="{k}"}}'):
                out[k] = float(line.split()[-1])
    return out


def test_repeated_vector_is_answered_from_the_cache(app_url: str, auth: dict[str, str], world) -> None:
    """Same (model version, vector): the cached prediction and explanation, computed once; a new
    vector is computed by the deployments. Both answers equal what the deployments compute."""
    vec = {n: float(world.market.features[n].iloc[20]) for n in FEATURE_NAMES}
    c0 = _cache_counts(app_url)
    first = _predict(app_url, auth, features=vec).json()
    c1 = _cache_counts(app_url)
    second = _predict(app_url, auth, features=vec).json()
    c2 = _cache_counts(app_url)
    assert c1["miss"] == c0["miss"] + 1 and c2["hit"] == c1["hit"] + 1 and c2["miss"] == c1["miss"]
    for k in ("p_up", "expected_return", "interval", "model_version", "explanation", "features"):
        assert second[k] == first[k], k
    other = dict(vec, rsi=vec["rsi"] + 7.0)
    third = _predict(app_url, auth, features=other).json()
    assert _cache_counts(app_url)["miss"] == c2["miss"] + 1
    assert third["explanation"]["contributions"] != first["explanation"]["contributions"]
    # the served numbers are the model's: SHAP additivity holds on the computed and cached answers
    for p in (first, second, third):
        assert math.isclose(1 / (1 + math.exp(-p["explanation"]["margin"])), p["p_up"], abs_tol=1e-4)


def test_predict_explicit_vector_and_validation(app_url: str, auth: dict[str, str], world) -> None:
    vec = {n: float(world.market.features[n].iloc[10]) for n in FEATURE_NAMES}
    vec["social_sentiment"] = None
    r = _predict(app_url, auth, features=vec, explain=False)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["prediction_id"] is None and not p["logged"] and p["explanation"] is None
    assert p["feature_source"]["source"] == "request"

    def errors(resp: httpx.Response) -> list[tuple[str, ...]]:
        assert resp.status_code == 422, resp.text
        return [tuple(str(x) for x in e["loc"]) for e in resp.json()["detail"]]

    bad = dict(vec, not_a_feature=1.0)
    bad.pop("rsi")
    locs = errors(_predict(app_url, auth, features=bad))
    assert ("body", "features", "not_a_feature") in locs and ("body", "features", "rsi") in locs
    assert ("body", "symbol") in errors(_predict(app_url, auth, symbol="btc-usd"))
    assert ("body", "symbol") in errors(_predict(app_url, auth, symbol="ETHUSDT"))  # not served
    assert ("body", "explain") in errors(_predict(app_url, auth, explain="maybe"))
    assert ("body", "extra") in errors(_predict(app_url, auth, extra=1))
    raw = httpx.post(
        f"{app_url}/predict",
        content=b'{"symbol": "BTCUSDT", "features": {"rsi": NaN}}',
        headers={**auth, "Content-Type": "application/json"},
    )
    assert raw.status_code == 422
    assert httpx.get(f"{app_url}/predictions", params={"limit": 0}).status_code == 422
    assert httpx.get(f"{app_url}/predictions", params={"since": "yesterday"}).status_code == 422
    assert httpx.get(f"{app_url}/explain/not-a-uuid").status_code == 422


def test_security(app_url: str, auth: dict[str, str], world) -> None:
    assert _predict(app_url, {}).status_code == 401
    assert _predict(app_url, {"X-API-Key": "wrong"}).status_code == 401
    assert httpx.post(f"{app_url}/admin/reload-model").status_code == 401
    big = httpx.post(f"{app_url}/predict", content=b"x" * 5000, headers={**auth, "Content-Type": "application/json"})
    assert big.status_code == 413
    pre = httpx.options(
        f"{app_url}/predict", headers={"Origin": "http://dashboard.test", "Access-Control-Request-Method": "POST"}
    )
    assert pre.headers.get("access-control-allow-origin") == "http://dashboard.test"
    other = httpx.get(f"{app_url}/health", headers={"Origin": "http://evil.test"})
    assert "access-control-allow-origin" not in other.headers
    # no secret anywhere a client can read
    for path in ("/model", "/report", "/ready", "/metrics", "/openapi.json"):
        text = httpx.get(f"{app_url}{path}", timeout=30).text
        assert auth["X-API-Key"] not in text, path
        assert "password" not in text.lower(), path


def test_predictions_listing_explain_and_latest(app_url: str, auth: dict[str, str], world) -> None:
    p = _predict(app_url, auth).json()
    latest = httpx.get(f"{app_url}/predictions/latest", params={"symbol": "BTCUSDT"})
    assert latest.status_code == 200 and latest.json()["prediction_id"] == p["prediction_id"]
    assert latest.json()["explanation"]["text"] == p["explanation"]["text"]
    listing = httpx.get(f"{app_url}/predictions", params={"limit": 5}).json()
    assert listing["count"] >= 1 and any(i["prediction_id"] == p["prediction_id"] for i in listing["items"])
    later = httpx.get(f"{app_url}/predictions", params={"since": p["ts"]}).json()
    assert all(i["ts"] > p["ts"] for i in later["items"])
    ex = httpx.get(f"{app_url}/explain/{p['prediction_id']}")
    assert ex.status_code == 200 and ex.json()["contributions"] == p["explanation"]["contributions"]
    missing = httpx.get(f"{app_url}/explain/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


def test_model_report_metrics(app_url: str, auth: dict[str, str], world) -> None:
    m = httpx.get(f"{app_url}/model", timeout=30).json()
    assert m["loaded"] and m["version"] == world.version
    assert m["feature_names"] == FEATURE_NAMES and m["horizon_h"] == 1
    assert m["gate"]["promote"] is True and "accuracy" in m["cv_metrics"]["mean"]
    assert m["explainer"]["method"] in m["explainer"]["ms_per_row"]
    rep = httpx.get(f"{app_url}/report", timeout=30).json()
    assert rep["model_version"] == world.version
    assert rep["reports"]["training"]["artifacts"]["training.gate"]["promote"] is True
    assert "ablation.recent_groups" in rep["reports"]["ablation"]["artifacts"]
    _predict(app_url, auth)
    text = httpx.get(f"{app_url}/metrics").text
    assert 'rayapp_http_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert "rayapp_http_request_duration_seconds_bucket" in text
    assert "rayapp_prediction_p_up_bucket" in text
    assert f'version="{world.version}"' in text
    assert 'rayapp_feature_staleness_seconds{symbol="BTCUSDT"}' in text


def test_track_record_after_outcomes_resolve(app_url: str, auth: dict[str, str], world, pool) -> None:
    """Outcomes fill in once the horizon's candle has closed; the record scores them."""
    # The latest hour's outcome candle (t+1) closed an hour ago: it resolves.
    _predict(app_url, auth)
    r = httpx.post(f"{app_url}/admin/resolve-outcomes", headers=auth, timeout=30)
    assert r.status_code == 200, r.text

    def resolved() -> dict | None:
        rec = httpx.get(f"{app_url}/track-record").json()
        return rec if rec["resolved"] else None

    rec = wait_until(resolved, 20, interval_s=0.5, what="a resolved outcome in /track-record")
    assert rec["resolved"] >= 1
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT direction, realized_return, realized_direction, ts FROM predictions "
            "WHERE symbol = 'BTCUSDT' AND realized_return IS NOT NULL"
        ).fetchall()
    c = world.market.close
    for _direction, rr, rd, ts in rows:
        t = ts.astimezone(c.index.tz)
        expected = math.log(c[t + pd.Timedelta(hours=1)] / c[t])
        assert rr == pytest.approx(expected) and rd == (1 if expected > 0 else -1)
    hits = sum(1 for d, _, rd, _ in rows if d == rd)
    assert rec["hits"] == hits and rec["resolved"] == len(rows)
    lo, hi = rec["accuracy_ci95"]
    assert lo <= rec["accuracy"] <= hi
    assert rec["buy_and_hold_return"] == pytest.approx(math.expm1(sum(r[1] for r in rows)))


def test_prices_are_the_newest_closes_in_order(app_url: str, world) -> None:
    r = httpx.get(f"{app_url}/prices", params={"hours": 24}, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "BTCUSDT" and body["source"] == "binance"
    closes = world.market.close
    assert len(body["items"]) == 24
    got = pd.Series(
        [p["close"] for p in body["items"]], index=pd.to_datetime([p["ts"] for p in body["items"]], utc=True)
    )
    pd.testing.assert_series_equal(got, closes.iloc[-24:], check_names=False, check_freq=False)
    assert httpx.get(f"{app_url}/prices", params={"hours": 0}).status_code == 422
    assert httpx.get(f"{app_url}/prices", params={"hours": 99999}).status_code == 422
    unknown = httpx.get(f"{app_url}/prices", params={"symbol": "DOGEUSDT"})
    assert unknown.status_code == 422 and "unknown symbol" in unknown.text


def test_freshness_lists_the_newest_row_per_source(app_url: str, world) -> None:
    r = httpx.get(f"{app_url}/freshness", timeout=10)
    assert r.status_code == 200, r.text
    items = {(i["dataset"], i["source"]): i for i in r.json()["items"]}
    candles = items[("candles", "binance")]
    assert pd.Timestamp(candles["latest"]) == world.market.close.index[-1]
    assert candles["age_s"] > 0
    assert pd.Timestamp(items[("features", FSV)]["latest"]) == world.latest_ts


def _pipeline_history(pool, job: str) -> dict[str, int]:
    """Runs of one job as a scheduler leaves them: two successes, a skipped slot, a failure."""
    from datetime import UTC, datetime, timedelta

    from rayapp.warehouse.pipeline import claim, finish, record_slots, upsert_jobs

    now = datetime.now(UTC).replace(microsecond=0)
    ids = {}
    with pool.connection() as conn:
        upsert_jobs(
            conn,
            [{"job": job, "cron": "*/15 * * * *", "enabled": True, "clock": "wall", "next_slot": now, "timeout_s": 60}],
        )
        for i, status in enumerate(("succeeded", "succeeded", "failed")):
            slot = now - timedelta(minutes=45 - 15 * i)
            run_id = claim(
                conn, job=job, clock="wall", slot=slot, trigger="schedule", max_attempts=1, runner="t", lateness_ms=5
            )
            finish(
                conn, run_id, attempt=1, status=status, rows=(10, 7, 1), error="boom" if status == "failed" else None
            )
            ids[f"{status}{i}"] = run_id
        record_slots(
            conn, job=job, clock="wall", slots=[now - timedelta(minutes=60)], status="skipped", error="x", runner="t"
        )
    return ids


def test_pipeline_lists_each_job_with_its_last_run_and_last_success(app_url: str, pool) -> None:
    import uuid

    job = f"refresh_{uuid.uuid4().hex[:6]}"
    ids = _pipeline_history(pool, job)
    r = httpx.get(f"{app_url}/pipeline", timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["clock"] == {"id": "wall", "kind": "wall", "speed": 1.0}
    assert body["scheduler"]["alive"] is True  # upsert_jobs wrote a heartbeat just now
    entry = next(j for j in body["jobs"] if j["job"] == job)
    assert entry["last_run"]["run_id"] == ids["failed2"] and entry["last_run"]["error"] == "boom"
    assert entry["last_success"]["run_id"] == ids["succeeded1"]
    assert 30 * 60 - 5 <= entry["last_success_age_s"] <= 30 * 60 + 60  # its slot was 30 min ago
    assert entry["counts"] == {"succeeded": 2, "failed": 1, "skipped": 1}
    runs = httpx.get(f"{app_url}/pipeline/runs", params={"job": job, "limit": 2}, timeout=10).json()["items"]
    assert [x["status"] for x in runs] == ["skipped", "failed"]  # newest recorded first
    assert runs[1]["run_id"] == ids["failed2"]
    assert runs[1]["rows_read"] == 10 and runs[1]["rows_written"] == 7 and runs[1]["rows_quarantined"] == 1
    bad = httpx.get(f"{app_url}/pipeline/runs", params={"status": "exploded"}, timeout=10)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "status"]
    bad = httpx.get(f"{app_url}/pipeline/runs", params={"job": "x; DROP TABLE"}, timeout=10)
    assert bad.status_code == 422


def test_pipeline_metrics_come_from_the_run_history(app_url: str, pool) -> None:
    import uuid

    job = f"resolve_{uuid.uuid4().hex[:6]}"
    _pipeline_history(pool, job)
    text = httpx.get(f"{app_url}/metrics", timeout=10).text
    assert f'rayapp_pipeline_runs_total{{pipeline_job="{job}",status="succeeded"}} 2.0' in text
    assert f'rayapp_pipeline_runs_total{{pipeline_job="{job}",status="skipped"}} 1.0' in text
    assert f'rayapp_pipeline_last_success_timestamp_seconds{{pipeline_job="{job}"}}' in text
    assert f'rayapp_pipeline_run_duration_seconds_count{{pipeline_job="{job}"}} 3.0' in text
    assert f'rayapp_pipeline_run_duration_seconds_bucket{{le="+Inf",pipeline_job="{job}"}} 3.0' in text
