"""The scheduler's run history and job state in PostgreSQL (migration 0007).

Everything the scheduler knows survives it here: which slots were recorded (so a restarted
scheduler neither runs a slot twice nor loses one), which run is in flight or waiting to retry,
which jobs are paused. The status views (`rayapp schedule status`, `GET /pipeline`, the pipeline
metrics) read the same tables. Every statement is parameterised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

ACTIVE = ("running", "retrying")
FINAL = ("succeeded", "partial", "failed", "timed_out", "cancelled", "skipped", "missed")
STATUSES = ACTIVE + FINAL
HEARTBEAT_S = 5.0  # the scheduler writes pipeline_jobs.heartbeat_at this often
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

RUN_COLUMNS = (
    "run_id",
    "job",
    "clock",
    "slot",
    "trigger",
    "status",
    "attempt",
    "max_attempts",
    "started_at",
    "finished_at",
    "lateness_ms",
    "retry_at",
    "rows_read",
    "rows_written",
    "rows_quarantined",
    "stats",
    "error",
    "runner",
    "recorded_at",
)
_SELECT = "SELECT " + ", ".join(RUN_COLUMNS) + " FROM pipeline_runs"


def claim(
    conn: psycopg.Connection,
    *,
    job: str,
    clock: str,
    slot: datetime,
    trigger: str,
    max_attempts: int,
    runner: str,
    lateness_ms: float | None,
) -> int | None:
    """Record a run as started (attempt 1); None when the slot is recorded already or the job has
    a run in flight (both refused by unique indexes, whoever asks)."""
    row = conn.execute(
        """INSERT INTO pipeline_runs (job, clock, slot, trigger, status, attempt, max_attempts,
               started_at, lateness_ms, runner)
           VALUES (%s, %s, %s, %s, 'running', 1, %s, now(), %s, %s)
           ON CONFLICT DO NOTHING RETURNING run_id""",
        (job, clock, slot, trigger, max_attempts, lateness_ms, runner),
    ).fetchone()
    conn.commit()
    return None if row is None else int(row[0])


def record_slots(
    conn: psycopg.Connection, *, job: str, clock: str, slots: Sequence[datetime], status: str, error: str, runner: str
) -> int:
    """Slots that did not run (skipped, missed), one row each; returns the rows written."""
    if not slots:
        return 0
    assert status in ("skipped", "missed", "failed")
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO pipeline_runs (job, clock, slot, trigger, status, attempt, finished_at,
                   error, runner)
               VALUES (%s, %s, %s, 'schedule', %s, 0, now(), %s, %s) ON CONFLICT DO NOTHING""",
            [(job, clock, s, status, error, runner) for s in slots],
        )
        n = cur.rowcount
    conn.commit()
    return max(int(n), 0)


