"""The scheduler's timing and the end-to-end freshness it gives, on a local Ray cluster.

(a) A no-op job every second for --seconds (default 60) on the scheduler actor: slot lateness
    (wall ms from a slot's time to the scheduler recording and dispatching its run, from
    pipeline_runs) p50/p99; start_p50/p99_ms, from the slot's time to the job beginning in its
    runner actor; and the slots recorded twice (duplicates) or not at all (lost) between the
    first and the last one.
(b) The replay feed of ../shared/data at replay.speed=60 (a market minute per wall second, so the
    15-minute refresh slot comes every 15 s): after a bootstrap (ingest --days, score, features,
    a small training run promoted to champion), `rayapp run`'s Serve + scheduler run for --hours
    market hours while a WebSocket client listens on /ws/predictions.
    - freshness_market_min: per new hour, market minutes from its candle's close (open + 1 h) to
      its forecast arriving on /ws/predictions (median; max in freshness_market_min_max);
    - refresh_wall_s: wall seconds of one `refresh` run that brought one new hour (median);
    - cli_wall_s, the baseline: the same stages as one-shot CLI commands in sequence
      (`rayapp ingest` → `rayapp score` → `rayapp features build`), each a new process joining
      the same cluster (ray.address=auto), for the next new hour after the scheduler stopped.

Usage: python benchmarks/scheduler.py [--seconds 60] [--hours 3] [--days 14] [--data ../shared/data]
Part (b) needs the real data folder; without it, it is skipped with the reason printed.
Last line: JSON with lateness_p50_ms, lateness_p99_ms, duplicates, lost, refresh_wall_s,
cli_wall_s, freshness_market_min (and the details).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SPEED = 60.0


def pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return float(xs[min(len(xs) - 1, max(0, round(q / 100 * (len(xs) - 1))))])


def runs_of(settings: Any, job: str) -> list[dict[str, Any]]:
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.pipeline import list_runs

    with get_pool(settings).connection() as conn:
        return list_runs(conn, job=job, limit=100_000)[::-1]


# ---- (a) a no-op job every second ----------------------------------------------------------------
def bench_noop(base: Any, seconds: float) -> dict[str, Any]:
    from rayapp.config import JobSettings
    from rayapp.flows import start_scheduler, stop_scheduler

    s = base.model_copy(deep=True)
    job = f"noop_{uuid.uuid4().hex[:6]}"
    s.schedule.actor_name = f"bench-{job}"
    # the built-in no-op job, under a name of its own
    s.schedule.jobs = {job: JobSettings(cron="* * * * * *", target="rayapp.flows.jobs:noop", timeout_s=30, retries=0)}
    start_scheduler(s)
    t0 = datetime.now(UTC)
    time.sleep(seconds)
    t1 = datetime.now(UTC)
    stop_scheduler(s)
    runs = [r for r in runs_of(s, job) if r["trigger"] == "schedule"]
    slots = Counter(r["slot"] for r in runs)
    duplicates = sum(n - 1 for n in slots.values() if n > 1)
    # every whole second the scheduler was up for, from its first slot to the last before stop
    first, last = min(slots), max(slots)
    expected = int((last - first).total_seconds()) + 1
    lost = expected - len(slots)
    late = [float(r["lateness_ms"]) for r in runs if r["lateness_ms"] is not None]
    # from the slot's time to the job beginning in its runner actor (the dispatch hop included)
    begun = [(float(r["stats"]["began_at"]) - r["slot"].timestamp()) * 1000 for r in runs if "began_at" in r["stats"]]
    by_status = Counter(r["status"] for r in runs)
    return {
        "window_s": round((t1 - t0).total_seconds(), 1),
        "slots": len(slots),
        "expected_slots": expected,
        "duplicates": duplicates,
        "lost": lost,
        "by_status": dict(by_status),
        "lateness_p50_ms": round(pct(late, 50) or 0, 2),
        "lateness_p99_ms": round(pct(late, 99) or 0, 2),
        "lateness_max_ms": round(max(late), 2) if late else None,
        "start_p50_ms": round(pct(begun, 50) or 0, 2),
        "start_p99_ms": round(pct(begun, 99) or 0, 2),
    }


# ---- (b) the replay feed -------------------------------------------------------------------------
class Listener(threading.Thread):
    """Collects (feature hour, wall arrival) of every forecast pushed on /ws/predictions."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.items, self.stop = url, [], threading.Event()

    def run(self) -> None:
        from websockets.sync.client import connect

        while not self.stop.is_set():
            try:
                with connect(self.url, open_timeout=10) as ws:
                    while not self.stop.is_set():
                        try:
                            msg = json.loads(ws.recv(timeout=1))
                        except TimeoutError:
                            continue
                        if msg.get("type") == "prediction":
                            self.items.append((msg["data"]["ts"], time.time()))
            except Exception:
                time.sleep(1)


def bootstrap(s: Any, start: Any, days: int) -> None:
    """What `rayapp demo` does before it serves: ingest, score, features, a small training run."""
    import pandas as pd

    from rayapp.features import run_build
    from rayapp.flows import train_and_promote
    from rayapp.ingest import run_ingest
    from rayapp.sentiment import run_score

    run_ingest(s, start=start - pd.Timedelta(days=days), end=start)
    run_score(s)
    run_build(s)
    train_and_promote(s, trials=2)


