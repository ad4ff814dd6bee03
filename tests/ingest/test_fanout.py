"""The Ray Data fan-out against the real replay server on loopback (generated history).

Nothing is mocked: the clients talk HTTP to `rayapp.replay.server`, rows land in the embedded
PostgreSQL, raw responses in a bronze lake under tmp_path, and one test SIGKILLs a real
`rayapp ingest` process mid-run and restarts it.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rayapp.config import load_settings
from rayapp.flows.commands import ingest_override
from rayapp.ingest.fanout import PartitionWorker
from rayapp.ingest.plan import Partition, Plan, make_plan, windows
from rayapp.ingest.watermarks import WatermarkTracker, advance_watermark, read_watermark, reset_watermark
from rayapp.testing import WaitTimeout, wait_until
from tests.factories import write_replay_history

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOURS = 1500


def _write_history(d: Path) -> None:
    write_replay_history(d, HOURS, T0)


@pytest.fixture(scope="module")
def replay_url(tmp_path_factory):
    from rayapp.replay.server import ReplayServer, app_from_settings

    d = tmp_path_factory.mktemp("replay")
    _write_history(d)
    rs = load_settings([]).replay
    with ReplayServer(app_from_settings(rs, str(d))) as url:
        yield url


def _settings(state_dir, replay_url: str, tmp_path: Path, *extra: str):
    return load_settings(
        [
            f"state_dir={state_dir}",
            "sources=replay",
            f"sources.replay_url={replay_url}",
            f"storage.root={tmp_path / 'lake'}",
            "ingest.workers=2",
            "ingest.max_windows_per_key=1000",
            *extra,
        ]
    )  # many small windows on purpose


def _count(db, sql: str, *params) -> int:
    return int(db.execute(sql, params).fetchone()[0])


# ---- planning and watermarks (no Ray) ----------------------------------------------------------
def test_windows_follow_one_grid():
    w = windows(T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(days=3), pd.Timedelta(hours=24))
    assert w[0] == (T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(days=1))
    assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(w))
    assert w[-1][1] == T0 + pd.Timedelta(days=3) and len(w) == 3


def test_plan_caps_windows_per_key_and_interleaves_sources(db, settings):
    s = settings.model_copy(deep=True)
    s.ingest.window_h = 24
    s.ingest.max_windows_per_key = 4
    now = T0 + pd.Timedelta(days=30, minutes=30)
    plan = make_plan(s, db, ["binance", "coinbase"], start=T0, end=None, now=now)
    by = {src: [p for p in plan.partitions if p.source == src] for src in ("binance", "coinbase")}
    for parts in by.values():
        assert 1 < len(parts) <= 4  # a month in at most 4 windows, each a multiple of 24 h
        assert parts[0].start == T0 and parts[-1].end == T0 + pd.Timedelta(days=30)
        assert all(a.end == b.start for a, b in itertools.pairwise(parts))
        assert all((p.end - p.start) % pd.Timedelta(hours=24) == pd.Timedelta(0) for p in parts[1:-1])
    # round-robin: both sources are in flight from the first partitions on
    assert {p.source for p in plan.partitions[:2]} == {"binance", "coinbase"}
    db.rollback()


def test_plan_resumes_from_the_watermark(db, settings):
    s = settings.model_copy(deep=True)
    s.ingest.window_h = 24
    s.ingest.max_windows_per_key = 1000
    now = T0 + pd.Timedelta(days=10, minutes=30)
    plan = make_plan(s, db, ["binance"], start=T0, end=None, now=now)
    assert len(plan.partitions) == 10 and plan.partitions[-1].end == T0 + pd.Timedelta(days=10)
    assert read_watermark(db, "binance", "BTCUSDT") == (T0, T0)
    # Windows finish out of order: the watermark only moves over a contiguous prefix.
    tracker = WatermarkTracker(db_pool(db), plan)
    tracker.finished(plan.partitions[1])
    assert read_watermark(db, "binance", "BTCUSDT")[1] == T0
    tracker.finished(plan.partitions[0])
    assert read_watermark(db, "binance", "BTCUSDT")[1] == T0 + pd.Timedelta(days=2)
    again = make_plan(s, db, ["binance"], start=T0, end=None, now=now)
    assert again.partitions[0].start == T0 + pd.Timedelta(days=2) and len(again.partitions) == 8
    # A window complete only part-way (the client's complete_until): the watermark stops there.
    tracker = WatermarkTracker(db_pool(db), again)
    tracker.finished(again.partitions[1])
    tracker.finished(again.partitions[0], T0 + pd.Timedelta(days=2, hours=7))
    assert read_watermark(db, "binance", "BTCUSDT")[1] == T0 + pd.Timedelta(days=2, hours=7)
    resumed = make_plan(s, db, ["binance"], start=T0, end=None, now=now)
    assert resumed.partitions[0].start == T0 + pd.Timedelta(days=2, hours=7)
    # An end in the future is clamped to "now" (floored): the open bar is never passed.
    late = make_plan(s, db, ["binance"], start=None, end=now + pd.Timedelta(days=5), now=now)
    assert late.partitions[-1].end == T0 + pd.Timedelta(days=10)
    # Asking for older history starts a new covered range there.
    older = make_plan(s, db, ["binance"], start=T0 - pd.Timedelta(days=2), end=T0, now=now)
    assert [p.start for p in older.partitions] == [T0 - pd.Timedelta(days=2), T0 - pd.Timedelta(days=1)]
    assert read_watermark(db, "binance", "BTCUSDT") == (T0 - pd.Timedelta(days=2),) * 2
    assert not advance_watermark(db, "binance", "BTCUSDT", T0, T0 + pd.Timedelta(days=1))  # not contiguous


def db_pool(db):
    from rayapp.warehouse import get_pool

    return get_pool(db.info.dsn)


def test_ingest_shorthands():
    assert ingest_override("start=2024-01-01") == "ingest.start=2024-01-01"
    assert ingest_override("end=2024-02-01T00:00") == "ingest.end=2024-02-01T00:00"
    assert ingest_override("sources=binance,fear_greed") == "ingest.sources=[binance,fear_greed]"
    assert ingest_override("sources=replay") == "sources=replay"
    assert ingest_override("log.level=DEBUG") == "log.level=DEBUG"


def test_unknown_source_is_a_clear_error(db, settings):
    from rayapp.ingest.fanout import run_ingest

    with pytest.raises(ValueError, match="unknown source"):
        run_ingest(settings, sources=["nasdaq"])


# ---- the fan-out ----------------------------------------------------------------------------------
def test_ingest_fans_out_keeps_going_when_one_source_is_down(db, ray_cluster, replay_url, state_dir, tmp_path, capsys):
    from rayapp.flows.commands import _ingest
    from rayapp.ingest.fanout import run_ingest
    from rayapp.lake import BronzeLake

    end = T0 + pd.Timedelta(days=30)
    s = _settings(
        state_dir,
        replay_url,
        tmp_path,
        "ingest.window_h=240",
        "ingest.start=2024-01-01",
        f"ingest.end={end.isoformat()}",
        "ingest.sources=[binance,fear_greed,cryptocompare,coinbase]",
        # coinbase is down: nothing listens on port 9
        "sources.coinbase_url=http://127.0.0.1:9",
        "ingest.max_attempts=2",
        "sources.backoff_initial_s=0.05",
        "sources.backoff_max_s=0.1",
    )
    rc = _ingest(argparse.Namespace(no_progress=True, json=False, reuse_state=False), s)
    out, err = capsys.readouterr()
    assert rc == 1, out
    assert "failed sources: coinbase" in err and "ingest (13 partitions)" in out
    assert _count(db, "SELECT count(*) FROM candles WHERE source = 'binance'") == 30 * 24
    assert _count(db, "SELECT count(*) FROM candles WHERE source = 'coinbase'") == 0
    assert _count(db, "SELECT count(*) FROM market_index") == 30
    n_articles = _count(db, "SELECT count(*) FROM articles WHERE source = 'cryptocompare'")
    assert n_articles > 50
    assert _count(db, "SELECT count(*) FROM quarantine") == 0
    assert read_watermark(db, "binance", "BTCUSDT")[1] == end
    assert read_watermark(db, "coinbase", "BTCUSDT")[1] == T0  # never advanced past a failure
    lake = BronzeLake.from_settings(s)
    bronze = lake.read("binance", "klines").to_pandas()
    n_windows = len(windows(T0, end, pd.Timedelta(hours=240)))  # one page per window of 240 h
    assert len(bronze) == n_windows and set(bronze["status"]) == {200}
    assert bronze["payload"].str.startswith("[[").all()

    # Re-run later: only what is new since each watermark is fetched. The RSS feed has no
    # history (one partition: the feed as it is now); Reddit has no credentials here: skipped.
    rep = run_ingest(s, sources=["binance", "fear_greed", "coindesk", "reddit"], end=end + pd.Timedelta(days=2))
    assert rep.ok, rep.summaries
    assert {p.start for p in rep.plan.partitions if p.source != "coindesk"} == {end}
    assert rep.summaries["reddit"].note.startswith("skipped") and rep.summaries["reddit"].read == 0
    assert rep.summaries["coindesk"].written > 0
    assert rep.summaries["binance"].read == 48 and rep.summaries["binance"].written == 48
    assert rep.summaries["fear_greed"].written == 2
    assert _count(db, "SELECT count(*) FROM candles WHERE source = 'binance'") == 32 * 24


def _rayapp(*args: str, **kw) -> list[str]:
    return [sys.executable, "-m", "rayapp.cli", *args]


def _wait_group_gone(pgid: int, timeout_s: float = 30) -> None:
    def gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    # After SIGKILL only exiting processes or zombies (which commit nothing) can be left: go on
    # after the timeout rather than fail.
    with contextlib.suppress(WaitTimeout):
        wait_until(gone, timeout_s, interval_s=0.1, what=f"process group {pgid} to be gone")


def test_killed_run_restarts_without_gap_or_duplicate(db, ray_cluster, replay_url, state_dir, tmp_path):
    from rayapp.ingest.fanout import run_ingest
    from rayapp.lake import BronzeLake

    end = T0 + pd.Timedelta(days=60)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # its own Ray, killed with it
    common = [
        "ingest",
        "--no-progress",
        "sources=replay",
        f"sources.replay_url={replay_url}",
        "sources=binance",
        "start=2024-01-01",
        f"end={end.isoformat()}",
        "ingest.window_h=48",
        "ingest.max_windows_per_key=1000",
        f"storage.root={tmp_path / 'lake'}",
        "ingest.workers=2",
        f"state_dir={state_dir}",
    ]
    log1 = open(tmp_path / "run1.log", "w")  # noqa: SIM115 - closed below, after the kill
    # Throttled to ~1 call/s after a burst of 10, so the run is surely killed part-way.
    proc = subprocess.Popen(
        _rayapp(*common, "sources.rate_limits.binance=120"),
        env=env,
        stdout=log1,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:

        def progressed() -> bool:
            if proc.poll() is not None:
                return True  # finished already: the assertion below reports it
            wm = read_watermark(db, "binance", "BTCUSDT")
            db.commit()
            return bool(wm and wm[1] >= T0 + pd.Timedelta(days=4))

        with contextlib.suppress(WaitTimeout):  # still short of 4 days: killed all the same
            wait_until(progressed, 180, what="the run's binance watermark to pass 4 days")
        assert proc.poll() is None, "run finished before it could be killed:\n" + (tmp_path / "run1.log").read_text()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        _wait_group_gone(proc.pid)  # its Ray processes too: nothing can commit after this
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log1.close()
    killed_at = read_watermark(db, "binance", "BTCUSDT")[1]
    db.commit()
    assert T0 < killed_at < end

    # The restart: a new driver (in this process, on the session's Ray) with the same request.
    s = _settings(state_dir, replay_url, tmp_path, "ingest.window_h=48")
    rep = run_ingest(s, sources=["binance"], start=T0, end=end)
    assert rep.ok, rep.summaries
    assert rep.plan.partitions[0].start == killed_at  # resumed, not restarted
    assert len(rep.plan.partitions) == len(windows(killed_at, end, pd.Timedelta(hours=48)))

    rows = db.execute("SELECT open_time FROM candles WHERE source = 'binance' ORDER BY open_time").fetchall()
    times = pd.DatetimeIndex([r[0] for r in rows])
    assert len(times) == 60 * 24 and times.is_unique
    assert times[0] == T0 and times[-1] == end - pd.Timedelta(hours=1)
    assert (times[1:] - times[:-1] == pd.Timedelta(hours=1)).all()  # no gap
    assert _count(db, "SELECT count(*) FROM quarantine") == 0  # no duplicate was even offered
    assert read_watermark(db, "binance", "BTCUSDT")[1] == end
    bronze = BronzeLake.from_settings(s).read("binance", "klines")
    # One file per window, replaced when a window is fetched again: no duplicate receipts.
    n_windows = len(windows(T0, end, pd.Timedelta(hours=48)))
    assert bronze.num_rows == n_windows
    assert len(set(bronze.column("window_start").to_pylist())) == n_windows


async def test_one_partition_bad_payload_then_duplicates(db, ray_cluster, settings, tmp_path):
    """A worker on its own (no Ray Data): a malformed page fails the window and is kept in bronze;
    the refetch with duplicate and out-of-order rows loads each hour once."""
    import asyncio

    from rayapp.lake import BronzeLake
    from tests.ingest.faults import HOUR_MS, FaultServer, kline, respond

    t0_ms = int(T0.timestamp() * 1000)
    bars = [kline(t0_ms + i * HOUR_MS, 40_000 + i) for i in range(24)]
    messy = bars[:5] + bars[3:5] + bars[5:][::-1]  # two repeats, the rest newest first
    part = Partition("binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=24), 0)
    async with FaultServer() as srv:
        srv.script("/api/v3/klines", respond(text='[[1704067200000,"42000.1"'), respond(200, messy))
        s = load_settings(
            [
                f"state_dir={settings.state_dir}",
                f"sources.binance_url={srv.url}",
                f"sources.binance_fallback_url={srv.url}",
                f"storage.root={tmp_path / 'lake'}",
            ]
        )
        worker = PartitionWorker(s)
        reset_watermark(db, "binance", "BTCUSDT", T0)
        db.commit()
        bad, until = await asyncio.to_thread(worker.process, part)
        assert not bad.ok and "JSON" in bad.errors[0] and until == T0
        kept = BronzeLake.from_settings(s).read("binance", "klines_errors").to_pylist()
        assert kept[0]["payload"] == '[[1704067200000,"42000.1"' and kept[0]["status"] == 200
        assert _count(db, "SELECT count(*) FROM candles") == 0
        assert read_watermark(db, "binance", "BTCUSDT")[1] == T0
        good, until = await asyncio.to_thread(worker.process, part)
    assert good.ok, good.errors
    assert until == T0 + pd.Timedelta(hours=24)
    assert (good.read, good.written, good.quarantined) == (26, 24, 2)
    assert _count(db, "SELECT count(DISTINCT open_time) FROM candles") == 24
    assert _count(db, "SELECT count(*) FROM quarantine WHERE check_name = 'duplicate_key'") == 2
    assert read_watermark(db, "binance", "BTCUSDT")[1] == T0 + pd.Timedelta(hours=24)


def test_partition_round_trip():
    p = Partition("binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=24), 3)
    assert Partition.from_row(p.to_row()) == p
    assert Plan().partitions == []


def test_shared_limiter_outlives_the_handles_a_run_drops(ray_cluster, settings):
    """The driver creates each source's limiter actor and drops the returned object; the actor
    must stay alive for the workers of this run and the next (it is not detached)."""
    import gc

    import ray

    from rayapp.ingest.http import RayRateLimiter, make_limiter

    make_limiter("fear_greed", settings, shared=True)
    gc.collect()
    time.sleep(1.0)  # long enough for an unreferenced actor to be torn down
    again = RayRateLimiter.lookup("fear_greed")
    assert ray.get(again.handle.total_reserved.remote(), timeout=30) >= 0.0
    assert make_limiter("fear_greed", settings, shared=True).handle._actor_id == again.handle._actor_id
