"""The Ray-native scheduler: a detached, named actor that fires conf/schedule/ jobs on cron slots.

Semantics (the ones Airflow, Kubernetes CronJob and KubeRay's RayCronJob users rely on):

- **forbid overlap**: a slot that comes while the job's previous run is still going (or waiting to
  retry) is recorded `skipped`, not queued;
- **no catch-up**: after downtime the newest missed slot runs if it is at most
  `schedule.misfire_grace_s` late; every older one (and the newest, when later than that) is
  recorded `missed`;
- **retries**: a failed attempt is retried `retries` times after `backoff_s`, doubling up to
  `backoff_max_s` (`retrying` in between), then recorded `failed`; a run past `timeout_s` (wall
  seconds, counted from when its runner actor is up) has its runner killed and is recorded
  `timed_out`;
- **pause / resume / trigger** per job; one job's failure never stops the others.

Every slot lands in `pipeline_runs` (rayapp/warehouse/pipeline.py), whose unique indexes make "a
slot recorded once" and "one run in flight per job" the database's invariants. The scheduler
keeps nothing it cannot rebuild from there: Ray restarts the actor when it or its process dies
(`max_restarts=-1`), the new incarnation reads the newest recorded slot per job, adopts the run
in flight (its runner is a separate detached actor that keeps going and records its own result),
re-arms pending retries and catches up as above. So killing it mid-run neither runs a slot twice
nor loses one.

Each job runs in its own detached runner actor (`rayapp-job-<name>`, 0 CPUs, threaded so it can
answer "what are you running" while it works), off the scheduler's thread; the job's own Ray work
(ingest fan-out, scoring actors, Tune) is scheduled by Ray as usual. A runner is killed to cancel a
run and recreated on the next one.

The clock is wall time, or the replay server's market clock (`rayapp/clock.py`): with a replay
at 60x, a 15-minute slot comes every 15 wall seconds.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import ray
from croniter import croniter

from rayapp.errors import InputError, RayappError, StoreUnavailable
from rayapp.flows.jobs import JobResult, RunContext, execute
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.clock import Clock
    from rayapp.config import JobSettings, Settings

log = get_logger(__name__)
RUNNER_PREFIX = "rayapp-job-"
ADOPTED_CHECK_S = 1.0
RUNNER_START_S = 120.0  # a fresh runner (a new worker process) must be up within this before timeout_s counts


class SchedulerNotRunning(RayappError):
    """No scheduler actor on the cluster (exit 1)."""


class JobBusy(RayappError):
    """The job has a run in flight; a trigger is refused, not queued (exit 1)."""


# ---- slots and policy (pure) -------------------------------------------------------------------
def due_slots(cron: str, after: datetime, now: datetime, limit: int) -> list[datetime]:
    """The cron slots in (after, now], oldest first; at most the newest `limit` of them."""
    it = croniter(cron, now + timedelta(microseconds=1))
    out: list[datetime] = []
    while len(out) < limit:
        slot = it.get_prev(datetime)
        if slot <= after:
            break
        out.append(slot)
    return out[::-1]


def next_slot(cron: str, now: datetime) -> datetime:
    return croniter(cron, now).get_next(datetime)  # type: ignore[no-any-return]


def backoff_s(spec: JobSettings, attempt: int) -> float:
    """The wait after failed attempt `attempt` (1-based)."""
    return float(min(spec.backoff_max_s, spec.backoff_s * 2 ** (attempt - 1)))


def decide(spec: JobSettings, attempt: int, result: JobResult) -> tuple[str, datetime | None]:
    """The status an attempt's result leaves the run in, and when to retry (wall time)."""
    if result.status == "failed" and attempt <= spec.retries:
        return "retrying", datetime.now(UTC) + timedelta(seconds=backoff_s(spec, attempt))
    return result.status, None


def _db_errors() -> tuple[type[BaseException], ...]:
    import psycopg
    from psycopg_pool import PoolTimeout

    return (psycopg.OperationalError, PoolTimeout, StoreUnavailable)


def write_outcome(
    settings: Settings, run_id: int, attempt: int, status: str, result: JobResult, retry_at: datetime | None
) -> bool:
    """Record an attempt's end; False when someone recorded it first. Raises when the warehouse is down."""
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.pipeline import finish

    with get_pool(settings).connection() as conn:
        return finish(
            conn,
            run_id,
            attempt=attempt,
            status=status,
            rows=result.rows,
            stats=result.stats,
            error=result.error,
            retry_at=retry_at,
        )


