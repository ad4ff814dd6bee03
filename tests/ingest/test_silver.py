"""Validation before silver: every row is written, unchanged, quarantined or skipped, never lost."""

from __future__ import annotations

import pandas as pd
import pytest

from rayapp.ingest.silver import SourceSummary, write_silver
from rayapp.warehouse.quarantine import QuarantinedRow
from tests.factories import candles


def _balanced(s: SourceSummary) -> bool:
    return s.read == s.written + s.unchanged + s.quarantined + s.skipped


def _quarantine(db, table: str) -> list[tuple]:
    return db.execute(
        "SELECT row_key, check_name, reason, raw FROM quarantine WHERE target_table = %s ORDER BY row_key, check_name",
        (table,),
    ).fetchall()


def test_bad_candles_are_quarantined_with_check_and_raw_row(db):
    df = candles(10, source="binance")
    df.loc[2, "high"] = df.loc[2, "open"] - 50  # high below max(open, close)
    df.loc[3, "volume"] = -1.0  # negative volume
    df.loc[4, "open_time"] = pd.Timestamp.now(tz="UTC") + pd.Timedelta(days=2)  # in the future
    df.loc[5, "open"] = float("nan")  # missing price
    s = write_silver(db, "candles", df, source="binance")
    assert (s.read, s.written, s.quarantined) == (10, 6, 4)
    assert _balanced(s)
    q = _quarantine(db, "candles")
    checks = {r[1] for r in q}
    assert {
        "high_ge_open_close",
        "volume:volume_non_negative",
        "open_time:open_time_not_in_future",
        "open:not_nullable",
    } <= checks
    bar = next(r for r in q if r[1] == "high_ge_open_close")
    assert bar[0] == f"binance|BTCUSDT|{df.loc[2, 'open_time']:%Y-%m-%dT%H:%M:%SZ}"
    assert bar[3]["high"] == pytest.approx(df.loc[2, "high"])  # the raw row is kept
    stored = db.execute("SELECT count(*) FROM candles").fetchone()[0]
    assert stored == 6


def test_duplicate_keys_keep_the_first_and_quarantine_every_other_copy(db):
    df = candles(5, source="binance")
    dup1, dup2 = df.iloc[[1]].copy(), df.iloc[[1]].copy()
    dup1["close"] = dup1["close"] * 1.001  # a different copy of the same hour
    df2 = pd.concat([df, dup1, dup2], ignore_index=True)
    s = write_silver(db, "candles", df2, source="binance")
    assert (s.read, s.written, s.quarantined) == (7, 5, 2)
    q = [r for r in _quarantine(db, "candles") if r[1] == "duplicate_key"]
    assert len(q) == 2 and len({r[0] for r in q}) == 2  # both copies kept apart
    close = db.execute(
        "SELECT close FROM candles WHERE open_time = %s", (df.loc[1, "open_time"].to_pydatetime(),)
    ).fetchone()[0]
    assert close == pytest.approx(df.loc[1, "close"])  # the first one won


def test_rerun_is_idempotent(db):
    df = candles(24, source="binance")
    df.loc[7, "low"] = df.loc[7, "high"] + 1
    first = write_silver(db, "candles", df, source="binance")
    n_q = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    second = write_silver(db, "candles", df, source="binance")
    assert (first.written, second.written, second.unchanged, second.quarantined) == (23, 0, 23, 1)
    assert db.execute("SELECT count(*) FROM quarantine").fetchone()[0] == n_q
    assert _balanced(second)


def test_changed_values_are_updated_not_duplicated(db):
    df = candles(4, source="binance")
    write_silver(db, "candles", df, source="binance")
    df.loc[3, "close"] = df.loc[3, "close"] * 1.0001  # the still-open bar closed differently
    df.loc[3, "high"] = max(df.loc[3, "high"], df.loc[3, "close"])
    s = write_silver(db, "candles", df, source="binance")
    assert (s.inserted, s.updated, s.unchanged) == (0, 1, 3)
    assert db.execute("SELECT count(*) FROM candles").fetchone()[0] == 4


def test_parser_rejects_and_skips_are_counted(db):
    df = candles(3, source="binance")
    rejected = [QuarantinedRow("f.csv#9", "csv_field_count", "expected 12 fields, got 3", {"fields": [1, 2, 3]})]
    s = write_silver(db, "candles", df, source="binance", rejected=rejected, skipped=2)
    assert (s.read, s.written, s.quarantined, s.skipped) == (6, 3, 1, 2)
    assert _balanced(s)
    assert _quarantine(db, "candles")[0][:2] == ("f.csv#9", "csv_field_count")


def test_articles_keep_when_they_were_first_seen(db):
    t = pd.Timestamp("2024-03-01 10:00", tz="UTC")
    live = pd.DataFrame(
        {
            "article_id": ["a1", "a2"],
            "kind": "news",
            "source": "cryptocompare",
            "guid": ["g1", "g2"],
            "url": ["https://x/1", "https://x/2"],
            "title": ["Bitcoin up", "  "],
            "body": ["b", "b"],
            "categories": [["BTC"], []],
            "published_at": [t, t],
            "first_seen_at": [t + pd.Timedelta(minutes=3)] * 2,
            "backfilled": False,
        }
    )
    s = write_silver(db, "articles", live, source="cryptocompare")
    assert (s.written, s.quarantined) == (1, 1)  # the blank title is quarantined
    assert _quarantine(db, "articles")[0][1] == "title:title_not_empty"
    later = live.iloc[[0]].copy()
    later["title"] = "Bitcoin up 5%"
    later["first_seen_at"] = t + pd.Timedelta(days=1)
    later["backfilled"] = True
    write_silver(db, "articles", later, source="news_csv")
    row = db.execute("SELECT title, first_seen_at, backfilled FROM articles").fetchone()
    assert row[0] == "Bitcoin up 5%"
    assert row[1] == t + pd.Timedelta(minutes=3) and row[2] is False


def test_market_index_and_social_counts(db):
    day = pd.Timestamp("2024-01-02", tz="UTC")
    mi = pd.DataFrame(
        {
            "index_name": "fear_greed",
            "ts": [day, day + pd.Timedelta(days=1)],
            "value": [47.0, 140.0],
            "classification": "Neutral",
            "source": "alternative.me",
        }
    )
    s = write_silver(db, "market_index", mi, source="alternative.me")
    assert (s.written, s.quarantined) == (1, 1)  # 140 is outside 0..100
    sc = pd.DataFrame(
        {
            "source": "reddit",
            "symbol": "BTCUSDT",
            "hour": [day],
            "mentions": [5],
            "posts": [9],
            "first_seen_at": [day + pd.Timedelta(hours=1)],
        }
    )
    assert write_silver(db, "social_counts", sc, source="reddit").written == 1


def test_one_transaction_with_the_caller(db):
    df = candles(3, source="binance")
    with pytest.raises(RuntimeError), db.transaction():
        write_silver(db, "candles", df, source="binance")
        raise RuntimeError("crash before the watermark commits")
    assert db.execute("SELECT count(*) FROM candles").fetchone()[0] == 0


def test_summary_round_trip_and_add():
    a = SourceSummary("binance", "candles", read=3, inserted=2, quarantined=1, requests=1)
    b = SourceSummary.from_dict(a.as_dict())
    assert b == a and b.written == 2
    a.add(SourceSummary("binance", errors=["down"], read=1, skipped=1))
    assert (a.read, a.skipped, a.ok) == (4, 1, False)