def finish(
    conn: psycopg.Connection,
    run_id: int,
    *,
    attempt: int,
    status: str,
    rows: tuple[int, int, int] = (0, 0, 0),
    stats: dict[str, Any] | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """End attempt `attempt` of a running run: a final status, or `retrying` (with retry_at).
    False when that attempt is not running any more (someone recorded it first)."""
    assert status in FINAL or status == "retrying"
    cur = conn.execute(
        """UPDATE pipeline_runs SET status = %s, rows_read = %s, rows_written = %s,
               rows_quarantined = %s, stats = %s, error = %s, retry_at = %s,
               finished_at = CASE WHEN %s = 'retrying' THEN NULL ELSE now() END
           WHERE run_id = %s AND attempt = %s AND status = 'running'""",
        (status, *rows, Jsonb(stats or {}), error, retry_at, status, run_id, attempt),
    )
    conn.commit()
    return cur.rowcount == 1


def start_attempt(conn: psycopg.Connection, run_id: int, attempt: int, runner: str) -> bool:
    """A retrying run's next attempt starts; False when it is not waiting any more."""
    cur = conn.execute(
        """UPDATE pipeline_runs SET status = 'running', attempt = %s, started_at = now(),
               retry_at = NULL, runner = %s
           WHERE run_id = %s AND status = 'retrying' AND attempt = %s - 1""",
        (attempt, runner, run_id, attempt),
    )
    conn.commit()
    return cur.rowcount == 1


def cancel(conn: psycopg.Connection, run_id: int, error: str) -> bool:
    cur = conn.execute(
        """UPDATE pipeline_runs SET status = 'cancelled', finished_at = now(), error = %s, retry_at = NULL
           WHERE run_id = %s AND status IN ('running', 'retrying')""",
        (error, run_id),
    )
    conn.commit()
    return cur.rowcount == 1


def last_slots(conn: psycopg.Connection, clock: str) -> dict[str, datetime]:
    """The newest recorded scheduled slot of each job on this clock."""
    rows = conn.execute(
        "SELECT job, max(slot) FROM pipeline_runs WHERE clock = %s AND trigger = 'schedule' GROUP BY job", (clock,)
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def active_runs(conn: psycopg.Connection) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return list(cur.execute(_SELECT + " WHERE status IN ('running', 'retrying') ORDER BY run_id").fetchall())


def get_run(conn: psycopg.Connection, run_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT + " WHERE run_id = %s", (run_id,)).fetchone()


def list_runs(
    conn: psycopg.Connection, *, job: str | None = None, status: str | None = None, limit: int = 20
) -> list[dict[str, Any]]:
    """The newest runs first, optionally of one job and/or one status."""
    with conn.cursor(row_factory=dict_row) as cur:
        return list(
            cur.execute(
                _SELECT + " WHERE (%s::text IS NULL OR job = %s) AND (%s::text IS NULL OR status = %s)"
                " ORDER BY run_id DESC LIMIT %s",
                (job, job, status, status, limit),
            ).fetchall()
        )


def upsert_jobs(conn: psycopg.Connection, jobs: Iterable[dict[str, Any]], *, heartbeat: bool = True) -> None:
    """The scheduler's view of each job (cron, clock, next slot) and its heartbeat; `paused` is
    left as it is (it is the operator's)."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO pipeline_jobs (job, cron, enabled, clock, next_slot, timeout_s, heartbeat_at)
               VALUES (%(job)s, %(cron)s, %(enabled)s, %(clock)s, %(next_slot)s, %(timeout_s)s,
                       CASE WHEN %(heartbeat)s THEN now() END)
               ON CONFLICT (job) DO UPDATE SET cron = EXCLUDED.cron, enabled = EXCLUDED.enabled,
                   clock = EXCLUDED.clock, next_slot = EXCLUDED.next_slot, timeout_s = EXCLUDED.timeout_s,
                   heartbeat_at = COALESCE(EXCLUDED.heartbeat_at, pipeline_jobs.heartbeat_at),
                   updated_at = now()""",
            [{**j, "heartbeat": heartbeat} for j in jobs],
        )
    conn.commit()


def forget_jobs(conn: psycopg.Connection, keep: Iterable[str]) -> None:
    """Jobs no longer configured leave the status table (their run history stays)."""
    conn.execute("DELETE FROM pipeline_jobs WHERE NOT (job = ANY(%s))", (list(keep),))
    conn.commit()


def set_paused(conn: psycopg.Connection, job: str, paused: bool, cron: str) -> None:
    conn.execute(
        """INSERT INTO pipeline_jobs (job, cron, paused) VALUES (%s, %s, %s)
           ON CONFLICT (job) DO UPDATE SET paused = EXCLUDED.paused, updated_at = now()""",
        (job, cron, paused),
    )
    conn.commit()


def paused_jobs(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT job FROM pipeline_jobs WHERE paused").fetchall()}


def job_table(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Each known job with its last run and its last successful run."""
    with conn.cursor(row_factory=dict_row) as cur:
        jobs = cur.execute(
            "SELECT job, cron, enabled, paused, clock, next_slot, timeout_s, heartbeat_at FROM pipeline_jobs"
            " ORDER BY job"
        ).fetchall()
        out = []
        for j in jobs:
            last = cur.execute(
                _SELECT + " WHERE job = %s AND status NOT IN ('skipped', 'missed') ORDER BY run_id DESC LIMIT 1",
                (j["job"],),
            ).fetchone()
            ok = cur.execute(
                _SELECT + " WHERE job = %s AND status = 'succeeded' ORDER BY run_id DESC LIMIT 1", (j["job"],)
            ).fetchone()
            counts = {
                r["status"]: int(r["n"])
                for r in cur.execute(
                    "SELECT status, count(*) AS n FROM pipeline_runs WHERE job = %s GROUP BY status", (j["job"],)
                ).fetchall()
            }
            out.append({**j, "last_run": last, "last_success": ok, "counts": counts})
        return out


def metrics_snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """What the Prometheus pipeline metrics expose, computed from the run history."""
    counts = conn.execute("SELECT job, status, count(*) FROM pipeline_runs GROUP BY job, status").fetchall()
    last_ok = conn.execute(
        "SELECT job, extract(epoch FROM max(finished_at)) FROM pipeline_runs WHERE status = 'succeeded' GROUP BY job"
    ).fetchall()
    bucket_sql = ", ".join(f"count(*) FILTER (WHERE d <= {b})" for b in DURATION_BUCKETS)
    durations = conn.execute(
        f"""SELECT job, count(*), coalesce(sum(d), 0), {bucket_sql} FROM (
                SELECT job, extract(epoch FROM finished_at - started_at)::float8 AS d FROM pipeline_runs
                WHERE started_at IS NOT NULL AND finished_at IS NOT NULL) t GROUP BY job"""
    ).fetchall()
    running = conn.execute("SELECT job, count(*) FROM pipeline_runs WHERE status = 'running' GROUP BY job").fetchall()
    # every known job has every status (0 when none), so a job's first failure is an increase
    jobs = [str(j) for (j,) in conn.execute("SELECT job FROM pipeline_jobs").fetchall()]
    runs = {(j, s): 0 for j in jobs for s in STATUSES}
    runs.update({(str(j), str(s)): int(n) for j, s, n in counts})
    return {
        "runs": [(j, s, n) for (j, s), n in sorted(runs.items())],
        "last_success": {str(j): float(t) for j, t in last_ok if t is not None},
        "durations": {
            str(r[0]): {"count": int(r[1]), "sum": float(r[2]), "buckets": [int(x) for x in r[3:]]} for r in durations
        },
        "running": {**dict.fromkeys(jobs, 0), **{str(j): int(n) for j, n in running}},
    }


def status_view(conn: psycopg.Connection, *, now: datetime, wall: datetime, clock: dict[str, Any]) -> dict[str, Any]:
    """Each job's next slot, last run and last success, and whether the scheduler is alive (its
    heartbeat is recent): what `rayapp schedule status` and `GET /pipeline` show. `now` is on the
    scheduler's clock (market time in replay mode), `wall` is wall time; ages are on the clock."""
    jobs = job_table(conn)
    beats = [j["heartbeat_at"] for j in jobs if j["heartbeat_at"] is not None]
    newest = max(beats) if beats else None
    alive = newest is not None and (wall - newest).total_seconds() < 3 * HEARTBEAT_S
    for j in jobs:
        ok = j["last_success"]
        j["last_success_age_s"] = None if ok is None else (now - ok["slot"]).total_seconds()
    return {"checked_at": now, "clock": clock, "scheduler": {"alive": alive, "heartbeat_at": newest}, "jobs": jobs}
