"""Configuration: Hydra composition of conf/ plus typed, validated settings.

Every command composes the same tree with Hydra's compose API, applies `key=value` overrides,
then validates it into :class:`Settings`. A bad value fails at start with the dotted key and the
reason, never later in a job.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rayapp.errors import InputError

SECRET_KEYS = ("password", "secret", "api_key", "access_key", "token", "client_secret")


class ConfigError(InputError):
    """A configuration value is invalid; the message names the key and the reason (exit 2)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DatabaseSettings(_Section):
    url: str | None = None
    pool_min: int = Field(1, ge=0)
    pool_max: int = Field(8, ge=1)
    connect_timeout_s: float = Field(10, gt=0)

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL (or null for the embedded server)")
        return v


class RedisSettings(_Section):
    url: str | None = None
    port: int = Field(0, ge=0, le=65535)
    socket_timeout_s: float = Field(2, gt=0)

    @field_validator("url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL (or null for the embedded server)")
        return v


class MlflowSettings(_Section):
    tracking_uri: str | None = None
    experiment: str = "rayapp"
    registered_model: str = "bitcoin_predictor"


class RaySettings(_Section):
    address: str | None = None
    num_cpus: int | None = Field(None, ge=1)


class StorageSettings(_Section):
    backend: Literal["local", "minio"] = "local"
    root: str = ".rayapp/lake"
    endpoint: str | None = None
    bucket: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class SourcesSettings(_Section):
    mode: Literal["live", "replay"] = "live"
    replay_url: str | None = None
    binance_url: str
    binance_fallback_url: str
    coinbase_url: str
    cryptocompare_url: str
    cryptocompare_api_key: str | None = None
    coindesk_rss_url: str
    fear_greed_url: str
    reddit_url: str
    reddit_auth_url: str
    reddit_client_id: str | None = None
    reddit_client_secret: str | None = None
    reddit_subreddit: str = "Bitcoin"
    reddit_user_agent: str = "rayapp/0.1 (bitcoin research)"
    enabled: list[str] = Field(default_factory=list)
    # Shared client policy (rayapp/ingest/http.py). Rates are request weight per minute per source,
    # enforced once across all Ray workers by the Ray-actor limiter.
    rate_limits: dict[str, float] = Field(
        default_factory=lambda: {
            "binance": 6000.0,
            "coinbase": 600.0,
            "cryptocompare": 600.0,
            "coindesk": 30.0,
            "fear_greed": 60.0,
            "reddit": 90.0,
        }
    )
    binance_weight_limit: int = Field(6000, ge=1)  # X-MBX-USED-WEIGHT-1M ceiling
    binance_weight_window_s: float = Field(60, gt=0)  # the window the used-weight header counts
    binance_weight_soft: float = Field(0.8, gt=0, le=1)  # pause to the window's end past this share
    backoff_initial_s: float = Field(0.5, gt=0)  # exponential backoff base (full jitter)
    backoff_max_s: float = Field(30, gt=0)
    max_wait_s: float = Field(300, ge=0)  # longest Retry-After / 418 ban we wait out; longer fails


class ReplaySettings(_Section):
    port: int = Field(8765, ge=0, le=65535)
    data: str = "../shared/data"
    start: str | None = None
    speed: float = Field(0, ge=0)
    host: str = "127.0.0.1"
    klines_files: list[str] = Field(default_factory=lambda: ["btc_usd_1h_*.csv"])  # globs in data
    weight_limit: int = Field(6000, ge=1)  # X-MBX-USED-WEIGHT-1M past which the replay answers 429
    weight_window_s: float = Field(60, gt=0)
    news_page_size: int = Field(50, ge=1)
    rss_items: int = Field(25, ge=1)


class IngestSettings(_Section):
    start: str | None = None
    end: str | None = None
    lookback_days: int = Field(30, ge=1)
    sources: list[str] | None = None
    window_h: int = Field(720, ge=1)
    max_windows_per_key: int = Field(8, ge=1)  # a longer range gets longer windows, not more tasks
    workers: int = Field(4, ge=1)  # Ray Data tasks fetching partitions concurrently (I/O bound)
    max_attempts: int = Field(5, ge=1, le=20)
    timeout_s: float = Field(30, gt=0)
    # `rayapp demo`/`rayapp run` with live sources: one request per enabled source, in parallel,
    # at most this long each, before anything is fetched (0 = no check).
    reachability_timeout_s: float = Field(5, ge=0)
    backfill_lag_min: dict[str, float] = Field(default_factory=lambda: {"default": 5.0})


