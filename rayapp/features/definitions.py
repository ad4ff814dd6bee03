"""The feature sets: names, groups, parameters, and the version hash that stands for them.

`FEATURE_GROUPS` is the streamlined 15-feature set the models train on; `EXTENDED_GROUPS` adds
EMA/MACD/Bollinger bands, sentiment momentum, calendar and fear & greed features
(`features.set=extended`). A feature-set version is a hash of the set's name, its ordered feature
names, every parameter that changes a value (indicator periods, point-in-time lags, the sentiment
model id, the candle source preference) and `DEFINITIONS_REVISION`, which is bumped whenever a
formula in this package changes. Exact formulas: docs/FEATURES.md.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from rayapp.features.errors import FeatureSetNotFound

if TYPE_CHECKING:
    # Only for types: Ray workers import this module and should not pay for the warehouse.
    import psycopg

    from rayapp.config import Settings

# Bump when any formula changes: old versions then stay readable under their old hash.
DEFINITIONS_REVISION = 1

FEATURE_GROUPS: dict[str, list[str]] = {
    "price": ["sma_20", "rsi", "atr", "returns_1h", "returns_4h", "returns_24h", "volume_ratio", "volatility_regime"],
    "sentiment": ["sentiment_mean", "sentiment_count", "sentiment_change_1h", "sentiment_extreme"],
    "social": ["social_volume", "social_sentiment"],
    "time": ["hour_of_day"],
}

_EXTRA: dict[str, list[str]] = {
    "price": [
        "ema_12",
        "ema_26",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_upper",
        "bb_lower",
        "bb_width",
        "bb_pct",
        "volatility_24h",
        "returns_168h",
    ],
    "sentiment": ["sentiment_mean_24h", "sentiment_count_24h", "sentiment_momentum"],
    "social": [],
    "time": ["day_of_week", "is_weekend"],
    "market": ["fear_greed", "fear_greed_change_24h"],
}

EXTENDED_GROUPS: dict[str, list[str]] = {g: FEATURE_GROUPS.get(g, []) + extra for g, extra in _EXTRA.items()}

SETS: dict[str, dict[str, list[str]]] = {"core": FEATURE_GROUPS, "extended": EXTENDED_GROUPS}


@dataclass(frozen=True)
class FeatureParams:
    """Every parameter a feature value depends on (all of them enter the version hash)."""

    sma_period: int = 20
    rsi_period: int = 14
    atr_period: int = 14
    ema_fast: int = 12
    ema_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_k: float = 2.0
    ta_window_h: int = 512
    ta_block_h: int = 256
    volume_window_h: int = 24
    vol_window_h: int = 24
    regime_window_h: int = 720
    regime_min_periods: int = 360
    extreme_threshold: float = 0.5
    gap_fill_h: int = 3
    sentiment_change_max_gap_h: int = 6
    social_max_age_h: int = 3
    market_max_age_h: int = 48
    backfill_lag_min: dict[str, float] = field(default_factory=lambda: {"default": 5.0})
    sentiment_model_id: str = "none"
    candle_sources: tuple[str, ...] = ("binance", "coinbase", "cryptocompare")

    def lag_min(self, source: str) -> float:
        lags = self.backfill_lag_min
        return float(lags.get(source, lags.get(source.lower(), lags.get("default", 0.0))))

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["candle_sources"] = list(self.candle_sources)
        d["backfill_lag_min"] = {str(k): float(v) for k, v in sorted(self.backfill_lag_min.items())}
        return d

    @property
    def warmup_h(self) -> int:
        """Hours of history before t that any feature at t can read, plus a safety margin.

        A chunk computed with this much history before its first row equals the single pass.
        """
        regime = self.vol_window_h + self.regime_window_h
        longest = max(
            self.ta_window_h + self.ta_block_h,
            regime,
            168 + 1,
            24 + self.market_max_age_h,
            self.social_max_age_h,
            self.sentiment_change_max_gap_h + 1,
            24,
        )
        return longest + self.gap_fill_h + 24


@dataclass(frozen=True)
class FeatureSet:
    name: str
    groups: dict[str, list[str]]
    params: FeatureParams

    @property
    def names(self) -> list[str]:
        return [n for names in self.groups.values() for n in names]

    @property
    def version(self) -> str:
        return feature_set_version(self.name, self.names, self.params)

    @property
    def extended(self) -> bool:
        return self.name == "extended"


def feature_set_version(name: str, names: list[str], params: FeatureParams) -> str:
    payload = json.dumps(
        {"name": name, "features": names, "params": params.as_json(), "revision": DEFINITIONS_REVISION},
        sort_keys=True,
        separators=(",", ":"),
    )
    return f"{name}-{hashlib.sha256(payload.encode()).hexdigest()[:12]}"


def make_feature_set(name: str = "core", **params: Any) -> FeatureSet:
    if name not in SETS:
        raise ValueError(f"unknown feature set {name!r} (use one of {sorted(SETS)})")
    if "candle_sources" in params:
        params["candle_sources"] = tuple(params["candle_sources"])
    return FeatureSet(
        name=name, groups={g: list(v) for g, v in SETS[name].items() if v}, params=FeatureParams(**params)
    )


def newest_sentiment_model(conn: psycopg.Connection) -> str | None:
    """The model id whose scores were written last (the default sentiment source)."""
    row = conn.execute(
        "SELECT model_id FROM article_sentiment GROUP BY model_id ORDER BY max(scored_at) DESC, model_id LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def feature_set_from_settings(
    settings: Settings, conn: psycopg.Connection | None = None, sentiment_model_id: str | None = None
) -> FeatureSet:
    """The feature set the configuration selects; the sentiment model id is resolved from the
    warehouse when the config leaves it unset (recorded in the params, so in the version)."""
    f = settings.features
    model_id = sentiment_model_id or f.sentiment_model_id
    if model_id is None and conn is not None:
        model_id = newest_sentiment_model(conn)
    return make_feature_set(
        f.set,
        ta_window_h=f.ta_window_h,
        regime_window_h=f.regime_window_h,
        regime_min_periods=f.regime_window_h // 2,
        extreme_threshold=f.extreme_threshold,
        gap_fill_h=f.gap_fill_h,
        sentiment_change_max_gap_h=f.sentiment_change_max_gap_h,
        social_max_age_h=f.social_max_age_h,
        market_max_age_h=f.market_max_age_h,
        backfill_lag_min=dict(settings.ingest.backfill_lag_min),
        sentiment_model_id=model_id or "none",
        candle_sources=tuple(f.candle_sources),
    )


def register_feature_set(conn: psycopg.Connection, fs: FeatureSet) -> str:
    """Upsert the `feature_sets` row for this version (idempotent); returns the version."""
    import pandas as pd

    from rayapp.warehouse import upsert_frame

    row = pd.DataFrame(
        [
            {
                "feature_set_version": fs.version,
                "name": fs.name,
                "feature_names": fs.names,
                "params": {**fs.params.as_json(), "groups": fs.groups, "revision": DEFINITIONS_REVISION},
            }
        ]
    )
    upsert_frame(conn, "feature_sets", row, key=["feature_set_version"])
    conn.commit()
    return fs.version


def registered_names(conn: psycopg.Connection, feature_set_version: str) -> list[str]:
    row = conn.execute(
        "SELECT feature_names FROM feature_sets WHERE feature_set_version = %s", (feature_set_version,)
    ).fetchone()
    if row is None:
        raise FeatureSetNotFound(
            f"feature set version {feature_set_version!r} is not registered (run `rayapp features build` first)"
        )
    return list(row[0])