# ---- the runner: one detached actor per job ----------------------------------------------------
class JobRunner:
    """Runs one job's attempts; records each attempt's end itself, so a result is kept even when
    the scheduler that started it has died meanwhile."""

    def __init__(self, job: str) -> None:
        self.job = job
        self._current: int | None = None

    def run(self, settings: Settings, spec: JobSettings, ctx: RunContext) -> dict[str, Any]:
        self._current = ctx.run_id
        try:
            result = execute(settings, ctx.job, spec, ctx)
            status, retry_at = decide(spec, ctx.attempt, result)
            try:
                write_outcome(settings, ctx.run_id, ctx.attempt, status, result, retry_at)
                written = True
            except _db_errors() as exc:
                log.warning("run result not recorded: the scheduler will", run_id=ctx.run_id, error=str(exc)[:200])
                written = False
            return {"result": asdict(result), "status": status, "retry_at": retry_at, "written": written}
        finally:
            self._current = None

    def current(self) -> int | None:
        return self._current

    def pid(self) -> int:
        return os.getpid()


# ---- the scheduler actor -----------------------------------------------------------------------
@dataclass
class _JobState:
    spec: JobSettings
    last_slot: datetime | None = None
    paused: bool = False


@dataclass
class _Inflight:
    run_id: int
    attempt: int
    slot: datetime
    deadline: float  # wall epoch seconds
    ref: Any = None  # the runner call; None for a run adopted after a restart
    # The runner's readiness while it starts (a fresh actor is a new process): `timeout_s` counts
    # from when the runner is up, so a loaded node's slow actor start is not charged to the job.
    ready: Any = None
    checked: float = 0.0
    trigger: str = "schedule"


@dataclass
class _Retry:
    run_id: int
    attempt: int  # the attempt to start
    slot: datetime
    at: float  # wall epoch seconds
    trigger: str = "schedule"


@dataclass
class _Command:
    kind: str
    job: str | None = None
    future: concurrent.futures.Future[Any] = field(default_factory=concurrent.futures.Future)


