"""The served forecast distribution: quantiles, volatility and the 50/80/90 % intervals.

The interval model (`ModelBundle.intervals`, docs/INTERVALS.md) reads the served core features
plus the realised-volatility group (`rayapp.features.RV_FEATURES`), computed here from the hourly
closes of the feature set's candle source up to the feature hour t and never after it (point in
time: a close of an hour after t cannot change what is served for t). The closes are read once
per (symbol, feature set, hour) by the ingress (`interval_inputs`), and the Predictor turns them
and the shared ACI states (rayapp/serving/aci.py) into the served fields (`served_fields`).

Missing or bad closes (fewer than 169 unbroken hours, a close <= 0, no candles at all): the
volatility features that cannot be computed are missing (NaN), which the interval model's booster
handles as it learned to (a missing value takes each split's default branch; the first week of
any history and every gap train it). The forecast keeps its method and says which inputs were
missing (`interval.missing`); it never falls back to the legacy band, whose coverage is that of
another model, and it never fails the request. A what-if vector (POST /predict with features)
has no feature hour, so no closes: its volatility features are all missing.

Units: `low`/`high` and the quantiles are h-hour log returns, like `expected_return`; the prices
are close(t) * exp(value), null when the close at t is unknown.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rayapp.log import get_logger
from rayapp.registry import AciState, level_key

if TYPE_CHECKING:
    import psycopg

    from rayapp.registry import LoadedModel

log = get_logger(__name__)
_F32_MAX = float(np.finfo(np.float32).max)


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def no_inputs(why: str | None = None) -> dict[str, Any]:
    """The interval inputs when no closes could be read: every volatility feature missing."""
    from rayapp.features import RV_FEATURES

    return {"rv": dict.fromkeys(RV_FEATURES), "close": None, "missing": list(RV_FEATURES), "reason": why}


def interval_inputs(conn: psycopg.Connection, symbol: str, feature_set_version: str, ts: str) -> dict[str, Any]:
    """{rv: {name: value | None}, close: close(t) | None, missing: [names], reason} for the feature
    hour `ts`, from the closes of candles opened in [t - 169 h, t] (the feature set's source)."""
    from rayapp.features import RV_FEATURES, RV_WARMUP_H, load_close, realized_vol_features

    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    try:
        close = load_close(
            conn, symbol, feature_set_version, start=t - pd.Timedelta(hours=RV_WARMUP_H), end=t + pd.Timedelta(hours=1)
        )
    except Exception as exc:  # no candles at all, malformed candles: the inputs are missing
        log.warning("interval inputs: closes unreadable", symbol=symbol, ts=str(t), error=str(exc)[:200])
        return no_inputs(f"closes unreadable: {type(exc).__name__}")
    close = close[close.index <= t]  # point in time, whatever the query returned
    if close.empty:
        return no_inputs("no closes up to the feature hour")
    clean = close.where(close > 0)  # a non-positive close has no log return
    rv_row = realized_vol_features(clean.dropna()).reindex([t])
    rv = {n: _finite(rv_row[n].iloc[0]) for n in RV_FEATURES}
    c0 = _finite(clean.get(t))
    missing = [n for n, v in rv.items() if v is None]
    reason = None
    if missing:
        reason = "no close at the feature hour" if c0 is None else f"{len(close)} of 169 hourly closes"
    return {"rv": rv, "close": c0, "missing": missing, "reason": reason}


def watched_level(levels: list[float], level: float) -> float:
    """The served level nearest `level` (lifecycle.coverage.level): the one `interval` carries."""
    return min(levels, key=lambda v: (abs(v - level), -v))


def served_fields(
    m: LoadedModel,
    values: dict[str, Any],
    expected_return: float,
    inputs: dict[str, Any] | None,
    states: dict[str, dict[str, Any]] | None,
    *,
    level: float,
    aci_gamma: float | None,
) -> dict[str, Any]:
    """A prediction's interval fields: `interval_*` (the watched level, in the log's units),
    `intervals` (every level, with prices, alpha_t and the live coverage), `quantiles`,
    `volatility`, `aci_gamma` (the step the resolve applies). `states`: level key -> AciState
    dict of this very version; `aci_gamma`: the configured hourly step (None: the bundle's)."""
    b = m.bundle
    inputs = inputs or no_inputs("no feature hour")
    aci = {
        k: AciState(**{f: s[f] for f in ("level", "alpha_t", "resolved", "covered")}) for k, s in (states or {}).items()
    }
    row = None
    gamma = None
    if b.intervals is not None:
        rv = inputs.get("rv") or {}
        merged = {**values, **rv}
        # a finite value beyond float32's range is clamped as the direction model's row is
        # (predictor.feature_row): XGBoost reads float32, where it would be inf
        row = np.clip(
            np.array(
                [[np.nan if _finite(merged.get(n)) is None else float(merged[n]) for n in b.intervals.feature_names]]
            ),
            -_F32_MAX,
            _F32_MAX,
        )
        gamma = b.intervals.aci_gamma if aci_gamma is None else float(aci_gamma) / max(1, int(b.horizon_h))
    fc = b.forecast_intervals(row, expected_return=expected_return, aci=aci or None)
    close = _finite(inputs.get("close"))

    def price(v: float | None) -> float | None:
        return None if close is None or v is None else close * math.exp(v)

    bands = []
    for iv in fc["intervals"]:
        st = aci.get(level_key(iv["level"]))
        bands.append(
            {
                "level": float(iv["level"]),
                "low": float(iv["low"]),
                "high": float(iv["high"]),
                "price_low": price(iv["low"]),
                "price_high": price(iv["high"]),
                "alpha_t": iv.get("alpha_t"),
                "coverage": None if st is None else st.coverage,
                "resolved": 0 if st is None else st.resolved,
            }
        )
    head = next(iv for iv in bands if iv["level"] == watched_level([iv["level"] for iv in bands], level))
    quantiles = None
    if fc["quantiles"] is not None:
        quantiles = [
            {"p": float(p), "log_return": float(v), "price": price(float(v))}
            for p, v in sorted(fc["quantiles"].items(), key=lambda kv: float(kv[0]))
        ]
    return {
        "interval_method": fc["method"],
        "interval_level": head["level"],
        "interval_low": head["low"],
        "interval_high": head["high"],
        "interval_coverage": head["coverage"],
        "interval_resolved": head["resolved"],
        "intervals": bands,
        "quantiles": quantiles,
        "volatility": fc["volatility"],
        "close": close,
        "aci_gamma": gamma,
        "interval_missing": list(inputs.get("missing") or []) if b.intervals is not None else [],
    }
