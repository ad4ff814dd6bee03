"""The scheduler's semantics, on the session's real Ray cluster and the embedded PostgreSQL.

Jobs fire on 6-field (seconds) cron expressions so each semantic shows in seconds. The test job
`rayapp.testing.jobs:record` writes one line per attempt it starts and finishes to a marker file,
so executions are counted independently of what the scheduler recorded in `pipeline_runs`.
Nothing is mocked: the scheduler is the detached actor `rayapp run` starts, its runners are
real detached actors, and the kill tests kill the real actor and its real process.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rayapp.config import JobSettings, load_settings
from rayapp.errors import InputError
from rayapp.flows.jobs import JobResult
from rayapp.flows.scheduler import backoff_s, decide, due_slots
from rayapp.testing import wait_until
from rayapp.testing.jobs import executions

RECORD = "rayapp.testing.jobs:record"
EVERY_S = "* * * * * *"


# ---- pure policy (no Ray) ----------------------------------------------------------------------
def _t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


def test_due_slots_are_the_cron_slots_after_the_last_one_up_to_now():
    slots = due_slots("*/15 * * * *", _t("2026-01-01 00:00"), _t("2026-01-01 01:07"), 100)
    assert slots == [_t("2026-01-01 00:15"), _t("2026-01-01 00:30"), _t("2026-01-01 00:45"), _t("2026-01-01 01:00")]
    # a slot exactly at now is due; the last recorded one is not due again
    assert due_slots("*/15 * * * *", _t("2026-01-01 00:45"), _t("2026-01-01 01:00"), 100) == [_t("2026-01-01 01:00")]
    assert due_slots("*/15 * * * *", _t("2026-01-01 01:00"), _t("2026-01-01 01:14:59"), 100) == []
    # after a long downtime only the newest `limit` slots are listed (the newest one last)
    week = due_slots(EVERY_S, _t("2026-01-01 00:00"), _t("2026-01-08 00:00"), 5)
    assert week == [_t("2026-01-08 00:00") - timedelta(seconds=i) for i in range(4, -1, -1)]


def test_retry_policy_doubles_the_backoff_up_to_its_cap_then_gives_up():
    spec = JobSettings(cron=EVERY_S, retries=3, backoff_s=10, backoff_max_s=25)
    assert [backoff_s(spec, a) for a in (1, 2, 3)] == [10, 20, 25]
    failed = JobResult(status="failed", error="boom")
    for attempt in (1, 2, 3):
        status, at = decide(spec, attempt, failed)
        assert status == "retrying" and at is not None
    assert decide(spec, 4, failed) == ("failed", None)
    assert decide(spec, 1, JobResult(status="partial")) == ("partial", None)  # partial is not retried


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("schedule.jobs.refresh.cron=every 15 minutes", "schedule.jobs.refresh.cron"),
        ("schedule.jobs.drift.cron=61 * * * *", "schedule.jobs.drift.cron"),
        ("+schedule.jobs.nightly.cron=0 0 * * *", "schedule.jobs.nightly"),
        ("schedule.jobs.resolve.target=no_colon", "schedule.jobs.resolve.target"),
    ],
)
def test_a_bad_schedule_fails_at_start_naming_its_key(override, key):
    with pytest.raises(InputError, match=key.replace(".", r"\.")):
        load_settings([override])


def test_an_unimportable_target_fails_before_anything_starts(settings):
    from rayapp.flows.scheduler import start_scheduler

    s = settings.model_copy(deep=True)
    s.schedule.jobs = {"custom": JobSettings(cron=EVERY_S, target="rayapp.nope:run")}
    with pytest.raises(InputError, match=r"schedule\.jobs\.custom\.target: cannot import"):
        start_scheduler(s)


# ---- on Ray ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def resolved(settings, services, ray_cluster):
    from rayapp.serving import resolve_settings

    return resolve_settings(settings)


class Sched:
    """One scheduler under test, with its own actor name and job names (tests share the tables)."""

    def __init__(self, base, tmp: Path, jobs: dict[str, dict], **schedule) -> None:
        tag = uuid.uuid4().hex[:6]
        self.names = {name: f"{name}_{tag}" for name in jobs}
        self.markers = {name: str(tmp / f"{name}.jsonl") for name in jobs}
        s = base.model_copy(deep=True)
        s.schedule.actor_name = f"sched-{tag}"
        for k, v in schedule.items():
            setattr(s.schedule, k, v)
        s.schedule.jobs = {
            self.names[n]: JobSettings(
                **{"target": RECORD, **j, "params": {"marker": self.markers[n], **j.get("params", {})}}
            )
            for n, j in jobs.items()
        }
        self.settings = s
        self.handle = None

    def start(self) -> Sched:
        from rayapp.flows import start_scheduler

        self.handle = start_scheduler(self.settings)
        return self

    def stop(self) -> None:
        from rayapp.flows import SchedulerNotRunning, stop_scheduler

        with contextlib.suppress(SchedulerNotRunning):
            stop_scheduler(self.settings)

    def runs(self, name: str, pool) -> list[dict]:
        from rayapp.warehouse.pipeline import list_runs

        with pool.connection() as conn:
            return list_runs(conn, job=self.names[name], limit=1000)[::-1]

    def call(self, method: str, *args):
        import ray

        return ray.get(getattr(self.handle, method).remote(*args), timeout=60)


@pytest.fixture
def sched(resolved, tmp_path):
    made: list[Sched] = []

    def make(jobs: dict[str, dict], **schedule) -> Sched:
        s = Sched(resolved, tmp_path, jobs, **schedule)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def _slots_contiguous(runs: list[dict], step_s: float) -> None:
    """Every slot between the first and the last recorded exactly once: none twice, none lost."""
    slots = [r["slot"] for r in runs if r["trigger"] == "schedule"]
    assert len(slots) == len(set(slots)), "a slot was recorded twice"
    for a, b in itertools.pairwise(sorted(slots)):
        assert (b - a).total_seconds() == pytest.approx(step_s), f"slots lost between {a} and {b}"


def test_every_slot_runs_once_and_is_recorded_with_its_counts(sched, pool):
    s = sched({"tick": {"cron": EVERY_S}}).start()
    wait_until(lambda: len([r for r in s.runs("tick", pool) if r["status"] == "succeeded"]) >= 4, 30, what="4 runs")
    s.stop()
    runs = s.runs("tick", pool)
    _slots_contiguous(runs, 1)
    done = executions(s.markers["tick"])
    ok = [r for r in runs if r["status"] == "succeeded"]
    assert sorted(d["run_id"] for d in done) == sorted(r["run_id"] for r in ok)  # one execution per run
    for r in ok:
        assert r["attempt"] == 1 and r["rows_read"] == 1 and r["rows_written"] == 1
        assert r["started_at"] is not None and r["finished_at"] >= r["started_at"]
        assert r["lateness_ms"] >= 0  # how late is for benchmarks/scheduler.py, not a test
    # on a loaded machine a run can outlast its 1 s slot: the next is skipped (forbid), not lost
    others = [r for r in runs if r["status"] not in ("succeeded", "cancelled")]
    assert all(r["status"] == "skipped" and "(forbid)" in r["error"] for r in others), others


def test_a_slot_that_comes_while_the_job_runs_is_skipped_not_queued(sched, pool):
    s = sched({"slow": {"cron": EVERY_S, "params": {"sleep_s": 2.5}}}).start()
    wait_until(lambda: len([r for r in s.runs("slow", pool) if r["status"] == "succeeded"]) >= 2, 40, what="2 runs")
    s.stop()
    runs = s.runs("slow", pool)
    _slots_contiguous(runs, 1)
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert len(skipped) >= 2 and all("still going (forbid)" in r["error"] for r in skipped)
    # never two executions at once: each run started after the previous one finished
    starts = executions(s.markers["slow"], "start")
    dones = {d["run_id"]: d["t"] for d in executions(s.markers["slow"])}
    for a, b in itertools.pairwise(starts):
        assert a["run_id"] in dones and dones[a["run_id"]] <= b["t"]


def test_a_failed_attempt_is_retried_with_backoff_then_recorded_failed(sched, pool):
    s = sched(
        {
            # run by hand only: a scheduled slot of the same job would make the trigger refused
            "flaky": {"cron": "0 0 1 1 *", "retries": 2, "backoff_s": 0.5, "params": {"fail_attempts": 2}},
            "broken": {"cron": "0 0 1 1 *", "retries": 1, "backoff_s": 0.5, "params": {"fail_attempts": 99}},
            "healthy": {"cron": EVERY_S},
        }
    ).start()
    for name in ("flaky", "broken"):
        answer = s.call("trigger", s.names[name])
        assert answer["ok"], answer

    def settled(name):
        return [r for r in s.runs(name, pool) if r["trigger"] == "manual" and r["status"] in ("succeeded", "failed")]

    flaky = wait_until(lambda: settled("flaky"), 60, what="the flaky run to settle")[0]
    broken = wait_until(lambda: settled("broken"), 60, what="the broken run to settle")[0]
    assert flaky["status"] == "succeeded" and flaky["attempt"] == 3 and flaky["max_attempts"] == 3
    assert broken["status"] == "failed" and broken["attempt"] == 2
    assert "planned failure of attempt 2" in broken["error"]
    starts = [d for d in executions(s.markers["flaky"], "start") if d["run_id"] == flaky["run_id"]]
    assert [d["attempt"] for d in starts] == [1, 2, 3]
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.5 and gaps[1] >= 1.0  # 0.5 s, then doubled
    # the failing jobs did not stop the healthy one: it keeps succeeding (each-second slots, but a
    # loaded machine may have run only one of them by the time the others settled)
    wait_until(
        lambda: len([r for r in s.runs("healthy", pool) if r["status"] == "succeeded"]) >= 2,
        30,
        what="the healthy job to succeed twice",
    )


def test_a_run_past_its_timeout_is_cancelled_and_the_next_one_runs(sched, pool):
    s = sched({"hang": {"cron": "* * * * * */4", "timeout_s": 1.5, "retries": 0, "params": {"sleep_s": 60}}}).start()
    first = wait_until(
        lambda: [r for r in s.runs("hang", pool) if r["status"] == "timed_out"], 30, what="a timed-out run"
    )[0]
    assert "timeout_s=1.5" in first["error"]
    assert first["run_id"] not in {d["run_id"] for d in executions(s.markers["hang"])}  # it never finished
    # its runner was killed with it; the next slot gets a fresh runner and starts
    wait_until(
        lambda: [d for d in executions(s.markers["hang"], "start") if d["run_id"] > first["run_id"]],
        30,
        what="the next run to start",
    )


def test_pause_skips_slots_resume_fires_them_trigger_runs_now(sched, pool):
    s = sched({"tick": {"cron": EVERY_S}}).start()
    name = s.names["tick"]
    wait_until(lambda: any(r["status"] == "succeeded" for r in s.runs("tick", pool)), 20, what="a first run")
    assert s.call("pause", name)["paused"] is True
    wait_until(lambda: len([r for r in s.runs("tick", pool) if r["error"] == "job paused"]) >= 2, 20, what="skips")
    manual = s.call("trigger", name)  # a paused job can still be run by hand
    assert manual["ok"], manual
    assert s.call("resume", name)["paused"] is False
    n = len(s.runs("tick", pool))
    wait_until(
        lambda: any(r["status"] == "succeeded" and r["trigger"] == "schedule" for r in s.runs("tick", pool)[n:]),
        20,
        what="a scheduled run after resume",
    )
    s.stop()
    runs = s.runs("tick", pool)
    _slots_contiguous(runs, 1)
    by_id = {r["run_id"]: r for r in runs}
    assert by_id[manual["run_id"]]["trigger"] == "manual" and by_id[manual["run_id"]]["status"] == "succeeded"


def test_trigger_is_refused_while_the_job_runs_and_unknown_jobs_are_named(sched, pool):
    s = sched({"slow": {"cron": "0 0 1 1 *", "params": {"sleep_s": 3}}}).start()
    name = s.names["slow"]
    first = s.call("trigger", name)
    assert first["ok"]
    again = s.call("trigger", name)
    assert not again["ok"] and f"run #{first['run_id']} is still going" in again["error"]
    bad = s.call("trigger", "nope")
    assert not bad["ok"] and "unknown job 'nope'" in bad["error"]


def test_after_downtime_the_newest_missed_slot_runs_and_older_ones_are_recorded_missed(sched, pool):
    from rayapp.warehouse.pipeline import claim, finish

    s = sched({"minutely": {"cron": "* * * * *"}}, misfire_grace_s=120)
    name = s.names["minutely"]
    last = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    with pool.connection() as conn:  # the history a scheduler left before it went down 5 minutes ago
        run_id = claim(
            conn, job=name, clock="wall", slot=last, trigger="schedule", max_attempts=1, runner="old", lateness_ms=0
        )
        finish(conn, run_id, attempt=1, status="succeeded")
    s.start()
    wait_until(lambda: any(r["status"] == "succeeded" for r in s.runs("minutely", pool)[1:]), 30, what="catch-up run")
    runs = s.runs("minutely", pool)
    _slots_contiguous(runs, 60)
    after = runs[1:]
    assert [r["status"] for r in after[:-1]] == ["missed"] * (len(after) - 1) and len(after) >= 5
    assert all("not fired: the scheduler was down" in r["error"] for r in after[:-1])
    assert after[-1]["status"] == "succeeded"  # the newest missed slot, within the grace
    assert len(executions(s.markers["minutely"])) == 1


def test_a_slot_later_than_the_misfire_grace_is_missed_not_run(sched, pool):
    from rayapp.warehouse.pipeline import record_slots

    s = sched({"hourly": {"cron": "0 * * * *"}}, misfire_grace_s=0.0)
    name = s.names["hourly"]
    newest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with pool.connection() as conn:
        record_slots(
            conn, job=name, clock="wall", slots=[newest - timedelta(hours=2)], status="skipped", error="x", runner="t"
        )
    s.start()
    runs = wait_until(lambda: (r := s.runs("hourly", pool)) and len(r) >= 3 and r, 30, what="the catch-up records")
    assert [r["status"] for r in runs[1:]] == ["missed", "missed"]
    assert "past misfire_grace_s" in runs[-1]["error"]
    assert executions(s.markers["hourly"]) == []


@pytest.mark.parametrize("how", ["ray.kill", "SIGKILL"])
def test_killing_the_scheduler_mid_run_neither_runs_a_slot_twice_nor_loses_one(sched, pool, how):
    import ray

    s = sched({"slow": {"cron": "* * * * * */2", "params": {"sleep_s": 3}}}).start()
    running = wait_until(
        lambda: [r for r in s.runs("slow", pool) if r["status"] == "running"], 30, what="a run in flight"
    )[0]
    # mid-run: its runner has started executing it (not merely claimed and sent)
    wait_until(
        lambda: running["run_id"] in {d["run_id"] for d in executions(s.markers["slow"], "start")},
        10,
        what="the run to start executing",
    )
    pid = s.call("pid")
    if how == "ray.kill":
        ray.kill(s.handle, no_restart=False)  # Ray restarts it (max_restarts=-1)
    else:
        os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: (p := s.call("ping"))["pid"] != pid and p["recovered"],
        60,
        what="a restarted scheduler",
        ignore=(ray.exceptions.RayError,),  # unavailable while Ray restarts it
    )
    # the run in flight was adopted: finished once, attempt 1, by its runner
    adopted = wait_until(
        lambda: [r for r in s.runs("slow", pool) if r["run_id"] == running["run_id"] and r["status"] != "running"],
        30,
        what="the adopted run to finish",
    )[0]
    assert adopted["status"] == "succeeded" and adopted["attempt"] == 1, adopted
    n = len(s.runs("slow", pool))
    wait_until(
        lambda: any(r["status"] == "succeeded" for r in s.runs("slow", pool)[n:]), 30, what="a run after the restart"
    )
    s.stop()
    runs = s.runs("slow", pool)
    _slots_contiguous(runs, 2)  # none twice (unique slots), none lost (no gap)
    starts = executions(s.markers["slow"], "start")
    assert len(starts) == len({d["run_id"] for d in starts}), "a run was executed twice"
    done = {d["run_id"] for d in executions(s.markers["slow"])}
    assert {r["run_id"] for r in runs if r["status"] == "succeeded"} == done
    assert {r["status"] for r in runs} <= {"succeeded", "skipped", "missed", "cancelled"}


def test_a_run_whose_runner_died_with_the_scheduler_is_retried_not_lost(sched, pool):
    import ray

    from rayapp.flows.scheduler import RUNNER_PREFIX

    s = sched({"slow": {"cron": "0 0 1 1 *", "retries": 1, "backoff_s": 0.2, "params": {"sleep_s": 3}}}).start()
    name = s.names["slow"]
    run_id = s.call("trigger", name)["run_id"]
    wait_until(lambda: run_id in {d["run_id"] for d in executions(s.markers["slow"], "start")}, 20, what="start")
    pid = s.call("pid")
    # the scheduler dies, then the runner under its attempt: nobody is left to record it, and
    # the restarted scheduler finds the run in flight with no runner behind it
    runner = ray.get_actor(RUNNER_PREFIX + name, namespace=s.settings.schedule.namespace)
    ray.kill(s.handle, no_restart=False)
    ray.kill(runner, no_restart=True)
    wait_until(
        lambda: (p := s.call("ping"))["pid"] != pid and p["recovered"],
        60,
        what="a restarted scheduler",
        ignore=(ray.exceptions.RayError,),
    )
    run = wait_until(
        lambda: [r for r in s.runs("slow", pool) if r["run_id"] == run_id and r["status"] == "succeeded"],
        60,
        what="the interrupted run to be retried and succeed",
    )[0]
    assert run["attempt"] == 2  # attempt 1 was recorded interrupted, attempt 2 ran it
    assert run["error"] is None and run["finished_at"] is not None
    starts = [d["attempt"] for d in executions(s.markers["slow"], "start") if d["run_id"] == run_id]
    assert starts == [1, 2]
    assert [d["attempt"] for d in executions(s.markers["slow"]) if d["run_id"] == run_id] == [2]
