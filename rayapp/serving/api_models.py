"""Pydantic models at the HTTP edge: requests are validated field by field (422 with the field's
path and message), responses are typed so /openapi.json documents exactly what clients get."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, StrictBool, field_validator

# Request fields are strict: a JSON string, number or boolean is taken only as itself (no "yes"
# for true, no true for 1.0, no "1.5" for a number). The served symbols are listed as an enum in
# the OpenAPI document (hardening.refine_openapi), the feature ranges there too.
Symbol = Annotated[
    str,
    Strict(),
    Field(pattern=r"^[A-Z0-9]{2,20}$", examples=["BTCUSDT"], description="trading pair, upper case, e.g. BTCUSDT"),
]
FeatureValue = Annotated[float, Strict(), Field(allow_inf_nan=False)]

_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?", re.IGNORECASE
)


def _iso_only(value: Any) -> Any:
    """A date-time query parameter is an ISO 8601 / RFC 3339 string, never a number: pydantic
    alone takes `0.5` for half a second after the Unix epoch."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("must be an ISO 8601 date-time, e.g. 2024-01-01T00:00:00Z")


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PredictRequest(_Strict):
    symbol: Symbol
    features: dict[Annotated[str, Field(min_length=1, max_length=64)], FeatureValue | None] | None = Field(
        None,
        max_length=256,
        description="explicit feature vector by name (null = missing). Every model feature must be "
        "present; omitted: the latest vector from the feature store is used and logged.",
    )
    explain: StrictBool = Field(True, description="compute the SHAP explanation")


class Factor(BaseModel):
    feature: str
    contribution: float
    value: float | None


class Explanation(BaseModel):
    method: Literal["pred_contribs", "tree_explainer"]
    model_version: str
    units: str = "log-odds"
    base_value: float
    margin: float
    contributions: dict[str, float]
    top_positive: list[Factor]
    top_negative: list[Factor]
    text: str


INTERVAL_METHOD = (
    "how the interval was made: cqr_vol / cqr_quantile (the interval model, conformalized), with _aci "
    "once adaptive conformal inference moves its level (resolved forecasts exist), or "
    "constant_conformal_legacy (a model bundle from before the interval model: one constant-width band)"
)


class Interval(BaseModel):
    """The interval at the nominal level lifecycle.coverage.level (90 %): the one the prediction
    log's interval_low/high hold and the lifecycle's coverage trigger watches."""

    level: float | None = Field(None, description="nominal coverage (null: logged before it was recorded)")
    method: str | None = Field(None, description=INTERVAL_METHOD, examples=["cqr_vol_aci"])
    low: float | None = Field(description="h-hour log return")
    high: float | None = Field(description="h-hour log return")
    price_low: float | None = Field(None, description="close at the feature hour times exp(low)")
    price_high: float | None = Field(None, description="close at the feature hour times exp(high)")
    alpha_t: float | None = Field(None, description="the miscoverage ACI uses now (null: nominal, or legacy)")
    coverage: float | None = Field(
        None,
        description="live running coverage of this version's resolved forecasts at this level (covered / "
        "resolved); null until one has resolved. For a logged forecast: as it was when served",
    )
    resolved: int | None = Field(None, description="resolved forecasts the coverage counts")
    missing: list[str] = Field(
        default_factory=list,
        description="interval-model inputs that could not be computed (realised volatility without 169 "
        "hourly closes up to the feature hour, or a what-if vector): served as missing values",
    )


class IntervalBand(BaseModel):
    level: float = Field(description="nominal coverage, e.g. 0.5, 0.8, 0.9")
    low: float = Field(description="h-hour log return")
    high: float = Field(description="h-hour log return")
    price_low: float | None = None
    price_high: float | None = None
    alpha_t: float | None = Field(None, description="ACI miscoverage in use (null: the nominal CQR correction)")
    coverage: float | None = Field(None, description="live running coverage at this level (null: none resolved)")
    resolved: int | None = None


class QuantilePoint(BaseModel):
    p: float = Field(description="probability level, e.g. 0.05")
    log_return: float = Field(description="quantile of the h-hour log return")
    price: float | None = Field(None, description="close at the feature hour times exp(log_return)")


