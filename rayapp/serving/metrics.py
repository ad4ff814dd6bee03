"""Prometheus metrics of the serving app (prometheus-client, one registry per app instance).

A registry per app (not the global default) keeps two apps in one process — tests, the benchmark's
baseline — from colliding, and keeps /metrics to what this app measures. Labels are bounded: the
endpoint label is the route template (`/explain/{prediction_id}`), never the raw path.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from rayapp.serving.ops_metrics import OpsCollector

# What became of a logged champion forecast's shadow scoring (rayapp_shadow_predictions_total).
SHADOW_OUTCOMES = ("logged", "duplicate", "no_shadow", "no_features", "dropped", "error")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class PipelineCollector:
    """The scheduler's metrics, from the run history in PostgreSQL (`pipeline_runs`) as read at
    scrape time: they survive scheduler restarts and agree with `rayapp schedule runs`."""

    def __init__(self) -> None:
        self.snapshot: dict[str, Any] = {}

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        from rayapp.warehouse.pipeline import DURATION_BUCKETS

        snap = self.snapshot
        if not snap:
            return
        runs = CounterMetricFamily(
            "rayapp_pipeline_runs",
            "Scheduled slots and runs recorded, by job and status",
            labels=["pipeline_job", "status"],
        )
        for job, status, n in snap.get("runs", []):
            runs.add_metric([job, status], n)
        yield runs
        last = GaugeMetricFamily(
            "rayapp_pipeline_last_success_timestamp_seconds",
            "Wall time (Unix seconds) the job last finished successfully",
            labels=["pipeline_job"],
        )
        for job, t in snap.get("last_success", {}).items():
            last.add_metric([job], t)
        yield last
        running = GaugeMetricFamily("rayapp_pipeline_running", "Runs in flight", labels=["pipeline_job"])
        for job, n in snap.get("running", {}).items():
            running.add_metric([job], n)
        yield running
        hist = HistogramMetricFamily(
            "rayapp_pipeline_run_duration_seconds",
            "Wall seconds from a run's last start to its end",
            labels=["pipeline_job"],
        )
        for job, d in snap.get("durations", {}).items():
            buckets = [(str(b), float(c)) for b, c in zip(DURATION_BUCKETS, d["buckets"], strict=True)]
            buckets.append(("+Inf", float(d["count"])))
            hist.add_metric([job], buckets, sum_value=d["sum"])
        yield hist


class ServingMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "rayapp_http_requests_total",
            "HTTP requests by endpoint and status",
            ["method", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rayapp_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "rayapp_predictions_total", "Predictions served", ["symbol", "direction", "source"], registry=r
        )
        self.p_up = Histogram(
            "rayapp_prediction_p_up",
            "Calibrated P(up) of served predictions",
            buckets=[i / 20 for i in range(1, 20)],
            registry=r,
        )
        self.expected_return = Histogram(
            "rayapp_prediction_expected_return",
            "Expected h-hour log return of served predictions",
            buckets=(-0.02, -0.01, -0.005, -0.002, -0.001, 0, 0.001, 0.002, 0.005, 0.01, 0.02),
            registry=r,
        )
        self.model = Info("rayapp_model", "The model version being served", registry=r)
        self.model_swaps = Gauge("rayapp_model_swaps", "Champion hot swaps seen by the predictor", registry=r)
        self.staleness = Gauge(
            "rayapp_feature_staleness_seconds",
            "Age of the feature vector used by the last prediction",
            ["symbol"],
            registry=r,
        )
        self.fallbacks = Counter(
            "rayapp_feature_fallback_total", "Lookups answered by the offline store", ["reason"], registry=r
        )
        self.ws_clients = Gauge("rayapp_websocket_clients", "Connected WebSocket clients", ["channel"], registry=r)
        self.pushes = Counter(
            "rayapp_websocket_messages_total", "WebSocket messages sent", ["channel", "type"], registry=r
        )
        self.outcomes = Counter("rayapp_outcomes_resolved_total", "Predictions whose outcome was filled", registry=r)
        self.log_failures = Counter(
            "rayapp_prediction_log_failures_total",
            "Predictions served but not written to the predictions table",
            registry=r,
        )
        self.upstream_retries = Counter(
            "rayapp_upstream_retries_total", "Deployment calls retried after a lost replica", ["deployment"], registry=r
        )
        self.cache = Counter(
            "rayapp_prediction_cache_total",
            "Predictions answered from the (model version, vector) cache or computed",
            ["result"],
            registry=r,
        )
        for ch in ("predictions", "metrics"):
            self.ws_clients.labels(ch).set(0)
        # series exist at 0 from the start: a first increase is one rate() and the rules see
        for name in ("FeatureLookup", "Predictor", "Explainer", "ShadowPredictor"):
            self.upstream_retries.labels(name)
        for result in ("hit", "miss"):
            self.cache.labels(result)
        self.shadow = Counter(
            "rayapp_shadow_predictions_total",
            "Logged champion forecasts and what became of their shadow scoring: logged, duplicate (the "
            "version had this hour already), no_shadow (no version carries the alias), no_features (none "
            "of the shadow's feature set for the hour), dropped (too many in flight), error",
            ["outcome"],
            registry=r,
        )
        for outcome in SHADOW_OUTCOMES:
            self.shadow.labels(outcome)
        self.shadow_pending = Gauge("rayapp_shadow_pending", "Shadow scorings in flight", registry=r)
        self.shadow_loaded = Gauge(
            "rayapp_shadow_model_loaded", "1 while a version carrying the shadow alias is loaded", registry=r
        )
        self.shadow_model = Info("rayapp_shadow_model", "The version scoring in shadow (none: idle)", registry=r)
        self.shadow_model.info({"version": "none"})
        self.pipeline = PipelineCollector()
        r.register(self.pipeline)
        self.pipeline_scrape_errors = Counter(
            "rayapp_pipeline_metrics_errors_total", "Scrapes whose run history could not be read", registry=r
        )
        self.ops = OpsCollector()  # stores, pipeline, data, lifecycle, Serve replicas (read at scrape)
        r.register(self.ops)
        self.alerts_received = Counter(
            "rayapp_alerts_received_total", "Alerts received by the webhook, by status", ["status"], registry=r
        )
        for status in ("firing", "resolved"):
            self.alerts_received.labels(status)

    def set_pipeline(self, snapshot: dict[str, Any]) -> None:
        self.pipeline.snapshot = snapshot

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def set_model(self, info: dict[str, Any]) -> None:
        if info.get("loaded"):
            self.model.info(
                {
                    "name": str(info["name"]),
                    "version": str(info["version"]),
                    "feature_set_version": str(info["feature_set_version"]),
                    "horizon_h": str(info["horizon_h"]),
                }
            )
            self.model_swaps.set(float(info.get("swaps", 0)))

    def set_shadow(self, info: dict[str, Any]) -> None:
        loaded = bool(info.get("loaded"))
        self.shadow_loaded.set(1.0 if loaded else 0.0)
        self.shadow_model.info({"version": str(info["version"]) if loaded else "none"})

    def observe_prediction(self, symbol: str, pred: dict[str, Any], source: str, age_s: float | None) -> None:
        self.predictions.labels(symbol, "up" if pred["direction"] == 1 else "down", source).inc()
        self.p_up.observe(pred["p_up"])
        self.expected_return.observe(pred["expected_return"])
        if age_s is not None:
            self.staleness.labels(symbol).set(age_s)

    def snapshot(self) -> dict[str, Any]:
        """A small JSON summary for /ws/metrics (the dashboard's live panel)."""
        out: dict[str, Any] = {"requests": {}, "predictions": 0.0, "ws_clients": {}, "staleness_s": {}}
        for fam in self.registry.collect():
            for s in fam.samples:
                if s.name == "rayapp_http_requests_total":
                    key = f"{s.labels['method']} {s.labels['endpoint']}"
                    out["requests"].setdefault(key, {"count": 0.0, "errors": 0.0})
                    out["requests"][key]["count"] += s.value
                    if s.labels["status"].startswith("5"):
                        out["requests"][key]["errors"] += s.value
                elif s.name == "rayapp_http_request_duration_seconds_sum":
                    key = f"{s.labels['method']} {s.labels['endpoint']}"
                    out["requests"].setdefault(key, {"count": 0.0, "errors": 0.0})["latency_sum_s"] = s.value
                elif s.name == "rayapp_predictions_total":
                    out["predictions"] += s.value
                elif s.name == "rayapp_websocket_clients":
                    out["ws_clients"][s.labels["channel"]] = s.value
                elif s.name == "rayapp_feature_staleness_seconds":
                    out["staleness_s"][s.labels["symbol"]] = s.value
                elif s.name == "rayapp_model_info":
                    out["model"] = dict(s.labels)
        for v in out["requests"].values():
            if v.get("count") and "latency_sum_s" in v:
                v["mean_latency_ms"] = v.pop("latency_sum_s") / v["count"] * 1e3
        return out
