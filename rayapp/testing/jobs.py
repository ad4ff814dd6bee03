"""Jobs for the scheduler's tests and benchmark (`target: rayapp.testing.jobs:record`).

`record` appends one line per attempt it executes to `params.marker` (run id, slot, attempt, pid),
so a test can count executions independently of what the scheduler recorded; it sleeps
`sleep_s` and fails its first `fail_attempts` attempts, deterministically, and every attempt
while the file `fail_while` exists (a fault a test switches on and off).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any


def record(settings: Any, ctx: Any) -> Any:
    from rayapp.flows import JobResult

    p = ctx.params
    marker = p.get("marker")
    line = {"run_id": ctx.run_id, "slot": ctx.slot.isoformat(), "attempt": ctx.attempt, "pid": os.getpid()}
    if marker:
        with open(marker, "a") as f:  # one short write per line: appends from one process at a time
            f.write(json.dumps({**line, "event": "start", "t": time.time()}) + "\n")
    time.sleep(float(p.get("sleep_s", 0) or 0))
    if ctx.attempt <= int(p.get("fail_attempts", 0) or 0):
        raise RuntimeError(f"planned failure of attempt {ctx.attempt}")
    if p.get("fail_while") and os.path.exists(p["fail_while"]):
        raise RuntimeError(f"planned failure while {p['fail_while']} exists")
    if marker:
        with open(marker, "a") as f:
            f.write(json.dumps({**line, "event": "done", "t": time.time()}) + "\n")
    return JobResult(rows_read=1, rows_written=1, stats={"slept_s": p.get("sleep_s", 0)})


def executions(marker: str, event: str = "done") -> list[dict[str, Any]]:
    """The lines `record` wrote for `event` (start | done)."""
    if not os.path.exists(marker):
        return []
    with open(marker) as f:
        return [d for d in (json.loads(x) for x in f if x.strip()) if d["event"] == event]
