"""The whole 48,024-hour price history through the Binance client, from the replay server, cold.

Two runs over the same paged `/api/v3/klines` calls (1000 bars a call) into bronze and silver,
each from an empty warehouse and an empty lake:

1. `rayapp ingest` proper: Ray Data fan-out over (source, window) partitions with the shared
   Ray-actor rate limiter, bronze per window, validation + upsert + watermark per window.
2. the baseline: one plain sequential aiohttp loop, no Ray, doing the same work per page
   (bronze write, the same validation, the same upsert).

Both see the inconsistent 2021-01-04 05:00 bar; both must quarantine it. Ray's own start-up
(`ray.init`) is excluded and reported apart; the workers' start-up is inside `wall_s`. The replay
server runs in a process of its own, standing in for the remote APIs: inside the benchmark's
process it would share one GIL with the Ray driver (and with the sequential loop). The
three-source scenario runs second, on the task workers the first run started (`multi_after_warmup`).
Last line: JSON {"rows", "requests", "wall_s", "rows_per_s", "sequential_wall_s", "ratio", ...}.

    python benchmarks/ingest_backfill.py [--data ../shared/data] [--workers 4] [--window-h 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
TABLES = "candles, articles, market_index, quarantine, watermarks"
MULTI = ["binance", "cryptocompare", "fear_greed"]


SERVER = """
import asyncio, sys
from aiohttp import web
from rayapp.config import load_settings
from rayapp.replay.server import app_from_settings
data, port, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
app = app_from_settings(load_settings(["sources=replay"]).replay, data)
if latency > 0:
    @web.middleware
    async def delay(request, handler):
        await asyncio.sleep(latency)
        return await handler(request)
    app.middlewares.append(delay)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


@contextlib.contextmanager
def replay_process(data: Path, latency_s: float):
    """`rayapp replay`'s app over `data` in its own process; yields its URL."""
    import urllib.request

    from rayapp.services import free_port
    from rayapp.testing import wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(data), str(port), str(latency_s)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:

        def answering() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"replay server exited with code {proc.returncode}")
            with urllib.request.urlopen(f"{url}/replay/stats", timeout=2):
                return True

        wait_until(answering, 120, ignore=(OSError,), what="the replay server's /replay/stats")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _truncate(pool) -> None:
    with pool.connection() as conn:
        conn.execute(f"TRUNCATE {TABLES} CASCADE")


def _count(pool, sql: str) -> int:
    with pool.connection() as conn:
        return int(conn.execute(sql).fetchone()[0])


async def sequential(settings, lake, pool, start: pd.Timestamp, end: pd.Timestamp) -> tuple[int, int]:
    """The baseline: page through klines one request at a time, bronze + silver per page."""
    import aiohttp

    from rayapp.ingest.bronze import BRONZE_SCHEMA
    from rayapp.ingest.silver import write_silver

    url = f"{settings.sources.binance_url.rstrip('/')}/api/v3/klines"
    cursor, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000) - 1
    requests = rows = 0
    async with aiohttp.ClientSession() as session:
        while cursor <= end_ms:
            params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": cursor, "endTime": end_ms, "limit": 1000}
            async with session.get(url, params=params) as resp:
                text = await resp.text()
                status, final_url = resp.status, str(resp.url)
            fetched = pd.Timestamp.now(tz="UTC")
            requests += 1
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {text[:200]}")
            bars = json.loads(text)
            if not bars:
                break
            page_start = pd.Timestamp(bars[0][0], unit="ms", tz="UTC")
            table = pa.Table.from_pylist(
                [
                    {
                        "source": "binance",
                        "dataset": "klines",
                        "key": "BTCUSDT",
                        "window_start": page_start,
                        "window_end": pd.Timestamp(bars[-1][0], unit="ms", tz="UTC"),
                        "page": 0,
                        "url": final_url,
                        "status": status,
                        "fetched_at": fetched,
                        "payload": text,
                        "records": len(bars),
                        "rejected": 0,
                        "meta": "{}",
                        "error": None,
                    }
                ],
                schema=BRONZE_SCHEMA,
            )
            lake.write("binance", "klines", page_start.date(), table, part=f"seq_{cursor}")
            raw = pd.DataFrame(bars).iloc[:, :9]
            df = pd.DataFrame(
                {
                    "source": "binance",
                    "symbol": "BTCUSDT",
                    "open_time": pd.to_datetime(raw[0], unit="ms", utc=True),
                    "open": raw[1].astype(float),
                    "high": raw[2].astype(float),
                    "low": raw[3].astype(float),
                    "close": raw[4].astype(float),
                    "volume": raw[5].astype(float),
                    "quote_volume": raw[7].astype(float),
                    "trades": raw[8].astype("Int64"),
                }
            )
            with pool.connection() as conn:
                rows += write_silver(conn, "candles", df, source="binance").read
            if len(bars) < 1000:
                break
            cursor = int(bars[-1][0]) + 3_600_000
    return rows, requests


