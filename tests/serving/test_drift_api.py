"""GET /drift: PSI per feature from the newest drift check, its thresholds, the drifted marked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx


def test_thresholds_are_the_monitoring_stages() -> None:
    from rayapp.monitoring import PSI_ALERT, PSI_WARN
    from rayapp.serving.drift_api import PSI_ALERT as SERVED_ALERT
    from rayapp.serving.drift_api import PSI_WARN as SERVED_WARN

    assert (SERVED_WARN, SERVED_ALERT) == (PSI_WARN, PSI_ALERT)


def test_drift_answers_the_newest_check_per_feature(app_url: str, pool: Any) -> None:
    from rayapp.warehouse import pipeline

    report = {
        "symbol": "BTCUSDT",
        "feature_set_version": "core-v1",
        "reference_rows": 500,
        "current_rows": 168,
        "psi": {"rsi": 0.04, "vol_24h": 0.31, "sma_20": 0.12, "ret_1h": None},
        "drifted": ["vol_24h"],
        "newest_feature_ts": None,
        "staleness_s": None,
        "stale": False,
    }
    slot = datetime(2003, 1, 1, tzinfo=UTC)  # a slot no scheduler of this session records
    ids = []
    with pool.connection() as conn:
        for i, stats in enumerate(
            (
                {"checked": True, "model_version": "1", "hours": 168, "reports": [{**report, "psi": {"rsi": 0.9}}]},
                {"checked": True, "model_version": "7", "hours": 168, "reports": [report]},
                {"checked": False, "reason": "no champion"},  # newer, but it checked nothing
            )
        ):
            run = pipeline.claim(
                conn,
                job="drift",
                clock="test-drift",
                slot=slot + timedelta(hours=i),
                trigger="manual",
                max_attempts=1,
                runner="t",
                lateness_ms=None,
            )
            assert run is not None and pipeline.finish(conn, run, attempt=1, status="succeeded", stats=stats)
            ids.append(run)
    try:
        r = httpx.get(f"{app_url}/drift", timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["run_id"] == ids[1] and body["model_version"] == "7" and body["hours"] == 168
        assert (body["warn"], body["alert"]) == (0.1, 0.25)
        (sym,) = body["symbols"]
        assert sym["symbol"] == "BTCUSDT" and sym["drifted"] == ["vol_24h"] and sym["current_rows"] == 168
        assert [(f["feature"], f["psi"], f["drifted"]) for f in sym["features"]] == [
            ("vol_24h", 0.31, True),
            ("sma_20", 0.12, False),
            ("rsi", 0.04, False),
            ("ret_1h", None, False),  # not computable: listed last
        ]
    finally:
        with pool.connection() as conn:
            conn.execute("DELETE FROM pipeline_runs WHERE run_id = ANY(%s)", (ids,))
            conn.commit()
