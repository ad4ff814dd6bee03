"""`rayapp run` and `rayapp schedule status|runs|trigger|pause|resume|stop`.

The status views read the run history from PostgreSQL and work without Ray; the commands that
change the running scheduler talk to its actor on the cluster (`ray.address` / RAY_ADDRESS). With
no cluster to talk to, `pause`/`resume` are written to the warehouse (the scheduler reads them
when it next looks, or when it starts) and `trigger` runs the job once in this process, recorded
like any other run.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rayapp.errors import InputError, RayappError
from rayapp.terminal import add_overrides, console, out

if TYPE_CHECKING:
    from rayapp.config import Settings

STATUS_STYLE = {
    "succeeded": "green",
    "partial": "yellow",
    "running": "cyan",
    "retrying": "yellow",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "magenta",
    "skipped": "dim",
    "missed": "dim",
}


def _age(ts: datetime | None, now: datetime) -> str:
    if ts is None:
        return "-"
    s = (now - ts).total_seconds()
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(s) >= n:
            return f"{s / n:.1f} {unit}"
    return f"{s:.0f} s"


def _scheduler(settings: Settings) -> Any | None:
    """The scheduler actor on the configured cluster; None without a cluster or without one."""
    from rayapp.flows.scheduler import scheduler_handle
    from rayapp.runtime import ensure_ray, joins_cluster

    if not joins_cluster(settings):
        return None

    ensure_ray(settings)
    return scheduler_handle(settings)


def pipeline_status(settings: Settings) -> dict[str, Any]:
    """Each job's next slot, last run and last success, from the warehouse (what GET /pipeline shows)."""
    from rayapp.clock import clock_or_wall
    from rayapp.warehouse import get_pool
    from rayapp.warehouse.pipeline import status_view

    clock, why = clock_or_wall(settings)
    if why:
        console.print(f"[yellow]{why}: ages in wall time[/yellow]", highlight=False)
    with get_pool(settings).connection() as conn:
        return status_view(
            conn,
            now=clock.now(),
            wall=datetime.now(UTC),
            clock={"id": clock.id, "kind": clock.kind, "speed": clock.speed},
        )


