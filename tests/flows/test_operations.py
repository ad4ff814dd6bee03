"""The scheduler in operation: on the replay market clock, running the real `refresh` job, and
through store outages (its own embedded PostgreSQL and Redis, stopped and restarted).

The feed is the real replay server on loopback serving generated history in the shared data
formats; the refresh job ingests it through the real clients into the embedded warehouse.
"""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

import pandas as pd
import pytest

from rayapp.config import JobSettings, load_settings
from rayapp.testing import wait_until
from rayapp.testing.jobs import executions
from tests.factories import write_replay_history
from tests.helpers import short_tmpdir

T0 = pd.Timestamp("2024-01-01", tz="UTC")
HOURS = 1200
RECORD = "rayapp.testing.jobs:record"


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("history")
    write_replay_history(d, HOURS, T0)
    return d


def _replay(history: Path, speed: float, start_h: int):
    from rayapp.replay import ReplayServer, app_from_settings

    rs = load_settings([]).replay.model_copy(deep=True)
    rs.start, rs.speed = (T0 + pd.Timedelta(hours=start_h)).isoformat(), speed
    return ReplayServer(app_from_settings(rs, str(history)))


@pytest.fixture(scope="module")
def own_services(ray_cluster):
    """An embedded PostgreSQL and Redis of this module's own, so stopping them spares the others."""
    import shutil

    from rayapp.services import services_down, services_up

    state = short_tmpdir("rayapp-ops-")
    s = load_settings([f"state_dir={state}"])
    services_up(s)
    yield s
    services_down(s)
    shutil.rmtree(state, ignore_errors=True)


def _settings(base, replay_url: str, tmp: Path, *extra: str):
    from rayapp.serving import resolve_settings

    s = load_settings(
        [
            f"state_dir={base.state_dir}",
            "sources=replay",
            f"sources.replay_url={replay_url}",
            f"storage.root={tmp / 'lake'}",
            "ingest.workers=2",
            "ingest.lookback_days=10",
            "sources.backoff_max_s=0.2",
            "ingest.max_attempts=2",
            *extra,
        ]
    )
    return resolve_settings(s)


def _runs(pool, job: str) -> list[dict]:
    from rayapp.warehouse.pipeline import list_runs

    with pool.connection() as conn:
        return list_runs(conn, job=job, limit=1000)[::-1]


def _pool(s):
    from rayapp.warehouse import get_pool

    return get_pool(s)


def _start(s, jobs: dict[str, JobSettings]):
    from rayapp.flows import start_scheduler

    s = s.model_copy(deep=True)
    s.schedule.actor_name = f"sched-{uuid.uuid4().hex[:6]}"
    s.schedule.jobs = jobs
    return s, start_scheduler(s)


def test_on_the_replay_clock_slots_are_market_times(history, own_services, tmp_path):
    from rayapp.flows import stop_scheduler

    # 900x: a 15-minute market slot every wall second
    with _replay(history, speed=900, start_h=HOURS - 100) as url:
        base = _settings(own_services, url, tmp_path)
        job = f"quarter_{uuid.uuid4().hex[:6]}"
        spec = JobSettings(cron="*/15 * * * *", target=RECORD, params={"marker": str(tmp_path / "m.jsonl")})
        s, _h = _start(base, {job: spec})
        try:
            pool = _pool(s)
            wait_until(lambda: len([r for r in _runs(pool, job) if r["status"] == "succeeded"]) >= 4, 40, what="runs")
        finally:
            stop_scheduler(s)
    runs = [r for r in _runs(pool, job) if r["trigger"] == "schedule"]
    assert {r["clock"] for r in runs} == {runs[0]["clock"]} and runs[0]["clock"].startswith("replay:")
    slots = [pd.Timestamp(r["slot"]) for r in runs]
    assert all(t.minute % 15 == 0 and t.second == 0 for t in slots)
    assert T0 + pd.Timedelta(hours=HOURS - 100) <= slots[0] <= T0 + pd.Timedelta(hours=HOURS - 99)  # market time
    assert all((b - a) == pd.Timedelta(minutes=15) for a, b in itertools.pairwise(slots))
    # lateness is recorded in wall ms (how much is benchmarks/scheduler.py's to say)
    assert all(r["lateness_ms"] >= 0 for r in runs if r["status"] == "succeeded")
    assert len(executions(str(tmp_path / "m.jsonl"))) == len([r for r in runs if r["status"] == "succeeded"])


