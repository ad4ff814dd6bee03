"""The operational metrics of GET /metrics (issue 16): the stores' health, the pipeline, the data,
the model lifecycle and Ray Serve's replicas, read at scrape time.

They come from the stores (PostgreSQL's run history, quarantine, lifecycle events and prediction
log; the FeatureLookup's store probes) and from the Serve controller, so they agree with
`rayapp schedule status`, `GET /freshness` and `GET /models`, survive restarts of any process,
and every replica of the ingress exports the same values. One scrape's reads are reused for
`alerting.metrics_cache_s`. A part that cannot be read is left out of the scrape (never exported
as a stale or made-up value) and counted in rayapp_ops_metrics_errors_total{part}; PostgreSQL
that does not answer is rayapp_store_up{store="postgres"} 0.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.serving.service import PredictionService

log = get_logger(__name__)
PARTS = ("stores", "warehouse", "serve")


def cron_period_s(cron: str, now: datetime, slots: int = 8) -> float:
    """The longest gap between the next `slots` slots of a cron expression (seconds): a job is
    overdue only after its longest regular wait."""
    from croniter import croniter

    it = croniter(cron, now)
    times = [it.get_next(datetime) for _ in range(slots + 1)]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(times))


def _serve_replicas(app_name: str) -> dict[str, tuple[int, int]]:
    """(running, target) replicas per deployment of the Serve application (the controller's view)."""
    from ray.serve._private.common import ReplicaState
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    if client is None:
        raise RuntimeError("Serve is not running")
    details = client.get_serve_details()
    app = (details.get("applications") or {}).get(app_name) or {}
    out = {}
    for name, d in (app.get("deployments") or {}).items():
        running = sum(1 for r in d.get("replicas") or [] if r.get("state") == ReplicaState.RUNNING.value)
        out[name] = (running, int(d.get("target_num_replicas") or 0))
    return out


class OpsCollector:
    """A prometheus-client collector over the newest snapshot (set by `OpsReader.refresh`)."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        s = self.snapshot

        def gauge(name: str, doc: str, labels: list[str], items: Any) -> Any:
            g = GaugeMetricFamily(name, doc, labels=labels)
            for key, value in items:
                g.add_metric(list(key), float(value))
            return g

        def counter(name: str, doc: str, labels: list[str], items: Any) -> Any:
            c = CounterMetricFamily(name, doc, labels=labels)
            for key, value in items:
                c.add_metric(list(key), float(value))
            return c

        if "stores" in s:
            yield gauge(
                "rayapp_store_up",
                "1 when the store answered the FeatureLookup's probe at the last scrape",
                ["store"],
                [((k,), v) for k, v in s["stores"].items()],
            )
        errors = s.get("errors", {})
        yield counter(
            "rayapp_ops_metrics_errors",
            "Scrapes where a part of the operational metrics could not be read",
            ["part"],
            [((p,), errors.get(p, 0)) for p in PARTS],
        )
        if "pipeline" in s:
            p = s["pipeline"]
            yield gauge(
                "rayapp_pipeline_job_period_seconds",
                "Longest wait between two slots of the job's cron (wall seconds; enabled, unpaused jobs)",
                ["pipeline_job"],
                [((j,), v) for j, v in p["period"].items()],
            )
            yield gauge(
                "rayapp_pipeline_success_age_seconds",
                "Wall seconds since the job last succeeded (since its first run when it never has)",
                ["pipeline_job"],
                [((j,), v) for j, v in p["success_age"].items()],
            )
            yield gauge(
                "rayapp_pipeline_last_run_failed",
                "1 when the job's newest finished run failed or timed out (after its retries)",
                ["pipeline_job"],
                [((j,), v) for j, v in p["last_failed"].items()],
            )
            yield counter(
                "rayapp_pipeline_rows",
                "Rows the job's runs read, wrote and quarantined",
                ["pipeline_job", "kind"],
                [
                    ((j, kind), v)
                    for j, rows in p["rows"].items()
                    for kind, v in zip(("read", "written", "quarantined"), rows, strict=True)
                ],
            )
        if "quarantine" in s:
            yield counter(
                "rayapp_quarantined_rows",
                "Rows held in the quarantine table, by source (every enabled source, 0 when none)",
                ["source"],
                [((src,), n) for src, n in s["quarantine"].items()],
            )
        if "data" in s:
            yield gauge(
                "rayapp_data_age_seconds",
                "Age of the newest row per dataset and source on the system clock (market time in a replay)",
                ["dataset", "source"],
                [((d, src), age) for d, src, age, _ in s["data"] if age is not None],
            )
            yield gauge(
                "rayapp_data_latest_timestamp_seconds",
                "Time (Unix seconds) of the newest row per dataset and source",
                ["dataset", "source"],
                [((d, src), ts) for d, src, _, ts in s["data"] if ts is not None],
            )
            yield gauge(
                "rayapp_data_age_limit_seconds",
                "The staleness limit per dataset (alerting.staleness_s)",
                ["dataset"],
                [((d,), v) for d, v in s["data_limits"].items()],
            )
        if s.get("drift"):
            yield gauge(
                "rayapp_feature_psi",
                "PSI of each served feature against the champion's training window (newest drift job run)",
                ["symbol", "feature"],
                [((sym, f), v) for sym, f, v in s["drift"]["psi"] if v == v],
            )
            yield gauge(
                "rayapp_drift_checked_timestamp_seconds",
                "When (Unix seconds) the newest successful drift job finished",
                [],
                [((), s["drift"]["checked_at"])],
            )
        if "events" in s:
            ev = s["events"]
            yield counter(
                "rayapp_model_events",
                "Lifecycle events (model_events) by kind, and trigger name for triggers",
                ["kind", "trigger"],
                [(k, n) for k, n in ev["counts"].items()],
            )
            yield gauge(
                "rayapp_model_gate_refusals_consecutive",
                "Gate decisions in a row, newest first, that refused the challenger",
                [],
                [((), ev["gate_refusals_consecutive"])],
            )
        if "live" in s:
            for metric, key, doc in (
                ("accuracy", "accuracy", "directional accuracy"),
                ("log_loss", "log_loss", "log loss of P(up)"),
                ("brier", "brier", "Brier score of P(up)"),
                ("ece", "ece", "expected calibration error of P(up) (10 bins)"),
                ("resolved", "resolved", "resolved forecasts the live metrics cover"),
            ):
                yield gauge(
                    f"rayapp_model_live_{metric}",
                    f"Live {doc} per version and role over its newest resolved forecasts (alerting.live_window)",
                    ["version", "role"],
                    [((r["version"], r["role"]), r[key]) for r in s["live"]],
                )
            current = [r for r in s["live"] if r["version"] == s.get("versions", {}).get(r["role"])]
            yield gauge(
                "rayapp_model_calibration_observed_ratio",
                "Observed frequency of up moves per bin of predicted P(up) (the served champion and shadow)",
                ["role", "bin"],
                [((r["role"], b["bin"]), b["observed"]) for r in current for b in r["bins"]],
            )
            yield gauge(
                "rayapp_model_calibration_forecasts",
                "Resolved forecasts per bin of predicted P(up) (the served champion and shadow)",
                ["role", "bin"],
                [((r["role"], b["bin"]), b["n"]) for r in current for b in r["bins"]],
            )
        if "intervals" in s:
            iv = s["intervals"]
            labels = ["role", "version", "horizon_h", "level"]

            def per_state(value: Any) -> list[Any]:
                return [
                    ((r["role"], r["version"], str(r["horizon_h"]), f"{r['level']:g}"), value(r))
                    for r in iv["states"]
                    if value(r) is not None
                ]

            yield gauge(
                "rayapp_interval_coverage",
                "Live running coverage of the served version's resolved forecasts at each nominal level "
                "(covered / resolved; the shared ACI state)",
                labels,
                per_state(lambda r: r["covered"] / r["resolved"] if r["resolved"] else None),
            )
            yield gauge(
                "rayapp_interval_coverage_nominal",
                "The nominal coverage of each served level (the level label as a value)",
                labels,
                per_state(lambda r: r["level"]),
            )
            yield gauge(
                "rayapp_interval_resolved",
                "Resolved forecasts the live coverage counts",
                labels,
                per_state(lambda r: r["resolved"]),
            )
            yield gauge(
                "rayapp_interval_alpha",
                "The miscoverage alpha_t adaptive conformal inference serves each level at now (nominal: 1 - level)",
                labels,
                per_state(lambda r: r["alpha_t"]),
            )
            yield gauge(
                "rayapp_interval_coverage_margin",
                "lifecycle.coverage.margin: live coverage this far below nominal is undercoverage",
                [],
                [((), iv["margin"])],
            )
            yield gauge(
                "rayapp_interval_coverage_min_resolved",
                "lifecycle.coverage.min_resolved: fewer resolved forecasts than this are not judged",
                [],
                [((), iv["min_resolved"])],
            )
        if "champion_age_s" in s:
            yield gauge(
                "rayapp_model_champion_age_seconds",
                "Seconds on the system clock since the end of the champion's training data",
                [],
                [((), s["champion_age_s"])],
            )
        if s.get("max_age_s") is not None:
            yield gauge("rayapp_model_max_age_seconds", "lifecycle.max_age_h in seconds", [], [((), s["max_age_s"])])
        if "replicas" in s:
            yield gauge(
                "rayapp_serve_replicas_running",
                "Replicas in state RUNNING per Serve deployment",
                ["deployment"],
                [((d,), v[0]) for d, v in s["replicas"].items()],
            )
            yield gauge(
                "rayapp_serve_replicas_target",
                "Target replicas per Serve deployment (the controller's)",
                ["deployment"],
                [((d,), v[1]) for d, v in s["replicas"].items()],
            )
        if "alerts" in s:
            yield gauge(
                "rayapp_alerts_active",
                "Firing alerts in the in-app feed, by severity",
                ["severity"],
                [((k,), v) for k, v in s["alerts"].items()],
            )


class OpsReader:
    """Reads the snapshot for `OpsCollector` (at most once per `alerting.metrics_cache_s`)."""

    def __init__(self, settings: Settings, service: PredictionService, collector: OpsCollector) -> None:
        self.settings = settings
        self.service = service
        self.collector = collector
        self.errors = dict.fromkeys(PARTS, 0)
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._at < self.settings.alerting.metrics_cache_s and self.collector.snapshot:
                return
            snap: dict[str, Any] = {}
            await asyncio.gather(self._stores(snap), self._warehouse(snap), self._serve(snap))
            snap["errors"] = dict(self.errors)
            self.collector.snapshot = snap
            self._at = time.monotonic()

    def _failed(self, part: str, exc: BaseException) -> None:
        self.errors[part] += 1
        log.warning("ops metrics part not read", part=part, error=type(exc).__name__)

    async def _stores(self, snap: dict[str, Any]) -> None:
        try:
            h = await asyncio.wait_for(self.service.call("FeatureLookup", self.service.lookup, "health"), 10)
            snap["stores"] = {"redis": 1.0 if h["redis"] else 0.0, "postgres": 1.0 if h["postgres"] else 0.0}
        except Exception as exc:
            self._failed("stores", exc)

    async def _warehouse(self, snap: dict[str, Any]) -> None:
        from rayapp.serving import market
        from rayapp.warehouse import alerts, ops_metrics

        s, service = self.settings, self.service
        name = s.mlflow.registered_model
        now, _clock = await asyncio.to_thread(service.clock_now)

        def read(conn: Any) -> dict[str, Any]:
            return {
                **ops_metrics.ops_snapshot(
                    conn, model_name=name, window=s.alerting.live_window, sources=list(s.sources.enabled)
                ),
                "freshness": market.freshness(conn, now),
                "alerts": alerts.active_counts(conn),
            }

        try:
            raw = await asyncio.wait_for(service.db(read), 10)
        except Exception as exc:
            self._failed("warehouse", exc)
            if "stores" in snap:  # the lookup's probe may have a pool that still answers
                snap["stores"]["postgres"] = 0.0
            return
        wall = datetime.now(UTC)
        snap["pipeline"] = self._pipeline(raw["pipeline"]["jobs"], wall)
        snap["quarantine"] = raw["quarantine"]
        snap["drift"] = raw["drift"]
        snap["events"] = raw["events"]
        snap["live"] = raw["live"]
        snap["alerts"] = raw["alerts"]
        snap["data"] = [
            (
                i["dataset"],
                i["source"],
                i["age_s"],
                i["latest"].timestamp() if i["latest"] is not None else None,
            )
            for i in raw["freshness"]["items"]
        ]
        snap["data_limits"] = dict(s.alerting.staleness_s)
        meta = service.meta or {}
        shadow = service.shadow_meta or {}
        snap["versions"] = {
            "champion": str(meta.get("version")) if meta.get("loaded") else None,
            "shadow": str(shadow.get("version")) if shadow.get("loaded") else None,
        }
        served = {v: role for role, v in snap["versions"].items() if v is not None}
        cov = s.lifecycle.coverage
        snap["intervals"] = {
            "states": [{**r, "role": served[r["version"]]} for r in raw.get("intervals", []) if r["version"] in served],
            "margin": cov.margin,
            "min_resolved": cov.min_resolved,
        }
        end = (meta.get("data_range") or [None, None])[-1] if meta.get("loaded") else None
        if end:
            ts = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
            ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
            snap["champion_age_s"] = max(0.0, (now - ts).total_seconds())
        max_age = s.lifecycle.max_age_h
        snap["max_age_s"] = None if max_age is None else max_age * 3600.0

    def _pipeline(self, jobs: list[dict[str, Any]], wall: datetime) -> dict[str, Any]:
        speed = self.settings.replay.speed
        period, success_age, failed, rows = {}, {}, {}, {}
        ok = self.collector_last_success()
        for j in jobs:
            name = j["job"]
            rows[name] = j["rows"]
            failed[name] = 1.0 if j["last_failed"] else 0.0
            if not j["enabled"] or j["paused"]:
                continue
            try:
                p = cron_period_s(j["cron"], wall)
            except Exception:
                continue
            if j["clock"] == "replay" and speed > 0:
                p /= speed  # cron slots on the market clock: wall seconds between them
            period[name] = p
            since = ok.get(name) or j["first_run"]
            if since is not None:
                success_age[name] = max(0.0, wall.timestamp() - since)
        return {"period": period, "success_age": success_age, "last_failed": failed, "rows": rows}

    def collector_last_success(self) -> dict[str, float]:
        """Each job's last success (Unix seconds), from the pipeline collector's newest read."""
        return dict(self.service.metrics.pipeline.snapshot.get("last_success", {}))

    async def _serve(self, snap: dict[str, Any]) -> None:
        try:
            snap["replicas"] = await asyncio.wait_for(
                asyncio.to_thread(_serve_replicas, self.settings.serving.app_name), 10
            )
        except Exception as exc:
            self._failed("serve", exc)