class FeatureSource(BaseModel):
    source: Literal["online", "offline", "request"]
    fallback: bool = Field(description="true when the offline store answered instead of Redis")
    reason: str | None = None
    stale: bool
    age_s: float | None


class Prediction(BaseModel):
    prediction_id: str | None = Field(description="null for an explicit (what-if) vector, which is not logged")
    symbol: str
    ts: str | None = Field(description="the feature hour (UTC) the forecast is for")
    as_of: str | None = Field(
        None, description="the feature hour (UTC) whose data the forecast used (null for an explicit vector)"
    )
    data_age_s: float | None = Field(
        None,
        description="seconds from as_of to now on the system clock (wall time with live sources, the "
        "replay's market clock in replay mode) when the forecast was served",
    )
    stale: bool = Field(
        False,
        description="data_age_s was past serving.feature_staleness_s when served: the sources were not "
        "feeding the stores; never take a stale forecast for a live one",
    )
    data_age_now_s: float | None = Field(
        None, description="how old the forecast's data is at the time of this answer (same clock)"
    )
    stale_now: bool | None = Field(
        None,
        description="data_age_now_s is past serving.feature_staleness_s: true for the newest forecast "
        "means no fresh data is arriving (null where not computed)",
    )
    horizon_h: int
    expected_return: float = Field(description="expected log return over the horizon")
    direction: Literal[-1, 1]
    direction_label: Literal["up", "down"]
    p_up: float = Field(ge=0, le=1, description="calibrated probability of an up move")
    interval: Interval
    intervals: list[IntervalBand] = Field(
        default_factory=list, description="every served level, nested (a higher level is never narrower)"
    )
    quantiles: list[QuantilePoint] | None = Field(
        None, description="quantiles of the h-hour log return (null: a legacy bundle without an interval model)"
    )
    volatility: float | None = Field(
        None, description="standard deviation of the h-hour log return (null: legacy bundle)"
    )
    model_name: str
    model_version: str
    feature_set_version: str
    features: dict[str, float | None]
    explanation: Explanation | None = None
    created_at: str | None = None
    feature_source: FeatureSource | None = None
    degraded: bool = Field(False, description="served from a fallback store or from stale data")
    logged: bool = Field(False, description="written to the predictions table")
    realized_return: float | None = None
    realized_direction: int | None = None
    resolved_at: str | None = None


class PredictionList(BaseModel):
    count: int
    items: list[Prediction]


class Health(BaseModel):
    status: Literal["ok"]


class DataFreshness(BaseModel):
    symbol: str
    as_of: str | None = Field(description="the newest feature hour (UTC) in the stores")
    data_age_s: float | None = Field(description="seconds from as_of to now on the system clock")
    stale: bool = Field(description="past serving.feature_staleness_s, or no feature vector at all")


class Ready(BaseModel):
    ready: bool = Field(
        description="serving, and with live sources serving live data: false (HTTP 503) with stale "
        "features under live sources, so load balancers stop routing to it"
    )
    live_data: bool = Field(False, description="live sources and fresh features: the forecasts are live")
    sources: Literal["live", "replay"] = "live"
    reason: str | None = Field(None, description="why not ready, or why not live data, in words")
    model_loaded: bool
    model_version: str | None
    redis: bool
    postgres: bool
    data: list[DataFreshness] = Field(default_factory=list, description="the newest features per served symbol")
    detail: dict[str, Any] = Field(default_factory=dict)


class ModelInfo(BaseModel):
    loaded: bool
    name: str | None = None
    version: str | None = None
    run_id: str | None = None
    feature_set_version: str | None = None
    feature_names: list[str] = Field(default_factory=list)
    horizon_h: int | None = None
    cv_metrics: dict[str, Any] = Field(default_factory=dict)
    baselines: dict[str, Any] = Field(default_factory=dict)
    gate: dict[str, Any] = Field(default_factory=dict)
    data_range: list[str] = Field(default_factory=list)
    calibration: str | None = None
    conformal_alpha: float | None = None
    explainer: dict[str, Any] | None = None
    swaps: int = 0
    last_error: str | None = None


class Report(BaseModel):
    model_version: str | None
    run_id: str | None
    reports: dict[str, Any] = Field(description="training/ablation JSON reports by name")