class Scheduler:
    def __init__(self, settings: Settings) -> None:
        s = settings.model_copy(deep=True)
        # The scheduler's own statements must fail fast when the warehouse is down, not hang its loop.
        s.database.connect_timeout_s = min(s.database.connect_timeout_s, 3.0)
        self.settings, self.cfg = s, s.schedule
        self.incarnation = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.jobs = {n: _JobState(j) for n, j in self.cfg.jobs.items() if j.enabled}
        self.clock: Clock | None = None
        self.recovered = False
        self.inflight: dict[str, _Inflight] = {}
        self.retries: dict[str, _Retry] = {}
        self.pending: list[tuple[str, Any]] = []  # warehouse writes waiting for it to come back
        self.runners: dict[str, Any] = {}
        self.last_error: str | None = None
        self.started = time.time()
        self._heartbeat_at = 0.0
        self._cmds: queue.Queue[_Command] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rayapp-scheduler", daemon=True)
        self._thread.start()
        log.info("scheduler started", incarnation=self.incarnation, jobs=sorted(self.jobs))

    # -- actor methods ---------------------------------------------------------------------------
    def ping(self) -> dict[str, Any]:
        return {"incarnation": self.incarnation, "pid": os.getpid(), "recovered": self.recovered}

    def pid(self) -> int:
        return os.getpid()

    def status(self) -> dict[str, Any]:
        clock = self.clock
        now = clock.now() if clock else None
        jobs = []
        for name, st in sorted(self.jobs.items()):
            f, r = self.inflight.get(name), self.retries.get(name)
            jobs.append(
                {
                    "job": name,
                    "cron": st.spec.cron,
                    "paused": st.paused,
                    "next_slot": next_slot(st.spec.cron, now).isoformat() if now else None,
                    "last_slot": st.last_slot.isoformat() if st.last_slot else None,
                    "running": None if f is None else {"run_id": f.run_id, "attempt": f.attempt},
                    "retrying": None if r is None else {"run_id": r.run_id, "attempt": r.attempt, "at": r.at},
                }
            )
        return {
            "incarnation": self.incarnation,
            "pid": os.getpid(),
            "recovered": self.recovered,
            "clock": None if clock is None else {"id": clock.id, "kind": clock.kind, "speed": clock.speed},
            "now": now.isoformat() if now else None,
            "jobs": jobs,
            "pending_writes": len(self.pending),
            "last_error": self.last_error,
        }

    def trigger(self, job: str) -> dict[str, Any]:
        return self._ask("trigger", job)

    def pause(self, job: str) -> dict[str, Any]:
        return self._ask("pause", job)

    def resume(self, job: str) -> dict[str, Any]:
        return self._ask("resume", job)

    def stop(self) -> dict[str, Any]:
        """Cancel what is in flight (runners killed, runs recorded `cancelled`) and stop firing."""
        return self._ask("stop", None)

    def _ask(self, kind: str, job: str | None, timeout_s: float = 60) -> dict[str, Any]:
        if job is not None and job not in self.jobs:
            return {"ok": False, "error": f"unknown job {job!r} (scheduled: {', '.join(sorted(self.jobs))})"}
        cmd = _Command(kind, job)
        self._cmds.put(cmd)
        self._wake.set()
        try:
            return dict(cmd.future.result(timeout=timeout_s))
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

    # -- the loop --------------------------------------------------------------------------------
    def _loop(self) -> None:
        db_errors = _db_errors()
        while not self._stop.is_set():
            errors: list[str] = []
            wait = self.cfg.tick_s
            # Each step on its own: the warehouse being down fails the steps that need it, and the
            # slots that come meanwhile are still accounted for (recorded when it is back); a bug
            # in one step does not stop the others.
            steps: list[Callable[[], None]] = [] if self.recovered else [self._recover]
            steps += [
                self._commands,
                self._flush_pending,
                self._poll_inflight,
                self._start_retries,
                self._fire_due,
                self._heartbeat,
            ]
            for step in steps:
                try:
                    step()
                except db_errors as exc:
                    errors.append(f"warehouse unavailable: {exc}")
                except Exception as exc:
                    import traceback

                    errors.append(f"{step.__name__}: {type(exc).__name__}: {exc}")
                    log.error(
                        "scheduler step failed", step=step.__name__, traceback=traceback.format_exc(limit=8)[-2000:]
                    )
                if not self.recovered:
                    break  # nothing else can run before the state is rebuilt
            if errors:
                self._note_error("; ".join(errors))
                wait = 1.0
            else:
                self.last_error = None
                try:
                    wait = self._sleep_s()
                except Exception as exc:  # the replay clock may be unreadable
                    self._note_error(f"{type(exc).__name__}: {exc}")
                    wait = 1.0
            self._wake.wait(wait)
            self._wake.clear()

    def _note_error(self, error: str) -> None:
        if error != self.last_error:
            log.error("scheduler", error=error[:300])
        self.last_error = error

    def _pool(self) -> Any:
        from rayapp.warehouse import get_pool

        return get_pool(self.settings)

    def _recover(self) -> None:
        """Rebuild the state from pipeline_runs / pipeline_jobs (a first start or a restart)."""
        from rayapp.clock import system_clock
        from rayapp.warehouse.pipeline import active_runs, forget_jobs, last_slots, paused_jobs

        if self.clock is None:
            self.clock = system_clock(self.settings)
        now = self.clock.now()
        with self._pool().connection() as conn:
            last = last_slots(conn, self.clock.id)
            paused = paused_jobs(conn)
            active = active_runs(conn)
            forget_jobs(conn, list(self.cfg.jobs))
        for name, st in self.jobs.items():
            # No history: start from now (catchup=false); with history, the next tick catches up.
            st.last_slot = last.get(name) or now
            st.paused = name in paused
        adopted = []
        for row in active:
            name = row["job"]
            if name not in self.jobs:
                log.warning("run in flight of a job no longer scheduled", job=name, run_id=row["run_id"])
                continue
            if row["status"] == "running":
                started = row["started_at"].timestamp() if row["started_at"] else time.time()
                self.inflight[name] = _Inflight(
                    row["run_id"],
                    row["attempt"],
                    row["slot"],
                    started + self.jobs[name].spec.timeout_s,
                    trigger=row["trigger"],
                )
            else:
                at = row["retry_at"].timestamp() if row["retry_at"] else time.time()
                self.retries[name] = _Retry(row["run_id"], row["attempt"] + 1, row["slot"], at, row["trigger"])
            adopted.append(row["run_id"])
        for name in self.jobs:
            self._runner(name)  # warm: the first run does not wait for a worker process
        self.recovered = True
        self._heartbeat(force=True)
        log.info(
            "scheduler state rebuilt",
            clock=self.clock.id,
            last_slots={k: v.isoformat() for k, v in last.items()},
            adopted=adopted,
            paused=sorted(paused),
        )

    def _runner(self, name: str) -> Any:
        h = self.runners.get(name)
        if h is None:
            actor = ray.remote(JobRunner)
            h = actor.options(  # type: ignore[attr-defined]
                name=RUNNER_PREFIX + name,
                namespace=self.cfg.namespace,
                lifetime="detached",
                get_if_exists=True,
                num_cpus=0,
                max_concurrency=2,
                max_restarts=0,
            ).remote(name)
            self.runners[name] = h
        return h

    def _kill_runner(self, name: str) -> None:
        """Kill the job's runner (cancelling its attempt and the Ray work it owns) and wait until
        its name is free, so the next run gets a new runner rather than the dead one."""
        self.runners.pop(name, None)
        kill_runner(name, self.cfg.namespace)

    def _commands(self) -> None:
        from rayapp.warehouse.pipeline import cancel, claim, set_paused

        while True:
            try:
                cmd = self._cmds.get_nowait()
            except queue.Empty:
                return
            try:
                name = cmd.job
                if cmd.kind == "trigger":
                    assert name is not None and self.clock is not None
                    busy = self.inflight.get(name) or self.retries.get(name)
                    if busy is not None:
                        cmd.future.set_result({"ok": False, "error": f"{name} run #{busy.run_id} is still going"})
                        continue
                    slot = self.clock.now()
                    with self._pool().connection() as conn:
                        run_id = claim(
                            conn,
                            job=name,
                            clock=self.clock.id,
                            slot=slot,
                            trigger="manual",
                            max_attempts=self.jobs[name].spec.retries + 1,
                            runner=self.incarnation,
                            lateness_ms=0.0,
                        )
                    if run_id is None:
                        cmd.future.set_result({"ok": False, "error": f"{name} has a run in flight"})
                        continue
                    self._dispatch(name, run_id, 1, slot, "manual")
                    cmd.future.set_result({"ok": True, "run_id": run_id, "slot": slot.isoformat()})
                elif cmd.kind in ("pause", "resume"):
                    assert name is not None
                    st = self.jobs[name]
                    with self._pool().connection() as conn:
                        set_paused(conn, name, cmd.kind == "pause", st.spec.cron)
                    st.paused = cmd.kind == "pause"
                    log.info(f"job {cmd.kind}d", job=name)
                    cmd.future.set_result({"ok": True, "job": name, "paused": st.paused})
                elif cmd.kind == "stop":
                    cancelled = []
                    for n, f in list(self.inflight.items()):
                        self._kill_runner(n)
                        cancelled.append(f.run_id)
                    cancelled += [r.run_id for r in self.retries.values()]
                    with self._pool().connection() as conn:
                        for run_id in cancelled:
                            cancel(conn, run_id, "cancelled: the scheduler was stopped")
                    self.inflight.clear()
                    self.retries.clear()
                    for n in list(self.runners):
                        self._kill_runner(n)
                    self._stop.set()
                    log.info("scheduler stopped", cancelled=cancelled)
                    cmd.future.set_result({"ok": True, "cancelled": cancelled})
            except Exception as exc:
                cmd.future.set_result({"ok": False, "error": f"{type(exc).__name__}: {exc}"})

    def _write(self, kind: str, args: Any) -> None:
        """One write of the run history: an attempt's outcome, or slots that did not run."""
        from rayapp.warehouse.pipeline import record_slots

        if kind == "outcome":
            write_outcome(self.settings, *args)
        else:
            with self._pool().connection() as conn:
                record_slots(conn, **args)

    def _write_or_defer(self, kind: str, args: Any) -> None:
        """Write now, or keep it for when the warehouse is back (`_flush_pending`)."""
        try:
            self._write(kind, args)
        except _db_errors() as exc:
            self._defer(kind, args, exc)

    def _defer(self, kind: str, args: Any, exc: BaseException) -> None:
        self.pending.append((kind, args))
        self._note_error(f"warehouse unavailable: {exc}")

    def _flush_pending(self) -> None:
        while self.pending:
            kind, args = self.pending[0]
            self._write(kind, args)
            self.pending.pop(0)
            log.info("recorded after the warehouse came back", kind=kind)

    def _record_slots(self, **args: Any) -> None:
        self._write_or_defer("slots", args)

    def _settle(
        self,
        name: str,
        f: _Inflight,
        result: JobResult,
        status: str,
        retry_at: datetime | None,
        *,
        write: bool = True,
    ) -> None:
        """An attempt is over: record it (unless its runner did) and arm its retry, if any."""
        if write:
            self._write_or_defer("outcome", (f.run_id, f.attempt, status, result, retry_at))
            log.info("run recorded by the scheduler", job=name, run_id=f.run_id, status=status, error=result.error)
        if status == "retrying" and retry_at is not None:
            self.retries[name] = _Retry(f.run_id, f.attempt + 1, f.slot, retry_at.timestamp(), f.trigger)

    def _failed(self, name: str, f: _Inflight, error: str) -> None:
        """The attempt failed without a result from its runner (it died, or was lost)."""
        self.runners.pop(name, None)
        result = JobResult(status="failed", error=error)
        self._settle(name, f, result, *decide(self.jobs[name].spec, f.attempt, result))

    def _dispatch(self, name: str, run_id: int, attempt: int, slot: datetime, trigger: str) -> None:
        assert self.clock is not None
        st = self.jobs[name]
        ctx = RunContext(run_id, name, slot, attempt, self.clock.id, trigger, dict(st.spec.params))
        runner = self._runner(name)
        ready = runner.__ray_ready__.remote()
        ref = runner.run.remote(self.settings, st.spec, ctx)
        # until the runner is up, the deadline is its start allowance; then timeout_s from there
        deadline = time.time() + RUNNER_START_S + st.spec.timeout_s
        self.inflight[name] = _Inflight(run_id, attempt, slot, deadline, ref, trigger=trigger, ready=ready)
        log.info("run started", job=name, run_id=run_id, attempt=attempt, slot=slot.isoformat(), trigger=trigger)

    def _poll_inflight(self) -> None:
        from ray.exceptions import GetTimeoutError

        from rayapp.warehouse.pipeline import get_run

        for name, f in list(self.inflight.items()):
            if f.ready is not None and ray.wait([f.ready], timeout=0)[0]:
                f.ready = None  # the runner is up: the attempt's own timeout starts now
                f.deadline = time.time() + self.jobs[name].spec.timeout_s
            if f.ref is not None:
                ready, _ = ray.wait([f.ref], timeout=0)
                if ready:
                    del self.inflight[name]
                    try:
                        out = ray.get(f.ref)
                    except Exception as exc:  # the runner died under the attempt
                        self._failed(name, f, f"runner died: {type(exc).__name__}")
                        continue
                    # recorded by its runner, unless that could not reach the warehouse
                    result = JobResult(**out["result"])
                    self._settle(name, f, result, out["status"], out["retry_at"], write=not out["written"])
                    continue
            elif time.time() - f.checked >= ADOPTED_CHECK_S:  # adopted: watch the row and the runner
                f.checked = time.time()
                with self._pool().connection() as conn:
                    row = get_run(conn, f.run_id)
                if row is None or row["status"] != "running" or row["attempt"] != f.attempt:
                    del self.inflight[name]
                    if row is not None and row["status"] == "retrying":
                        at = row["retry_at"].timestamp() if row["retry_at"] else time.time()
                        self.retries[name] = _Retry(f.run_id, f.attempt + 1, f.slot, at, row["trigger"])
                    log.info("adopted run ended", job=name, run_id=f.run_id, status=row and row["status"])
                    continue
                try:
                    current = ray.get(self._runner(name).current.remote(), timeout=10)
                except (GetTimeoutError, ray.exceptions.RayError):
                    current = None
                if current != f.run_id:
                    with self._pool().connection() as conn:
                        row = get_run(conn, f.run_id)
                    if row is not None and row["status"] == "running" and row["attempt"] == f.attempt:
                        del self.inflight[name]
                        self._failed(name, f, "interrupted: the runner of this attempt is gone")
                    continue
            if time.time() > f.deadline:
                del self.inflight[name]
                self._kill_runner(name)
                timeout = self.jobs[name].spec.timeout_s
                error = f"cancelled after timeout_s={timeout:g}"
                if f.ready is not None:
                    error = f"cancelled: its runner did not start within {RUNNER_START_S:g} s (+ timeout_s={timeout:g})"
                result = JobResult(status="timed_out", error=error)
                self._settle(name, f, result, "timed_out", None)  # not retried: it would overlap the next slot

    def _start_retries(self) -> None:
        from rayapp.warehouse.pipeline import start_attempt

        for name, r in list(self.retries.items()):
            if time.time() < r.at:
                continue
            with self._pool().connection() as conn:
                ok = start_attempt(conn, r.run_id, r.attempt, self.incarnation)
            del self.retries[name]
            if ok:
                self._dispatch(name, r.run_id, r.attempt, r.slot, r.trigger)
            else:
                log.info("retry not started: the run changed meanwhile", job=name, run_id=r.run_id)

    def _fire_due(self) -> None:
        from rayapp.warehouse.pipeline import claim

        assert self.clock is not None
        now = self.clock.now()
        for name, st in self.jobs.items():
            assert st.last_slot is not None
            slots = due_slots(st.spec.cron, st.last_slot, now, self.cfg.max_missed_records + 1)
            if not slots:
                continue
            newest, older = slots[-1], slots[:-1]
            gap_from = st.last_slot
            st.last_slot = newest  # every due slot is accounted for below (recorded, or pending)
            common = {"job": name, "clock": self.clock.id, "runner": self.incarnation}
            if older:
                more = " (older ones not recorded one by one)" if len(slots) > self.cfg.max_missed_records else ""
                self._record_slots(
                    **common,
                    slots=older,
                    status="missed",
                    error=f"not fired: the scheduler was down or could not reach the warehouse "
                    f"(after {gap_from.isoformat()}){more}",
                )
            late_s = (now - newest).total_seconds()
            busy = self.inflight.get(name) or self.retries.get(name)
            if late_s > self.cfg.misfire_grace_s:
                self._record_slots(
                    **common, slots=[newest], status="missed", error=f"{late_s:.0f} s late: past misfire_grace_s"
                )
            elif st.paused:
                self._record_slots(**common, slots=[newest], status="skipped", error="job paused")
            elif busy is not None:
                self._record_slots(
                    **common, slots=[newest], status="skipped", error=f"run #{busy.run_id} still going (forbid)"
                )
            else:
                from rayapp.clock import wall_seconds

                lateness_ms = wall_seconds(self.clock, late_s) * 1000.0
                try:
                    with self._pool().connection() as conn:
                        run_id = claim(
                            conn,
                            **common,
                            slot=newest,
                            trigger="schedule",
                            max_attempts=st.spec.retries + 1,
                            lateness_ms=lateness_ms,
                        )
                except _db_errors() as exc:  # recorded once the warehouse is back
                    self._defer(
                        "slots", {**common, "slots": [newest], "status": "failed", "error": f"not run: {exc}"}, exc
                    )
                    continue
                if run_id is None:
                    self._refused(name, newest, common)
                    continue
                self._dispatch(name, run_id, 1, newest, "schedule")

    def _refused(self, name: str, slot: datetime, common: dict[str, Any]) -> None:
        """The warehouse refused the claim: the slot is recorded already (never run twice), or
        the job has a run recorded in flight there (someone else's, or one whose end is not
        recorded yet): then this slot is skipped, as overlap is."""
        from rayapp.warehouse.pipeline import active_runs

        with self._pool().connection() as conn:
            active = [r for r in active_runs(conn) if r["job"] == name]
        if not active:
            log.warning("slot already recorded: not run again", job=name, slot=slot.isoformat())
            return
        self._record_slots(
            **common, slots=[slot], status="skipped", error=f"run #{active[0]['run_id']} still going (forbid)"
        )

    def _heartbeat(self, force: bool = False) -> None:
        from rayapp.warehouse.pipeline import HEARTBEAT_S, paused_jobs, upsert_jobs

        if not force and time.time() - self._heartbeat_at < HEARTBEAT_S:
            return
        assert self.clock is not None
        now = self.clock.now()
        rows = [
            {
                "job": n,
                "cron": j.cron,
                "enabled": j.enabled,
                "clock": self.clock.id,
                "next_slot": next_slot(j.cron, now) if j.enabled else None,
                "timeout_s": j.timeout_s,
            }
            for n, j in self.cfg.jobs.items()
        ]
        with self._pool().connection() as conn:
            upsert_jobs(conn, rows)
            paused = paused_jobs(conn)  # a pause written by the CLI while this actor was away
        for n, st in self.jobs.items():
            st.paused = n in paused
        self._heartbeat_at = time.time()

    def _sleep_s(self) -> float:
        from rayapp.clock import wall_seconds

        assert self.clock is not None
        now = self.clock.now()
        wait = self.cfg.tick_s
        for st in self.jobs.values():
            wait = min(wait, wall_seconds(self.clock, (next_slot(st.spec.cron, now) - now).total_seconds()))
        if self.inflight:
            wait = min(wait, 0.1)
        for r in self.retries.values():
            wait = min(wait, r.at - time.time())
        return max(wait, 0.002)