async def sequential_clients(
    settings, lake, pool, sources: list[str], start: pd.Timestamp, end: pd.Timestamp
) -> tuple[int, int]:
    """The multi-source baseline: the same clients, one source and one page after another, no Ray."""
    from rayapp.ingest import CLIENTS
    from rayapp.ingest.bronze import bronze_rows
    from rayapp.ingest.fanout import write_results
    from rayapp.ingest.http import make_limiter, open_session

    rows = requests = 0
    async with open_session(settings) as session:
        for src in sources:
            cls = CLIENTS[src]
            client = cls(settings, session, make_limiter(src, settings))
            for key in cls.default_keys(settings):
                async for page in client.pages(key, start, end):
                    requests += 0 if page.derived else 1
                    for dataset, table in bronze_rows([page], key=key, start=start, end=end).items():
                        lake.write(src, dataset, start.date(), table, part=f"seq_{key}_{requests}")
                    with pool.connection() as conn, conn.transaction():
                        rows += write_results(conn, src, [page]).read
    return rows, requests


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--workers", type=int, default=4, help="Ray Data actors (ingest.workers)")
    ap.add_argument("--window-h", type=int, default=1000, help="hours per partition (one call each)")
    ap.add_argument("--max-windows", type=int, default=None, help="ingest.max_windows_per_key (default: the config's)")
    ap.add_argument("--num-cpus", type=int, default=None, help="ray.init num_cpus (default: all)")
    ap.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="added to every replay response, to stand in for an internet round trip",
    )
    ap.add_argument(
        "--no-multi", action="store_true", help="skip the second scenario (binance + cryptocompare news + fear & greed)"
    )
    args = ap.parse_args()
    price = sorted(args.data.glob("btc_usd_1h_*.csv"))
    if not price:
        print(f"no btc_usd_1h_*.csv under {args.data}: nothing to benchmark", file=sys.stderr)
        return 2

    import ray

    from rayapp.config import load_settings
    from rayapp.ingest.fanout import run_ingest
    from rayapp.lake import BronzeLake
    from rayapp.log import configure
    from rayapp.services import services_down, services_up
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.db import close_pools

    configure("WARNING")
    first = pd.read_csv(price[0], usecols=["time"])["time"]
    start = pd.Timestamp(int(first.min()), unit="s", tz="UTC")
    end = pd.Timestamp(int(first.max()), unit="s", tz="UTC") + pd.Timedelta(hours=1)
    with tempfile.TemporaryDirectory(prefix="rb", dir="/tmp") as tmp:
        base = [f"state_dir={tmp}", "sources=replay"]
        services_up(load_settings(base))
        try:
            t = time.perf_counter()
            ray.init(num_cpus=args.num_cpus, include_dashboard=False, configure_logging=False, log_to_driver=False)
            ray_init_s = time.perf_counter() - t
            with replay_process(args.data, args.latency_ms / 1000) as url:
                common = [
                    *base,
                    f"sources.replay_url={url}",
                    f"ingest.window_h={args.window_h}",
                    f"ingest.workers={args.workers}",
                ]
                if args.max_windows:
                    common.append(f"ingest.max_windows_per_key={args.max_windows}")
                # ---- Ray fan-out, cold
                s = load_settings([*common, f"storage.root={tmp}/lake_ray"])
                pool = get_pool(s)
                _truncate(pool)
                t = time.perf_counter()
                report = run_ingest(s, sources=["binance"], start=start, end=end)
                wall = time.perf_counter() - t
                b = report.summaries["binance"]
                if not report.ok:
                    print(f"ray run failed: {b.errors[:3]}", file=sys.stderr)
                    return 1
                ray_rows = _count(pool, "SELECT count(*) FROM candles")
                ray_q = _count(pool, "SELECT count(*) FROM quarantine")
                # ---- sequential aiohttp loop, cold
                _truncate(pool)
                lake = BronzeLake.local(f"{tmp}/lake_seq")
                t = time.perf_counter()
                seq_read, seq_requests = asyncio.run(sequential(s, lake, pool, start, end))
                seq_wall = time.perf_counter() - t
                seq_rows = _count(pool, "SELECT count(*) FROM candles")
                seq_q = _count(pool, "SELECT count(*) FROM quarantine")
                multi: dict[str, float | int] = {}
                if not args.no_multi:
                    # ---- three sources in flight: Ray fan-out vs the same clients in sequence
                    _truncate(pool)
                    sm = load_settings([*common, f"storage.root={tmp}/lake_ray_multi"])
                    t = time.perf_counter()
                    rep = run_ingest(sm, sources=MULTI, start=start, end=end)
                    m_wall = time.perf_counter() - t
                    m_counts = _count(
                        pool,
                        "SELECT (SELECT count(*) FROM candles) + "
                        "(SELECT count(*) FROM articles) + (SELECT count(*) FROM market_index)",
                    )
                    _truncate(pool)
                    t = time.perf_counter()
                    m_rows, m_req = asyncio.run(
                        sequential_clients(sm, BronzeLake.local(f"{tmp}/lake_seq_multi"), pool, MULTI, start, end)
                    )
                    m_seq_wall = time.perf_counter() - t
                    multi = {
                        "multi_ok": rep.ok,
                        "multi_rows": sum(x.read for x in rep.summaries.values()),
                        "multi_requests": sum(x.requests for x in rep.summaries.values()),
                        "multi_silver_rows": m_counts,
                        "multi_wall_s": round(m_wall, 3),
                        "multi_sequential_rows": m_rows,
                        "multi_sequential_requests": m_req,
                        "multi_sequential_wall_s": round(m_seq_wall, 3),
                        "multi_ratio": round(m_wall / m_seq_wall, 3),
                        # This run follows the single-source one in the same Ray session: its
                        # task workers are already started and imported (Ray reuses them), as
                        # they are for every run after the first in a long-lived driver; the
                        # sequential loop's process is warm too.
                        "multi_after_warmup": True,
                    }
        finally:
            ray.shutdown()
            close_pools()
            services_down(load_settings(base))
    result = {
        "rows": b.read,
        "requests": b.requests,
        "wall_s": round(wall, 3),
        "rows_per_s": round(b.read / wall, 1),
        "sequential_wall_s": round(seq_wall, 3),
        "ratio": round(wall / seq_wall, 3),
        "written": b.written,
        "quarantined": b.quarantined,
        "candles": ray_rows,
        "quarantine_rows": ray_q,
        "partitions": b.partitions,
        "workers": args.workers,
        "sequential_rows": seq_read,
        "sequential_requests": seq_requests,
        "sequential_candles": seq_rows,
        "sequential_quarantined": seq_q,
        "ray_init_s": round(ray_init_s, 3),
        "latency_ms": args.latency_ms,
        **multi,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
