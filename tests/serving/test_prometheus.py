"""A real Prometheus (Debian package `prometheus`) scrapes the running app with deploy/prometheus.yml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml

from rayapp.services import free_port
from rayapp.testing import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prometheus_bin() -> str:
    path = shutil.which("prometheus")
    if path is None:
        pytest.skip("the prometheus binary is absent (Debian: apt-get install -y prometheus)")
    return path


def test_prometheus_scrapes_the_app(prometheus_bin: str, app_url: str, auth: dict[str, str], tmp_path: Path) -> None:
    cfg = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    # the repository's config, pointed at this test's app and scraped every second
    cfg["global"]["scrape_interval"] = "1s"
    cfg["rule_files"] = [str(ROOT / "deploy" / f) for f in cfg["rule_files"]]
    job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "rayapp-serving")
    job["static_configs"][0]["targets"] = [app_url.removeprefix("http://")]
    cfg["scrape_configs"] = [job]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    proc = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(3):
            httpx.post(f"{app_url}/predict", json={"symbol": "BTCUSDT"}, headers=auth, timeout=30)
        query = 'sum(rayapp_http_requests_total{endpoint="/predict",status="200"})'

        def counter() -> list:
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=5)
            return r.json()["data"]["result"] if r.status_code == 200 else []

        result = wait_until(
            counter,
            60,
            interval_s=0.5,
            ignore=(httpx.HTTPError,),
            what="Prometheus to return the app's request counter",
        )
        assert result, "Prometheus never returned the app's request counter"
        assert float(result[0]["value"][1]) >= 3
        targets = httpx.get(f"http://127.0.0.1:{port}/api/v1/targets").json()["data"]["activeTargets"]
        assert targets[0]["health"] == "up"
        rules = httpx.get(f"http://127.0.0.1:{port}/api/v1/rules").json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"RayappHighErrorRate", "RayappFeaturesStale"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