def kill_runner(name: str, namespace: str, wait_s: float = 10.0) -> bool:
    try:
        h = ray.get_actor(RUNNER_PREFIX + name, namespace=namespace)
    except ValueError:
        return False
    ray.kill(h, no_restart=True)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(RUNNER_PREFIX + name, namespace=namespace)
        except ValueError:
            break
        time.sleep(0.05)
    return True


# ---- driver side -------------------------------------------------------------------------------
def scheduler_handle(settings: Settings) -> Any | None:
    try:
        return ray.get_actor(settings.schedule.actor_name, namespace=settings.schedule.namespace)
    except ValueError:
        return None


def refuse_if_running(settings: Settings) -> None:
    """InputError when a live scheduler runs on the connected cluster; a dead one's name is freed."""
    old = scheduler_handle(settings)
    if old is None:
        return
    try:
        info = ray.get(old.ping.remote(), timeout=10)
    except ray.exceptions.RayError:
        ray.kill(old, no_restart=True)
    else:
        raise InputError(
            f"a scheduler is already running on this cluster ({info['incarnation']}): `rayapp schedule stop` ends it"
        )


def start_scheduler(settings: Settings) -> Any:
    """Create the detached scheduler actor (resolved settings); refuses when one is running."""
    from rayapp.flows.jobs import job_function

    for name, spec in settings.schedule.jobs.items():
        if spec.enabled:
            job_function(name, spec)  # an unimportable target fails here, with its key
    refuse_if_running(settings)
    actor: Any = ray.remote(Scheduler)
    h = actor.options(
        name=settings.schedule.actor_name,
        namespace=settings.schedule.namespace,
        lifetime="detached",
        max_restarts=-1,
        num_cpus=0,
        max_concurrency=4,
    ).remote(settings)
    ray.get(h.ping.remote(), timeout=120)
    deadline = time.monotonic() + 30
    while not ray.get(h.ping.remote(), timeout=30)["recovered"]:  # its state read from the warehouse
        if time.monotonic() > deadline:
            status = ray.get(h.status.remote(), timeout=30)
            log.warning("scheduler started but not ready yet", error=status.get("last_error"))
            break
        time.sleep(0.1)
    return h


