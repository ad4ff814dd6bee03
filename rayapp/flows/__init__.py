"""The application layer: runs that cross stages (the demo, ingest followed by the feature
refresh, the scheduler that keeps everything fresh; later the model lifecycle).

Flows call each stage through its public API and meet the data only through the stores; stage
packages never import flows. Public API, loaded on first use.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.flows.demo import start_replay, train_and_promote
    from rayapp.flows.jobs import JobResult, RunContext
    from rayapp.flows.run import run_system, start_system, stop_system
    from rayapp.flows.scheduler import (
        JobBusy,
        SchedulerNotRunning,
        due_slots,
        run_once,
        scheduler_handle,
        start_scheduler,
        stop_scheduler,
    )

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.flows.demo": ("start_replay", "train_and_promote"),
        "rayapp.flows.jobs": ("JobResult", "RunContext"),
        "rayapp.flows.run": ("run_system", "start_system", "stop_system"),
        "rayapp.flows.scheduler": (
            "JobBusy",
            "SchedulerNotRunning",
            "due_slots",
            "run_once",
            "scheduler_handle",
            "start_scheduler",
            "stop_scheduler",
        ),
    },
)

__all__ = [
    "JobBusy",
    "JobResult",
    "RunContext",
    "SchedulerNotRunning",
    "due_slots",
    "run_once",
    "run_system",
    "scheduler_handle",
    "start_replay",
    "start_scheduler",
    "start_system",
    "stop_scheduler",
    "stop_system",
    "train_and_promote",
]
