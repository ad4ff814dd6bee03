-- The scheduler's run history (`rayapp run`, rayapp/flows/scheduler.py) and its per-job state.
--
-- pipeline_runs holds one row per fired or accounted-for slot of a job: a run (running → succeeded
-- | partial | failed | timed_out | cancelled, with `retrying` between attempts), or a slot that did
-- not run (skipped: the previous run was still going or the job was paused; missed: it passed
-- while the scheduler was down). Two invariants are the database's, not the scheduler's:
--   * a scheduled slot of a job is recorded once per clock (pipeline_runs_slot_key), so a
--     restarted scheduler cannot run a slot a second time;
--   * a job has at most one run in flight (pipeline_runs_one_active), whoever starts it.
-- `clock` is "wall" or "replay:<session>": slots are times on that clock (market time in replay).
CREATE TABLE IF NOT EXISTS pipeline_runs (
    run_id           bigserial PRIMARY KEY,
    job              text NOT NULL,
    clock            text NOT NULL DEFAULT 'wall',
    slot             timestamptz NOT NULL,
    trigger          text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    status           text NOT NULL CHECK (status IN ('running', 'retrying', 'succeeded', 'partial',
                         'failed', 'timed_out', 'cancelled', 'skipped', 'missed')),
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL DEFAULT 1,
    started_at       timestamptz,
    finished_at      timestamptz,
    lateness_ms      double precision,          -- wall ms from the slot's time to the run's start
    retry_at         timestamptz,               -- wall time of the next attempt (status retrying)
    rows_read        bigint NOT NULL DEFAULT 0,
    rows_written     bigint NOT NULL DEFAULT 0,
    rows_quarantined bigint NOT NULL DEFAULT 0,
    stats            jsonb NOT NULL DEFAULT '{}'::jsonb,  -- per stage / per source counts and errors
    error            text,
    runner           text,                      -- the scheduler incarnation or process that ran it
    recorded_at      timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS pipeline_runs_slot_key
    ON pipeline_runs (job, clock, slot) WHERE trigger = 'schedule';
CREATE UNIQUE INDEX IF NOT EXISTS pipeline_runs_one_active
    ON pipeline_runs (job) WHERE status IN ('running', 'retrying');
CREATE INDEX IF NOT EXISTS pipeline_runs_job_recent ON pipeline_runs (job, run_id DESC);

CREATE TABLE IF NOT EXISTS pipeline_jobs (
    job          text PRIMARY KEY,
    cron         text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    paused       boolean NOT NULL DEFAULT false,
    clock        text NOT NULL DEFAULT 'wall',
    next_slot    timestamptz,
    timeout_s    double precision,
    heartbeat_at timestamptz,                   -- the scheduler's last look at this job (wall)
    updated_at   timestamptz NOT NULL DEFAULT now()
);