class SentimentModelSettings(_Section):
    name: str = "ElKulako/cryptobert"
    revision: str | None = None
    max_length: int = Field(128, ge=8, le=512)
    batch_size: int | None = Field(None, ge=1)
    fallback: Literal["vader", "none"] = "vader"


class ModelSettings(_Section):
    name: str = "xgboost"
    objective: str = "binary:logistic"
    num_workers: int = Field(1, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    seed: int = 42
    params: dict[str, Any] = Field(default_factory=dict)
    sentiment: SentimentModelSettings = Field(default_factory=SentimentModelSettings)


class CvSettings(_Section):
    n_splits: int = Field(5, ge=2)
    test_size_h: int = Field(168, ge=1)
    window: Literal["expanding", "sliding"] = "expanding"
    train_size_h: int | None = Field(None, ge=1)  # sliding window length (null = 4 x test_size_h)
    min_train_h: int = Field(168, ge=1)
    purge_h: int | None = Field(None, ge=0)  # null = horizon; smaller than the horizon is an error
    embargo_h: int | None = Field(None, ge=0)


class AblationSettings(_Section):
    n_boot: int = Field(1000, ge=100)
    block_h: int = Field(24, ge=1)
    alpha: float = Field(0.05, gt=0, lt=1)
    practical_threshold: float = Field(0.02, ge=0)
    periods: dict[str, list[str | None]] = Field(default_factory=dict)


class IntervalSettings(_Section):
    """The interval model (docs/INTERVALS.md): quantiles, volatility, conformal calibration, ACI."""

    enabled: bool = True
    method: Literal["vol", "quantile"] = "vol"  # XGBoost on log squared returns | multi-quantile
    quantiles: list[float] = Field(default_factory=lambda: [0.05, 0.25, 0.5, 0.75, 0.95], min_length=1)
    levels: list[float] = Field(default_factory=lambda: [0.5, 0.8, 0.9], min_length=1)  # nominal coverages
    aci_gamma: float = Field(0.005, gt=0, lt=1)  # adaptive conformal inference step size
    aci_recovery_h: int = Field(720, ge=24)  # hours ACI may take to bring coverage back after a shift
    params: dict[str, Any] = Field(default_factory=dict)  # XGBoost parameters over the defaults

    @field_validator("quantiles", "levels")
    @classmethod
    def _probabilities(cls, v: list[float]) -> list[float]:
        if any(not 0 < x < 1 for x in v):
            raise ValueError("each value in (0, 1)")
        return sorted(set(v))


class TuneSettings(_Section):
    num_samples: int = Field(20, ge=1)
    max_concurrent: int = Field(2, ge=1)
    max_failures: int = Field(2, ge=0)  # restarts of a trial whose worker or node died (Tune FailureConfig)
    metric: str = "mean_accuracy"
    mode: Literal["min", "max"] = "max"
    seed: int = 42
    cv: CvSettings = Field(default_factory=CvSettings)
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)
    fee_bps: float = Field(10.0, ge=0)
    calibration: Literal["auto", "isotonic", "platt", "identity"] = "auto"
    conformal_alpha: float = Field(0.1, gt=0, lt=1)
    intervals: IntervalSettings = Field(default_factory=IntervalSettings)
    report_dir: str = "reports/latest"
    ablation: AblationSettings = Field(default_factory=AblationSettings)


class ServingIntervalSettings(_Section):
    """The served intervals (docs/INTERVALS.md, "In serving"): online adaptive conformal inference."""

    # The hourly ACI step; an h-hour forecast uses it / h (as training does). None: the step the
    # model bundle carries (intervals.aci_gamma, from tune.intervals.aci_gamma when it was trained).
    aci_gamma: float | None = Field(None, gt=0, lt=1)
    aci_refresh_s: float = Field(30, gt=0)  # how long an ingress replica reuses the ACI states it read


class ServingSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: str | None = None
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(65536, ge=1024)
    champion_poll_s: float = Field(30, gt=0)
    feature_staleness_s: float = Field(10800, gt=0)  # forecasts older than this are stale
    # Ray Serve application (rayapp/serving); see conf/serving/default.yaml for the why of each.
    app_name: str = "rayapp"
    api_key_header: str = "X-API-Key"
    predictor_replicas: int = Field(1, ge=1)
    max_ongoing_requests: int = Field(64, ge=1)
    watch_interval_s: float = Field(5, gt=0)
    ws_heartbeat_s: float = Field(15, gt=0)
    ws_metrics_interval_s: float = Field(2, gt=0)
    resolve_interval_s: float = Field(60, ge=0)  # 0 = off (`rayapp run`: the scheduler's resolve job)
    price_sources: list[str] = Field(default_factory=lambda: ["binance", "coinbase", "cryptocompare"])
    static_dir: str = "frontend/dist"
    explain_top_k: int = Field(3, ge=1, le=20)
    access_log: bool = False
    prediction_cache_size: int = Field(1024, ge=0)
    throughput_optimized: bool = True
    # The edge (rayapp/serving/limits.py, hardening.py; docs/SERVING.md "Slow clients and limits").
    # Per ingress replica; "client" is the peer address of the connection.
    ws_max_connections: int = Field(512, ge=1)  # WebSockets open at once; one more is closed 1013
    ws_max_per_client: int = Field(64, ge=1)  # WebSockets open at once from one client address
    ws_max_message_bytes: int = Field(8192, ge=128)  # a bigger client message closes the socket 1009
    http_max_pending: int = Field(1024, ge=1)  # HTTP requests in progress (reading, queued, running); more: 503
    http_max_per_client: int = Field(32, ge=1)  # HTTP requests in progress from one client address; more: 429
    body_timeout_s: float = Field(10, gt=0)  # the whole request body must arrive within this: else 408, closed
    header_timeout_s: float = Field(10, gt=0)  # request line and headers must arrive within this: else closed
    keep_alive_timeout_s: int = Field(5, ge=1)  # an idle keep-alive connection is closed after this
    max_connections_per_client: int = Field(128, ge=1)  # open HTTP connections from one client address
    intervals: ServingIntervalSettings = Field(default_factory=ServingIntervalSettings)


class FeatureSettings(_Section):
    set: Literal["core", "extended"] = "core"
    horizon_h: int = Field(1, ge=1)  # the horizon `train` and the served model use
    horizons_h: list[int] = Field(default_factory=lambda: [1, 4, 24], min_length=1)  # `rayapp backtest`
    # Point-in-time and indicator parameters (rayapp/features, docs/FEATURES.md). Every one of
    # them feeds the feature-set version hash, except chunk_h, which only sets the parallelism.
    sentiment_model_id: str | None = None  # null = the newest model id in article_sentiment
    candle_sources: list[str] = Field(default_factory=lambda: ["binance", "coinbase", "cryptocompare"], min_length=1)
    chunk_h: int = Field(4096, ge=24)
    ta_window_h: int = Field(512, ge=64)  # trailing bars TA-Lib's RSI/ATR/EMA recursions see
    regime_window_h: int = Field(720, ge=48)  # trailing hours the 24h volatility is ranked against
    extreme_threshold: float = Field(0.5, gt=0, lt=1)
    gap_fill_h: int = Field(3, ge=0)  # missing candles carried as flat no-trade hours
    sentiment_change_max_gap_h: int = Field(6, ge=1)
    social_max_age_h: int = Field(3, ge=0)
    market_max_age_h: int = Field(48, ge=0)


class DriftTriggerSettings(_Section):
    enabled: bool = True
    hours: int = Field(168, ge=24)  # recently served vectors compared with the training window
    min_rows: int = Field(48, ge=10)  # fewer served vectors than this: not judged
    # Bootstrap windows of the reference at the current window size; the smallest p-value is
    # 1/(n_boot+1), which must be below alpha/features for BH to be able to reject at all.
    n_boot: int = Field(1000, ge=100)
    alpha: float = Field(0.05, gt=0, lt=1)  # Benjamini-Hochberg false-discovery rate across features
    share: float = Field(0.3, gt=0, le=1)  # fires when at least this share of the features drifted


class DegradationTriggerSettings(_Section):
    enabled: bool = True
    window: int = Field(336, ge=24)  # the champion's last N resolved forecasts
    min_resolved: int = Field(168, ge=24)
    alpha: float = Field(0.05, gt=0, lt=1)  # one-sided


class CoverageTriggerSettings(_Section):
    enabled: bool = True
    level: float = Field(0.9, gt=0, lt=1)  # the nominal level whose live coverage is watched
    margin: float = Field(0.03, gt=0, lt=1)  # fires when live coverage < level - margin
    window: int = Field(336, ge=24)  # the champion's last N resolved intervals
    min_resolved: int = Field(168, ge=24)


