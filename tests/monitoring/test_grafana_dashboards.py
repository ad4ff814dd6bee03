"""The Grafana dashboards and provisioning files in deploy/grafana (fast: no services).

Structure, the datasource they reference, PromQL syntax of every panel query (promtool check rules;
skipped without promtool unless RAYAPP_ALERTING_REQUIRED=1) and the metric names they use against
the serving app's /metrics. Running the queries against a real Prometheus is an integration test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.monitoring.grafana_dashboards import (
    DASHBOARD_DIR,
    DATASOURCE_UID,
    KNOWN_METRICS,
    PROVISIONING_DIR,
    check_structure,
    concrete,
    iter_panels,
    load_dashboards,
    metric_names,
    panel_queries,
    variables,
)
from tests.monitoring.tools import required_tool

UIDS = {
    "rayapp-model": "rayapp · Model performance",
    "rayapp-serving": "rayapp · Serving",
    "rayapp-data": "rayapp · Data and drift",
    "rayapp-pipeline": "rayapp · Pipeline",
}
PANEL_TYPES = {"timeseries", "stat", "table", "bargauge", "gauge", "row", "text"}

DASHBOARDS = load_dashboards()


def _promtool() -> str:
    return required_tool("promtool", "Debian: apt-get install prometheus")


def test_exactly_the_four_dashboards() -> None:
    assert set(DASHBOARDS) == set(UIDS)
    assert {p.stem for p in DASHBOARD_DIR.glob("*.json")} == {"model", "serving", "data", "pipeline"}
    for uid, title in UIDS.items():
        assert DASHBOARDS[uid]["title"] == title


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_dashboard_structure(uid: str) -> None:
    dashboard = DASHBOARDS[uid]
    assert check_structure(dashboard) == []
    assert dashboard["schemaVersion"] == 39
    assert dashboard["tags"] == ["rayapp"]
    assert dashboard["time"] == {"from": "now-6h", "to": "now"}
    assert dashboard["refresh"] == "30s"
    assert dashboard.get("templating", {}).get("list", []) == []
    assert panel_queries(dashboard), "a dashboard without queries"
    for panel in iter_panels(dashboard):
        assert panel.get("type") in PANEL_TYPES, f"panel {panel.get('id')}: type {panel.get('type')!r}"


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_dashboard_layout(uid: str) -> None:
    """Every panel has a gridPos inside the 24-column grid, and no two panels overlap."""
    cells: dict[tuple[int, int], int] = {}
    for panel in DASHBOARDS[uid]["panels"]:
        pos = panel.get("gridPos")
        assert pos and all(isinstance(pos.get(k), int) for k in ("h", "w", "x", "y")), f"panel {panel['id']}"
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, f"panel {panel['id']}"
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["id"])
                assert other == panel["id"], f"panels {other} and {panel['id']} overlap at {(x, y)}"


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_dashboard_links_to_the_other_three(uid: str) -> None:
    urls = {link.get("url") for link in DASHBOARDS[uid].get("links", [])}
    assert urls == {f"/d/{other}" for other in UIDS if other != uid}


def test_datasource_provisioning() -> None:
    config = yaml.safe_load((PROVISIONING_DIR / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    [datasource] = config["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["url"] == "${RAYAPP_PROMETHEUS_URL}"
    referenced = {
        item["datasource"]["uid"]
        for dashboard in DASHBOARDS.values()
        for panel in iter_panels(dashboard)
        for item in [panel, *panel.get("targets", [])]
        if isinstance(item.get("datasource"), dict)
    }
    assert referenced == {datasource["uid"]}


def test_dashboard_provider() -> None:
    config = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "rayapp.yml").read_text(encoding="utf-8"))
    assert config["apiVersion"] == 1
    [provider] = config["providers"]
    assert provider["type"] == "file"
    assert provider["folder"] == "rayapp"
    assert Path(provider["options"]["path"]).is_absolute()


def test_helpers_cover_nested_rows_and_variables() -> None:
    ds = {"type": "prometheus", "uid": DATASOURCE_UID}
    dashboard = {
        "uid": "x",
        "title": "x",
        "schemaVersion": 39,
        "panels": [
            {"id": 1, "type": "row", "title": "r", "collapsed": True, "panels": [
                {"id": 2, "type": "stat", "title": "a", "datasource": ds,
                 "targets": [{"datasource": ds, "expr": "rate(rayapp_x_total[$__rate_interval])"}]},
            ]},
            {"id": 2, "type": "timeseries", "title": "b", "datasource": {"uid": "other"},
             "targets": [{"datasource": ds, "expr": "sum(rayapp_y) by ($job)"}, {"datasource": ds}]},
            {"id": 3, "type": "gauge", "title": "c", "datasource": ds, "targets": []},
        ],
    }  # fmt: skip
    assert panel_queries(dashboard) == [
        (2, "a", "rate(rayapp_x_total[$__rate_interval])"),
        (2, "b", "sum(rayapp_y) by ($job)"),
    ]
    problems = check_structure(dashboard)
    assert any("duplicate panel id" in p for p in problems)
    assert any("'other'" in p for p in problems)
    assert any("no expr" in p for p in problems)
    assert any("unknown template variable" in p and "job" in p for p in problems)
    assert any("panel 3" in p and "no targets" in p for p in problems)
    assert check_structure({"panels": []}) == [
        "dashboard has no uid",
        "dashboard has no title",
        "schemaVersion None is below 36",
    ]
    assert concrete("rate(x[$__rate_interval]) + rate(y[${__interval}])") == "rate(x[1m]) + rate(y[15s])"
    assert variables("a[$__rate_interval] $foo ${bar} [[baz]]") == {"__rate_interval", "foo", "bar", "baz"}
    assert metric_names(
        "histogram_quantile(0.5, rate(rayapp_prediction_p_up_bucket[1m])) / rayapp_http_requests_total"
        ' + rayapp:recorded{job="rayapp-serving"} + rayapp_model_live_ece_count'
    ) == {"rayapp_prediction_p_up", "rayapp_http_requests_total", "rayapp_model_live_ece_count"}


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_queries_parse_as_promql(uid: str, tmp_path: Path) -> None:
    """Each panel query, interval variables substituted, is a valid recording rule expression."""
    promtool = _promtool()
    queries = panel_queries(DASHBOARDS[uid])
    rules = [{"record": f"rayapp:grafana_check:{i}", "expr": concrete(expr)} for i, (_, _, expr) in enumerate(queries)]
    path = tmp_path / "grafana_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": uid, "rules": rules}]}, sort_keys=False), encoding="utf-8")
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    listing = "\n".join(f"  rule {i}: panel {pid} {title!r}: {expr}" for i, (pid, title, expr) in enumerate(queries))
    assert result.returncode == 0, f"promtool check rules failed:\n{result.stdout}{result.stderr}\n{listing}"
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("uid", sorted(UIDS))
def test_queries_use_known_metrics(uid: str) -> None:
    unknown = {
        (pid, title, name)
        for pid, title, expr in panel_queries(DASHBOARDS[uid])
        for name in metric_names(expr)
        if name not in KNOWN_METRICS
    }
    assert not unknown, f"metrics not exposed by the serving app's /metrics: {sorted(unknown)}"
    used = {name for pid, title, expr in panel_queries(DASHBOARDS[uid]) for name in metric_names(expr)}
    assert used, "no rayapp_ metric referenced"


def test_every_metric_is_on_some_dashboard() -> None:
    """The dashboards together chart every metric of the contract."""
    used = {name for d in DASHBOARDS.values() for _, _, expr in panel_queries(d) for name in metric_names(expr)}
    assert KNOWN_METRICS - used == {"rayapp_prediction_expected_return", "rayapp_alerts_received_total"}
