"""Shadow scoring's cost on POST /predict: no shadow, a second deployment, or Serve multiplexing.

The same Serve application (throughput-optimized mode, as `rayapp serve` starts it) three ways,
one after the other on one local Ray cluster (num_cpus=2), the same registered champion and
shadow versions, the same aiohttp client as benchmarks/serve_latency.py:

  none        the app without a shadow;
  deployment  the shadow as its own `ShadowPredictor` deployment (what rayapp ships);
  multiplexed one Predictor deployment serving both through `@serve.multiplexed` model ids
              ("champion" / "shadow"; a throwaway `MuxPredictor` variant defined here).

In the app a shadow scores only logged champion forecasts, once per (hour, shadow version): on the
latest-vector path (`latest`, the dashboard's request) that is once an hour, so it measures the idle
cost. The worst case is `uncached`: every request sends its own random vector and, in this
benchmark's ingress variant (`BenchService`), every one of them is also scored in shadow and
written to `predictions` (under a synthetic hour), off the request path as the app does it. The
shadow outcomes counted in /metrics are reported beside the latencies: a shadow scoring that is
dropped (too many in flight) costs nothing, so the share that completed matters.

    python benchmarks/shadow.py [--seconds 8] [--levels 1,8]

Last line: {"none": {...}, "deployment": {...}, "multiplexed": {...}, "concurrency": 8, ...} with
p50/p99 (ms) and requests/s per path and level, and the shadow outcomes per mode.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ray import serve  # noqa: E402

from benchmarks.serve_latency import feature_names, measure, seed_world, wait_http  # noqa: E402
from rayapp.serving.predictor import Predictor, describe, score  # noqa: E402
from rayapp.serving.service import PredictionService  # noqa: E402

MODES = ("none", "deployment", "multiplexed")
SYNTHETIC_T0 = datetime(1990, 1, 1, tzinfo=UTC)  # shadow rows of what-if vectors: hours no one serves


def prepare(state: Path) -> Any:
    """Embedded services, generated features, a champion and a shadow version (alias `shadow`)."""
    from rayapp.registry import SHADOW
    from rayapp.testing.serving import fit_bundle, log_and_promote, train_booster

    s, market = seed_world(state, "serving.champion_poll_s=2")
    booster = train_booster(market, depth=4, rounds=90)  # a challenger of the same size
    log_and_promote(s, booster, fit_bundle(booster, market), alias=SHADOW)
    return s


class BenchService(PredictionService):
    """The app's service, plus: every explicit (what-if) vector is also scored in shadow, under a
    synthetic hour of its own, so that every request of the `uncached` path pays for a shadow
    scoring as a new logged forecast does."""

    base_h = 0  # hours after SYNTHETIC_T0 this ingress starts at (one range per mode: no duplicates)
    _n = 0

    async def predict(
        self, symbol: str, features: dict[str, float | None] | None = None, explain: bool = True
    ) -> dict[str, Any]:
        out = await super().predict(symbol, features, explain)
        if features is not None and self.shadow is not None:
            self._n += 1
            ts = (SYNTHETIC_T0 + timedelta(hours=self.base_h + self._n)).isoformat()
            self.start_shadow(symbol, ts, features, out["feature_set_version"], out["model_version"])
        return out


class MuxPredictor(Predictor):
    """Variant (c): the champion as the Predictor serves it, and any alias as a multiplexed model
    id loaded on demand (Serve's per-replica LRU of models, routed by model id)."""

    @serve.multiplexed(max_num_models_per_replica=2)
    async def get_model(self, model_id: str) -> Any:
        from rayapp.registry import load_alias

        return await asyncio.to_thread(load_alias, self.settings, model_id)

    async def predict(  # type: ignore[override]
        self, values: dict[str, float], feature_set_version: str, interval: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        mid = serve.get_multiplexed_model_id()
        if mid:
            return score(await self.get_model(mid), values, feature_set_version, interval)
        return super().predict(values, feature_set_version, interval)

    async def info(self) -> dict[str, Any]:  # type: ignore[override]
        mid = serve.get_multiplexed_model_id()
        if mid:
            return {**describe(await self.get_model(mid)), "alias": mid, "last_error": None, "swaps": 0}
        return super().info()


def build(settings: Any, mode: str) -> Any:
    """The app's graph (as rayapp.serving.deployments.build_app binds it) with the bench ingress."""
    from rayapp.serving.app import build_api
    from rayapp.serving.deployments import REPLICA_CPUS
    from rayapp.serving.explainer import Explainer
    from rayapp.serving.feature_lookup import FeatureLookup
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.predictor import ShadowPredictor

    s = settings.serving
    common = {
        "max_ongoing_requests": s.max_ongoing_requests,
        "graceful_shutdown_timeout_s": 5,
        "health_check_period_s": 2,
        "logging_config": {"enable_access_log": False},
    }

    def opts(name: str) -> dict[str, Any]:
        return {"name": name, "ray_actor_options": {"num_cpus": REPLICA_CPUS[name]}, **common}

    @serve.ingress()
    class BenchIngress:
        def __init__(self, settings: Any, lookup: Any, predictor: Any, explainer: Any, shadow: Any, mode: str):
            from rayapp.warehouse import get_pool

            self.settings = settings
            self.metrics = ServingMetrics()
            if mode == "multiplexed":
                shadow = predictor.options(multiplexed_model_id="shadow")
            self.service = BenchService(
                settings,
                lookup,
                predictor,
                explainer,
                self.metrics,
                get_pool(settings.database.url, migrate_schema=False),
                online_url=settings.redis.url,
                shadow=shadow,
            )
            self.service.base_h = MODES.index(mode) * 100_000

        def __serve_build_asgi_app__(self) -> Any:
            return build_api(self.settings, self.service, self.metrics)

    lookup = serve.deployment(**opts("FeatureLookup"))(FeatureLookup).bind(settings)
    cls = MuxPredictor if mode == "multiplexed" else Predictor
    predictor = serve.deployment(num_replicas=s.predictor_replicas, **opts("Predictor"))(cls).bind(settings)
    explainer = serve.deployment(**opts("Explainer"))(Explainer).bind(settings)
    shadow = (
        serve.deployment(num_replicas=1, **opts("ShadowPredictor"))(ShadowPredictor).bind(settings)
        if mode == "deployment"
        else None
    )
    return serve.deployment(**opts("Ingress"))(BenchIngress).bind(settings, lookup, predictor, explainer, shadow, mode)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as r:
        return json.loads(r.read())


def shadow_counts(url: str) -> dict[str, float]:
    out: dict[str, float] = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("rayapp_shadow_predictions_total{"):
                out[line.split('outcome="', 1)[1].split('"', 1)[0]] = float(line.split()[-1])
    return out


def wait_ready(url: str, mode: str, timeout_s: float = 180) -> None:
    from rayapp.testing import wait_until

    wait_http(url, timeout_s)

    def ready() -> bool:
        body = get_json(f"{url}/models")
        shadow = body["serving"]["shadow"]
        return bool(body["serving"]["champion"]["loaded"]) and (
            shadow is None if mode == "none" else bool(shadow and shadow["loaded"])
        )

    wait_until(ready, timeout_s, interval_s=0.5, ignore=(OSError,), what=f"the {mode} app to serve")


def drain(url: str, timeout_s: float = 60) -> None:
    """Until no shadow scoring is in flight (so one run's tail does not load the next)."""
    from rayapp.testing import wait_until

    def idle() -> bool:
        with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("rayapp_shadow_pending "):
                    return float(line.split()[-1]) == 0
        return True

    wait_until(idle, timeout_s, interval_s=0.2, what="shadow scorings to finish")


def run_mode(settings: Any, mode: str, levels: list[int], seconds: float) -> dict[str, Any]:
    from rayapp.serving.deployments import app_url

    serve.run(build(settings, mode), name=settings.serving.app_name, route_prefix="/")
    url = app_url(settings)
    wait_ready(url, mode)
    names = feature_names(url)
    out: dict[str, Any] = {"latest": {}, "uncached": {}}
    for c in levels:
        out["latest"][str(c)] = asyncio.run(measure(url, c, seconds))
    before = shadow_counts(url)
    for c in levels:
        out["uncached"][str(c)] = asyncio.run(measure(url, c, seconds, names))
    drain(url)
    after = shadow_counts(url)
    out["shadow_outcomes"] = {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)
    }
    serve.delete(settings.serving.app_name)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=8, help="measured seconds per level and path")
    ap.add_argument("--levels", default="1,8", help="concurrency levels")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bsh", dir="/tmp") as tmp:
        state = Path(tmp)
        s = prepare(state)
        import ray

        from rayapp.serving.deployments import apply_serve_env

        apply_serve_env(s)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            port = s.serving.port + 1000 if s.serving.port + 1000 <= 65535 else s.serving.port - 1000
            serve.start(http_options={"host": s.serving.host, "port": port})
            for mode in MODES:
                results[mode] = run_mode(s, mode, levels, args.seconds)
        finally:
            serve.shutdown()
            ray.shutdown()
            from rayapp.config import load_settings
            from rayapp.services import services_down
            from rayapp.warehouse.db import close_pools

            close_pools()
            services_down(load_settings([f"state_dir={state}"]))

    head = "8" if "8" in results["none"]["latest"] else str(levels[-1])

    def brief(mode: str, path: str) -> dict[str, float]:
        r = results[mode][path][head]
        return {"p50_ms": round(r["p50_ms"], 2), "p99_ms": round(r["p99_ms"], 2), "rps": round(r["rps"], 1)}

    print(
        json.dumps(
            {
                "concurrency": int(head),
                "cpus": os.cpu_count(),
                "uncached": {m: brief(m, "uncached") for m in MODES},
                "latest": {m: brief(m, "latest") for m in MODES},
                "shadow_outcomes": {m: results[m]["shadow_outcomes"] for m in MODES},
                "levels": {m: {p: results[m][p] for p in ("latest", "uncached")} for m in MODES},
            }
        )
    )


if __name__ == "__main__":
    main()
