"""Helpers for the Grafana dashboards in deploy/grafana/dashboards (not a test module).

Used by tests/monitoring/test_grafana_dashboards.py (structure, PromQL syntax through promtool,
metric names against the serving app's /metrics) and by the integration test that runs every
panel query against a real Prometheus scraping a running app.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "deploy" / "grafana" / "dashboards"
PROVISIONING_DIR = REPO_ROOT / "deploy" / "grafana" / "provisioning"

DATASOURCE_UID = "rayapp-prometheus"
DATASOURCE_TYPE = "prometheus"
MIN_SCHEMA_VERSION = 36

# Grafana's built-in interval variables, and the concrete values the checks put in their place.
INTERVAL_VARIABLES = {"__rate_interval": "1m", "__interval": "15s"}
# panel types that carry no queries
NO_QUERY_TYPES = frozenset({"row", "text"})

# Metric histograms expose <base>_bucket, <base>_sum and <base>_count; listed by base name.
HISTOGRAMS = frozenset(
    {
        "rayapp_http_request_duration_seconds",
        "rayapp_prediction_p_up",
        "rayapp_prediction_expected_return",
        "rayapp_pipeline_run_duration_seconds",
    }
)

# What GET /metrics of the serving app exposes (issue 16's metrics contract): counters by their
# exposed `_total` name, histograms by base name, everything else as exposed.
KNOWN_METRICS = HISTOGRAMS | frozenset(
    {
        # HTTP and predictions (rayapp/serving/metrics.py)
        "rayapp_http_requests_total",
        "rayapp_predictions_total",
        "rayapp_model_info",
        "rayapp_model_swaps",
        "rayapp_feature_staleness_seconds",
        "rayapp_feature_fallback_total",
        "rayapp_websocket_clients",
        "rayapp_websocket_messages_total",
        "rayapp_outcomes_resolved_total",
        "rayapp_prediction_log_failures_total",
        "rayapp_upstream_retries_total",
        "rayapp_prediction_cache_total",
        "rayapp_shadow_predictions_total",
        "rayapp_shadow_pending",
        "rayapp_shadow_model_loaded",
        "rayapp_shadow_model_info",
        # pipeline run history
        "rayapp_pipeline_runs_total",
        "rayapp_pipeline_last_success_timestamp_seconds",
        "rayapp_pipeline_running",
        "rayapp_pipeline_metrics_errors_total",
        "rayapp_pipeline_job_period_seconds",
        "rayapp_pipeline_success_age_seconds",
        "rayapp_pipeline_last_run_failed",
        "rayapp_pipeline_rows_total",
        # stores and data
        "rayapp_store_up",
        "rayapp_quarantined_rows_total",
        "rayapp_data_age_seconds",
        "rayapp_data_latest_timestamp_seconds",
        "rayapp_data_age_limit_seconds",
        "rayapp_feature_psi",
        "rayapp_drift_checked_timestamp_seconds",
        # model lifecycle
        "rayapp_model_events_total",
        "rayapp_model_gate_refusals_consecutive",
        "rayapp_model_champion_age_seconds",
        "rayapp_model_max_age_seconds",
        "rayapp_model_live_accuracy",
        "rayapp_model_live_log_loss",
        "rayapp_model_live_brier",
        "rayapp_model_live_ece",
        "rayapp_model_live_resolved",
        "rayapp_model_calibration_observed_ratio",
        "rayapp_model_calibration_forecasts",
        # Ray Serve and alerting
        "rayapp_serve_replicas_running",
        "rayapp_serve_replicas_target",
        "rayapp_alerts_received_total",
        "rayapp_alerts_active",
    }
)

# $name, ${name} / ${name:format}, and the deprecated [[name]] / [[name:format]]
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
_METRIC = re.compile(r"(?<![\w:])rayapp_\w+")
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard in DASHBOARD_DIR, by uid."""
    dashboards: dict[str, dict[str, Any]] = {}
    for path in sorted(DASHBOARD_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        uid = dashboard.get("uid") or path.stem
        if uid in dashboards:
            raise ValueError(f"{path.name}: uid {uid!r} is used by another dashboard")
        dashboards[uid] = dashboard
    return dashboards


def iter_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """All panels, rows included, with the panels nested in (collapsed) rows."""
    out: list[dict[str, Any]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            out.append(panel)
            walk(panel.get("panels") or [])

    walk(dashboard.get("panels") or [])
    return out


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(panel id, panel title, expr) for every query target of every panel, nested rows included."""
    return [
        (panel.get("id"), panel.get("title", ""), target["expr"])
        for panel in iter_panels(dashboard)
        for target in panel.get("targets") or []
        if target.get("expr")
    ]


def concrete(expr: str) -> str:
    """The expression with Grafana's interval variables replaced by fixed durations."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return INTERVAL_VARIABLES.get(name, match.group(0))

    return _VARIABLE.sub(replace, expr)


def variables(expr: str) -> set[str]:
    """Names of the template variables ($name, ${name}, [[name]]) an expression uses."""
    return {m.group(1) or m.group(2) or m.group(3) for m in _VARIABLE.finditer(expr)}


def metric_names(expr: str) -> set[str]:
    """rayapp_* metric names an expression references; histogram series by their base name."""
    names = set()
    for name in _METRIC.findall(expr):
        for suffix in _HISTOGRAM_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
                name = name[: -len(suffix)]
                break
        names.add(name)
    return names


def _datasource_problem(where: str, datasource: Any) -> str | None:
    if not isinstance(datasource, dict):
        return f"{where}: datasource {datasource!r} is not {{type: {DATASOURCE_TYPE}, uid: {DATASOURCE_UID}}}"
    if datasource.get("uid") != DATASOURCE_UID:
        return f"{where}: datasource uid {datasource.get('uid')!r} is not {DATASOURCE_UID!r}"
    if datasource.get("type", DATASOURCE_TYPE) != DATASOURCE_TYPE:
        return f"{where}: datasource type {datasource.get('type')!r} is not {DATASOURCE_TYPE!r}"
    return None


def check_structure(dashboard: dict[str, Any]) -> list[str]:
    """Problems with a dashboard's structure; empty when it is fine."""
    problems: list[str] = []
    for key in ("uid", "title"):
        if not dashboard.get(key):
            problems.append(f"dashboard has no {key}")
    schema = dashboard.get("schemaVersion")
    if not isinstance(schema, int) or schema < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion {schema!r} is below {MIN_SCHEMA_VERSION}")

    seen: set[int] = set()
    for panel in iter_panels(dashboard):
        pid = panel.get("id")
        title = panel.get("title", "")
        where = f"panel {pid} ({title!r})"
        if not isinstance(pid, int) or isinstance(pid, bool):
            problems.append(f"{where}: id is not an integer")
        elif pid in seen:
            problems.append(f"{where}: duplicate panel id")
        else:
            seen.add(pid)
        kind = panel.get("type")
        if kind in NO_QUERY_TYPES:
            if "datasource" in panel and panel["datasource"] is not None:
                problem = _datasource_problem(where, panel["datasource"])
                if problem:
                    problems.append(problem)
            continue
        problem = _datasource_problem(where, panel.get("datasource"))
        if problem:
            problems.append(problem)
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for i, target in enumerate(targets):
            twhere = f"{where} target {target.get('refId', i)}"
            problem = _datasource_problem(twhere, target.get("datasource"))
            if problem:
                problems.append(problem)
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{twhere}: no expr")
                continue
            unknown = variables(expr) - INTERVAL_VARIABLES.keys()
            if unknown:
                problems.append(f"{twhere}: unknown template variable(s) {sorted(unknown)}")
    return problems
