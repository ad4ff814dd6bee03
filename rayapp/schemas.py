"""Every pandera schema, one place: the table edges of silver, gold and serving.

Each schema mirrors a table of warehouse/migrations. Named checks matter: validation failures are
quarantined with the check's name, so the names are what an operator reads in `quarantine`.
Validate with `lazy=True` and route `SchemaErrors.failure_cases` rows to quarantine
(see :func:`split_valid`).
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors
from pandera.pandas import Check, Column, DataFrameSchema

UTC_TS = pd.DatetimeTZDtype("ns", "UTC")


def _utc(nullable: bool = False, **kw: object) -> Column:
    return Column(UTC_TS, nullable=nullable, coerce=True, **kw)  # type: ignore[arg-type]


def _not_future(name: str) -> Check:
    # A small tolerance absorbs clock skew between the API and us.
    return Check(
        lambda s: s <= pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=5),
        name=f"{name}_not_in_future",
        error=f"{name} is in the future",
    )


_non_negative = Check.greater_than_or_equal_to(0)
_positive = Check.greater_than(0)

candles_schema = DataFrameSchema(
    {
        "source": Column(str),
        "symbol": Column(str),
        "open_time": _utc(checks=[_not_future("open_time")]),
        "open": Column(float, _positive, coerce=True),
        "high": Column(float, _positive, coerce=True),
        "low": Column(float, _positive, coerce=True),
        "close": Column(float, _positive, coerce=True),
        "volume": Column(float, Check.greater_than_or_equal_to(0, name="volume_non_negative"), coerce=True),
        "quote_volume": Column(float, Check.greater_than_or_equal_to(0), nullable=True, coerce=True, required=False),
        "trades": Column("Int64", Check.greater_than_or_equal_to(0), nullable=True, coerce=True, required=False),
    },
    checks=[
        Check(
            lambda df: df["high"] >= df[["open", "close"]].max(axis=1),
            name="high_ge_open_close",
            error="high below max(open, close)",
        ),
        Check(
            lambda df: df["low"] <= df[["open", "close"]].min(axis=1),
            name="low_le_open_close",
            error="low above min(open, close)",
        ),
        Check(lambda df: df["high"] >= df["low"], name="high_ge_low", error="high below low"),
    ],
    unique=["source", "symbol", "open_time"],
    report_duplicates="exclude_first",
    name="candles",
)

articles_schema = DataFrameSchema(
    {
        "article_id": Column(str, unique=True),
        "kind": Column(str, Check.isin(["news", "social"])),
        "source": Column(str),
        "guid": Column(str, nullable=True, required=False),
        "url": Column(str, nullable=True, required=False),
        "title": Column(str, Check(lambda s: s.str.strip().str.len() > 0, name="title_not_empty", error="empty title")),
        "body": Column(str, nullable=True, required=False),
        "published_at": _utc(checks=[_not_future("published_at")]),
        "first_seen_at": _utc(),
        "backfilled": Column(bool, coerce=True),
    },
    name="articles",
)

article_sentiment_schema = DataFrameSchema(
    {
        "article_id": Column(str),
        "model_id": Column(str),
        "model_revision": Column(str, nullable=True, required=False),
        "p_bearish": Column(float, Check.in_range(0, 1), coerce=True),
        "p_neutral": Column(float, Check.in_range(0, 1), coerce=True),
        "p_bullish": Column(float, Check.in_range(0, 1), coerce=True),
        "score": Column(float, Check.in_range(-1, 1), coerce=True),
        "scored_at": _utc(),
    },
    checks=[
        Check(
            lambda df: (df["p_bearish"] + df["p_neutral"] + df["p_bullish"] - 1).abs() < 1e-4,
            name="probabilities_sum_to_one",
        ),
    ],
    unique=["article_id", "model_id"],
    name="article_sentiment",
)

social_counts_schema = DataFrameSchema(
    {
        "source": Column(str),
        "symbol": Column(str),
        "hour": _utc(checks=[_not_future("hour")]),
        "mentions": Column(int, _non_negative, coerce=True),
        "posts": Column(int, _non_negative, coerce=True),
        "first_seen_at": _utc(),
    },
    unique=["source", "symbol", "hour"],
    name="social_counts",
)

market_index_schema = DataFrameSchema(
    {
        "index_name": Column(str),
        "ts": _utc(checks=[_not_future("ts")]),
        "value": Column(float, Check.in_range(0, 100), coerce=True),
        "classification": Column(str, nullable=True),
        "source": Column(str),
    },
    unique=["index_name", "ts"],
    report_duplicates="exclude_first",
    name="market_index",
)

quarantine_schema = DataFrameSchema(
    {
        "target_table": Column(str),
        "source": Column(str),
        "row_key": Column(str),
        "check_name": Column(str),
        "reason": Column(str),
        "raw": Column(object),
    },
    name="quarantine",
)

predictions_schema = DataFrameSchema(
    {
        "prediction_id": Column(str, unique=True),
        "symbol": Column(str),
        "ts": _utc(),
        "horizon_h": Column(int, _positive, coerce=True),
        "model_name": Column(str),
        "model_version": Column(str),
        "feature_set_version": Column(str),
        "expected_return": Column(float, coerce=True),
        "p_up": Column(float, Check.in_range(0, 1), coerce=True),
        "direction": Column(int, Check.isin([-1, 1]), coerce=True),
        "interval_low": Column(float, nullable=True, coerce=True),
        "interval_high": Column(float, nullable=True, coerce=True),
        # the served distribution (migration 0011); absent or NULL in rows logged before it
        "interval_method": Column(str, nullable=True, required=False),
        "interval_level": Column(
            float,
            Check.in_range(0, 1, include_min=False, include_max=False),
            nullable=True,
            required=False,
            coerce=True,
        ),
        "volatility": Column(float, Check.ge(0), nullable=True, required=False, coerce=True),
        "aci_gamma": Column(float, Check.ge(0), nullable=True, required=False, coerce=True),
    },
    checks=[
        Check(
            lambda df: df["interval_low"].isna() | (df["interval_low"] <= df["interval_high"]), name="interval_ordered"
        )
    ],
    name="predictions",
)

TABLE_SCHEMAS: dict[str, DataFrameSchema] = {
    "candles": candles_schema,
    "articles": articles_schema,
    "article_sentiment": article_sentiment_schema,
    "social_counts": social_counts_schema,
    "market_index": market_index_schema,
    "quarantine": quarantine_schema,
    "predictions": predictions_schema,
}


def split_valid(schema: DataFrameSchema, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate lazily; return (valid rows, failures).

    `failures` has one row per (row index, failed check) with columns index, check, column,
    failure_case; a whole-frame check that fails on a row is attributed to that row's index.
    Rows the checks cannot attribute to an index fail the whole frame (re-raised).
    """
    if df.empty:
        return df, pd.DataFrame(columns=["index", "check", "column", "failure_case"])
    try:
        valid = schema.validate(df, lazy=True)
        return valid, pd.DataFrame(columns=["index", "check", "column", "failure_case"])
    except SchemaErrors as exc:
        fc = exc.failure_cases.copy()
        if fc["index"].isna().any():
            unattributed = fc[fc["index"].isna()]
            raise pa.errors.SchemaError(
                schema,
                df,
                f"{schema.name}: checks failed without row index: "
                f"{unattributed[['check', 'column']].drop_duplicates().to_dict('records')}",
            ) from exc
        fc["check"] = fc["check"].astype(str)
        failures = fc[["index", "check", "column", "failure_case"]].reset_index(drop=True)
        bad = set(failures["index"].tolist())
        valid_rows = df.loc[[i for i in df.index if i not in bad]]
        return schema.validate(valid_rows), failures


