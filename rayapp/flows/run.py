"""`rayapp run`: the production main command: Serve plus the scheduler that keeps it fresh.

Starts or joins Ray (`ray.address`), deploys the Serve application, starts the scheduler actor
(rayapp/flows/scheduler.py) and prints the URLs and the schedule. In the foreground, Ctrl-C (or
`--duration`) stops the scheduler, cancelling what is in flight, and Serve; with `--detach` both
keep running on the cluster and `rayapp schedule stop` ends them.

When its refresh job fetches from the sources, it first takes the state directory of its sources
mode and, with live sources, checks the markets answer (rayapp/flows/preflight.py): no price
source answering stops it with one error saying why and the ways on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from rayapp.errors import InputError
from rayapp.log import get_logger
from rayapp.terminal import out

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.serving import Serving

log = get_logger(__name__)


@dataclass
class Running:
    serving: Serving  # the deployed app (resolved settings with its API key, URLs)
    scheduler: Any  # the scheduler actor's handle

    @property
    def settings(self) -> Any:
        return self.serving.settings

    @property
    def base_url(self) -> str:
        return self.serving.base_url


def for_scheduler(settings: Settings) -> Settings:
    """The Serve settings when the scheduler runs: its `resolve` job fills outcomes (recorded in
    pipeline_runs), so the ingress's own resolve loop is off."""
    resolve = settings.schedule.jobs.get("resolve")
    if resolve is None or not resolve.enabled:
        return settings
    s = settings.model_copy(deep=True)
    s.serving.resolve_interval_s = 0
    return s


def _check_detach(settings: Settings, detach: bool) -> None:
    from rayapp.runtime import joins_cluster

    if detach and not joins_cluster(settings):
        raise InputError(
            "--detach needs a cluster that outlives this command: `ray start --head`, then "
            "ray.address=auto (or RAY_ADDRESS); a local cluster ends with its driver"
        )


def fetches_sources(settings: Settings) -> bool:
    """The scheduler's refresh job is on: this run brings source data in."""
    refresh = settings.schedule.jobs.get("refresh")
    return refresh is not None and refresh.enabled


def start_system(settings: Settings, *, resolved: bool = False, detach: bool = False) -> Running:
    """Resolve the settings, start or join Ray, deploy Serve, start the scheduler."""
    from rayapp.flows.scheduler import refuse_if_running, start_scheduler
    from rayapp.runtime import joins_cluster
    from rayapp.serving import start, start_ray

    _check_detach(settings, detach)
    dashboard = None
    if joins_cluster(settings):
        # a second `rayapp run` on a cluster is refused before it touches the running Serve app
        dashboard = start_ray(settings)
        refuse_if_running(settings)
    serving = start(for_scheduler(settings), resolved=resolved)
    if serving.dashboard_url is None and dashboard is not None:
        serving = replace(serving, dashboard_url=dashboard)
    return Running(serving, start_scheduler(serving.settings))


def print_schedule(running: Running) -> None:
    import ray
    from rich.table import Table

    status = ray.get(running.scheduler.status.remote(), timeout=30)
    clock = status.get("clock") or {}
    t = Table(
        "job",
        "cron",
        "next slot",
        "timeout",
        "retries",
        title=f"scheduler {status['incarnation']} · clock {clock.get('id', '?')} ({clock.get('speed', 1):g}x)",
    )
    specs = running.settings.schedule.jobs
    for j in status["jobs"]:
        spec = specs[j["job"]]
        t.add_row(j["job"], j["cron"], j["next_slot"] or "-", f"{spec.timeout_s:g} s", str(spec.retries))
    out.print(t)
    out.print("  status     rayapp schedule status   ·   runs: rayapp schedule runs --job refresh")
    out.print(f"  pipeline   {running.base_url}/pipeline")


def stop_system(settings: Settings) -> dict[str, Any]:
    """Stop the scheduler (runs in flight cancelled) and the Serve application."""
    from ray import serve

    from rayapp.flows.scheduler import stop_scheduler

    result = stop_scheduler(settings)
    try:
        serve.shutdown()
    except Exception as exc:  # Serve may not be running: the scheduler stop is what was asked
        log.warning("serve shutdown failed", error=type(exc).__name__)
    return result


OFFLINE_HINT = "`rayapp replay --data DIR` (the CSV history in DIR), then `rayapp run sources=replay`"


def run_system(
    settings: Settings,
    *,
    detach: bool = False,
    duration_s: float | None = None,
    resolved: bool = False,
    reuse_state: bool = False,
) -> int:
    from rayapp.flows.preflight import check_sources, mark, state_for_mode
    from rayapp.serving import print_urls

    _check_detach(settings, detach)
    if fetches_sources(settings):
        settings = state_for_mode(settings, reuse=reuse_state)
        check_sources(settings, offline_hint=OFFLINE_HINT)  # SourcesUnreachable: exit 1
        mark(settings, by="rayapp run")
    running = start_system(settings, resolved=resolved, detach=detach)
    print_urls(running.serving)
    print_schedule(running)
    if detach:
        out.print("[green]detached:[/green] the scheduler and Serve keep running; `rayapp schedule stop` ends them")
        return 0
    return wait_and_stop(running, duration_s)


def _sigterm_is_ctrl_c() -> None:
    """`ray job stop` and process managers send SIGTERM: stop as cleanly as on Ctrl-C."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():

        def handler(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, handler)


def wait_and_stop(running: Running, duration_s: float | None) -> int:
    deadline = None if duration_s is None else time.monotonic() + duration_s
    _sigterm_is_ctrl_c()
    try:
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic())))
    except KeyboardInterrupt:
        out.print("[yellow]stopping: runs in flight are cancelled[/yellow]")
    result = stop_system(running.settings)
    out.print(f"scheduler stopped; cancelled runs: {result.get('cancelled') or 'none'}")
    return 0
