"""`rayapp run` and `rayapp schedule ...` as a user runs them: real processes on a real
`ray start --head` cluster, against the session's embedded PostgreSQL.

Foreground `rayapp run` stops cleanly on Ctrl-C (SIGINT); `rayapp run --detach` returns and leaves
the scheduler and Serve on the cluster; `rayapp schedule status|runs|pause|resume|trigger` see
and steer it from other processes; `rayapp schedule stop` ends both. `ray job submit -- python
jobs/run.py --detach` (the same command as a Ray job) is tests/cluster's, on the multi-node cluster.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rayapp.services import free_port
from rayapp.testing import wait_until
from tests.ray_head import head_env, start_ray_head

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # subprocesses and a `ray start --head`


def _overrides(state_dir: Path, address: str, port: int, job: str) -> list[str]:
    return [
        f"state_dir={state_dir}",
        f"ray.address={address}",
        f"serving.port={port}",
        "serving.throughput_optimized=false",  # the head was started without Serve's env
        *(f"schedule.jobs.{j}.enabled=false" for j in ("refresh", "resolve", "drift", "retrain")),
        f"+schedule.jobs.{job}.cron=* * * * * */2",
        f"+schedule.jobs.{job}.target=rayapp.flows.jobs:noop",
        f"schedule.actor_name=sched-{job}",
    ]


def _rayapp(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rayapp.cli", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=head_env(),
    )


def _runs(over: list[str], job: str) -> list[dict]:
    """`rayapp schedule runs --json`, as an operator reads the history."""
    r = _rayapp("schedule", "runs", "--job", job, "--limit", "100", "--json", *over, timeout=60)
    assert r.returncode == 0, r.stderr
    return list(json.loads(r.stdout))


def _recorded(pool, job: str) -> list[dict]:
    """The same history straight from the warehouse: the waits poll this, not a CLI process each."""
    from rayapp.warehouse.pipeline import list_runs

    with pool.connection() as conn:
        return list_runs(conn, job=job, limit=100)


def _serve_deployed_at(dashboard_url: str) -> dict[str, float]:
    """Each Serve application's last deploy time, as `serve status` reports it."""
    import yaml

    p = subprocess.run(
        ["serve", "status", "--address", dashboard_url],
        env=head_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    apps = yaml.safe_load(p.stdout)["applications"]
    return {name: app["last_deployed_time_s"] for name, app in apps.items()}


def test_run_in_the_foreground_then_detached_and_steered_from_other_processes(state_dir, services, pool):
    with start_ray_head(num_cpus=2) as head:
        job = f"beat{int(time.time())}"
        port = free_port()
        over = _overrides(state_dir, head.gcs_address, port, job)

        # foreground: until Ctrl-C, which cancels what is in flight and stops both
        proc = subprocess.Popen(
            [sys.executable, "-m", "rayapp.cli", "run", *over],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=head_env(),
        )
        try:
            wait_until(
                lambda: any(r["status"] == "succeeded" for r in _recorded(pool, job)), 180, what="a first scheduled run"
            )
            assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
            proc.send_signal(signal.SIGINT)
            # A liveness bound, not a timing check: the stop waits up to 60 s for the scheduler to
            # cancel its runs, then Serve drains its replicas (slow on a loaded 2-core machine).
            try:
                out, err = proc.communicate(timeout=240)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                pytest.fail(f"`rayapp run` did not stop within 240 s of Ctrl-C\nout: {out[-2000:]}\nerr: {err[-4000:]}")
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err[-2000:]
        assert "rayapp is serving" in out and f"{job}" in out and "scheduler stopped" in out
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)

        # detached: returns at once, both keep running
        r = _rayapp("run", "--detach", *over)
        assert r.returncode == 0, r.stderr[-2000:]
        assert "detached" in r.stdout and "/pipeline" in r.stdout
        before = max(x["run_id"] for x in _recorded(pool, job))
        wait_until(
            lambda: any(x["status"] == "succeeded" and x["run_id"] > before for x in _recorded(pool, job)),
            60,
            what="a run of the detached scheduler",
        )
        st = _rayapp("schedule", "status", "--json", *over, timeout=60)
        assert st.returncode == 0, st.stderr
        body = json.loads(st.stdout)
        assert body["scheduler"]["alive"] is True
        entry = next(j for j in body["jobs"] if j["job"] == job)
        assert entry["last_success"] is not None and entry["next_slot"] is not None
        # a second `rayapp run` on the same cluster is refused while this one runs, before it
        # touches the running Serve app (not redeployed)
        deployed = _serve_deployed_at(head.dashboard_url)
        again = _rayapp("run", "--detach", *over)
        assert again.returncode == 2 and "already running" in again.stderr
        assert _serve_deployed_at(head.dashboard_url) == deployed
        # steer it from other processes
        assert _rayapp("schedule", "pause", job, *over, timeout=60).returncode == 0
        wait_until(lambda: any(x["error"] == "job paused" for x in _recorded(pool, job)), 30, what="paused slots")
        assert _rayapp("schedule", "resume", job, *over, timeout=60).returncode == 0
        trig = _rayapp("schedule", "trigger", job, *over, timeout=60)
        assert trig.returncode == 0 and "started" in trig.stdout, trig.stderr
        assert httpx.get(f"http://127.0.0.1:{port}/pipeline", timeout=10).json()["scheduler"]["alive"] is True
        # stop ends the scheduler and Serve
        stop = _rayapp("schedule", "stop", *over, timeout=120)
        assert stop.returncode == 0 and "scheduler and Serve stopped" in stop.stdout, stop.stderr
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
        gone = _rayapp("schedule", "stop", *over, timeout=120)
        assert gone.returncode == 1 and "no scheduler is running" in gone.stderr
        runs = _runs(over, job)
        assert [x["run_id"] for x in runs] == [x["run_id"] for x in _recorded(pool, job)]  # the CLI shows it all
        assert any(x["trigger"] == "manual" and x["status"] == "succeeded" for x in runs)
        slots = [x["slot"] for x in runs if x["trigger"] == "schedule"]
        assert len(slots) == len(set(slots))