def stop_scheduler(settings: Settings) -> dict[str, Any]:
    """Stop the scheduler (cancelling runs in flight) and remove it and its runners."""
    h = scheduler_handle(settings)
    if h is None:
        raise SchedulerNotRunning("no scheduler is running on this cluster")
    try:
        out = dict(ray.get(h.stop.remote(), timeout=120))
    except ray.exceptions.RayError as exc:
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    ray.kill(h, no_restart=True)
    for name in settings.schedule.jobs:
        kill_runner(name, settings.schedule.namespace)
    return out


def run_once(settings: Settings, job: str) -> dict[str, Any]:
    """A manual run in this process (no scheduler on the cluster), recorded like any other."""
    from rayapp.clock import system_clock
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.pipeline import claim

    spec = settings.schedule.jobs.get(job)
    if spec is None:
        raise InputError(f"unknown job {job!r} (configured: {', '.join(sorted(settings.schedule.jobs))})")
    clock = system_clock(settings)
    slot = clock.now()
    runner = f"{socket.gethostname()}:{os.getpid()}:cli"
    with get_pool(settings).connection() as conn:
        run_id = claim(
            conn,
            job=job,
            clock=clock.id,
            slot=slot,
            trigger="manual",
            max_attempts=1,
            runner=runner,
            lateness_ms=0.0,
        )
    if run_id is None:
        raise JobBusy(f"{job} has a run in flight: not started")
    ctx = RunContext(run_id, job, slot, 1, clock.id, "manual", dict(spec.params))
    result = execute(settings, job, spec, ctx)
    status = result.status  # one attempt: the operator retries by hand
    write_outcome(settings, run_id, 1, status, result, None)
    return {"ok": status in ("succeeded", "partial"), "run_id": run_id, "status": status, "error": result.error}
