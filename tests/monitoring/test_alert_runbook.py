"""Every alert rule has its runbook entry in docs/OPERATIONS.md (the anchor its annotation names),
and the runbook lists no alert that does not exist; the routing sends each severity where
deploy/alertmanager.yml says (amtool's route test against the repository's file)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring.tools import required_tool

ROOT = Path(__file__).resolve().parents[2]


def _alerts() -> dict[str, dict]:
    out = {}
    for f in sorted((ROOT / "deploy" / "rules").glob("*.yml")):
        for g in yaml.safe_load(f.read_text())["groups"]:
            for r in g["rules"]:
                out[r["alert"]] = r
    return out


def test_every_alert_has_a_runbook_entry_and_no_entry_is_orphaned():
    doc = (ROOT / "docs" / "OPERATIONS.md").read_text()
    runbook = doc.split("### Alert runbook", 1)[1]
    headings = re.findall(r"^#### (\w+)$", runbook, flags=re.M)
    alerts = _alerts()
    assert sorted(headings) == sorted(alerts)
    for name, rule in alerts.items():
        entry = runbook.split(f"#### {name}\n", 1)[1].split("\n#### ", 1)[0]
        assert entry.startswith(f"[{rule['labels']['severity']}, {rule['labels']['area']}]"), name
        assert rule["annotations"]["runbook"] == f"docs/OPERATIONS.md#{name.lower()}"


@pytest.fixture(scope="module")
def amtool() -> str:
    return required_tool("amtool", "Debian: apt-get install prometheus-alertmanager")


def test_the_repository_alertmanager_config_is_valid(amtool):
    config = ROOT / "deploy" / "alertmanager.yml"
    p = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=high", "area=serving", "alertname=RayappServingDown"], "rayapp-feed,high"),
        (["severity=medium", "area=infrastructure", "alertname=RayappRedisDown"], "rayapp-feed,slack-medium"),
        (["severity=info", "area=model", "alertname=RayappDriftDetected"], "rayapp-feed,slack-info"),
        (["area=model", "alertname=Unlabelled"], "rayapp-feed,slack-medium"),
    ],
)
def test_each_severity_is_routed_to_its_receivers(amtool, labels, receivers):
    p = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={ROOT / 'deploy' / 'alertmanager.yml'}",
            f"--verify.receivers={receivers}",
            *labels,
        ],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_rendered_configs_pass_promtool_and_amtool(tmp_path, amtool):
    from rayapp.config import load_settings
    from rayapp.monitoring import check_configs, render_configs

    s = load_settings(
        [
            f"state_dir={tmp_path}",
            "alerting.scrape_interval_s=5",
            "alerting.for_scale=0.5",
            "alerting.email.smarthost=smtp.example.org:587",
            "alerting.email.auth_username=rayapp",
            f"alerting.email.auth_password_file={tmp_path / 'smtp_password'}",
        ]
    )
    r = render_configs(s, tmp_path / "out")
    assert r.token_created and (r.token_file.stat().st_mode & 0o777) == 0o600
    results = check_configs(r)
    for c in results:
        if c.ok is None and os.environ.get("RAYAPP_ALERTING_REQUIRED") != "1":
            continue
        assert c.ok, f"{c.tool}: {c.output}"
    am = yaml.safe_load(r.alertmanager.read_text())
    text = r.alertmanager.read_text()
    assert am["global"]["smtp_smarthost"] == "smtp.example.org:587"
    assert am["global"]["smtp_auth_password_file"] == str(tmp_path / "smtp_password")
    assert r.token_file.read_text().strip() not in text  # the token is referenced by path only
    assert str(r.token_file) in text
    prom = yaml.safe_load(r.prometheus.read_text())
    assert prom["global"]["scrape_interval"] == "5s"
    rules = yaml.safe_load((r.out_dir / "rules" / "infrastructure.yml").read_text())
    redis = next(x for x in rules["groups"][0]["rules"] if x["alert"] == "RayappRedisDown")
    assert redis["for"] == "15s"  # 30 s x 0.5


def test_check_reports_a_config_the_tools_refuse(tmp_path, amtool):
    from rayapp.config import load_settings
    from rayapp.monitoring import check_configs, render_configs

    r = render_configs(load_settings([f"state_dir={tmp_path}"]), tmp_path / "out")
    r.alertmanager.write_text(r.alertmanager.read_text().replace("group_wait: 10s", "group_wait: soon"))
    am = next(c for c in check_configs(r) if c.tool == "amtool")
    assert am.ok is False and "soon" in am.output
