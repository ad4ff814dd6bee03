"""The overhead of distribution: the 3-node local cluster (deploy/local-cluster/up.sh) against one
local node, in the same run, on the same external stores and data.

1. A 16-trial Tune search (`rayapp train`: the default space, 5 walk-forward folds, ASHA, on the
   8,760 hours of 2022) as a cluster job vs the same command on a local Ray node (2 CPUs) on this
   host: the search's own wall time (its `search done wall_s=`).
2. POST /predict (latest vector, no explanation) at concurrency 8 through the cluster's head proxy
   (replicas on the workers, two of each deployment) vs the same serve config on one local node
   (`serve deploy`, Serve's standard proxy mode as on the cluster): p50/p99. The laptop default,
   `rayapp serve` in the throughput-optimized mode (direct ingress), is reported beside them.
3. Recovery (item 4): a raylet killed during the ingest fan-out of 2022's second half (the job's
   wall time against the undisturbed ingest of the first half), a worker's raylet SIGKILLed under the serving
   load (failed share, seconds to the last failed request and until the lost replicas run again),
   and the killed node restarted until it is ALIVE again as a new node.

There are only 2 cores here: extra nodes add no compute, so the figures are the cost of the
cluster's hops and scheduling. Each worker offers Ray one CPU, so the cluster has the same 2 CPUs
as the local node (two workers of 2 would oversubscribe the cores: 2-thread trials on 2 cores).
Needs root, Debian postgresql and redis-server, ../shared/data.

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
    lose_worker,
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


def _serve_and_measure(
    cmd: list[str], env: dict[str, str], c: LocalCluster, port: int, what: str, seconds: float
) -> dict[str, Any]:
    """Start a local Serve app with `cmd` (its own process group), measure the load on `port`
    for `seconds`, then stop the group (and with it the local node)."""
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        url, key = f"http://127.0.0.1:{port}", c.env["RAYAPP_API_KEY"]
        wait_serving(url, key, what)
        with Load(url, key) as load:
            time.sleep(3)
            since = time.time()
            time.sleep(seconds)
        return load.summary(since)
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=60)


# One local Ray node on this host (2 CPUs, its own dashboard), the cluster's serve config deployed
# onto it with `serve deploy`, as on the cluster; the process's exit takes the node down.
_LOCAL_NODE = """
import subprocess, sys, time
import ray
ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
         dashboard_port=int(sys.argv[2]))
subprocess.run(["serve", "deploy", sys.argv[1], "--address", f"http://127.0.0.1:{sys.argv[2]}"], check=True)
while True:
    time.sleep(60)