class LevelCoverage(BaseModel):
    level: float = Field(description="nominal coverage")
    resolved: int
    covered: int
    coverage: float = Field(description="covered / resolved")
    coverage_ci95: list[float | None] = Field(description="Wilson score interval, 95%")
    methods: list[str] = Field(description="interval methods of the forecasts counted")


class TrackRecord(BaseModel):
    symbol: str
    horizon_h: int | None
    model_version: str | None
    resolved: int
    pending: int
    hits: int
    accuracy: float | None
    accuracy_ci95: list[float | None] = Field(description="Wilson score interval, 95%")
    cumulative_return: float | None = Field(description="long/short on the predicted direction")
    buy_and_hold_return: float | None
    overlapping: bool
    series: list[dict[str, Any]]
    coverage: list[LevelCoverage] = Field(
        default_factory=list, description="live interval coverage per nominal level of the resolved forecasts"
    )


class AdminResult(BaseModel):
    action: str
    result: dict[str, Any]


class ErrorBody(BaseModel):
    detail: Any
    error_id: str | None = Field(
        None, description="identifies this error in the server log (every error response has one; also X-Error-Id)"
    )


class PricePoint(BaseModel):
    ts: datetime
    close: float


class PriceSeries(BaseModel):
    symbol: str
    source: str | None = Field(description="candle source the series comes from (the feature build's choice)")
    items: list[PricePoint]


class SourceFreshness(BaseModel):
    source: str
    dataset: str
    latest: datetime | None
    age_s: float | None


class ClockInfo(BaseModel):
    id: str = Field(description='"wall", or "replay:<session>" for the replay server\'s market clock')
    kind: Literal["wall", "market"]
    speed: float = Field(description="clock seconds per wall second (1 for wall time)")


class Freshness(BaseModel):
    checked_at: datetime = Field(description="now on the system clock (market time during a replay)")
    clock: ClockInfo | None = None
    items: list[SourceFreshness]


PipelineStatus = Literal[
    "running", "retrying", "succeeded", "partial", "failed", "timed_out", "cancelled", "skipped", "missed"
]


class PipelineRun(BaseModel):
    run_id: int
    job: str
    clock: str
    slot: datetime = Field(description="the cron slot on the scheduler's clock (market time in replay mode)")
    trigger: Literal["schedule", "manual"]
    status: PipelineStatus
    attempt: int
    max_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    lateness_ms: float | None = Field(description="wall ms from the slot's time to the run's start")
    retry_at: datetime | None
    rows_read: int
    rows_written: int
    rows_quarantined: int
    stats: dict[str, Any] = Field(description="per stage / per source counts and errors")
    error: str | None
    runner: str | None
    recorded_at: datetime


class PipelineJob(BaseModel):
    job: str
    cron: str
    enabled: bool
    paused: bool
    clock: str
    next_slot: datetime | None
    timeout_s: float | None
    heartbeat_at: datetime | None
    last_run: PipelineRun | None = Field(description="the newest run that ran (skipped and missed slots aside)")
    last_success: PipelineRun | None
    last_success_age_s: float | None = Field(description="clock seconds since the last successful run's slot")
    counts: dict[str, int] = Field(description="runs recorded per status")


class SchedulerInfo(BaseModel):
    alive: bool = Field(description="its heartbeat is recent (it writes one every 5 s)")
    heartbeat_at: datetime | None


class Pipeline(BaseModel):
    checked_at: datetime = Field(description="now on the scheduler's clock")
    clock: ClockInfo
    scheduler: SchedulerInfo
    jobs: list[PipelineJob]


class PipelineRuns(BaseModel):
    items: list[PipelineRun]


class RegisteredVersion(BaseModel):
    version: str
    run_id: str | None
    status: str | None = Field(None, description="MLflow status (READY once registered)")
    created_at: datetime | None
    last_updated_at: datetime | None = None
    aliases: list[str] = Field(description="the aliases pointing at this version (champion, challenger, shadow)")
    tags: dict[str, str] = Field(description="version tags: feature set, horizon, gate / shadow / promotion decisions")
    description: str | None = None


