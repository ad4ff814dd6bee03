"""GET /models/scores (live accuracy and log loss with 95% intervals per version and role) and
GET /models/importance (each version's logged global SHAP importance), on the real Serve app."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rayapp.serving.models_api import mean_ci, wilson

VERSION = "9101"  # no registry of this package reaches it
T0 = datetime(2002, 6, 1, tzinfo=UTC)
# (p_up, realised direction; None = unresolved)
ROWS = [(0.7, 1), (0.6, -1), (0.3, -1), (0.8, 1), (0.65, 1), (0.2, 1), (0.55, None)]


def test_wilson_and_mean_intervals() -> None:
    lo, hi = wilson(8, 10)  # type: ignore[misc]
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the textbook Wilson 95% interval
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0  # type: ignore[index]
    assert mean_ci(0.5, 0.2, 1) is None and mean_ci(None, 0.2, 9) is None
    lo, hi = mean_ci(0.5, 0.3, 9)  # type: ignore[misc]
    assert math.isclose(hi - 0.5, 1.959964 * 0.1) and math.isclose(0.5 - lo, 1.959964 * 0.1)


@pytest.fixture
def forecasts(world: Any, pool: Any) -> Any:
    from rayapp.serving import prediction_log

    name = world.settings.mlflow.registered_model
    with pool.connection() as conn:
        for i, (p, real) in enumerate(ROWS):
            ts = T0 + timedelta(hours=i)
            pid = prediction_log.prediction_id("BTCUSDT", ts.isoformat(), 1, name, VERSION)
            row = {
                "prediction_id": pid,
                "symbol": "BTCUSDT",
                "ts": ts,
                "horizon_h": 1,
                "model_name": name,
                "model_version": VERSION,
                "feature_set_version": "models-scores-test",
                "expected_return": 0.0,
                "p_up": p,
                "direction": 1 if p >= 0.5 else -1,
                "interval_low": None,
                "interval_high": None,
                "features": {"rsi": 50.0},
                "explanation": None,
                "role": "shadow",
            }
            assert prediction_log.insert(conn, row)
            if real is not None:
                conn.execute(
                    "UPDATE predictions SET realized_direction = %s, realized_return = %s WHERE prediction_id = %s",
                    (real, 0.01 * real, pid),
                )
        conn.commit()
    yield
    with pool.connection() as conn:
        conn.execute("DELETE FROM predictions WHERE model_name = %s AND model_version = %s", (name, VERSION))
        conn.commit()


def test_scores_have_intervals(app_url: str, forecasts: None) -> None:
    r = httpx.get(f"{app_url}/models/scores", timeout=10)
    assert r.status_code == 200, r.text
    item = next(x for x in r.json()["items"] if x["version"] == VERSION)
    resolved = [(p, y) for p, y in ROWS if y is not None]
    hits = sum(1 for p, y in resolved if (1 if p >= 0.5 else -1) == y)
    losses = [-math.log(p if y == 1 else 1 - p) for p, y in resolved]
    n = len(losses)
    mean = sum(losses) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in losses) / (n - 1))
    assert (item["role"], item["served"], item["resolved"]) == ("shadow", len(ROWS), n)
    assert math.isclose(item["accuracy"], hits / n)
    assert item["accuracy_ci"] == pytest.approx(list(wilson(hits, n)))  # type: ignore[arg-type]
    assert math.isclose(item["log_loss"], mean, rel_tol=1e-9)
    half = 1.959964 * sd / math.sqrt(n)
    assert item["log_loss_ci"] == pytest.approx([mean - half, mean + half])


def test_importance_per_version_from_its_training_run(app_url: str, world: Any) -> None:
    import mlflow

    from rayapp.registry import setup_mlflow

    setup_mlflow(world.settings)
    c = mlflow.MlflowClient()
    mv = c.get_model_version(world.settings.mlflow.registered_model, world.version)
    imp = {"rsi": 0.12, "sma_20": 0.05}
    c.log_dict(mv.run_id, imp, "explain/shap_importance.json")
    r = httpx.get(f"{app_url}/models/importance", params={"limit": 5}, timeout=30)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    mine = next(x for x in items if x["version"] == world.version)
    assert mine["importance"] == imp and mine["error"] is None and "champion" in mine["aliases"]
    assert httpx.get(f"{app_url}/models/importance", params={"limit": 0}, timeout=10).status_code == 422