"""


def serve_local_same_config(c: LocalCluster, cfg: Path, seconds: float) -> dict[str, Any]:
    """The cluster's exact Serve config (proxy mode, two replicas of each deployment) on one
    local node: the baseline for the overhead of distribution."""
    import yaml

    from rayapp.services import free_port

    port, dash = free_port(), free_port()
    local_cfg = yaml.safe_load(cfg.read_text())
    local_cfg.setdefault("http_options", {})["port"] = port
    path = c.dir / "serve_config.local.yaml"
    path.write_text(yaml.safe_dump(local_cfg, sort_keys=False))
    env = local_env(c)
    for k in [k for k in env if k.startswith("RAY_SERVE_")]:
        env.pop(k)  # no throughput-optimized mode: the cluster runs Serve's standard proxy mode
    cmd = [sys.executable, "-c", _LOCAL_NODE, str(path), str(dash)]
    return _serve_and_measure(cmd, env, c, port, "the local node's Serve app", seconds)


def serve_local_default(c: LocalCluster, seconds: float) -> dict[str, Any]:
    """`rayapp serve` as a laptop runs it (throughput-optimized: direct ingress, no proxy hop)."""
    from rayapp.services import free_port

    port = free_port()
    feed = c.env["RAYAPP_CLUSTER_FEED"]
    cmd = [
        "rayapp",
        "serve",
        f"serving.port={port}",
        "serving.predictor_replicas=2",
        "sources=replay",
        f"sources.replay_url={feed}",
        "ray.num_cpus=2",
    ]
    return _serve_and_measure(cmd, local_env(c), c, port, "the local Serve app", seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20, help="measured seconds of serving load")
    args = ap.parse_args()
    why = missing_data() or missing_prerequisite()
    if why:
        sys.exit(f"cluster benchmark: {why}")
    # one CPU per worker: the cluster offers Ray the same 2 CPUs as the local node (2 cores here)
    c = LocalCluster(DIR, worker_cpus=1)
    c.down()
    shutil.rmtree(DIR, ignore_errors=True)
    out: dict[str, Any] = {"trials": args.trials, "cpus": os.cpu_count()}
    try:
        c.up()  # inside the try: a failed start is taken down too
        out["nodes"] = len(c.alive())
        t0 = time.perf_counter()
        ok(c.submit(*ingest_args(c, "2022-01-01", "2022-07-01")))
        out["ingest_s"] = round(time.perf_counter() - t0, 1)
        # ingest with a raylet killed mid fan-out, against the undisturbed first ingest (same length)
        t0 = time.perf_counter()
        job = c.popen_submit(*ingest_args(c, "2022-07-01", "2023-01-01"))
        time.sleep(8)
        c.node("kill-raylet", "w1")
        log, _ = job.communicate(timeout=1800)
        if job.returncode != 0:
            raise SystemExit(f"cluster benchmark: the ingest with a lost node failed:\n{log[-3000:]}")
        out["ingest_with_lost_node_s"] = round(time.perf_counter() - t0, 1)
        c.restart("w1")

        ok(c.submit("python", "jobs/score.py"))
        ok(c.submit("python", "jobs/features.py"))

        # ---- 1. the Tune search: cluster job vs one local node --------------------------------------
        # the default search (its space, 5 walk-forward folds, ASHA) on the year of hours ingested
        # (2022), only the trial count set; the gate's walk-forward after it is shortened (it is
        # not part of the search's wall time)
        train = [f"tune.num_samples={args.trials}", "lifecycle.gate.n_splits=6"]
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
        wait_serving(url, key, "the cluster's Serve app")
        wait_until(lambda: {W1, W2} <= set(replica_nodes(c).values()), 120, interval_s=2, what="replicas on both")
        with Load(url, key) as load:
            time.sleep(3)
            since = time.time()
            time.sleep(args.seconds)
            steady = load.summary(since)
            # ---- 3. a worker lost under that load ----------------------------------------------
            killed_at, replaced_s = lose_worker(c, "w2", survivor=W1)
            time.sleep(5)
        lost = load.summary(killed_at)
        out.update(
            {
                "serve_p50_ms": round(steady["p50_ms"], 2),
                "serve_p99_ms": round(steady["p99_ms"], 2),
                "serve_requests": steady["requests"],
                "serve_failed_share": round(lost["failed_share"], 4),
                "serve_requests_during_loss": lost["requests"],
                "recovery_s": round(load.recovery_s(killed_at), 2),
                "replicas_replaced_s": round(replaced_s, 1),
            }
        )
        out["rejoin_s"] = round(c.restart("w2"), 1)

        # the same Serve config on one local node; then the laptop default (direct ingress). The
        # cluster's app is shut down first so that the baselines run beside the same idle nodes only
        ok(
            subprocess.run(
                ["serve", "shutdown", "-y", "--address", c.env["RAY_ADDRESS"]],
                env=c.operator_env(),
                capture_output=True,
                text=True,
                timeout=300,
            )
        )
        local = serve_local_same_config(c, cfg, args.seconds)
        out["serve_p50_local_ms"] = round(local["p50_ms"], 2)
        out["serve_p99_local_ms"] = round(local["p99_ms"], 2)
        out["serve_p99_ratio"] = round(out["serve_p99_ms"] / out["serve_p99_local_ms"], 3)
        direct = serve_local_default(c, args.seconds)
        out["serve_p50_local_direct_ms"] = round(direct["p50_ms"], 2)
        out["serve_p99_local_direct_ms"] = round(direct["p99_ms"], 2)
    finally:
        c.down()
    out["targets"] = {"tune_ratio": 1.3, "serve_p99_ratio": 2.0, "serve_failed_share": 0.01}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
