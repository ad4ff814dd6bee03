"""Migrations, COPY+upsert idempotence and quarantine on the real embedded PostgreSQL."""

import math

import numpy as np
import pandas as pd
import pytest

from rayapp.warehouse import quarantine_rows, table_counts, upsert_frame
from rayapp.warehouse.loader import DuplicateKeyError
from rayapp.warehouse.migrate import applied, available, migrate
from rayapp.warehouse.quarantine import QuarantinedRow
from tests import factories

KEY = ["source", "symbol", "open_time"]


def test_migrations_are_ordered_and_idempotent(db):
    versions = [m.version for m in available()]
    assert versions == sorted(versions) and versions[0] == "0001"
    assert migrate(db) == []  # the pool applied them already
    assert migrate(db) == []
    assert [v for v, _ in applied(db)] == versions
    tables = {
        r[0] for r in db.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
    }
    assert {
        "candles",
        "articles",
        "article_sentiment",
        "social_counts",
        "market_index",
        "quarantine",
        "features",
        "predictions",
        "schema_migrations",
    } <= tables
    # every time column is timestamptz
    types = {
        r[0]
        for r in db.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_schema='public' AND (column_name LIKE '%%_at' "
            "OR column_name IN ('ts', 'open_time', 'hour', 'watermark'))"
        )
    }
    assert types == {"timestamp with time zone"}


def test_upsert_inserts_then_changes_nothing_then_updates(db):
    df = factories.candles(100)
    first = upsert_frame(db, "candles", df, key=KEY)
    assert (first.inserted, first.updated) == (100, 0)
    again = upsert_frame(db, "candles", df, key=KEY)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 100)
    changed = df.copy()
    changed.loc[5, "close"] = changed.loc[5, "close"] * 1.01
    third = upsert_frame(
        db,
        "candles",
        pd.concat([changed, factories.candles(3, start="2024-02-01 00:00", seed=1)], ignore_index=True),
        key=KEY,
    )
    assert (third.inserted, third.updated) == (3, 1)
    assert table_counts(db)["candles"] == 103


def test_values_round_trip_exactly(db):
    df = factories.candles(10)
    df.loc[3, "quote_volume"] = np.nan
    df.loc[4, "trades"] = None
    df["trades"] = df["trades"].astype("Int64")
    upsert_frame(db, "candles", df, key=KEY)
    rows = db.execute("SELECT open_time, close, quote_volume, trades FROM candles ORDER BY open_time").fetchall()
    assert [r[1] for r in rows] == df["close"].tolist()  # floats are bit-identical
    assert rows[3][2] is None and rows[4][3] is None
    assert rows[0][0] == df.loc[0, "open_time"].to_pydatetime()
    assert rows[0][0].utcoffset().total_seconds() == 0


def test_arrays_json_and_nan_in_arrays(db):
    db.execute("INSERT INTO feature_sets (feature_set_version, name, feature_names) VALUES ('v1', 'core', '{a,b,c}')")
    feats = pd.DataFrame(
        {
            "symbol": ["BTCUSDT", "BTCUSDT"],
            "ts": pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00"], utc=True),
            "feature_set_version": ["v1", "v1"],
            "vals": [[1.0, math.nan, 0.1 + 0.2], [2.0, 3.0, -1e-300]],
        }
    )
    assert upsert_frame(db, "features", feats, key=["symbol", "ts", "feature_set_version"]).inserted == 2
    assert upsert_frame(db, "features", feats, key=["symbol", "ts", "feature_set_version"]).updated == 0
    vals = db.execute("SELECT vals FROM features ORDER BY ts").fetchall()
    assert math.isnan(vals[0][0][1]) and vals[0][0][2] == 0.1 + 0.2 and vals[1][0][2] == -1e-300
    art = pd.DataFrame(
        {
            "article_id": ["a1"],
            "source": ["x"],
            "title": ['He said "hi", \\ then\ttab,\nnewline'],
            "categories": [["BTC", 'a "quoted", one']],
            "published_at": [pd.Timestamp("2024-01-01", tz="UTC")],
            "first_seen_at": [pd.Timestamp("2024-01-01 00:05", tz="UTC")],
        }
    )
    upsert_frame(db, "articles", art, key=["article_id"])
    title, cats = db.execute("SELECT title, categories FROM articles").fetchone()
    assert title == art.loc[0, "title"] and cats == art.loc[0, "categories"]


def test_duplicate_keys_are_refused_not_dropped(db):
    df = factories.candles(5)
    dup = pd.concat([df, df.iloc[[2]]], ignore_index=True)
    with pytest.raises(DuplicateKeyError, match="2 rows share a key"):
        upsert_frame(db, "candles", dup, key=KEY)
    assert table_counts(db)["candles"] == 0


def test_unknown_column_is_a_clear_error(db):
    df = factories.candles(2).assign(nonsense=1)
    with pytest.raises(ValueError, match="unknown columns"):
        upsert_frame(db, "candles", df, key=KEY)


def test_quarantine_is_idempotent_and_keeps_the_raw_row(db):
    rows = [
        QuarantinedRow(
            "binance|BTCUSDT|2021-01-04T05:00",
            "high_ge_open_close",
            "high below max(open, close)",
            {"open": 1.0, "high": 0.5, "ts": pd.Timestamp("2021-01-04 05:00", tz="UTC"), "bad": float("nan")},
        )
    ]
    assert quarantine_rows(db, "candles", "binance", rows) == 1
    assert quarantine_rows(db, "candles", "binance", rows) == 1
    got = db.execute("SELECT check_name, reason, raw FROM quarantine").fetchall()
    assert len(got) == 1
    assert got[0][0] == "high_ge_open_close"
    assert got[0][2]["high"] == 0.5 and got[0][2]["bad"] is None and got[0][2]["ts"].startswith("2021-01-04")


@pytest.mark.realdata
def test_real_history_copy_upsert_twice(db, shared_data):
    """The 48,024 real hourly candles: the second load inserts 0 and changes 0."""
    raw = pd.read_csv(shared_data / "btc_usd_1h_2019-11_2025-05.csv")
    df = pd.DataFrame(
        {
            "source": "cryptocompare",
            "symbol": "BTCUSD",
            "open_time": pd.to_datetime(raw["time"], unit="s", utc=True),
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "volume": raw["volumefrom"],
            "quote_volume": raw["volumeto"],
        }
    )
    assert len(df) == 48_024
    first = upsert_frame(db, "candles", df, key=KEY)
    assert (first.inserted, first.updated) == (48_024, 0)
    second = upsert_frame(db, "candles", df, key=KEY)
    assert (second.inserted, second.updated, second.unchanged) == (0, 0, 48_024)
    assert table_counts(db)["candles"] == 48_024
