"""The Prometheus alert rules in deploy/rules/ and their promtool unit tests in deploy/rules/tests/.

`promtool check rules` on every group file and `promtool test rules` on every test file need
promtool on PATH (Debian: the `prometheus` package); without it those tests skip, or fail where
RAYAPP_ALERTING_REQUIRED=1. The structure checks (labels, annotations, a firing and a silent case
per alert) only read the YAML and always run.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.tools import required_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = REPO_ROOT / "deploy" / "rules"
TESTS_DIR = RULES_DIR / "tests"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*_test.yml"))
GROUPS = ("serving", "pipeline", "data", "model", "infrastructure")
SEVERITIES = frozenset({"info", "medium", "high"})
PROMTOOL_TIMEOUT_S = 120


def _load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        doc = yaml.safe_load(f)
    assert isinstance(doc, dict), f"{path.name}: not a YAML mapping"
    return doc


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in _load(path).get("groups") or [] for rule in group.get("rules") or []]


def _alerts(path: Path) -> list[dict[str, Any]]:
    return [rule for rule in _rules(path) if "alert" in rule]


def _alert_cases(path: Path) -> list[dict[str, Any]]:
    """Every alert_rule_test entry of a promtool test file, over all its tests."""
    return [case for test in _load(path).get("tests") or [] for case in test.get("alert_rule_test") or []]


@pytest.fixture(scope="module")
def promtool() -> str:
    return required_tool("promtool", "Debian: apt-get install prometheus")


def _run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=PROMTOOL_TIMEOUT_S,
        check=False,
    )


def _report(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_every_group_has_a_rule_file_and_a_test_file() -> None:
    assert sorted(p.stem for p in RULE_FILES) == sorted(GROUPS)
    assert sorted(p.name for p in TEST_FILES) == sorted(f"{g}_test.yml" for g in GROUPS)


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(promtool: str, rule_file: Path) -> None:
    proc = _run(promtool, "check", "rules", str(rule_file.relative_to(REPO_ROOT)))
    assert proc.returncode == 0, _report(proc)


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(promtool: str, test_file: Path) -> None:
    proc = _run(promtool, "test", "rules", str(test_file.relative_to(REPO_ROOT)))
    assert proc.returncode == 0, _report(proc)


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_rule_labels_and_annotations(rule_file: Path) -> None:
    alerts = _alerts(rule_file)
    assert alerts, f"{rule_file.name}: no alerting rules"
    names = [rule["alert"] for rule in alerts]
    assert len(names) == len(set(names)), f"{rule_file.name}: duplicate alert names"
    for rule in alerts:
        name = rule["alert"]
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert labels.get("severity") in SEVERITIES, f"{name}: severity {labels.get('severity')!r}"
        assert labels.get("area") == rule_file.stem, f"{name}: area {labels.get('area')!r}"
        assert str(annotations.get("summary") or "").strip(), f"{name}: empty summary"
        assert annotations.get("runbook") == f"docs/OPERATIONS.md#{name.lower()}", f"{name}: runbook"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_every_alert_has_a_firing_and_a_silent_case(rule_file: Path) -> None:
    test_file = TESTS_DIR / f"{rule_file.stem}_test.yml"
    assert test_file.is_file(), f"{rule_file.name}: no test file {test_file.relative_to(REPO_ROOT)}"
    assert f"../{rule_file.name}" in (_load(test_file).get("rule_files") or []), f"{test_file.name}: rule_files"
    alerts = {rule["alert"]: rule for rule in _alerts(rule_file)}
    cases = _alert_cases(test_file)
    unknown = {case.get("alertname") for case in cases} - set(alerts)
    assert not unknown, f"{test_file.name}: cases for alerts not in {rule_file.name}: {sorted(unknown)}"
    text = test_file.read_text()
    for name, rule in alerts.items():
        assert text.count(name) >= 2, f"{name}: named fewer than twice in {test_file.name}"
        own = [case for case in cases if case.get("alertname") == name]
        firing = [case for case in own if case.get("exp_alerts")]
        silent = [case for case in own if case.get("exp_alerts") == []]
        assert firing, f"{name}: no case in {test_file.name} where it fires"
        assert silent, f"{name}: no case in {test_file.name} with exp_alerts: []"
        for case in firing:
            for exp in case["exp_alerts"]:
                exp_labels = exp.get("exp_labels") or {}
                exp_annotations = exp.get("exp_annotations") or {}
                where = f"{test_file.name}: {name} at {case.get('eval_time')}"
                assert exp_labels.get("severity") == rule["labels"]["severity"], f"{where}: exp_labels severity"
                assert exp_labels.get("area") == rule["labels"]["area"], f"{where}: exp_labels area"
                assert exp_annotations.get("summary"), f"{where}: exp_annotations summary"
                assert exp_annotations.get("runbook") == rule["annotations"]["runbook"], f"{where}: runbook"