def test_refresh_with_a_source_down_is_partial_and_the_other_sources_land(history, own_services, tmp_path):
    from rayapp.flows import run_once

    with _replay(history, speed=3600, start_h=HOURS - 48) as url:
        s = _settings(
            own_services,
            url,
            tmp_path,
            "sources.enabled=[binance,cryptocompare,fear_greed,coinbase]",
            "sources.coinbase_url=http://127.0.0.1:9",  # nothing listens there: coinbase is down
        )
        first = run_once(s, "refresh")
    assert first["status"] == "partial", first
    pool = _pool(s)
    row = next(r for r in _runs(pool, "refresh") if r["run_id"] == first["run_id"])
    ingest = row["stats"]["ingest"]
    assert not ingest["coinbase"]["ok"] and ingest["coinbase"]["errors"]
    assert "coinbase" in row["error"]
    for name in ("binance", "cryptocompare", "fear_greed"):
        assert ingest[name]["ok"] and ingest[name]["written"] > 0, (name, ingest[name])
    assert row["rows_written"] > 0 and row["rows_read"] >= row["rows_written"] - row["stats"]["score"].get("scored", 0)
    assert row["stats"]["score"]["scored"] > 0  # the new news was scored in the same run
    (feat,) = row["stats"]["features"]["symbols"]
    assert feat["symbol"] == "BTCUSDT" and feat["online_ts"] is not None  # the online vector was written
    with pool.connection() as conn:
        n = conn.execute("SELECT count(*) FROM candles WHERE source = 'binance'").fetchone()[0]
    assert n > 0


def test_the_warehouse_down_fails_runs_clearly_and_the_next_slot_succeeds_once_it_is_back(
    own_services, tmp_path, resolved_own
):
    from rayapp.flows import stop_scheduler
    from rayapp.services.postgres import EmbeddedPostgres

    job = f"tick_{uuid.uuid4().hex[:6]}"
    marker = str(tmp_path / "m.jsonl")
    s, _h = _start(resolved_own, {job: JobSettings(cron="* * * * * *", target=RECORD, params={"marker": marker})})
    pool = _pool(s)
    pg = EmbeddedPostgres(own_services.state_path)
    try:
        wait_until(lambda: len([r for r in _runs(pool, job) if r["status"] == "succeeded"]) >= 2, 30, what="runs")
        assert pg.stop()
        import time

        time.sleep(4)  # slots come and go while the warehouse is down
        url, started = pg.start()
        assert started and url == s.database.url
        t_back = pd.Timestamp.now(tz="UTC")
        wait_until(
            lambda: any(r["status"] == "succeeded" and r["slot"] > t_back for r in _runs(pool, job)),
            60,
            what="a successful run after the warehouse came back",
            ignore=(Exception,),
        )
    finally:
        pg.start()
        stop_scheduler(s)
    runs = _runs(pool, job)
    slots = sorted(r["slot"] for r in runs if r["trigger"] == "schedule")
    assert len(slots) == len(set(slots))
    gaps = [(a, b) for a, b in itertools.pairwise(slots) if (b - a).total_seconds() != 1]
    assert not gaps, f"slots lost: {gaps}; runs: {[(r['slot'], r['status'], r['error']) for r in runs]}"
    down = [r for r in runs if r["status"] in ("failed", "missed")]
    assert down, "the outage left no trace"
    assert all("warehouse" in r["error"] or "PostgreSQL" in r["error"] or "connection" in r["error"] for r in down)


@pytest.fixture(scope="module")
def resolved_own(own_services):
    from rayapp.serving import resolve_settings

    return resolve_settings(own_services)


def test_redis_down_fails_the_refresh_clearly_and_the_next_run_succeeds_once_it_is_back(
    history, own_services, tmp_path
):
    from rayapp.flows import run_once
    from rayapp.services.redis import EmbeddedRedis

    with _replay(history, speed=7200, start_h=HOURS - 300) as url:
        s = _settings(own_services, url, tmp_path, "sources.enabled=[binance]")
        with _pool(s).connection() as conn:  # a fresh warehouse: this replay starts behind the others
            conn.execute("TRUNCATE candles, watermarks, features, feature_sets, quarantine CASCADE")
            conn.commit()
        run_once(s, "refresh")  # the history so far, with Redis up
        redis = EmbeddedRedis(own_services.state_path, own_services.redis.port)
        assert redis.stop()
        try:
            import time

            time.sleep(2)  # new candles arrive meanwhile (2 market hours per wall second)
            down = run_once(s, "refresh")
        finally:
            redis.start()
        assert down["status"] == "failed" and "features" in down["error"], down
        assert "Redis" in down["error"] or "redis" in down["error"]
        time.sleep(1.5)
        back = run_once(s, "refresh")
    assert back["status"] == "succeeded", back
    pool = _pool(s)
    row = next(r for r in _runs(pool, "refresh") if r["run_id"] == back["run_id"])
    assert row["stats"]["features"]["symbols"][0]["online_ts"] is not None
