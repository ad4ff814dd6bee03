"""The local multi-node cluster (deploy/local-cluster/): starting it, driving it as an operator
would (`ray job submit`, `serve deploy`, signals to a node), for tests/cluster and
benchmarks/cluster.py."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "deploy" / "local-cluster"
NAMESPACES = ("rayapp-svc", "rayapp-head", "rayapp-w1", "rayapp-w2", "rayapp-feed")
HEAD, W1, W2, FEED_IP = "10.88.0.10", "10.88.0.11", "10.88.0.12", "10.88.0.20"


def missing_data() -> str | None:
    """Why the feed cannot run (the real data is absent: a skip, never a failure)."""
    if not (ROOT.parent / "shared" / "data").is_dir():
        return "../shared/data is absent: the replay feed has no history to serve"
    return None


def missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "the local cluster needs root (network namespaces)"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    if not glob.glob("/usr/lib/postgresql/*/bin/postgres"):
        return "Debian postgresql is not installed (apt-get install postgresql)"
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (apt-get install redis-server)"
    probe = subprocess.run(["ip", "netns", "add", "rayapp-probe"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network namespaces here: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", "rayapp-probe"], capture_output=True)
    return None


class LocalCluster:
    def __init__(self, directory: Path, worker_cpus: int | None = None) -> None:
        """`worker_cpus`: the CPUs each worker offers Ray (up.sh's default, 2, when None)."""
        self.dir = directory
        self.worker_cpus = worker_cpus
        self.env: dict[str, str] = {}

    def _script_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYAPP_"))}
        if self.worker_cpus is not None:
            env["RAYAPP_CLUSTER_WORKER_CPUS"] = str(self.worker_cpus)
        return {**env, "RAYAPP_CLUSTER_DIR": str(self.dir)}

    def up(self) -> LocalCluster:
        p = subprocess.run(
            [str(SCRIPTS / "up.sh")], env=self._script_env(), capture_output=True, text=True, timeout=600
        )
        if p.returncode != 0:
            raise RuntimeError(f"up.sh failed ({p.returncode}):\n{p.stdout}\n{p.stderr}\n{self.logs()}")
        for line in (self.dir / "cluster.env").read_text().splitlines():
            if line.startswith("export "):
                k, _, v = line[len("export ") :].partition("=")
                self.env[k] = v
        return self

    def down(self) -> None:
        subprocess.run([str(SCRIPTS / "down.sh"), "--keep"], env=self._script_env(), capture_output=True, timeout=300)

    def logs(self, tail: int = 40) -> str:
        out = []
        for f in sorted((self.dir / "logs").glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-tail:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def operator_env(self) -> dict[str, str]:
        """This host's shell after `source cluster.env`: the cluster's addresses and token."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "RAYAPP_"))}
        return {**env, **self.env, "RAYAPP_STATE_DIR": str(self.dir / "operator")}

    def submit(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """`ray job submit --working-dir <repo> -- python jobs/...`; waits for the job's end."""
        return subprocess.run(
            ["ray", "job", "submit", "--address", self.env["RAY_ADDRESS"], "--working-dir", str(ROOT), "--", *args],
            env=self.operator_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def popen_submit(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["ray", "job", "submit", "--address", self.env["RAY_ADDRESS"], "--working-dir", str(ROOT), "--", *args],
            env=self.operator_env(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def node(self, action: str, name: str) -> str:
        p = subprocess.run(
            [str(SCRIPTS / "node.sh"), action, name], env=self._script_env(), capture_output=True, text=True, timeout=60
        )
        assert p.returncode == 0, p.stdout + p.stderr
        return p.stdout

    def restart(self, name: str, ips: dict[str, str] | None = None) -> float:
        """Kill what is left of worker `name` and start it again until it is ALIVE; the seconds it
        took. A start can time out on a loaded 2-core machine (`ray start` gives the raylet 30 s to
        register): then it is stopped and started once more, as an operator would."""
        import time

        import httpx

        from rayapp.testing.wait import WaitTimeout, wait_until

        ip = (ips or {"w1": W1, "w2": W2})[name]
        # every node id this address ever had: the rejoined node is a new one (the killed node's
        # entry can still read ALIVE until the head's health check marks it dead)
        old = {n["raylet"]["nodeId"] for n in self.ray_nodes() if n["raylet"]["nodeManagerAddress"] == ip}
        t0 = time.monotonic()
        for attempt in (1, 2):
            self.node("stop", name)
            self.node("start", name)
            try:
                wait_until(
                    lambda: self.alive().get(ip, "") not in old | {""},
                    120,
                    interval_s=1,
                    ignore=(httpx.HTTPError, KeyError),
                    what=f"{name} to rejoin",
                )
                return time.monotonic() - t0
            except WaitTimeout:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def in_namespace(self, ns: str, *cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout, env=self.operator_env()
        )

    def ray_nodes(self) -> list[dict[str, Any]]:
        import httpx

        r = httpx.get(
            f"{self.env['RAY_ADDRESS']}/nodes?view=summary",
            headers={"Authorization": f"Bearer {self.env['RAY_AUTH_TOKEN']}"},
            timeout=10,
        )
        return list(r.json()["data"]["summary"])

    def alive(self) -> dict[str, str]:
        """ip -> node id of the ALIVE nodes."""
        return {
            n["raylet"]["nodeManagerAddress"]: n["raylet"]["nodeId"]
            for n in self.ray_nodes()
            if n["raylet"]["state"] == "ALIVE"
        }


def wait_serving(url: str, api_key: str, what: str, timeout_s: float = 300) -> None:
    """Until POST /predict (latest vector) answers 200: a model loaded and features served."""
    import httpx

    from rayapp.testing.wait import wait_until

    def answers() -> bool:
        r = httpx.post(f"{url}/predict", json={"symbol": "BTCUSDT"}, headers={"X-API-Key": api_key}, timeout=10)
        return r.status_code == 200

    wait_until(answers, timeout_s, interval_s=2, ignore=(httpx.HTTPError,), what=what)


def replica_nodes(c: LocalCluster, app: str = "rayapp") -> dict[str, str]:
    """replica id -> node ip of the application's RUNNING replicas (the Serve controller's view)."""
    import httpx

    r = httpx.get(
        f"{c.env['RAY_ADDRESS']}/api/serve/applications/",
        headers={"Authorization": f"Bearer {c.env['RAY_AUTH_TOKEN']}"},
        timeout=10,
    )
    deployments = r.json()["applications"][app]["deployments"]
    return {
        rep["replica_id"]: rep["node_ip"]
        for d in deployments.values()
        for rep in d["replicas"]
        if rep["state"] == "RUNNING"
    }


def cluster_serve_config(path: Path, feed: str, replicas: int = 2) -> Path:
    """serve_config.yaml for this cluster: the replay feed's market as the app's sources, and
    `replicas` of every deployment so that losing a node loses none. (Its proxies listen on every
    interface because the nodes set RAY_SERVE_DEFAULT_HTTP_HOST=0.0.0.0, as pods do.)"""
    import yaml

    cfg = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    cfg["applications"][0]["args"]["overrides"] = ["sources=replay", f"sources.replay_url={feed}"]
    for d in cfg["applications"][0]["deployments"]:
        d["num_replicas"] = max(replicas, int(d.get("num_replicas", 1)))
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def promote_newest(c: LocalCluster) -> str:
    """Point `champion` at the newest registered version (an operator's decision, as in the
    MLflow UI) through the cluster's tracking server; returns the version."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=c.env["RAYAPP_MLFLOW_URI"])
    name = "bitcoin_predictor"
    version = str(max(int(v.version) for v in client.search_model_versions(f"name = '{name}'")))
    client.set_registered_model_alias(name, "champion", version)
    return version


def train_run_id(stdout: str) -> str:
    """The MLflow run id `rayapp train` prints (`run <id>: ...`)."""
    for line in stdout.splitlines():
        if line.startswith("run ") and ":" in line:
            return line.split()[1].rstrip(":")
    raise AssertionError(f"no 'run <id>:' line in the train output:\n{stdout[-2000:]}")


def search_wall_s(stdout: str) -> float:
    """The Tune search's wall seconds from its `search done ... wall_s=` log line."""
    for line in stdout.splitlines():
        if "search done" in line and "wall_s=" in line:
            return float(line.split("wall_s=")[1].split()[0])
    raise AssertionError(f"no 'search done' line in the train output:\n{stdout[-2000:]}")


class Load:
    """`concurrency` clients posting /predict back to back while the block runs; every request's
    (start time, status, seconds) is kept (status 0: the connection failed)."""

    def __init__(self, url: str, api_key: str, concurrency: int = 8) -> None:
        import threading

        self.url, self.key = url, api_key
        self.results: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(concurrency)]

    def _client(self) -> None:
        import time

        import httpx

        with httpx.Client(timeout=30) as c:
            while not self._stop.is_set():
                t0 = time.time()
                try:
                    code = c.post(
                        f"{self.url}/predict",
                        json={"symbol": "BTCUSDT", "explain": False},
                        headers={"X-API-Key": self.key},
                    ).status_code
                except httpx.HTTPError:
                    code = 0
                self.results.append((t0, code, time.time() - t0))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def recovery_s(self, since: float) -> float:
        """Seconds from `since` to the start of the last failed request after it (0: none failed)."""
        failed = [t for t, code, _ in self.results if t >= since and code != 200]
        return (max(failed) - since) if failed else 0.0

    def summary(self, since: float = 0.0) -> dict[str, Any]:
        import numpy as np

        rows = [r for r in self.results if r[0] >= since]
        ok = [r[2] for r in rows if r[1] == 200]
        failed = len(rows) - len(ok)
        return {
            "requests": len(rows),
            "failed": failed,
            "failed_share": failed / max(1, len(rows)),
            "p50_ms": float(np.percentile(ok, 50) * 1e3) if ok else None,
            "p99_ms": float(np.percentile(ok, 99) * 1e3) if ok else None,
        }


def lose_worker(c: LocalCluster, name: str = "w2", survivor: str = W1, timeout_s: float = 300) -> tuple[float, float]:
    """SIGKILL worker `name`'s raylet while Serve runs replicas on it, and wait until Serve runs
    as many replicas as before, all on `survivor`. Returns (the kill's time, seconds until the
    lost replicas were replaced)."""
    import time

    import httpx

    from rayapp.testing.wait import wait_until

    before = len(replica_nodes(c))
    killed_at = time.time()
    c.node("kill-raylet", name)
    wait_until(
        lambda: len(replica_nodes(c)) == before and set(replica_nodes(c).values()) == {survivor},
        timeout_s,
        interval_s=1,
        ignore=(httpx.HTTPError, KeyError),
        what=f"Serve to replace the replicas lost with {name} on {survivor}",
    )
    return killed_at, time.time() - killed_at
