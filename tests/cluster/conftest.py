"""The multi-node topology (deploy/local-cluster/up.sh): three Ray nodes in their own network
namespaces with their own temp and state directories, external PostgreSQL, Redis, MLflow and S3
in a fourth, the replay feed in a fifth. The tests drive it only as an operator would: `ray job
submit`, `serve deploy`, `rayapp run --detach`, HTTP, and signals to the nodes' processes
(rayapp.testing.cluster).

Needs root (ip netns), Debian's postgresql and redis-server, and ../shared/data (the replay feed's
history). Skipped with the reason when one is missing; RAYAPP_CLUSTER_REQUIRED=1 (CI) makes a
missing prerequisite other than the real data a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rayapp.testing.cluster import LocalCluster, missing_data, missing_prerequisite

# Not under pytest's tmp dir: that is private to root, and PostgreSQL runs as its own user.
CLUSTER_DIR = Path("/tmp/rayapp-cluster-test")


@pytest.fixture(scope="package")
def cluster() -> Iterator[LocalCluster]:
    absent = missing_data()
    if absent:  # the real data is never required: tests that read it skip without it
        pytest.skip(absent)
    why = missing_prerequisite()
    if why:
        if os.environ.get("RAYAPP_CLUSTER_REQUIRED") == "1":
            pytest.fail(why)
        pytest.skip(why)
    c = LocalCluster(CLUSTER_DIR)
    c.down()  # a cluster a crashed run left behind
    shutil.rmtree(CLUSTER_DIR, ignore_errors=True)
    try:
        yield c.up()
    finally:
        c.down()