def _status(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    st = pipeline_status(settings)
    if args.json:
        print(json.dumps(st, default=str))
        return 0
    now = st["checked_at"]
    sched = st["scheduler"]
    beat = sched["heartbeat_at"]
    state = "[green]running[/green]" if sched["alive"] else "[red]not running[/red]"
    t = Table(
        "job",
        "cron",
        "state",
        "next slot",
        "last run",
        "status",
        "attempt",
        "last success",
        title=f"scheduler {state} (heartbeat {_age(beat, datetime.now(UTC))} ago) · clock {st['clock']['id']}",
    )
    for j in st["jobs"]:
        last, ok = j["last_run"], j["last_success"]
        status = last["status"] if last else "-"
        t.add_row(
            j["job"],
            j["cron"],
            "paused" if j["paused"] else ("enabled" if j["enabled"] else "disabled"),
            j["next_slot"].isoformat() if j["next_slot"] else "-",
            f"#{last['run_id']} {last['slot'].isoformat()}" if last else "-",
            f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"
            + (f": {last['error'][:60]}" if last and last["error"] else ""),
            str(last["attempt"]) if last else "-",
            f"{_age(ok['slot'], now)} ago" if ok else "never",
        )
    out.print(t)
    if not st["jobs"]:
        console.print("no scheduler has run against this warehouse yet: `rayapp run` starts one", highlight=False)
    return 0


def _runs(args: argparse.Namespace, settings: Settings) -> int:
    from rich.table import Table

    from rayapp.warehouse import get_pool
    from rayapp.warehouse.pipeline import STATUSES, list_runs

    if args.status and args.status not in STATUSES:
        raise InputError(f"--status must be one of {', '.join(STATUSES)}")
    with get_pool(settings).connection() as conn:
        runs = list_runs(conn, job=args.job, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps(runs, default=str))
        return 0
    t = Table("run", "job", "slot", "trigger", "status", "attempt", "started", "s", "read", "written", "quar.", "error")
    for r in runs:
        dur = (r["finished_at"] - r["started_at"]).total_seconds() if r["finished_at"] and r["started_at"] else None
        t.add_row(
            str(r["run_id"]),
            r["job"],
            r["slot"].isoformat(),
            r["trigger"],
            f"[{STATUS_STYLE.get(r['status'], 'white')}]{r['status']}[/]",
            f"{r['attempt']}/{r['max_attempts']}",
            r["started_at"].strftime("%Y-%m-%d %H:%M:%S") if r["started_at"] else "-",
            f"{dur:.1f}" if dur is not None else "-",
            str(r["rows_read"]),
            str(r["rows_written"]),
            str(r["rows_quarantined"]),
            (r["error"] or "")[:80],
        )
    out.print(t)
    return 0


def _check_job(settings: Settings, job: str) -> None:
    if job not in settings.schedule.jobs:
        raise InputError(f"unknown job {job!r} (configured: {', '.join(sorted(settings.schedule.jobs))})")


def _trigger(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.flows.scheduler import run_once

    _check_job(settings, args.job)
    h = _scheduler(settings)
    if h is None:
        console.print(f"no scheduler on a cluster: running {args.job} here", highlight=False)
        from rayapp.serving import resolve_settings

        result = run_once(resolve_settings(settings), args.job)
        out.print(
            f"run #{result['run_id']} {args.job}: {result['status']}"
            + (f" ({result['error']})" if result["error"] else "")
        )
        return 0 if result["ok"] else 1
    import ray

    result = ray.get(h.trigger.remote(args.job), timeout=90)
    if not result["ok"]:
        raise RayappError(f"not triggered: {result['error']}")
    out.print(
        f"run #{result['run_id']} {args.job} started (slot {result['slot']}): rayapp schedule runs --job {args.job}"
    )
    return 0


def _pause(args: argparse.Namespace, settings: Settings) -> int:
    _check_job(settings, args.job)
    paused = args.action == "pause"
    h = _scheduler(settings)
    if h is not None:
        import ray

        result = ray.get((h.pause if paused else h.resume).remote(args.job), timeout=60)
        if not result["ok"]:
            raise RayappError(result["error"])
    else:
        from rayapp.warehouse import get_pool
        from rayapp.warehouse.pipeline import set_paused

        with get_pool(settings).connection() as conn:
            set_paused(conn, args.job, paused, settings.schedule.jobs[args.job].cron)
    out.print(f"{args.job} {'paused' if paused else 'resumed'}")
    return 0


def _stop(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.flows.run import stop_system
    from rayapp.flows.scheduler import SchedulerNotRunning
    from rayapp.runtime import joins_cluster

    if not joins_cluster(settings):
        raise InputError(
            "no cluster to stop: set ray.address (or RAY_ADDRESS) to the cluster `rayapp run --detach` used"
        )
    if _scheduler(settings) is None:
        raise SchedulerNotRunning("no scheduler is running on this cluster")
    result = stop_system(settings)
    out.print(f"scheduler and Serve stopped; cancelled runs: {result.get('cancelled') or 'none'}")
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.flows.run import run_system

    return run_system(settings, detach=args.detach, duration_s=args.duration, reuse_state=args.reuse_state)


def register(subparsers: Any) -> None:
    text = (
        "the production main command: start or join Ray (ray.address), deploy the Serve "
        "application and start the scheduler, which runs conf/schedule/ (refresh every 15 min, "
        "resolve and drift hourly, retrain weekly) and records every run in PostgreSQL; prints "
        "the URLs. Ctrl-C stops it; --detach leaves it running on the cluster"
    )
    p = subparsers.add_parser("run", help="serve and keep everything fresh on the scheduler", description=text)
    p.add_argument(
        "--detach", action="store_true", help="leave the scheduler and Serve on the cluster (`rayapp schedule stop`)"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument(
        "--reuse-state",
        action="store_true",
        help="use the state directory even when its data came from the other sources mode (live vs "
        "replay); without it such a run uses <state_dir>/<mode>/ (docs/OPERATIONS.md)",
    )
    add_overrides(p)
    p.set_defaults(handler=_run)

    p = subparsers.add_parser(
        "schedule", help="the scheduler: status, runs, trigger, pause, resume, stop", description=__doc__
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = sub.add_parser(
        "status",
        help="each job's next slot, last run and last success",
        description="each job's next slot, last run "
        "(status, attempt, error) and the age of its last success, on the scheduler's clock",
    )
    q.add_argument("--json", action="store_true", help="print JSON")
    add_overrides(q)
    q.set_defaults(handler=_status)
    q = sub.add_parser("runs", help="the run history, newest first", description="the run history, newest first")
    q.add_argument("--job", help="only this job")
    q.add_argument("--status", help="only runs in this status (e.g. failed, skipped, missed)")
    q.add_argument("--limit", type=int, default=20, help="rows (default 20)")
    q.add_argument("--json", action="store_true", help="print JSON")
    add_overrides(q)
    q.set_defaults(handler=_runs)
    q = sub.add_parser(
        "trigger",
        help="run a job now",
        description="run a job now on the scheduler (refused while it has a run in flight); without a "
        "cluster, run it once in this process. Recorded with trigger=manual",
    )
    q.add_argument("job", help="job name (conf/schedule/)")
    add_overrides(q)
    q.set_defaults(handler=_trigger)
    for action, what in (
        ("pause", "stop firing a job's slots (recorded skipped)"),
        ("resume", "fire a paused job again"),
    ):
        q = sub.add_parser(action, help=what, description=what)
        q.add_argument("job", help="job name (conf/schedule/)")
        add_overrides(q)
        q.set_defaults(handler=_pause)
    q = sub.add_parser(
        "stop",
        help="stop the scheduler and Serve on the cluster",
        description="cancel the runs in flight (recorded cancelled), stop the scheduler and its runners, "
        "and shut the Serve application down (what `rayapp run --detach` left running)",
    )
    add_overrides(q)
    q.set_defaults(handler=_stop)
