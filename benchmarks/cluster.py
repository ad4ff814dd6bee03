"""The overhead of distribution: the 3-node local cluster (deploy/local-cluster/up.sh) against one
local node, in the same run, on the same external stores and data.

1. A 16-trial Tune search (`rayapp train`, 3 fixed folds, a small space) as a cluster job vs the same command on a
   local Ray node (2 CPUs) on this host: the search's own wall time (its `search done wall_s=`).
2. POST /predict (latest vector, no explanation) at concurrency 8 through the cluster's head proxy
   (replicas on the workers, two of each deployment) vs `rayapp serve` on this host: p50/p99.
3. Recovery (item 4): a worker's raylet SIGKILLed under the serving load (failed share, seconds
   to the last failed request and until the lost replicas run again), a raylet killed during an
   ingest fan-out (the job's wall time against a run without a kill), and the killed node
   restarted until it is ALIVE again.

There are only 2 cores here: extra nodes add no compute, so the figures are the cost of the
cluster's hops and scheduling. Needs root, Debian postgresql and redis-server, ../shared/data.

    sudo python benchmarks/cluster.py [--trials 16] [--seconds 20]

Last line: {"nodes", "tune_cluster_s", "tune_local_s", "tune_ratio", "serve_p50_ms",
"serve_p99_ms", "serve_p50_local_ms", "serve_p99_local_ms", "serve_p99_ratio",
"serve_failed_share", "recovery_s", ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rayapp.testing.cluster import (  # noqa: E402
    W1,
    W2,
    Load,
    LocalCluster,
    cluster_serve_config,
    missing_data,
    missing_prerequisite,
    promote_newest,
    replica_nodes,
    search_wall_s,
    wait_serving,
)
from rayapp.testing.wait import wait_until  # noqa: E402

DIR = Path("/tmp/rayapp-cluster-bench")


def ok(p: subprocess.CompletedProcess[str]) -> str:
    if p.returncode != 0:
        raise SystemExit(f"cluster benchmark: a step failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p.stdout + p.stderr


def ingest_args(c: LocalCluster, start: str, end: str) -> list[str]:
    feed = c.env["RAYAPP_CLUSTER_FEED"]
    return [
        "python",
        "jobs/ingest.py",
        "sources=replay",
        f"sources.replay_url={feed}",
        "storage=minio",
        f"start={start}",
        f"end={end}",
    ]


def local_env(c: LocalCluster) -> dict[str, str]:
    """This host as a single local node on the same stores: no RAY_ADDRESS."""
    env = {k: v for k, v in c.operator_env().items() if k != "RAY_ADDRESS"}
    env["RAYAPP_STATE_DIR"] = str(c.dir / "local-node")
    return env


def serve_local(c: LocalCluster, seconds: float) -> dict[str, Any]:
    from rayapp.services import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    feed = c.env["RAYAPP_CLUSTER_FEED"]
    proc = subprocess.Popen(
        [
            "rayapp",
            "serve",
            f"serving.port={port}",
            "serving.predictor_replicas=2",
            "sources=replay",
            f"sources.replay_url={feed}",
            "ray.num_cpus=2",
        ],
        env=local_env(c),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        key = c.env["RAYAPP_API_KEY"]
        wait_serving(url, key, "the local Serve app")
        with Load(url, key) as load:
            time.sleep(3)
            since = time.time()
            time.sleep(seconds)
        return load.summary(since)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20, help="measured seconds of serving load")
    args = ap.parse_args()
    why = missing_data() or missing_prerequisite()
    if why:
        sys.exit(f"cluster benchmark: {why}")
    c = LocalCluster(DIR)
    c.down()
    shutil.rmtree(DIR, ignore_errors=True)
    c.up()
    out: dict[str, Any] = {"nodes": len(c.alive()), "trials": args.trials, "cpus": os.cpu_count()}
    try:
        t0 = time.perf_counter()
        ok(c.submit(*ingest_args(c, "2022-01-01", "2022-07-01")))
        out["ingest_s"] = round(time.perf_counter() - t0, 1)
        ok(c.submit("python", "jobs/score.py"))
        ok(c.submit("python", "jobs/features.py"))

        # ---- 1. the Tune search: cluster job vs one local node --------------------------------------
        # fixed folds and a small space (shallow, short boosters): the cost of distributing the
        # trials, not of the biggest boosters the default space allows
        train = [
            "tune.cv.n_splits=3",
            "lifecycle.gate.n_splits=6",
            f"tune.num_samples={args.trials}",
            "tune.space.n_estimators.high=150",
            "tune.space.max_depth.high=4",
        ]
        cl = ok(c.submit("python", "jobs/train.py", *train, timeout=3600))
        out["tune_cluster_s"] = search_wall_s(cl)
        loc = ok(
            subprocess.run(
                ["rayapp", "train", *train, "ray.num_cpus=2"],
                env=local_env(c),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=3600,
            )
        )
        out["tune_local_s"] = search_wall_s(loc)
        out["tune_ratio"] = round(out["tune_cluster_s"] / out["tune_local_s"], 3)

        # ---- 2. serving: through the cluster vs local -----------------------------------------------
        promote_newest(c)
        cfg = cluster_serve_config(c.dir / "serve_config.yaml", c.env["RAYAPP_CLUSTER_FEED"])
        ok(
            subprocess.run(
                ["serve", "deploy", str(cfg), "--address", c.env["RAY_ADDRESS"]],
                env=c.operator_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
        )
        url = c.env["RAYAPP_CLUSTER_SERVE"]
        key = c.env["RAYAPP_API_KEY"]
        import httpx

        wait_serving(url, key, "the cluster's Serve app")
        wait_until(lambda: {W1, W2} <= set(replica_nodes(c).values()), 120, interval_s=2, what="replicas on both")
        with Load(url, key) as load:
            time.sleep(3)
            since = time.time()
            time.sleep(args.seconds)
            steady = load.summary(since)
            # ---- 3. a worker lost under that load ----------------------------------------------
            before = len(replica_nodes(c))
            killed_at = time.time()
            c.node("kill-raylet", "w2")
            wait_until(
                lambda: len(replica_nodes(c)) == before and set(replica_nodes(c).values()) == {W1},
                300,
                interval_s=1,
                ignore=(httpx.HTTPError, KeyError),
                what="the lost replicas to run on w1",
            )
            replaced_s = time.time() - killed_at
            time.sleep(5)
        lost = load.summary(killed_at)
        failed_after = [t for t, code, _ in load.results if t >= killed_at and code != 200]
        out.update(
            {
                "serve_p50_ms": round(steady["p50_ms"], 2),
                "serve_p99_ms": round(steady["p99_ms"], 2),
                "serve_requests": steady["requests"],
                "serve_failed_share": round(lost["failed_share"], 4),
                "serve_requests_during_loss": lost["requests"],
                "recovery_s": round((max(failed_after) - killed_at) if failed_after else 0.0, 2),
                "replicas_replaced_s": round(replaced_s, 1),
            }
        )
        out["rejoin_s"] = round(c.restart("w2"), 1)

        # ingest with a raylet killed mid fan-out, against the undisturbed run above
        t0 = time.perf_counter()
        job = c.popen_submit(*ingest_args(c, "2022-07-01", "2023-01-01"))
        time.sleep(8)
        c.node("kill-raylet", "w1")
        log, _ = job.communicate(timeout=1800)
        if job.returncode != 0:
            raise SystemExit(f"cluster benchmark: the ingest with a lost node failed:\n{log[-3000:]}")
        out["ingest_with_lost_node_s"] = round(time.perf_counter() - t0, 1)
        c.restart("w1")

        local = serve_local(c, args.seconds)
        out["serve_p50_local_ms"] = round(local["p50_ms"], 2)
        out["serve_p99_local_ms"] = round(local["p99_ms"], 2)
        out["serve_p99_ratio"] = round(out["serve_p99_ms"] / out["serve_p99_local_ms"], 3)
    finally:
        c.down()
    out["targets"] = {"tune_ratio": 1.3, "serve_p99_ratio": 2.0, "serve_failed_share": 0.01}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
