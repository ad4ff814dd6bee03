"""GET /models: registry versions and aliases, the lifecycle's state, history and live scores.

The deployed app answers from the real MLflow registry and PostgreSQL; live accuracy and log loss
are checked against forecasts with known outcomes written here. With the registry down the answer
is a 503 saying so; with PostgreSQL down the registry part still answers (in-process app over the
same routes, pointed at a registry or a database that does not answer).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from rayapp.services import free_port

# Versions no registry of this package reaches (its versions count from 1), hours no test forecasts.
CHAMP_V, SHADOW_V = "9001", "9002"
T0 = datetime(2002, 3, 4, tzinfo=UTC)


def _forecast(name: str, version: str, role: str, i: int, p_up: float, realized: int | None) -> dict[str, Any]:
    from rayapp.serving import prediction_log

    ts = T0 + timedelta(hours=i)
    return {
        "row": {
            "prediction_id": prediction_log.prediction_id("BTCUSDT", ts.isoformat(), 1, name, version),
            "symbol": "BTCUSDT",
            "ts": ts,
            "horizon_h": 1,
            "model_name": name,
            "model_version": version,
            "feature_set_version": "models-api-test",
            "expected_return": 0.001 if p_up >= 0.5 else -0.001,
            "p_up": p_up,
            "direction": 1 if p_up >= 0.5 else -1,
            "interval_low": None,
            "interval_high": None,
            "features": {"rsi": 50.0},
            "explanation": None,
            "role": role,
        },
        "realized": realized,
    }


# (p_up, realised direction or None = unresolved) per hour
CHAMP = [(0.7, 1), (0.6, -1), (0.3, -1), (0.8, 1), (0.55, None)]
SHADOW = [(0.9, 1), (0.4, 1), (0.2, -1), (0.65, None)]


def _expected(rows: list[tuple[float, int | None]]) -> tuple[float, float]:
    resolved = [(p, r) for p, r in rows if r is not None]
    acc = sum(1 for p, r in resolved if (1 if p >= 0.5 else -1) == r) / len(resolved)
    ll = sum(-math.log(p if r == 1 else 1 - p) for p, r in resolved) / len(resolved)
    return acc, ll


@pytest.fixture
def lifecycle_history(world: Any, pool: Any) -> Iterator[dict[str, Any]]:
    """Forecasts with known outcomes for two versions (champion and shadow role), the policy's
    state, and events including a shadow and a watch verdict; removed afterwards."""
    from rayapp.serving import prediction_log
    from rayapp.warehouse import model_events

    name = world.settings.mlflow.registered_model
    items = [_forecast(name, CHAMP_V, "champion", i, p, r) for i, (p, r) in enumerate(CHAMP)]
    items += [_forecast(name, SHADOW_V, "shadow", i, p, r) for i, (p, r) in enumerate(SHADOW)]
    clock = datetime(2002, 3, 5, tzinfo=UTC)
    ids: list[int] = []
    with pool.connection() as conn:
        for it in items:
            assert prediction_log.insert(conn, it["row"])
            if it["realized"] is not None:
                conn.execute(
                    "UPDATE predictions SET realized_direction = %s, realized_return = %s, resolved_at = now()"
                    " WHERE prediction_id = %s",
                    (it["realized"], 0.01 * it["realized"], it["row"]["prediction_id"]),
                )
        conn.commit()
        had_state = conn.execute("SELECT 1 FROM model_lifecycle WHERE model_name = %s", (name,)).fetchone()
        before = model_events.state(conn, name)
        model_events.save_state(
            conn,
            model_events.LifecycleState(
                name, shadow_version=SHADOW_V, shadow_role="challenger", shadow_since=clock, last_retrain_at=clock
            ),
        )
        ev = {"model_name": name, "clock_ts": clock}
        ids.append(model_events.record(conn, kind="trigger", trigger="drift", decision="fired", **ev))
        ids.append(
            model_events.record(conn, kind="gate", version=SHADOW_V, other_version=CHAMP_V, decision="passed", **ev)
        )
        ids.append(
            model_events.record(
                conn,
                kind="shadow_verdict",
                version=SHADOW_V,
                other_version=CHAMP_V,
                decision="promote",
                p_value=0.03,
                evidence={"paired": 3, "delta_log_loss": -0.12},
                **ev,
            )
        )
        ids.append(
            model_events.record(
                conn,
                kind="watch_verdict",
                version=SHADOW_V,
                other_version=CHAMP_V,
                decision="kept",
                p_value=0.41,
                evidence={"paired": 3, "delta_log_loss": 0.01},
                **ev,
            )
        )
        ids.append(model_events.record(conn, kind="promotion", version=SHADOW_V, other_version=CHAMP_V, **ev))
    try:
        yield {"name": name, "event_ids": ids}
    finally:
        with pool.connection() as conn:
            conn.execute(
                "DELETE FROM predictions WHERE model_name = %s AND model_version = ANY(%s)", (name, [CHAMP_V, SHADOW_V])
            )
            conn.execute("DELETE FROM model_events WHERE event_id = ANY(%s)", (ids,))
            conn.commit()
            if had_state:
                model_events.save_state(conn, before)
            else:
                conn.execute("DELETE FROM model_lifecycle WHERE model_name = %s", (name,))
                conn.commit()


def test_models_lists_versions_aliases_and_the_lifecycle(
    app_url: str, world: Any, lifecycle_history: dict[str, Any]
) -> None:
    from rayapp.registry import setup_mlflow, tag_version

    name = lifecycle_history["name"]
    setup_mlflow(world.settings)
    tag_version(name, world.version, {"lifecycle.gate": "passed"})
    r = httpx.get(f"{app_url}/models", timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()

    # ---- the registry
    assert body["name"] == name and body["registered"]
    assert body["aliases"]["champion"] == world.version
    assert set(body["aliases"]) >= {"champion", "challenger", "shadow"}
    versions = {v["version"]: v for v in body["versions"]}
    nums = [int(v["version"]) for v in body["versions"]]
    assert nums == sorted(nums, reverse=True)  # newest first
    champ = versions[world.version]
    assert "champion" in champ["aliases"] and champ["run_id"] and champ["created_at"]
    assert champ["tags"]["lifecycle.gate"] == "passed" and champ["tags"]["feature_set_version"]
    for alias, v in body["aliases"].items():
        if v is not None:
            assert alias in versions[v]["aliases"]
    assert body["serving"]["champion"] == {
        "loaded": True,
        "version": world.version,
        "feature_set_version": champ["tags"]["feature_set_version"],
        "last_error": None,
    }

    # ---- the lifecycle (PostgreSQL)
    life = body["lifecycle"]
    assert life["available"] and life["error"] is None
    st = life["state"]
    assert (st["shadow_version"], st["shadow_role"], st["retrain_running"]) == (SHADOW_V, "challenger", False)
    assert datetime.fromisoformat(st["shadow_since"]) == datetime(2002, 3, 5, tzinfo=UTC)
    live = {(s["version"], s["role"]): s for s in life["live"]}
    for version, role, rows in ((CHAMP_V, "champion", CHAMP), (SHADOW_V, "shadow", SHADOW)):
        s = live[(version, role)]
        acc, ll = _expected(rows)
        assert s["served"] == len(rows) and s["resolved"] == sum(1 for _, r in rows if r is not None)
        assert s["accuracy"] == pytest.approx(acc) and s["log_loss"] == pytest.approx(ll)
    assert (CHAMP_V, "shadow") not in live and (SHADOW_V, "champion") not in live
    cmp = life["latest_comparison"]  # the newest shadow or watch verdict, not the later promotion
    assert (cmp["kind"], cmp["p_value"], cmp["decision"]) == ("watch_verdict", 0.41, "kept")
    assert cmp["evidence"] == {"paired": 3, "delta_log_loss": 0.01}
    ours = [e for e in life["events"] if e["event_id"] in lifecycle_history["event_ids"]]
    assert [e["kind"] for e in ours] == ["trigger", "gate", "shadow_verdict", "watch_verdict", "promotion"]
    assert len(life["events"]) <= 50
    assert [e["event_id"] for e in life["events"]] == sorted(e["event_id"] for e in life["events"])

    spec = httpx.get(f"{app_url}/openapi.json", timeout=30).json()
    assert "/models" in spec["paths"] and "Models" in spec["components"]["schemas"]


def _in_process_app(settings: Any, pool: Any) -> TestClient:
    """The app's routes over a service with no deployments (the /models route needs none)."""
    from rayapp.serving.app import build_api
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.service import PredictionService

    metrics = ServingMetrics()
    service = PredictionService(settings, None, None, None, metrics, pool)
    return TestClient(build_api(settings, service, metrics, background=False))


