"""The range of every feature's finite values, derived from its formula (docs/FEATURES.md).

Serving accepts an explicit feature vector only within these ranges (a value outside is a 422
naming the feature and its range): a what-if vector is then one the feature pipeline could have
produced, and no accepted value can overflow the float32 the model and its explanation compute in
(`1e308` became `inf` there, and the SHAP call raised).

Most bounds are exact consequences of a formula (`rsi` is Wilder's RSI, in [0, 100]; a share is in
[0, 1]; a mean of scores in [-1, 1] is in [-1, 1]; a ratio of the hour's volume to a 24-hour mean
that includes it is at most 24). Where a formula is unbounded in principle (returns, ratios to the
close) the bound rests on one stated assumption, the same for all of them: **every price a
feature reads is within a factor e of the current close** (|ln(p / c_t)| <= 1: a move of -63% or
+172% within the feature's window; Bitcoin's largest daily log return since 2013 is about -0.5).
So the log returns are in [-1, 1], and:

| feature | range | why |
|---|---|---|
| `sma_20`, `ema_12`, `ema_26` | [1/e - 1, e - 1] | a (weighted) mean of prices in [c/e, c*e], over c, minus 1 |
| `atr` | [0, e - 1/e] | each true range spans prices in [c/e, c*e] |
| `macd`, `macd_signal` | ±(e - 1/e) | a difference of two such means (the signal: an EMA of it) |
| `macd_hist` | ±2(e - 1/e) | `macd` - `macd_signal` |
| `bb_upper` | [1/e - 1, 2e - 1/e - 1] | SMA + 2 sigma, sigma <= half the spread (e - 1/e)/2 |
| `bb_lower` | [2/e - e - 1, e - 1] | SMA - 2 sigma (the band can go below zero) |
| `bb_width` | [0, 2e^2 - 2] | 4 sigma / SMA, with SMA >= c/e |
| `bb_pct` | 0.5 ± sqrt(19)/4 | exact: c_t is one of the 20 values, within sqrt(19) sigmas of their mean |
| `volatility_24h` | [0, sqrt(24/23)] | sample std of 24 returns in [-1, 1] |
| `rv_1h` ... `rv_168h` | [0, 1] | root mean square of returns in [-1, 1] |

Counts have no formula bound; theirs is a sanity cap far above anything a source reports and
well inside float32 (1e9 mentions or items an hour; 24 times that over 24 hours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

_E = math.e
_SPREAD = _E - 1 / _E  # the widest spread of prices in [c/e, c*e], relative to c
COUNT_CAP = 1e9


@dataclass(frozen=True)
class FeatureRange:
    low: float
    high: float
    why: str

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def describe(self) -> str:
        return f"[{self.low:.6g}, {self.high:.6g}]"


def _r(low: float, high: float, why: str) -> FeatureRange:
    return FeatureRange(float(low), float(high), why)


_MEAN_OF_PRICES = _r(1 / _E - 1, _E - 1, "a mean of prices within a factor e of the close, over the close, minus 1")
_LOG_RETURN = _r(-1, 1, "a log return, prices within a factor e of the close")
_SCORE = _r(-1, 1, "a mean of sentiment scores in [-1, 1]")
_SCORE_DIFF = _r(-2, 2, "a difference of two means of scores in [-1, 1]")
_SHARE = _r(0, 1, "a share")
_COUNT = _r(0, COUNT_CAP, "a count (sanity cap)")

FEATURE_RANGES: dict[str, FeatureRange] = {
    # core price
    "sma_20": _MEAN_OF_PRICES,
    "rsi": _r(0, 100, "Wilder's RSI"),
    "atr": _r(0, _SPREAD, "a mean true range of prices within a factor e of the close, over the close"),
    "returns_1h": _LOG_RETURN,
    "returns_4h": _LOG_RETURN,
    "returns_24h": _LOG_RETURN,
    "volume_ratio": _r(0, 24, "the hour's volume over a 24-hour mean that includes it"),
    "volatility_regime": _r(0, 2, "a tercile: 0, 1 or 2"),
    # core sentiment, social, time
    "sentiment_mean": _SCORE,
    "sentiment_count": _COUNT,
    "sentiment_change_1h": _SCORE_DIFF,
    "sentiment_extreme": _SHARE,
    "social_volume": _COUNT,
    "social_sentiment": _SCORE,
    "hour_of_day": _r(0, 23, "an hour of the day"),
    # extended
    "ema_12": _MEAN_OF_PRICES,
    "ema_26": _MEAN_OF_PRICES,
    "macd": _r(-_SPREAD, _SPREAD, "a difference of two means of prices, over the close"),
    "macd_signal": _r(-_SPREAD, _SPREAD, "an EMA of macd"),
    "macd_hist": _r(-2 * _SPREAD, 2 * _SPREAD, "macd minus macd_signal"),
    "bb_upper": _r(1 / _E - 1, 2 * _E - 1 / _E - 1, "SMA + 2 sigma over the close, minus 1"),
    "bb_lower": _r(2 / _E - _E - 1, _E - 1, "SMA - 2 sigma over the close, minus 1"),
    "bb_width": _r(0, 2 * _E**2 - 2, "4 sigma over the SMA"),
    "bb_pct": _r(
        0.5 - math.sqrt(19) / 4, 0.5 + math.sqrt(19) / 4, "the close's place in bands around 20 values it is one of"
    ),
    "volatility_24h": _r(0, math.sqrt(24 / 23), "a sample std of 24 returns in [-1, 1]"),
    "returns_168h": _LOG_RETURN,
    "sentiment_mean_24h": _SCORE,
    "sentiment_count_24h": _r(0, 24 * COUNT_CAP, "a 24-hour sum of counts (sanity cap)"),
    "sentiment_momentum": _SCORE_DIFF,
    "day_of_week": _r(0, 6, "0 = Monday ... 6 = Sunday"),
    "is_weekend": _r(0, 1, "0 or 1"),
    "fear_greed": _r(0, 100, "the fear & greed index"),
    "fear_greed_change_24h": _r(-100, 100, "a difference of two index values"),
    # realised volatility (the interval model's inputs)
    "rv_1h": _r(0, 1, "a root mean square of returns in [-1, 1]"),
    "rv_6h": _r(0, 1, "a root mean square of returns in [-1, 1]"),
    "rv_24h": _r(0, 1, "a root mean square of returns in [-1, 1]"),
    "rv_168h": _r(0, 1, "a root mean square of returns in [-1, 1]"),
}


def out_of_range(values: dict[str, float | None]) -> list[tuple[str, float, FeatureRange]]:
    """(name, value, range) for each value outside its feature's range. None (missing) is never
    out of range; a name without a documented range is not judged here (the model's own name
    check rejects unknown names)."""
    bad = []
    for name, value in values.items():
        rng = FEATURE_RANGES.get(name)
        if rng is None or value is None:
            continue
        if not (isinstance(value, int | float) and math.isfinite(value) and rng.contains(float(value))):
            bad.append((name, value, rng))
    return bad
