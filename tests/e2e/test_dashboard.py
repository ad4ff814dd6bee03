"""The dashboard in headless Chromium against the real Serve app (frontend/e2e/dashboard.e2e.mjs).

The driver opens the dashboard and reports when its WebSocket is open; this test then lands a
newer feature vector in the online store, exactly as the feature pipeline does, and the driver
must see the forecast the server makes from it arrive over /ws/predictions. It then submits the
Predict form and reads the explanation, switches the theme (and checks it is remembered), and
saves screenshots of every page under frontend/e2e-artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from typing import Any

import pandas as pd
import pytest

from tests.e2e.conftest import API_KEY, FRONTEND
from tests.serving.factories import FSV, SYMBOL

pytestmark = pytest.mark.slow
DRIVER_TIMEOUT_S = 240


def _reader(stream: Any, q: queue.Queue[str | None]) -> None:
    for line in stream:
        q.put(line)
    q.put(None)


def test_dashboard_end_to_end(e2e_ready: None, app_url: str, world: Any, serving_redis: Any) -> None:
    from rayapp.features.online_store import RedisOnlineStore

    out_dir = FRONTEND / "e2e-artifacts"
    env = {**os.environ, "BASE_URL": app_url, "API_KEY": API_KEY, "OUT_DIR": str(out_dir),
           "TIMEOUT_MS": "60000"}
    proc = subprocess.Popen(["node", "e2e/dashboard.e2e.mjs"], cwd=FRONTEND, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    q: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    events: dict[str, dict[str, Any]] = {}
    output: list[str] = []
    new_ts = pd.Timestamp(world.latest_ts) + pd.Timedelta(hours=1)
    deadline = time.monotonic() + DRIVER_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            try:
                line = q.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            output.append(line)
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            events[ev["event"]] = ev
            if ev["event"] == "ws-open":
                # A newer vector lands in the online store: the server's feature watch predicts
                # from it and broadcasts the forecast to the open dashboard.
                values = world.market.features.iloc[-1].to_dict()
                values["hour_of_day"] = float(new_ts.hour)
                RedisOnlineStore(serving_redis.url).write(SYMBOL, FSV, new_ts, values)
        rc = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
    log = "".join(output)
    assert rc == 0, f"driver failed (rc={rc}):\n{log}"
    assert "done" in events, log
    assert pd.Timestamp(events["ws-prediction"]["ts"]) == new_ts, log
    assert events["predict"]["explanation"], log
    assert events["theme"]["remembered"] == events["theme"]["dark"], log
    for shot in ("dashboard-light.png", "predict.png", "analytics.png", "system.png", "dashboard-phone.png"):
        assert (out_dir / shot).stat().st_size > 10_000, shot
