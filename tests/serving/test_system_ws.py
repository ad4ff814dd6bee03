"""/ws/system against the real Serve app: component health and the scheduler's jobs, pushed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.sync.client import connect


def recv(ws: Any, kind: str, timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {kind} message in time"
        msg = json.loads(ws.recv(timeout=left))
        if msg["type"] == kind:
            return msg


def test_system_channel_pushes_component_health_and_job_status(app_url: str, world: Any, pool: Any) -> None:
    import uuid

    from rayapp.warehouse import pipeline

    job = f"refresh_{uuid.uuid4().hex[:6]}"
    with pool.connection() as conn:  # a job the scheduler knows, with one successful run
        now = datetime.now(UTC).replace(microsecond=0)
        spec = {"job": job, "cron": "*/15 * * * *", "enabled": True, "clock": "wall", "next_slot": now, "timeout_s": 60}
        pipeline.upsert_jobs(conn, [spec])
        slot = now - timedelta(minutes=15)
        run = pipeline.claim(
            conn, job=job, clock="wall", slot=slot, trigger="schedule", max_attempts=3, runner="t", lateness_ms=0
        )
        assert run is not None
        assert pipeline.finish(conn, run, attempt=1, status="succeeded", rows=(5, 5, 0))
    try:
        with connect(app_url.replace("http://", "ws://") + "/ws/system", open_timeout=30) as ws:
            first = recv(ws, "system")
            second = recv(ws, "system")  # pushed again on its own
            assert second["seq"] > first["seq"]
            ws.send("ping")
            recv(ws, "pong")
        data = second["data"]
        comps = {c["name"]: c for c in data["components"]}
        assert {"ingress", "predictor", "redis", "postgres"} <= set(comps), data
        assert comps["predictor"] == {"name": "predictor", "ok": True, "status": f"v{world.version}", "detail": None}
        assert comps["redis"]["ok"] and comps["postgres"]["ok"] and comps["ingress"]["ok"]
        assert data["pipeline_error"] is None
        pipe = data["pipeline"]
        assert pipe["clock"]["kind"] == "wall" and pipe["scheduler"]["alive"] is True
        entry = next(j for j in pipe["jobs"] if j["job"] == job)
        assert entry["last_run"]["run_id"] == run and entry["last_run"]["status"] == "succeeded"
        assert 15 * 60 - 5 <= entry["last_success_age_s"] <= 15 * 60 + 120
        assert entry["next_slot"] is not None
    finally:
        with pool.connection() as conn:
            conn.execute("DELETE FROM pipeline_runs WHERE job = %s", (job,))
            conn.execute("DELETE FROM pipeline_jobs WHERE job = %s", (job,))
            conn.commit()