# ---- gold: the feature frame ---------------------------------------------------------------------
# Column checks by feature name; any feature not listed only has to be finite where defined.
# NaN means "missing" in a feature frame and is allowed unless the column is always defined.
_FEATURE_CHECKS: dict[str, tuple[list[Check], bool]] = {
    "rsi": ([Check.in_range(0, 100, name="rsi_in_0_100")], True),
    "hour_of_day": ([Check.in_range(0, 23, name="hour_of_day_in_0_23")], False),
    "day_of_week": ([Check.in_range(0, 6, name="day_of_week_in_0_6")], False),
    "is_weekend": ([Check.isin([0.0, 1.0], name="is_weekend_0_or_1")], False),
    "sentiment_count": ([Check.greater_than_or_equal_to(0, name="sentiment_count_non_negative")], False),
    "sentiment_count_24h": ([Check.greater_than_or_equal_to(0, name="sentiment_count_24h_non_negative")], True),
    "social_volume": ([Check.greater_than_or_equal_to(0, name="social_volume_non_negative")], True),
    "sentiment_mean": ([Check.in_range(-1, 1, name="sentiment_mean_in_-1_1")], True),
    "sentiment_mean_24h": ([Check.in_range(-1, 1, name="sentiment_mean_24h_in_-1_1")], True),
    "social_sentiment": ([Check.in_range(-1, 1, name="social_sentiment_in_-1_1")], True),
    "sentiment_extreme": ([Check.in_range(0, 1, name="sentiment_extreme_in_0_1")], True),
    "volatility_regime": ([Check.isin([0.0, 1.0, 2.0], name="volatility_regime_0_1_2")], True),
    "volume_ratio": ([Check.greater_than_or_equal_to(0, name="volume_ratio_non_negative")], True),
    "atr": ([Check.greater_than_or_equal_to(0, name="atr_non_negative")], True),
    "fear_greed": ([Check.in_range(0, 100, name="fear_greed_in_0_100")], True),
}


def _finite(name: str) -> Check:
    return Check(lambda s: ~s.isin([float("inf"), float("-inf")]), name=f"{name}_finite", error=f"{name} is infinite")


def feature_frame_schema(feature_names: list[str]) -> DataFrameSchema:
    """The schema of a feature frame (index ts, one float64 column per feature, NaN = missing)."""
    columns = {}
    for name in feature_names:
        checks, nullable = _FEATURE_CHECKS.get(name, ([], True))
        columns[name] = Column(float, [*checks, _finite(name)], nullable=nullable, coerce=True)
    return DataFrameSchema(columns, strict=True, ordered=True, name="features")
