"""Dashboard bundle size and load timings in headless Chromium against a running rayapp API.

Builds the production bundle (frontend/, `npm run build`), measures the gzip size of every JS
chunk, then loads the dashboard RUNS times with a fresh browser profile each (frontend/e2e/bench.mjs)
and reports medians:

- initial_js_gzip_kb: JS the browser fetched to render "/" (entry + dashboard route chunks)
- total_js_gzip_kb: every JS chunk of the build (all routes)
- first_render_ms: navigation start -> the latest forecast's P(up) on screen (API data rendered)
- ws_first_message_ms: navigation start -> first message on /ws/predictions
- critical_path: in the median run, each request that ended before the first render (start and
  end in ms since navigation start), and the document's DOM-interactive time
- baseline: the same socket's first message from a page without the app (server cost alone),
  and the gzip size of the one-chunk alternative (everything in the initial load).

Targets: initial <= 250 KB gzip, first render <= 1500 ms on localhost.

With --url it measures an API that is already running (the bundle must be what it serves);
without it, it deploys the Serve app itself: embedded PostgreSQL/Redis under a temporary state
dir, a real XGBoost model trained on generated rows (rayapp/testing/serving.py) registered as
champion, Ray Serve on a free port. Last line: JSON.

    python benchmarks/frontend.py [--url http://127.0.0.1:8000] [--runs 5] [--skip-build]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONTEND = ROOT / "frontend"
sys.path.insert(0, str(ROOT))


def gz_kb(path: Path) -> float:
    return len(gzip.compress(path.read_bytes(), compresslevel=9)) / 1024


@contextmanager
def demo_server() -> Iterator[str]:
    """The real Serve app with a champion model and fresh features, torn down afterwards."""
    import httpx
    import pandas as pd
    import ray
    from ray import serve

    from rayapp.config import load_settings
    from rayapp.services import free_port, services_down
    from rayapp.serving.deployments import resolve_settings, run
    from rayapp.testing import wait_until
    from rayapp.testing.serving import seed_champion
    from rayapp.warehouse import get_pool

    with tempfile.TemporaryDirectory(prefix="rayapp-frontend-bench-") as tmp:
        settings = load_settings(
            [
                f"state_dir={tmp}",
                "mlflow.registered_model=frontend_bench",
                "mlflow.experiment=frontend_bench",
                f"serving.port={free_port()}",
                "serving.watch_interval_s=0.5",
                "serving.feature_staleness_s=14400",
                "log.level=WARNING",
            ]
        )
        resolved = resolve_settings(settings)  # starts the embedded stores, applies migrations
        try:
            end = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(hours=1)
            assert resolved.redis.url, "resolve_settings() fills the Redis URL"
            seed_champion(resolved, get_pool(resolved), resolved.redis.url, end, seed=3)
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            url = run(resolved)
            # ready = the model is loaded and the feature watch has logged its first forecast
            wait_until(
                lambda: httpx.get(f"{url}/predictions/latest", timeout=2).status_code == 200,
                120,
                interval_s=0.3,
                ignore=(httpx.HTTPError,),
                what="the Serve app's first logged forecast",
            )
            yield url
        finally:
            if ray.is_initialized():
                serve.shutdown()
                ray.shutdown()
            from rayapp.warehouse.db import close_pools

            close_pools()
            # `settings`, not `resolved`: resolve_settings filled in the embedded stores' URLs,
            # which services_down takes for external stores and leaves running.
            services_down(settings)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="a running rayapp API serving this build (default: deploy one)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-build", action="store_true", help="measure the existing frontend/dist")
    args = ap.parse_args(argv)

    if not args.skip_build:
        subprocess.run(["npm", "run", "--silent", "build"], cwd=FRONTEND, check=True, stdout=subprocess.DEVNULL)
    assets = FRONTEND / "dist" / "assets"
    sizes = {f"/assets/{p.name}": gz_kb(p) for p in sorted(assets.glob("*.js"))}
    if not sizes:
        print("no JS in frontend/dist/assets: build first", file=sys.stderr)
        return 1

    def measure(url: str) -> dict:
        out = subprocess.run(
            ["node", "e2e/bench.mjs"],
            cwd=FRONTEND,
            check=True,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, "BASE_URL": url, "RUNS": str(args.runs)},
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    if args.url:
        res = measure(args.url.rstrip("/"))
    else:
        with demo_server() as url:
            res = measure(url)
    runs = res["runs"]
    fetched = sorted({p for r in runs for p in r["js"]})
    unknown = [p for p in fetched if p not in sizes]
    if unknown:
        print(
            f"the server sent JS that is not in this build: {unknown} (is --url serving frontend/dist?)",
            file=sys.stderr,
        )
        return 1
    med = lambda k: round(statistics.median(r[k] for r in runs), 1)  # noqa: E731
    result = {
        "initial_js_gzip_kb": round(sum(sizes[p] for p in fetched), 1),
        "total_js_gzip_kb": round(sum(sizes.values()), 1),
        "first_render_ms": med("first_render_ms"),
        "ws_first_message_ms": med("ws_first_message_ms"),
        "runs": len(runs),
        "first_render_ms_max": round(max(r["first_render_ms"] for r in runs), 1),
        "initial_chunks": fetched,
        # the median run's requests that ended before its first render: {path: {start, end}} ms
        "critical_path": sorted(runs, key=lambda r: r["first_render_ms"])[len(runs) // 2].get("critical_path"),
        "baseline": {
            "bare_ws_first_message_ms": med("baseline_ws_ms"),
            "single_chunk_js_gzip_kb": round(sum(sizes.values()), 1),
        },
        "targets": {"initial_js_gzip_kb": 250, "first_render_ms": 1500},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