class VersionLiveStats(BaseModel):
    version: str
    role: Literal["champion", "shadow"]
    served: int = Field(description="forecasts logged in this role")
    resolved: int = Field(description="of which the outcome is known")
    accuracy: float | None = Field(description="directional accuracy of the resolved forecasts")
    log_loss: float | None = Field(description="mean log loss of P(up) on the resolved forecasts")
    first_ts: datetime | None
    last_ts: datetime | None


class ModelEvent(BaseModel):
    event_id: int
    at: datetime = Field(description="wall time the event was written")
    clock_ts: datetime = Field(description="on the scheduler's clock (market time in replay mode)")
    model_name: str
    kind: str = Field(description="trigger, suppressed, retrain, gate, shadow_start, shadow_verdict, promotion, ...")
    trigger: str | None
    version: str | None
    other_version: str | None = Field(description="the champion it was compared with or replaced")
    decision: str | None
    p_value: float | None
    evidence: dict[str, Any]
    pipeline_run: int | None


class LifecycleState(BaseModel):
    model_name: str
    shadow_version: str | None
    shadow_role: Literal["challenger", "watch"] | None
    shadow_since: datetime | None
    last_retrain_at: datetime | None
    retrain_running: bool


class ModelsLifecycle(BaseModel):
    available: bool = Field(description="false when PostgreSQL could not be read (the registry part still answers)")
    error: str | None = None
    state: LifecycleState | None = None
    live: list[VersionLiveStats] = Field(default_factory=list, description="live scores per version and role")
    latest_comparison: ModelEvent | None = Field(None, description="the newest shadow or watch verdict")
    events: list[ModelEvent] = Field(default_factory=list, description="the last 50 lifecycle events, oldest first")


class ServedModel(BaseModel):
    loaded: bool
    version: str | None = None
    feature_set_version: str | None = None
    last_error: str | None = None


class ModelsServing(BaseModel):
    champion: ServedModel
    shadow: ServedModel | None = Field(description="the ShadowPredictor's model (null: no shadow deployment)")


class Models(BaseModel):
    name: str = Field(description="the registered model")
    registered: bool
    aliases: dict[str, str | None] = Field(description="alias -> version (champion, challenger, shadow; null: unset)")
    versions: list[RegisteredVersion] = Field(description="newest first")
    serving: ModelsServing
    lifecycle: ModelsLifecycle


# ---- alerts (issue 16) -------------------------------------------------------------------------
AlertSeverity = Literal["info", "medium", "high"]
_LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,127}$")]
_LabelValue = Annotated[str, Field(max_length=4096)]


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook notification (payload version 4)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    status: Literal["firing", "resolved"]
    labels: dict[_LabelName, _LabelValue] = Field(max_length=64)
    annotations: dict[_LabelName, _LabelValue] = Field(default_factory=dict, max_length=64)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime | None = Field(None, alias="endsAt")
    generator_url: str | None = Field(None, alias="generatorURL", max_length=4096)
    fingerprint: str = Field(pattern=r"^[0-9a-f]{1,64}$")

    @field_validator("labels")
    @classmethod
    def _known(cls, v: dict[str, str]) -> dict[str, str]:
        if not v.get("alertname"):
            raise ValueError("an alert needs the label alertname")
        if v.get("severity") not in ("info", "medium", "high"):
            raise ValueError(f"label severity must be info, medium or high, got {v.get('severity')!r}")
        return v


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook notification (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", max_length=4096)
    status: Literal["firing", "resolved"]
    receiver: str = Field(max_length=256)
    alerts: list[AlertmanagerAlert] = Field(min_length=1, max_length=500)
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)


class AlertWebhookResult(BaseModel):
    received: int
    new: int
    updated: int


class Alert(BaseModel):
    fingerprint: str
    alertname: str
    severity: AlertSeverity
    status: Literal["firing", "resolved"]
    summary: str | None
    runbook: str | None
    area: str | None
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    first_received_at: datetime
    notifications: int
    generator_url: str | None
    stale: bool = Field(description="firing, but Alertmanager has not repeated it for longer than expected")


class AlertCounts(BaseModel):
    high: int
    medium: int
    info: int


class Alerts(BaseModel):
    active: list[Alert]
    recent: list[Alert]
    counts: AlertCounts