class RetrainSettings(_Section):
    window: Literal["expanding", "sliding"] = "expanding"
    window_h: int = Field(8760, ge=168)  # sliding window length
    trials: int | None = Field(None, ge=0)  # null = tune.num_samples; 0 = model.params as they are


class GateSettings(_Section):
    n_splits: int = Field(26, ge=2)  # the long walk-forward: 26 weekly folds = 4,368 test hours
    test_size_h: int = Field(168, ge=24)
    alpha: float = Field(0.05, gt=0, lt=1)
    n_boot: int = Field(1000, ge=100)
    block_h: int = Field(24, ge=1)  # raised to the horizon when the horizon is longer
    interval_score: bool = True  # the challenger must not lose to the champion on interval score


class ShadowSettings(_Section):
    min_resolved: int = Field(168, ge=10)  # paired shadow forecasts before a verdict
    max_hours: int = Field(720, ge=24)  # time budget: no verdict by then = not promoted
    alpha: float = Field(0.1, gt=0, lt=1)  # one-sided: the challenger must not be worse
    n_boot: int = Field(1000, ge=100)


class WatchSettings(_Section):
    hours: int = Field(336, ge=0)  # the previous champion keeps scoring in shadow this long
    min_resolved: int = Field(72, ge=10)
    alpha: float = Field(0.05, gt=0, lt=1)  # one-sided: the new champion significantly worse
    n_boot: int = Field(1000, ge=100)


