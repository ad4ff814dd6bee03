"""The serving pieces outside Serve: lookup fallbacks on the real stores, the Wilson interval, the
dashboard mount, the body limit on chunked bodies, the CLI and serve_config.yaml."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient

from rayapp.testing.serving import FEATURE_NAMES, make_market, write_offline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def lookup(serving_settings, pool):
    from rayapp.serving.feature_lookup import FeatureLookup

    return FeatureLookup(serving_settings, pool=pool)


def test_stale_online_vector_falls_back_to_newer_offline_row(lookup, pool, serving_redis) -> None:
    from rayapp.features import RedisOnlineStore

    now = pd.Timestamp.now(tz="UTC").floor("h")
    market = make_market(30, now - pd.Timedelta(hours=1), seed=5)
    write_offline(pool, market, fsv="fallback-test", symbol="STALEUSDT")
    old = market.features.index[0]  # 30 h old: beyond the 4 h limit of the test settings
    RedisOnlineStore(serving_redis.url).write("STALEUSDT", "fallback-test", old, market.features.iloc[0].to_dict())
    got = lookup.lookup("STALEUSDT", "fallback-test")
    assert got["found"] and got["source"] == "offline" and got["fallback"]
    assert got["reason"] == "online vector stale" and not got["stale"]
    assert got["ts"] == market.features.index[-1].isoformat()
    assert got["values"]["rsi"] == pytest.approx(market.features["rsi"].iloc[-1])
    assert set(got["values"]) == set(FEATURE_NAMES)


def test_stale_everywhere_is_served_but_flagged(lookup, serving_redis) -> None:
    from rayapp.features import RedisOnlineStore

    old = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(days=3)
    RedisOnlineStore(serving_redis.url).write("OLDUSDT", "only-online", old, {"rsi": 40.0, "atr": math.nan})
    got = lookup.lookup("OLDUSDT", "only-online")
    assert got["found"] and got["source"] == "online" and got["stale"]
    assert got["values"] == {"rsi": 40.0, "atr": None}
    missing = lookup.lookup("NONEUSDT", "only-online")
    assert not missing["found"] and "no row" in missing["reason"]


def test_wilson_interval() -> None:
    from rayapp.serving.prediction_log import wilson

    assert wilson(0, 0) == (None, None)
    lo, hi = wilson(55, 100)
    assert lo == pytest.approx(0.4524, abs=1e-3) and hi == pytest.approx(0.6438, abs=1e-3)
    lo, hi = wilson(10, 10)
    assert hi == pytest.approx(1.0) and 0.69 < lo < 0.73


def test_forecasts_of_two_registered_models_with_the_same_version_are_two_rows(pool) -> None:
    """The forecast key includes the registered model: version "3" of two models is two forecasts.

    On a plain pool connection, not the `db` fixture: that one empties every data table, and the
    serving world's offline features must outlive this test.
    """
    from datetime import UTC, datetime

    from rayapp.serving import prediction_log

    ts = datetime(2001, 1, 1, tzinfo=UTC)  # an hour no other test forecasts

    def row(model: str) -> dict:
        return {
            "prediction_id": prediction_log.prediction_id("BTCUSDT", ts.isoformat(), 1, model, "3"),
            "symbol": "BTCUSDT",
            "ts": ts,
            "horizon_h": 1,
            "model_name": model,
            "model_version": "3",
            "feature_set_version": "v",
            "expected_return": 0.001,
            "p_up": 0.6,
            "direction": 1,
            "interval_low": None,
            "interval_high": None,
            "features": {"rsi": 50.0},
            "explanation": None,
        }

    a, b = row("bitcoin_predictor"), row("bitcoin_predictor_shadow")
    assert a["prediction_id"] != b["prediction_id"]
    with pool.connection() as db:
        try:
            assert prediction_log.insert(db, a) and prediction_log.insert(db, b)
            assert not prediction_log.insert(db, a)  # the same forecast again: logged once
            got = db.execute("SELECT model_name FROM predictions WHERE ts = %s ORDER BY model_name", (ts,)).fetchall()
            assert [r[0] for r in got] == ["bitcoin_predictor", "bitcoin_predictor_shadow"]
            assert prediction_log.get(db, b["prediction_id"])["model_name"] == "bitcoin_predictor_shadow"
        finally:
            db.execute("DELETE FROM predictions WHERE ts = %s", (ts,))
            db.commit()


def _bare_app(settings):
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

    metrics = ServingMetrics()
    return build_api(settings, PredictionService(settings, None, None, None, metrics, None), metrics, background=False)


def test_dashboard_is_mounted_when_built(serving_settings, tmp_path: Path) -> None:
    s = serving_settings.model_copy(deep=True)
    s.serving.static_dir = str(tmp_path / "none")
    assert TestClient(_bare_app(s)).get("/").json()["docs"] == "/docs"
    (tmp_path / "index.html").write_text("<html>rayapp dashboard</html>")
    (tmp_path / "app.js").write_text("console.log(1)")
    s.serving.static_dir = str(tmp_path)
    client = TestClient(_bare_app(s))
    assert "rayapp dashboard" in client.get("/").text
    assert client.get("/app.js").text == "console.log(1)"
    assert client.get("/health").json() == {"status": "ok"}  # API routes win over the mount
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_chunked_body_over_the_limit_is_413(serving_settings) -> None:
    client = TestClient(_bare_app(serving_settings))

    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    r = client.post(
        "/predict",
        content=chunks(),
        headers={"X-API-Key": serving_settings.serving.api_key, "Content-Type": "application/json"},
    )
    assert r.status_code == 413


@pytest.mark.integration  # `rayapp` subprocesses
def test_cli_help() -> None:
    for cmd in ("serve", "demo"):
        r = subprocess.run(
            [sys.executable, "-m", "rayapp.cli", cmd, "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
        )
        assert r.returncode == 0 and "key=value" in r.stdout, r.stderr


def test_serve_config_is_a_valid_serve_deploy_config() -> None:
    from ray.serve.schema import ServeDeploySchema

    cfg = (
        ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve_config.yaml").read_text()))
        if hasattr(ServeDeploySchema, "model_validate")
        else ServeDeploySchema.parse_obj(yaml.safe_load((ROOT / "serve_config.yaml").read_text()))
    )
    app = cfg.applications[0]
    assert app.import_path == "rayapp.serving.deployments:app_builder"
    from rayapp.serving.deployments import app_builder  # the import path resolves

    assert callable(app_builder)
    names = {d.name for d in app.deployments}
    assert names == {"Ingress", "FeatureLookup", "Predictor", "Explainer", "ShadowPredictor"}
