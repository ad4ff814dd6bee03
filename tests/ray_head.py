"""A real `ray start --head` for tests, isolated from the session's own Ray cluster.

The head runs in its own process group, with its own temp dir (so its `ray_current_cluster`
file does not redirect other processes' `ray.init()`), free ports and its own worker-port range,
so it cannot collide with the session's `ray.init` cluster. It is stopped by signalling that
process group only: `ray stop` would kill every Ray process of this user on the machine,
including the session cluster and other test runs.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rayapp.services import free_port
from rayapp.testing import WaitTimeout, wait_until


@dataclass(frozen=True)
class RayHead:
    dashboard_url: str  # what `ray job submit --address` takes
    gcs_address: str  # what `ray.init(address=...)` / `ray.address` takes
    num_cpus: int


PORT_FLAGS = (
    "port",
    "dashboard-port",
    "ray-client-server-port",
    "node-manager-port",
    "object-manager-port",
    "dashboard-agent-listen-port",
    "dashboard-agent-grpc-port",
    "runtime-env-agent-port",
    "metrics-export-port",
)


def head_env() -> dict[str, str]:
    """The environment of the head and of every process that talks to it."""
    # Not the session cluster's address, state dir or Serve configuration (tests/conftest.py puts
    # the throughput-optimized Serve environment, with its ports, into this process).
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RAY_ADDRESS", "RAYAPP_STATE_DIR") and not k.startswith("RAY_SERVE_")
    }
    env["RAY_AUTH_MODE"] = env.get("RAY_AUTH_MODE", "token")  # the job client must send the token
    return env


def _stop(proc: subprocess.Popen, tmp: str) -> None:
    """SIGTERM to the head's own process group (`ray start --block` then stops its children);
    after a short grace, SIGKILL that group and any leftover process of this head (its command
    line names our temp dir), each by pid. The grace is short: an idle head is gone in about 2 s,
    but one that ran Serve or jobs waits out its children's own grace periods (15 s and more),
    and nothing of a test head needs to outlive the test."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(5)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)

    def none_left() -> bool:
        left = [
            int(p.name)
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and int(p.name) != os.getpid() and tmp in _cmdline(p)
        ]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return not left

    # Best effort, as cleanup must go on: what outlives 10 s of SIGKILLs is left to the OS.
    with contextlib.suppress(WaitTimeout):
        wait_until(none_left, 10, interval_s=0.5, what=f"every process of the ray head under {tmp} to exit")


def _cmdline(p: Path) -> str:
    try:
        return (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@contextlib.contextmanager
def start_ray_head(num_cpus: int = 1) -> Iterator[RayHead]:
    """A head node with `num_cpus` CPUs until the block ends (skips when there is no `ray` CLI)."""
    if shutil.which("ray") is None:
        pytest.skip("the ray CLI is not on PATH")
    tmp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's unix sockets live under it
    # Worker ports below the kernel's ephemeral range (where the free ports come from) and above
    # Ray's default 10002-19999, so neither the session cluster nor our own ports can overlap.
    low = random.randint(20000, 29000)
    ports: dict[str, int] = {}
    while len(ports) < len(PORT_FLAGS):
        port = free_port()
        if not low <= port <= low + 300 and port not in ports.values():
            ports[PORT_FLAGS[len(ports)]] = port
    cmd = [
        "ray",
        "start",
        "--head",
        "--block",
        "--num-cpus",
        str(num_cpus),
        "--disable-usage-stats",
        "--include-dashboard",
        "true",
        "--dashboard-host",
        "127.0.0.1",
        "--temp-dir",
        tmp,
        "--min-worker-port",
        str(low),
        "--max-worker-port",
        str(low + 300),
    ]
    for flag, port in ports.items():
        cmd += [f"--{flag}", str(port)]
    log = open(Path(tmp) / "head.log", "w")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=head_env(), start_new_session=True)
    url = f"http://127.0.0.1:{ports['dashboard-port']}"

    def answering() -> bool:
        try:
            urllib.request.urlopen(url + "/api/version", timeout=2)
        except urllib.error.HTTPError:
            pass  # answering (e.g. 401 without a token) means it is up
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"ray head exited: {(Path(tmp) / 'head.log').read_text()[-2000:]}")
            return False
        return True

    try:
        try:
            wait_until(answering, 180, interval_s=1, what="the ray head's dashboard to answer")
        except WaitTimeout as exc:
            pytest.fail(f"ray head did not start: {exc}\n{(Path(tmp) / 'head.log').read_text()[-2000:]}")
        yield RayHead(url, f"127.0.0.1:{ports['port']}", num_cpus)
    finally:
        _stop(proc, tmp)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
