"""`ray job submit --working-dir . -- python jobs/train.py ...` against a real `ray start --head`.

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
from pathlib import Path

import mlflow
import pytest

from rayapp.services import free_port
from rayapp.testing import WaitTimeout, wait_until
from tests.training.factories import SMALL, make_frame

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
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


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAYAPP_STATE_DIR")}
    env["RAY_AUTH_MODE"] = env.get("RAY_AUTH_MODE", "token")  # the job client must send the token
    return env


def _stop(proc: subprocess.Popen, tmp: str) -> None:
    """SIGTERM to the head's own process group (`ray start --block` then stops its children);
    after a short grace, SIGKILL that group and any leftover process of this head (its command
    line names our temp dir), each by pid."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(15)
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


@pytest.fixture
def ray_head() -> Iterator[str]:
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
        "1",
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
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True)
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
        yield url
    finally:
        _stop(proc, tmp)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def test_submitted_training_job_succeeds_and_registers_a_model(ray_head, tmp_path: Path):
    data = tmp_path / "frame.parquet"
    make_frame(1300, {"sentiment_mean": 0.9}, seed=4).to_frame().rename_axis("ts").to_parquet(data)
    state = tmp_path / "state"
    overrides = [f"state_dir={state}", f"tune.report_dir={tmp_path / 'reports'}", *SMALL, "tune.num_samples=1"]
    cmd = [
        "ray",
        "job",
        "submit",
        "--address",
        ray_head,
        "--working-dir",
        ".",
        "--",
        "python",
        "jobs/train.py",
        "--data",
        str(data),
        *overrides,
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=480)
    out = r.stdout + r.stderr
    print(out[-6000:])
    assert r.returncode == 0, out[-4000:]
    assert "succeeded" in out and "bitcoin_predictor v1" in out
    mlflow.set_tracking_uri(f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    mv = mlflow.MlflowClient().get_model_version_by_alias("bitcoin_predictor", "challenger")
    assert str(mv.version) == "1" and mv.tags["feature_set_version"] == "file:frame.parquet"
    assert (tmp_path / "reports" / "report.md").exists()
