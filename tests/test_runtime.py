"""`rayapp.runtime.ensure_ray`: a local start, and joining a running `ray start --head`.

Each runs in a fresh interpreter (the session's own Ray cluster is initialised in this one), with
the `ray.*` settings a user would pass.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PROBE = """
import json, sys
import ray
from rayapp.config import load_settings
from rayapp.runtime import ensure_ray

ensure_ray(load_settings(sys.argv[1:]))
ctx = ray.get_runtime_context()
print(json.dumps({"cpus": ray.cluster_resources().get("CPU"), "gcs": ctx.gcs_address,
                  "nodes": len([n for n in ray.nodes() if n["Alive"]])}))
ray.shutdown()
"""


def probe(*overrides: str, env: dict[str, str] | None = None) -> dict:
    r = subprocess.run([sys.executable, "-c", PROBE, *overrides], capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


def _env_without_ray_address() -> dict[str, str]:
    from tests.ray_head import head_env

    return head_env()  # no RAY_ADDRESS: the probe decides from its settings alone


def test_local_start_uses_the_configured_cpus():
    got = probe("ray.num_cpus=1", env=_env_without_ray_address())
    assert got["cpus"] == 1.0 and got["nodes"] == 1


def port(address: str) -> str:
    return address.rsplit(":", 1)[1]  # the head advertises the node's own IP, not 127.0.0.1


def test_joins_a_running_head_without_resource_arguments(ray_head):
    # ray.num_cpus is set as a user's config might have it: joining must not pass it to Ray
    # (which refuses resources when connecting); the head's own CPUs count.
    env = _env_without_ray_address()
    got = probe(f"ray.address={ray_head.gcs_address}", "ray.num_cpus=2", env=env)
    assert port(got["gcs"]) == port(ray_head.gcs_address) and got["cpus"] == float(ray_head.num_cpus)
    # unset ray.address but RAY_ADDRESS in the environment (a `ray job submit` driver): join it
    got = probe("ray.num_cpus=2", env={**env, "RAY_ADDRESS": ray_head.gcs_address})
    assert port(got["gcs"]) == port(ray_head.gcs_address) and got["cpus"] == float(ray_head.num_cpus)
    # with neither, a new local cluster starts, though a `ray start` head runs on this machine
    got = probe("ray.num_cpus=1", env=env)
    assert port(got["gcs"]) != port(ray_head.gcs_address) and got["nodes"] == 1
