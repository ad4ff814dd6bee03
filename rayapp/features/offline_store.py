"""GOLD offline store in PostgreSQL: read silver, upsert `features`, load stored features and closes.

`features.vals` is a double precision[] ordered as `feature_sets.feature_names`; NaN is kept as
NaN (missing), never NULL or 0. Loads are upserts on (symbol, ts, feature_set_version): running a
build twice writes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from rayapp.features.definitions import FeatureParams, registered_names
from rayapp.features.errors import FeatureSetNotFound
from rayapp.features.frame import FeatureInputs
from rayapp.features.inputs import FeatureInputError, candles_frame, inputs_from_silver, pick_source
from rayapp.features.pit import UTC_NS, utc_ns
from rayapp.warehouse import UpsertResult, upsert_frame

# Items can be published long before they become available (backfill lags); reading this much
# extra history before a bounded window keeps every item that could land in it.
_ITEM_SLACK = pd.Timedelta(days=7)


@contextmanager
def connection(target: Any) -> Iterator[psycopg.Connection]:
    """A connection from a psycopg Connection (used as is), a pool, or Settings."""
    if isinstance(target, psycopg.Connection):
        yield target
        return
    if hasattr(target, "connection"):
        with target.connection() as conn:
            yield conn
        return
    from rayapp.warehouse import get_pool

    with get_pool(target).connection() as conn:
        yield conn


def _frame(conn: psycopg.Connection, sql: str, params: Sequence[Any], columns: list[str]) -> pd.DataFrame:
    with conn.cursor() as cur:
        rows = cur.execute(sql, params).fetchall()  # type: ignore[arg-type]
    return pd.DataFrame(rows, columns=columns)


def _ts(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def candle_sources(conn: psycopg.Connection, symbol: str) -> dict[str, int]:
    rows = conn.execute("SELECT source, count(*) FROM candles WHERE symbol = %s GROUP BY source", (symbol,)).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def read_inputs(
    conn: psycopg.Connection, symbol: str, p: FeatureParams, start: Any = None, end: Any = None
) -> FeatureInputs:
    """The silver rows one symbol's features at hours in [start - warm-up, end) can read."""
    counts = candle_sources(conn, symbol)
    if not counts:
        raise FeatureInputError(f"no candles for symbol {symbol!r}: ingest or backfill prices first")
    source = pick_source(counts, p.candle_sources)
    lo = _ts(start) - pd.Timedelta(hours=p.warmup_h) if start is not None else None
    hi = _ts(end)
    lo_dt = lo.to_pydatetime() if lo is not None else None
    hi_dt = hi.to_pydatetime() if hi is not None else None
    candles = _frame(
        conn,
        "SELECT source, symbol, open_time, open, high, low, close, volume "
        "FROM candles WHERE symbol = %s AND source = %s "
        "AND (%s::timestamptz IS NULL OR open_time >= %s) "
        "AND (%s::timestamptz IS NULL OR open_time < %s) ORDER BY open_time",
        (symbol, source, lo_dt, lo_dt, hi_dt, hi_dt),
        ["source", "symbol", "open_time", "open", "high", "low", "close", "volume"],
    )
    item_lo = (lo - _ITEM_SLACK).to_pydatetime() if lo is not None else None
    item_hi = (hi + pd.Timedelta(hours=1)).to_pydatetime() if hi is not None else None
    window = "(%s::timestamptz IS NULL OR {t} >= %s) AND (%s::timestamptz IS NULL OR {t} < %s)"
    wparams = (item_lo, item_lo, item_hi, item_hi)
    # An article is available at first_seen_at (live) or published_at + lag (backfill): keep
    # every row either of those could put inside the window.
    art_window = (
        "(%s::timestamptz IS NULL OR a.first_seen_at >= %s OR a.published_at >= %s) AND "
        "(%s::timestamptz IS NULL OR LEAST(a.published_at, a.first_seen_at) < %s)"
    )
    aparams = (lo_dt, lo_dt, item_lo, item_hi, item_hi)
    articles = _frame(
        conn,
        "SELECT a.article_id, a.kind, a.source, a.published_at, a.first_seen_at, "
        "a.backfilled FROM articles a WHERE " + art_window,
        aparams,
        ["article_id", "kind", "source", "published_at", "first_seen_at", "backfilled"],
    )
    sentiment = _frame(
        conn,
        "SELECT s.article_id, s.model_id, s.score FROM article_sentiment s "
        "JOIN articles a USING (article_id) WHERE s.model_id = %s AND " + art_window,
        (p.sentiment_model_id, *aparams),
        ["article_id", "model_id", "score"],
    )
    social = _frame(
        conn,
        "SELECT source, symbol, hour, mentions, first_seen_at FROM social_counts "
        "WHERE symbol = %s AND " + window.format(t="hour"),
        (symbol, *wparams),
        ["source", "symbol", "hour", "mentions", "first_seen_at"],
    )
    market = _frame(
        conn,
        "SELECT index_name, ts, value, source, first_seen_at FROM market_index WHERE " + window.format(t="ts"),
        wparams,
        ["index_name", "ts", "value", "source", "first_seen_at"],
    )
    inputs = inputs_from_silver(symbol, candles, articles, sentiment, social, market, p)
    return inputs.window(lo, hi) if (lo is not None or hi is not None) else inputs


