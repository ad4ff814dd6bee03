// The colour rules of the System page: how old is too old for a data source or a scheduled job.
import type { PipelineJob, RunStatus } from "../api/types";
import type { Level } from "../components/ui";
import { cronPeriodS } from "./clock";

/** Seconds after which a data source (or a job whose cron we cannot read) is stale. */
export const FRESH_WARN_S = 7200;

/** ok up to `warnS`, warn past it, bad past twice that; idle when there is no age at all. */
export const staleLevel = (age: number | null | undefined, warnS: number): Level =>
  age === null || age === undefined
    ? "idle"
    : age > 2 * warnS
      ? "bad"
      : age > warnS
        ? "warn"
        : "ok";

/**
 * The age (clock seconds) past which a job's last success is stale: the same `staleLevel` rule as
 * the freshness rows, with the job's own period in place of their fixed 7200 s. A success is due
 * once per cron period (`cronPeriodS`), and the run that brings it may take up to `timeout_s`
 * (wall seconds, so × the clock's speed in a replay), counted at most one period: a run still in
 * progress is not flagged, a job that missed a slot is (warn), one that missed two is (bad).
 * A cron expression `cronPeriodS` cannot read falls back to the freshness rows' 7200 s.
 */
export function jobWarnS(job: Pick<PipelineJob, "cron" | "timeout_s">, speed = 1): number {
  const period = cronPeriodS(job.cron);
  if (period === null) return FRESH_WARN_S;
  const run = job.timeout_s === null ? period : Math.min(job.timeout_s * speed, period);
  return period + run;
}

export const statusText = (s: RunStatus): string => s.replace("_", " ");

/** The dot of one run in the history. */
export function runLevel(s: RunStatus): Level {
  switch (s) {
    case "succeeded":
      return "ok";
    case "failed":
    case "timed_out":
      return "bad";
    case "partial":
    case "retrying":
    case "cancelled":
    case "missed":
      return "warn";
    default: // running, skipped
      return "idle";
  }
}

const RANK: Record<Level, number> = { idle: 0, ok: 1, warn: 2, bad: 3 };
const worse = (a: Level, b: Level): Level => (RANK[a] >= RANK[b] ? a : b);

/**
 * A job's dot and status word: disabled and paused jobs are idle; a last run that failed or timed
 * out is bad whatever the age; otherwise the age of the last success decides (`jobWarnS`), a
 * partial or cancelled last run being at least a warning.
 */
export function jobState(
  job: PipelineJob,
  successAgeS: number | null,
  speed = 1,
): { level: Level; status: string } {
  if (!job.enabled) return { level: "idle", status: "disabled" };
  if (job.paused) return { level: "idle", status: "paused" };
  const st = job.last_run?.status;
  if (st === "failed" || st === "timed_out") return { level: "bad", status: statusText(st) };
  const level = staleLevel(successAgeS, jobWarnS(job, speed));
  if (!st) return { level, status: "never run" };
  if (st === "partial" || st === "cancelled")
    return { level: worse(level, "warn"), status: statusText(st) };
  return { level, status: statusText(st) };
}

/** A long error message cut to `n` characters. */
export const truncate = (s: string, n = 160): string =>
  s.length > n ? `${s.slice(0, n - 1).trimEnd()}…` : s;