def cli_refresh(s: Any, state: Path) -> float:
    """The refresh stages as one-shot commands, each a new process on the same cluster."""
    common = [
        f"state_dir={state}",
        "sources=replay",
        f"sources.replay_url={s.sources.replay_url}",
        f"storage.root={s.storage.root}",
        "ray.address=auto",
    ]
    start = (datetime.now(UTC) - timedelta(days=3650)).strftime("%Y-%m-%dT%H:00")
    t0 = time.perf_counter()
    for argv in (
        ["ingest", "--no-progress", *common],
        ["score", *common],
        ["features", "build", "--start", start, *common],
    ):
        r = subprocess.run([sys.executable, "-m", "rayapp.cli", *argv], capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"rayapp {argv[0]} failed ({r.returncode}): {r.stderr[-800:]}")
    return time.perf_counter() - t0


def bench_replay(base: Any, state: Path, data: Path, hours: int, days: int) -> dict[str, Any]:
    import pandas as pd

    from rayapp.clock import ReplayClock
    from rayapp.flows import start_replay, start_system, stop_system

    base = base.model_copy(deep=True)
    base.replay.data, base.replay.speed = str(data), SPEED
    # the demo's replay: its market clock starts a day before the news history ends
    server, s, start = start_replay(base)
    url = s.sources.replay_url
    try:
        t_boot = time.perf_counter()
        bootstrap(s, start, days)
        boot_s = time.perf_counter() - t_boot
        for name, job in s.schedule.jobs.items():
            job.enabled = name == "refresh"
        running = start_system(s, resolved=True)
        listener = Listener(running.base_url.replace("http", "ws", 1) + "/ws/predictions")
        listener.start()
        time.sleep(hours * 3600 / SPEED)
        clock = ReplayClock(url).sync()
        m_now, w_now, speed = clock.now(), time.time(), clock.speed
        stop_system(running.settings)
        listener.stop.set()
        runs = [r for r in runs_of(s, "refresh") if r["status"] in ("succeeded", "partial")]
        new_hour = [
            (r["finished_at"] - r["started_at"]).total_seconds()
            for r in runs
            if any(
                "candles" in v.get("table", "").split(",") and v.get("written", 0) > 0
                for v in r["stats"].get("ingest", {}).values()
            )
        ]
        fresh = []
        for ts, arrival in listener.items:
            close = pd.Timestamp(ts).tz_convert("UTC") + pd.Timedelta(hours=1)
            market_arrival = m_now + timedelta(seconds=(arrival - w_now) * speed)
            if close > pd.Timestamp(start):  # a new hour, not the bootstrap's last one
                fresh.append((pd.Timestamp(market_arrival) - close).total_seconds() / 60)
        # the baseline: wait for the next candle to close, then the one-shot commands
        m_now = clock.now()
        next_close = (pd.Timestamp(m_now).floor("h") + pd.Timedelta(hours=1, minutes=1)).to_pydatetime()
        time.sleep(max(0.0, (next_close - m_now).total_seconds() / SPEED))
        cli_s = cli_refresh(s, state)
        return {
            "bootstrap_s": round(boot_s, 1),
            "refresh_runs": len(runs),
            "refresh_runs_with_new_hour": len(new_hour),
            "refresh_wall_s": round(statistics.median(new_hour), 2) if new_hour else None,
            "refresh_wall_s_max": round(max(new_hour), 2) if new_hour else None,
            "cli_wall_s": round(cli_s, 2),
            "forecasts_pushed": len(fresh),
            "freshness_market_min": round(statistics.median(fresh), 1) if fresh else None,
            "freshness_market_min_max": round(max(fresh), 1) if fresh else None,
        }
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="part (a): seconds of the no-op job (default 60)")
    ap.add_argument("--hours", type=int, default=3, help="part (b): market hours on the replay feed (default 3)")
    ap.add_argument("--days", type=int, default=14, help="part (b): bootstrap history in days (default 14)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the real data folder")
    ap.add_argument("--skip-replay", action="store_true", help="part (a) only")
    args = ap.parse_args()
    os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")

    from rayapp.config import load_settings
    from rayapp.services import free_port, services_down
    from rayapp.serving import resolve_settings, start_ray

    result: dict[str, Any] = {"cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bsch", dir="/tmp") as tmp:
        state = Path(tmp)
        raw = load_settings([f"state_dir={state}", f"storage.root={state / 'lake'}", f"serving.port={free_port()}"])
        s = resolve_settings(raw)
        start_ray(s)
        try:
            result["noop"] = bench_noop(s, args.seconds)
            data = Path(args.data)
            if args.skip_replay:
                result["replay"] = {"skipped": "--skip-replay"}
            elif not data.is_dir():
                result["replay"] = {"skipped": f"real data folder {data} is absent"}
            else:
                replay_s = resolve_settings(
                    load_settings(
                        [
                            f"state_dir={state}",
                            f"storage.root={state / 'lake'}",
                            f"serving.port={free_port()}",
                            "sources=replay",
                            "tune.max_concurrent=1",
                        ]
                    )
                )
                result["replay"] = bench_replay(replay_s, state, data, args.hours, args.days)
        finally:
            import ray

            ray.shutdown()
            from rayapp.warehouse.db import close_pools

            close_pools()
            services_down(raw)
    noop, rep = result["noop"], result.get("replay", {})
    summary = {
        "lateness_p50_ms": noop["lateness_p50_ms"],
        "lateness_p99_ms": noop["lateness_p99_ms"],
        "duplicates": noop["duplicates"],
        "lost": noop["lost"],
        "refresh_wall_s": rep.get("refresh_wall_s"),
        "cli_wall_s": rep.get("cli_wall_s"),
        "freshness_market_min": rep.get("freshness_market_min"),
        **result,
    }
    print(json.dumps(summary, default=str))


if __name__ == "__main__":
    main()
