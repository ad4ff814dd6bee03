"""POST /predict (with explanation) latency: Ray Serve vs the same code in plain uvicorn.

Serve runs in its throughput-optimized mode (direct ingress: the Ingress replica serves HTTP,
gRPC handles), as `rayapp serve` starts it. Both servers run the same FastAPI app
(rayapp.serving.app.build_api) over the same FeatureLookup, Predictor and Explainer classes
against the same embedded PostgreSQL/Redis and the same registered model: Serve composes them
as deployments by handle; the baseline calls them in-process in one uvicorn worker. The same
aiohttp client measures both at concurrency 1, 8 and 32 on the latest online vector (the
dashboard's and most clients' request), and at concurrency 8 with a random explicit vector per
request (`uncached`: every request reaches the Predictor and Explainer). A random vector is drawn
within every feature's documented range (rayapp.features.FEATURE_RANGES), as the API requires.

`slow_clients` (issue 19): the same latest-vector `POST /predict` at concurrency 8 through Serve
while 200 uploads stall half-sent (`Content-Length` and one byte, from 10 client addresses) and
200 idle WebSockets on /ws/metrics stay open (from 20 addresses): p50/p99 and the failed count,
with `GET /health` at concurrency 1 beside it. An upload the server times out (408 after
`serving.body_timeout_s`) is replaced at once by a new one, so all 200 are held throughout.

    python benchmarks/serve_latency.py [--seconds 8] [--levels 1,8,32] [--no-slow-clients]

Last line: {"serve_p50_ms", "serve_p99_ms", "plain_p50_ms", "plain_p99_ms", "ratio_p50",
"serve_max_rps", "levels": {...}, "slow_clients": {"p50_ms", "p99_ms", "failed", ...}} (headline
numbers at concurrency 8).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

API_KEY = "bench-key"


def seed_world(state: Path, *extra: str) -> tuple[Any, Any]:
    """Embedded services, generated features (offline + online) and a registered champion;
    (settings, the generated market). `extra`: further key=value overrides."""
    import pandas as pd

    from rayapp.config import load_settings
    from rayapp.services import free_port
    from rayapp.serving.deployments import resolve_settings
    from rayapp.testing.serving import seed_champion
    from rayapp.warehouse import get_pool

    s = load_settings(
        [
            f"state_dir={state}",
            "mlflow.registered_model=bench_model",
            "mlflow.experiment=bench",
            f"serving.api_key={API_KEY}",
            f"serving.port={free_port()}",
            "serving.feature_staleness_s=86400",
            "serving.predictor_replicas=2",
            "log.level=WARNING",
            *extra,
        ]
    )
    s = resolve_settings(s)  # starts the embedded stores, applies migrations
    assert s.redis.url, "resolve_settings() fills the Redis URL"
    end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
    # depth 4 x 100 rounds: a realistically sized booster
    market, _, _ = seed_champion(s, get_pool(s), s.redis.url, end, seed=3, depth=4, rounds=100)
    return s, market


def prepare(state: Path) -> Any:
    """Embedded services, generated features (offline + online) and a registered champion."""
    return seed_world(state)[0]


def feature_names(url: str) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/model", timeout=10) as r:
        return list(json.loads(r.read())["feature_names"])


async def measure(url: str, concurrency: int, seconds: float, names: list[str] | None = None) -> dict[str, float]:
    """Latency of POST /predict with explanation. With `names`, every request sends its own random
    feature vector, so nothing can come from the prediction cache (the uncached path)."""
    import aiohttp

    from rayapp.testing.serving import random_vector

    rng = np.random.default_rng(0)
    base = {"symbol": "BTCUSDT", "explain": True}
    headers = {"X-API-Key": API_KEY}

    def body() -> dict[str, Any]:
        if names is None:
            return base
        return {**base, "features": random_vector(rng, names)}

    lat: list[float] = []
    errors = 0
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as session:

        async def one() -> None:
            nonlocal errors
            t0 = time.perf_counter()
            async with session.post(f"{url}/predict", json=body(), headers=headers) as r:
                await r.read()
                if r.status != 200:
                    errors += 1
                    return
            lat.append(time.perf_counter() - t0)

        for _ in range(max(20, concurrency * 2)):  # warm-up: connections, caches, JIT paths
            await one()
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                await one()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    a = np.array(lat) * 1e3
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "rps": len(a) / wall,
        "requests": len(a),
        "errors": errors,
    }


async def kill_and_recover(url: str, app: str, names: list[str], concurrency: int = 8) -> dict[str, Any]:
    """SIGKILL one Predictor replica under load: failed share and seconds until it is replaced.
    Each request sends its own random vector, so every one goes through the Predictor."""
    import signal

    import aiohttp
    from ray import serve

    from rayapp.testing.serving import random_vector

    handle = serve.get_deployment_handle("Predictor", app_name=app)
    before = {(await handle.ping.remote())["pid"] for _ in range(12)}
    ok = failed = 0
    stop = False
    rng = np.random.default_rng(1)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok, failed
        while not stop:
            vec = random_vector(rng, names)
            try:
                async with session.post(
                    f"{url}/predict", json={"symbol": "BTCUSDT", "features": vec}, headers={"X-API-Key": API_KEY}
                ) as r:
                    await r.read()
                    ok, failed = (ok + 1, failed) if r.status == 200 else (ok, failed + 1)
            except aiohttp.ClientError:
                failed += 1

    async with aiohttp.ClientSession() as session:
        tasks = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        await asyncio.sleep(2)
        os.kill(min(before), signal.SIGKILL)
        t0 = time.perf_counter()
        recovery_s = None
        while time.perf_counter() - t0 < 120:
            d = serve.status().applications[app].deployments["Predictor"]
            if d.replica_states.get("RUNNING", 0) == 2:
                now = {(await handle.ping.remote())["pid"] for _ in range(12)}
                if now - before:
                    recovery_s = time.perf_counter() - t0
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)
        stop = True
        await asyncio.gather(*tasks)
    return {
        "recovery_s": recovery_s,
        "requests": ok + failed,
        "failed": failed,
        "failed_share": failed / max(1, ok + failed),
    }


def wait_http(url: str, timeout_s: float = 120) -> None:
    import urllib.request

    from rayapp.testing import wait_until

    def healthy() -> bool:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return r.status == 200

    wait_until(healthy, timeout_s, interval_s=0.3, ignore=(OSError,), what=f"{url}/health to answer 200")


async def slow_clients(url: str, seconds: float, body_timeout_s: float) -> dict[str, Any]:
    """`POST /predict` (latest vector, explanation) at concurrency 8 and `GET /health` at 1 while
    200 half-sent uploads (each replaced by a new one as soon as the server times it out) and 200
    idle /ws/metrics WebSockets are held (rayapp.testing.slow_clients)."""
    from rayapp.testing.slow_clients import SlowClients, timed_requests

    clients = SlowClients(url, stalled=200, websockets=200, ws_path="/ws/metrics", reopen=True)
    try:
        await clients.open()
        body = {"symbol": "BTCUSDT", "explain": True}
        predict, health = await asyncio.gather(
            timed_requests(url, seconds, concurrency=8, api_key=API_KEY, body=body, timeout_s=60),
            timed_requests(url, seconds, concurrency=1, path="/health", timeout_s=60),
        )
        held_ws = clients.websockets_still_open()
    finally:
        await clients.close()
    stalled = [c for c in clients.results if c.kind == "stalled" and c.after_s is not None]
    a, h = np.array(predict["latencies_ms"]), np.array(health["latencies_ms"])
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3) if len(a) else None,
        "p99_ms": round(float(np.percentile(a, 99)), 3) if len(a) else None,
        "failed": len(predict["failed"]) + len(health["failed"]),
        "requests": len(a),
        "rps": round(len(a) / seconds, 1),
        "health_p50_ms": round(float(np.percentile(h, 50)), 3) if len(h) else None,
        "health_p99_ms": round(float(np.percentile(h, 99)), 3) if len(h) else None,
        "stalled_held": clients.stalled,
        "websockets_held": held_ws,
        "websockets_refused": len(clients.ws_refused),
        # uploads the server closed during the run (timed out: 408) and the longest one held
        "stalled_timed_out": sum(1 for c in stalled if c.status == 408),
        "stalled_closed_max_s": round(max(c.after_s or 0 for c in stalled), 2) if stalled else None,
        "body_timeout_s": body_timeout_s,
    }


PLAIN = """
import json, sys, uvicorn
from rayapp.config import Settings
from rayapp.serving.deployments import build_local_api
from rayapp.serving.hardening import uvicorn_options
s = Settings.model_validate(json.loads(open(sys.argv[1]).read()))
uvicorn.run(build_local_api(s), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning",
            access_log=False, **uvicorn_options(s.serving))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8, help="measured seconds per level")
    ap.add_argument("--levels", default="1,8,32", help="concurrency levels")
    ap.add_argument(
        "--no-kill",
        dest="kill",
        action="store_false",
        help="skip the replica-loss phase (SIGKILL one Predictor replica under load)",
    )
    ap.add_argument(
        "--no-slow-clients",
        dest="slow",
        action="store_false",
        help="skip the slow_clients phase (200 stalled uploads + 200 idle WebSockets)",
    )
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")
    with tempfile.TemporaryDirectory(prefix="bsl", dir="/tmp") as tmp:
        state = Path(tmp)
        s = prepare(state)
        results: dict[str, dict[str, Any]] = {}

        # ---- plain uvicorn, same classes in one process ---------------------------------------
        cfg = state / "settings.json"
        cfg.write_text(s.model_dump_json())
        from rayapp.services import free_port

        port = free_port()
        proc = subprocess.Popen([sys.executable, "-c", PLAIN, str(cfg), str(port)], cwd=ROOT)
        try:
            plain = f"http://127.0.0.1:{port}"
            wait_http(plain)
            results["plain"] = {str(c): asyncio.run(measure(plain, c, args.seconds)) for c in levels}
            names = feature_names(plain)
            results["plain_uncached"] = {"8": asyncio.run(measure(plain, 8, args.seconds, names))}
        finally:
            proc.terminate()
            proc.wait(timeout=30)

        # ---- Ray Serve --------------------------------------------------------------------------
        import ray
        from ray import serve

        from rayapp.serving.deployments import apply_serve_env, run

        apply_serve_env(s)  # Serve's throughput-optimized mode, as `rayapp serve` starts Ray
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            base = run(s)
            wait_http(base)
            results["serve"] = {str(c): asyncio.run(measure(base, c, args.seconds)) for c in levels}
            results["serve_uncached"] = {"8": asyncio.run(measure(base, 8, args.seconds, names))}
            slow = asyncio.run(slow_clients(base, args.seconds, s.serving.body_timeout_s)) if args.slow else None
            recovery = asyncio.run(kill_and_recover(base, s.serving.app_name, names)) if args.kill else None
        finally:
            serve.shutdown()
            ray.shutdown()
            from rayapp.config import load_settings
            from rayapp.services import services_down
            from rayapp.warehouse.db import close_pools

            close_pools()
            # The embedded stores of this state dir: `s` carries their URLs (resolve_settings
            # filled them in), which services_down takes for external stores and leaves running.
            services_down(load_settings([f"state_dir={state}"]))

    head = "8" if "8" in results["serve"] else str(levels[0])
    sv, pl = results["serve"][head], results["plain"][head]
    print(
        json.dumps(
            {
                "serve_p50_ms": round(sv["p50_ms"], 3),
                "serve_p99_ms": round(sv["p99_ms"], 3),
                "plain_p50_ms": round(pl["p50_ms"], 3),
                "plain_p99_ms": round(pl["p99_ms"], 3),
                "ratio_p50": round(sv["p50_ms"] / pl["p50_ms"], 3),
                "serve_max_rps": round(max(r["rps"] for r in results["serve"].values()), 1),
                "concurrency": int(head),
                "cpus": os.cpu_count(),
                "recovery": recovery,
                "levels": {c: {"serve": results["serve"][c], "plain": results["plain"][c]} for c in results["serve"]},
                # Every request with its own random vector: Predictor and Explainer called by handle each
                # time (the path of a new feature hour or an explicit vector), concurrency 8.
                "uncached": {
                    "serve": results["serve_uncached"]["8"],
                    "plain": results["plain_uncached"]["8"],
                    "ratio_p50": round(
                        results["serve_uncached"]["8"]["p50_ms"] / results["plain_uncached"]["8"]["p50_ms"], 3
                    ),
                },
                # POST /predict at concurrency 8 while 200 uploads stall and 200 WebSockets idle
                "slow_clients": slow,
                "throughput_optimized": s.serving.throughput_optimized,
                "url": base,
            }
        )
    )


if __name__ == "__main__":
    main()