def write_features(
    conn: psycopg.Connection, symbol: str, feature_set_version: str, frame: pd.DataFrame
) -> UpsertResult:
    """Upsert the frame's rows (columns in the registered order) into `features`."""
    if frame.empty:
        return UpsertResult(0, 0, 0)
    values = frame.to_numpy(dtype="float64")
    out = pd.DataFrame(
        {
            "symbol": symbol,
            "ts": utc_ns(pd.Series(frame.index)).to_numpy(),
            "feature_set_version": feature_set_version,
            "vals": [list(map(float, row)) for row in values],
        }
    )
    result = upsert_frame(conn, "features", out, key=["symbol", "ts", "feature_set_version"], update=["vals"])
    conn.commit()
    return result


def _rows_to_frame(rows: list[tuple[Any, ...]], names: list[str]) -> pd.DataFrame:
    index = pd.DatetimeIndex(utc_ns(pd.Series([r[0] for r in rows], dtype="object")), name="ts")
    vals = np.array([r[1] for r in rows], dtype="float64").reshape(len(rows), len(names))
    return pd.DataFrame(vals, index=index, columns=names)


def latest_version(conn: psycopg.Connection, symbol: str, name: str | None = None) -> str:
    row = conn.execute(
        "SELECT fs.feature_set_version FROM feature_sets fs WHERE (%s::text IS NULL OR fs.name = %s) "
        "AND EXISTS (SELECT 1 FROM features f WHERE f.feature_set_version = fs.feature_set_version "
        "AND f.symbol = %s) ORDER BY fs.created_at DESC LIMIT 1",
        (name, name, symbol),
    ).fetchone()
    if row is None:
        raise FeatureSetNotFound(
            f"no stored features for {symbol!r}"
            + (f" in set {name!r}" if name else "")
            + ": run `rayapp features build`"
        )
    return str(row[0])


def load_features(
    conn_or_settings: Any, symbol: str, feature_set_version: str | None = None, start: Any = None, end: Any = None
) -> pd.DataFrame:
    """The stored features as a wide frame: index ts (UTC), one float64 column per feature in
    the registered order, NaN = missing; rows with start <= ts < end.

    Without a version: the one the current configuration produces when settings are given and
    it has rows, else the newest registered version with rows for the symbol. The version used
    is in `frame.attrs["feature_set_version"]`.
    """
    with connection(conn_or_settings) as conn:
        fsv = feature_set_version or _default_version(conn, conn_or_settings, symbol)
        names = registered_names(conn, fsv)
        lo, hi = _ts(start), _ts(end)
        rows = conn.execute(
            "SELECT ts, vals FROM features WHERE symbol = %s AND feature_set_version = %s "
            "AND (%s::timestamptz IS NULL OR ts >= %s) AND (%s::timestamptz IS NULL OR ts < %s) "
            "ORDER BY ts",
            (symbol, fsv, lo, lo, hi, hi),
        ).fetchall()
    frame = _rows_to_frame(rows, names)
    frame.attrs["feature_set_version"] = fsv
    frame.attrs["symbol"] = symbol
    return frame


def _default_version(conn: psycopg.Connection, target: Any, symbol: str) -> str:
    if hasattr(target, "features") and hasattr(target, "ingest"):
        from rayapp.features.definitions import feature_set_from_settings

        fsv = feature_set_from_settings(target, conn).version
        if conn.execute(
            "SELECT 1 FROM features WHERE symbol = %s AND feature_set_version = %s LIMIT 1", (symbol, fsv)
        ).fetchone():
            return fsv
        return latest_version(conn, symbol, target.features.set)
    return latest_version(conn, symbol)


def load_close(
    conn_or_settings: Any, symbol: str, feature_set_version: str | None = None, start: Any = None, end: Any = None
) -> pd.Series:
    """Hourly closes from the candle source the feature set reads (its `candle_sources`)."""
    with connection(conn_or_settings) as conn:
        pref: Sequence[str] = ()
        if feature_set_version:
            row = conn.execute(
                "SELECT params->'candle_sources' FROM feature_sets WHERE feature_set_version = %s",
                (feature_set_version,),
            ).fetchone()
            pref = list(row[0] or []) if row else []
        source = pick_source(candle_sources(conn, symbol), pref)
        lo, hi = _ts(start), _ts(end)
        df = _frame(
            conn,
            "SELECT open_time, open, high, low, close, volume FROM candles "
            "WHERE symbol = %s AND source = %s AND (%s::timestamptz IS NULL OR open_time >= %s) "
            "AND (%s::timestamptz IS NULL OR open_time < %s) ORDER BY open_time",
            (symbol, source, lo, lo, hi, hi),
            ["open_time", "open", "high", "low", "close", "volume"],
        )
    close = candles_frame(df)["close"] if not df.empty else pd.Series(dtype="float64")
    close.name = "close"
    return close


def latest_row(conn: psycopg.Connection, symbol: str, feature_set_version: str) -> pd.DataFrame:
    names = registered_names(conn, feature_set_version)
    rows = conn.execute(
        "SELECT ts, vals FROM features WHERE symbol = %s AND feature_set_version = %s ORDER BY ts DESC LIMIT 1",
        (symbol, feature_set_version),
    ).fetchall()
    return _rows_to_frame(rows, names)


__all__ = [
    "UTC_NS",
    "connection",
    "latest_row",
    "load_close",
    "load_features",
    "read_inputs",
    "write_features",
]
