"""The jobs the scheduler runs (conf/schedule/): built-in ones and `module:function` targets.

A job is `fn(settings, ctx) -> JobResult`. It runs in the job's runner actor (rayapp/flows/
scheduler.py), off the scheduler's thread, and may start Ray work of its own (the ingest fan-out,
the scoring actors, a Tune search). It reports what it did: rows read / written / quarantined,
per-stage details in `stats`, and `partial` when part of it failed while the rest landed. An
exception is a failed attempt (retried per the job's policy); its message is recorded.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rayapp.errors import InputError
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import JobSettings, Settings

log = get_logger(__name__)


@dataclass
class RunContext:
    run_id: int
    job: str
    slot: datetime  # on the scheduler's clock (market time in replay mode)
    attempt: int
    clock: str
    trigger: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    status: str = "succeeded"  # succeeded | partial | failed
    rows_read: int = 0
    rows_written: int = 0
    rows_quarantined: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def rows(self) -> tuple[int, int, int]:
        return (self.rows_read, self.rows_written, self.rows_quarantined)


JobFn = Callable[["Settings", RunContext], JobResult]


# ---- built-in jobs -----------------------------------------------------------------------------
def refresh(settings: Settings, ctx: RunContext) -> JobResult:
    """ingest every enabled source → validate → score new text → feature rows → online vector."""
    from rayapp.flows.refresh import run_refresh

    report = run_refresh(settings)
    summaries = report.ingest.summaries
    res = JobResult(
        rows_read=sum(s.read for s in summaries.values()),
        rows_written=sum(s.written for s in summaries.values()) + sum(b.rows for b in report.features),
        rows_quarantined=sum(s.quarantined for s in summaries.values()),
    )
    res.stats["ingest"] = {n: {**s.as_dict(), "ok": s.ok, "errors": s.errors[:5]} for n, s in summaries.items()}
    if report.score is not None:
        res.stats["score"] = {
            "model_id": report.score.model_id,
            "read": report.score.read,
            "scored": report.score.scored,
        }
        res.rows_written += report.score.scored
    elif report.score_error:
        res.stats["score"] = {"error": report.score_error}
    else:
        res.stats["score"] = {"skipped": "no new text"}
    features: dict[str, Any] = {
        "symbols": [
            {"symbol": b.symbol, "rows": b.rows, "online_ts": str(b.online_ts) if b.online_ts else None}
            for b in report.features
        ]
    }
    if report.feature_error:
        features["error"] = report.feature_error
    elif not report.features:
        features["skipped"] = "no new candles or scores"
    res.stats["features"] = features
    failed_sources = [n for n, s in summaries.items() if not s.ok]
    errors = [f"{n}: {summaries[n].errors[0]}" for n in failed_sources]
    errors += [f"{stage}: {e}" for stage, e in (("score", report.score_error), ("features", report.feature_error)) if e]
    if errors:
        res.error = "; ".join(errors)
        # A later stage failing, or every source, fails the run (retried); some sources down
        # while the rest landed is a partial run: their rows are in, the next slot resumes the rest.
        later_stage = bool(report.score_error or report.feature_error)
        res.status = "failed" if later_stage or len(failed_sources) == len(summaries) else "partial"
    return res


def resolve(settings: Settings, ctx: RunContext) -> JobResult:
    """Realised outcomes into the prediction log (forecasts whose horizon has closed)."""
    from rayapp.serving import resolve_outcomes
    from rayapp.warehouse import get_pool

    with get_pool(settings).connection() as conn:
        n = resolve_outcomes(conn, settings.serving.price_sources)
    return JobResult(rows_written=n, stats={"resolved": n})


def drift(settings: Settings, ctx: RunContext) -> JobResult:
    """PSI of the served features against the champion's training rows, and staleness."""
    from rayapp.monitoring import drift_report
    from rayapp.registry import ModelNotFound, load_alias
    from rayapp.warehouse import get_pool

    try:
        model = load_alias(settings)
    except ModelNotFound as exc:
        return JobResult(stats={"checked": False, "reason": str(exc)})
    hours = int(ctx.params.get("hours", 168))
    reports = []
    with get_pool(settings).connection() as conn:
        for symbol in settings.symbols:
            rep = drift_report(
                conn,
                symbol,
                model.feature_set_version,
                model.bundle.data_range,
                hours=hours,
                max_age_s=settings.serving.feature_staleness_s,
            )
            reports.append(rep.as_dict())
    read = sum(int(r["current_rows"]) for r in reports)
    return JobResult(
        rows_read=read,
        stats={"checked": True, "model_version": str(model.version), "hours": hours, "reports": reports},
    )


def retrain(settings: Settings, ctx: RunContext) -> JobResult:
    """One step of the model-lifecycle policy (rayapp/flows/lifecycle.py): judge the version in
    shadow, evaluate the triggers, retrain when they call for it and send a gated challenger to
    shadow."""
    from rayapp.flows.lifecycle import lifecycle_step

    return lifecycle_step(settings, ctx)


def noop(settings: Settings, ctx: RunContext) -> JobResult:
    """Does nothing (for `sleep_s`): a heartbeat of the scheduler itself, and the benchmark's job."""
    sleep_s = float(ctx.params.get("sleep_s", 0) or 0)
    if sleep_s:
        time.sleep(sleep_s)
    return JobResult(stats={"slept_s": sleep_s})


BUILTIN: dict[str, JobFn] = {"refresh": refresh, "resolve": resolve, "drift": drift, "retrain": retrain, "noop": noop}


def job_function(name: str, spec: JobSettings) -> JobFn:
    """The callable of a configured job; an unimportable target is an error naming its key."""
    if spec.target is None:
        return BUILTIN[name]
    module, _, attr = spec.target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"schedule.jobs.{name}.target: cannot import {spec.target!r}: {exc}") from exc
    if not callable(fn):
        raise InputError(f"schedule.jobs.{name}.target: {spec.target!r} is not callable")
    return fn  # type: ignore[no-any-return]


def execute(settings: Settings, name: str, spec: JobSettings, ctx: RunContext) -> JobResult:
    """Run one attempt; an exception becomes a failed result with its message."""
    started, began_at = time.monotonic(), time.time()
    try:
        result = job_function(name, spec)(settings, ctx)
        if not isinstance(result, JobResult):
            result = JobResult(stats={"returned": repr(result)[:200]})
    except Exception as exc:
        log.warning("job attempt failed", job=name, run_id=ctx.run_id, attempt=ctx.attempt, error=str(exc)[:300])
        result = JobResult(status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
    result.stats.setdefault("seconds", round(time.monotonic() - started, 3))
    result.stats.setdefault("began_at", began_at)  # wall time the attempt began in its runner
    log.info(
        "job attempt done",
        job=name,
        run_id=ctx.run_id,
        attempt=ctx.attempt,
        status=result.status,
        rows_read=result.rows_read,
        rows_written=result.rows_written,
        rows_quarantined=result.rows_quarantined,
    )
    return result