def test_models_with_the_registry_down_is_503(world: Any, pool: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rayapp.registry import setup_mlflow

    s = world.settings.model_copy(deep=True)
    s.mlflow.tracking_uri = f"http://127.0.0.1:{free_port()}"  # an MLflow server that is not running
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        r = _in_process_app(s, pool).get("/models")
    finally:  # the registry client points MLflow's process-wide URI at what it was given
        setup_mlflow(world.settings)
    assert r.status_code == 503
    assert r.json()["detail"].startswith("model registry unavailable")


def test_models_with_the_database_down_still_lists_the_registry(world: Any) -> None:
    from psycopg_pool import ConnectionPool

    dead = ConnectionPool(
        f"postgresql://rayapp@127.0.0.1:{free_port()}/rayapp", open=False, timeout=2, min_size=0, max_size=1
    )
    dead.open(wait=False)
    try:
        r = _in_process_app(world.settings, dead).get("/models")
    finally:
        dead.close()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["aliases"]["champion"] == world.version
    assert world.version in {v["version"] for v in body["versions"]}
    life = body["lifecycle"]
    assert life["available"] is False and life["error"].startswith("database unavailable")
    assert life["state"] is None and life["live"] == [] and life["events"] == []
    assert body["serving"]["champion"]["loaded"] is False  # no Predictor in this app
    assert body["serving"]["shadow"] is None