class LifecycleSettings(_Section):
    """The model-lifecycle policy (conf/lifecycle/): triggers, retrain, gate, shadow, watch."""

    enabled: bool = True
    schedule_h: int | None = Field(168, ge=1)  # retrain at least this often (null = never by age of the schedule)
    min_new_hours: int | None = Field(None, ge=1)  # enough new data: >= K hours since training (null = off)
    max_age_h: int | None = Field(720, ge=1)  # the champion is never older than this
    cooldown_h: int = Field(24, ge=0)  # no retrain within this many hours of the last one
    drift: DriftTriggerSettings = Field(default_factory=DriftTriggerSettings)
    degradation: DegradationTriggerSettings = Field(default_factory=DegradationTriggerSettings)
    coverage: CoverageTriggerSettings = Field(default_factory=CoverageTriggerSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    shadow: ShadowSettings = Field(default_factory=ShadowSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)


BacktestPolicy = Literal["never", "weekly", "triggered"]


def _all_policies() -> list[BacktestPolicy]:
    return ["never", "weekly", "triggered"]


class BacktestSettings(_Section):
    """`rayapp backtest` (conf/backtest/, docs/BACKTEST.md): the lifecycle policy over history."""

    price_file: str = "btc_usd_1h_2019-11_2025-05.csv"  # under replay.data, unless --price-csv
    policies: list[BacktestPolicy] = Field(default_factory=_all_policies, min_length=1)
    test_h: int = Field(168, ge=1)  # one fold = one test block ("week") of this many hours
    min_train_h: int = Field(4380, ge=24)  # rows before the first test block (~6 months)
    window: Literal["expanding", "sliding"] | None = None  # null = lifecycle.retrain.window
    train_size_h: int | None = Field(None, ge=24)  # sliding window (null = lifecycle.retrain.window_h)
    # Walk-forward weeks before the first replayed week: the calibration and the gate of the first
    # champion need an out-of-sample history (null = lifecycle.gate.n_splits).
    warmup_weeks: int | None = Field(None, ge=1)
    calibration_weeks: int = Field(26, ge=2)  # trailing out-of-sample weeks each calibration sees
    calibration_min_weeks: int = Field(8, ge=1)  # fewer than this: the identity map
    # No-trade bands |P(up) - 0.5| < band, chosen per model on its calibration weeks alone. The
    # widest (0.2) is flat in practice: a model whose bands all lose after costs stays out.
    band_grid: list[float] = Field(default_factory=lambda: [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2])
    n_boot: int = Field(1000, ge=100)  # block-bootstrap resamples of every p-value in the report
    block_h: int = Field(24, ge=1)  # bootstrap block (raised to the horizon for longer horizons)
    report_dir: str = "reports/backtest"
    seed: int | None = None  # null = model.seed

    @field_validator("band_grid")
    @classmethod
    def _bands(cls, v: list[float]) -> list[float]:
        if not v or any(b < 0 or b >= 0.5 for b in v):
            raise ValueError("one or more bands in [0, 0.5)")
        return sorted(set(v))


class SlackSettings(_Section):
    # Files holding the incoming-webhook URLs (a secret: never in the repository or the config).
    api_url_file: str = "/etc/rayapp/secrets/slack_webhook_url"
    info_api_url_file: str | None = None  # the low-noise channel's webhook (null = api_url_file)
    channel: str = "#rayapp-alerts"  # high and medium
    info_channel: str = "#rayapp-info"


class EmailSettings(_Section):
    smarthost: str = "localhost:25"  # host:port
    sender: str = "rayapp-alerts@localhost"
    to: str = "oncall@localhost"
    auth_username: str | None = None
    auth_password_file: str | None = None  # a file holding the SMTP password
    require_tls: bool = True

    @field_validator("smarthost")
    @classmethod
    def _hostport(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be host:port")
        return v


class AlertRoutingSettings(_Section):
    """Alertmanager's timing (seconds): how long a new group waits, how often a changed group is
    re-sent, how often a still-firing one is repeated, per severity."""

    group_wait_s: float = Field(10, gt=0)
    group_interval_s: float = Field(60, gt=0)
    repeat_high_s: float = Field(3600, gt=0)
    repeat_medium_s: float = Field(14400, gt=0)
    info_group_wait_s: float = Field(60, gt=0)
    info_group_interval_s: float = Field(600, gt=0)
    repeat_info_s: float = Field(86400, gt=0)
    feed_group_wait_s: float = Field(5, gt=0)
    feed_group_interval_s: float = Field(30, gt=0)
    feed_repeat_s: float = Field(3600, gt=0)
    resolve_timeout_s: float = Field(300, gt=0)


class AlertingSettings(_Section):
    """Prometheus + Alertmanager (conf/alerting/, deploy/, docs/OPERATIONS.md "Alerting")."""

    deploy_dir: str | None = None  # the repository's deploy/ (null = beside the package)
    out_dir: str | None = None  # `rayapp alerting render` writes here (null = <state_dir>/alerting)
    scrape_interval_s: float = Field(15, gt=0)
    evaluation_interval_s: float = Field(15, gt=0)
    for_scale: float = Field(1.0, gt=0, le=1)  # multiplies every rule's `for` (tests scale it down)
    serving_targets: list[str] = Field(default_factory=lambda: ["127.0.0.1:8000"])
    ray_targets: list[str] = Field(default_factory=lambda: ["127.0.0.1:8080"])
    alertmanager_targets: list[str] = Field(default_factory=lambda: ["127.0.0.1:9093"])
    feed_url: str = "http://127.0.0.1:8000/alerts/webhook"  # rayapp's own alert feed
    # The bearer token Alertmanager presents to the feed: a file both read (null = under state_dir,
    # created by `rayapp alerting render` when missing).
    webhook_token_file: str | None = None
    routes: AlertRoutingSettings = Field(default_factory=AlertRoutingSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    # Oldest acceptable newest row per dataset (seconds on the system clock): the data alerts.
    staleness_s: dict[str, float] = Field(
        default_factory=lambda: {
            "candles": 7200.0,
            "articles": 21600.0,
            "article_sentiment": 21600.0,
            "social_counts": 10800.0,
            "market_index": 172800.0,
            "features": 7200.0,
        }
    )
    live_window: int = Field(336, ge=10)  # resolved forecasts per version the live metrics cover
    metrics_cache_s: float = Field(2.0, ge=0)  # reuse a scrape's store reads this long


BUILTIN_JOBS = ("refresh", "resolve", "drift", "retrain", "noop")


class JobSettings(_Section):
    """One scheduled job (conf/schedule/): a cron expression in the scheduler's clock, UTC."""

    cron: str
    target: str | None = None  # module:function; null = the built-in job of this name
    enabled: bool = True
    timeout_s: float = Field(900, gt=0)  # cancelled (its runner killed) and recorded timed_out past this
    retries: int = Field(2, ge=0, le=20)  # further attempts after a failed one, then `failed`
    backoff_s: float = Field(30, ge=0)  # wait before the first retry; doubles per attempt
    backoff_max_s: float = Field(600, ge=0)
    params: dict[str, Any] = Field(default_factory=dict)  # keyword arguments of the job

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from croniter import croniter

        if not croniter.is_valid(v):
            raise ValueError("not a valid cron expression (5 fields, or 6 with seconds last)")
        return v

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | None) -> str | None:
        if v is not None and (":" not in v or not all(v.split(":", 1))):
            raise ValueError("must look like package.module:function")
        return v


class ScheduleSettings(_Section):
    clock: Literal["auto", "wall", "replay"] = "auto"  # auto: the replay server's clock with sources=replay
    misfire_grace_s: float = Field(300, ge=0)  # clock seconds a slot may be late and still run
    tick_s: float = Field(0.5, gt=0, le=60)  # longest sleep between two looks at the clock
    max_missed_records: int = Field(1000, ge=1)  # missed slots recorded one by one after downtime
    actor_name: str = "rayapp-scheduler"
    namespace: str = "rayapp"
    jobs: dict[str, JobSettings] = Field(default_factory=dict)

    @field_validator("jobs")
    @classmethod
    def _known(cls, jobs: dict[str, JobSettings]) -> dict[str, JobSettings]:
        for name, job in jobs.items():
            error = unknown_job(name, job.target)
            if error:
                raise ValueError(error)
        return jobs


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["console", "json"] = "console"


class Settings(_Section):
    state_dir: str = ".rayapp"
    symbols: list[str] = Field(default_factory=lambda: ["BTCUSDT"], min_length=1)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    sources: SourcesSettings
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    tune: TuneSettings = Field(default_factory=TuneSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    alerting: AlertingSettings = Field(default_factory=AlertingSettings)
    log: LogSettings = Field(default_factory=LogSettings)

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser().resolve()

    @property
    def alert_token_path(self) -> Path:
        """The file holding the alert feed's bearer token (Alertmanager presents it, the app checks it)."""
        f = self.alerting.webhook_token_file
        return Path(f).expanduser() if f else self.state_path / "secrets" / "alert_webhook_token"

    @property
    def mlflow_tracking_uri(self) -> str:
        """The configured tracking URI, or the embedded SQLite backend under the state dir."""
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return f"sqlite:///{self.state_path / 'mlflow' / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return (self.state_path / "mlflow" / "artifacts").as_uri()


def conf_dir() -> Path:
    """The Hydra config tree: $RAYAPP_CONF_DIR, else conf/ beside the package (editable install)."""
    env = os.environ.get("RAYAPP_CONF_DIR")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parent.parent / "conf").resolve()


def compose_dict(overrides: list[str] | None = None) -> dict[str, Any]:
    """Compose conf/ with Hydra and return the resolved plain dict."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides or [])
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got: {', '.join(bad)}")
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):
            cfg = compose(config_name="config", overrides=overrides)
        data = OmegaConf.to_container(cfg, resolve=True)
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"cannot compose configuration: {exc}") from exc
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def unknown_job(name: str, target: Any) -> str | None:
    """Why a scheduled job cannot run (no built-in of that name and no target), naming its key."""
    if name in BUILTIN_JOBS or target:
        return None
    return (
        f"schedule.jobs.{name}: unknown job (built in: {', '.join(BUILTIN_JOBS)}; or set "
        f"schedule.jobs.{name}.target=module:function)"
    )


def _unknown_jobs(data: dict[str, Any]) -> list[str]:
    """Checked before the model, so the error names the job's own key, not `schedule.jobs`."""
    jobs = (data.get("schedule") or {}).get("jobs") or {}
    errors = (unknown_job(n, j.get("target") if isinstance(j, dict) else None) for n, j in jobs.items())
    return [e for e in errors if e]


def validate(data: dict[str, Any]) -> Settings:
    unknown = _unknown_jobs(data)
    if unknown:
        raise ConfigError("invalid configuration: " + "; ".join(unknown))
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        # One line (the CLI prints one `error:` line), every bad key named.
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None


def load_settings(overrides: list[str] | None = None) -> Settings:
    """Compose, resolve and validate the configuration."""
    return validate(compose_dict(overrides))


def is_secret_key(key: str) -> bool:
    k = key.lower()
    return any(s in k for s in SECRET_KEYS)


def _mask_url(value: str) -> str:
    # postgresql://user:password@host -> postgresql://user:***@host
    if "://" in value and "@" in value.split("://", 1)[1]:
        scheme, rest = value.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, sep, password = creds.partition(":")
        if sep and password:
            return f"{scheme}://{user}:***@{host}"
    return value


def masked(data: Any, key: str = "") -> Any:
    """A copy of the config with secrets replaced by *** and passwords removed from URLs."""
    if isinstance(data, dict):
        return {k: masked(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [masked(v, key) for v in data]
    if isinstance(data, str):
        if is_secret_key(key):
            return "***"
        return _mask_url(data)
    return data
