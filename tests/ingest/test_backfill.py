"""CSV backfill: the real files in ../shared/data, and generated files with every defect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rayapp.ingest.backfill import BackfillError, backfill_file, parse_file

LAGS = {"default": 5.0, "cryptonews": 2.0}
BAR = pd.Timestamp("2021-01-04 05:00", tz="UTC")


def _load(db, kind: str, path: Path, fmt: str | None = None):
    return backfill_file(db, kind, path, fmt, symbol="BTCUSDT", lags=LAGS)


def _count(db, sql: str, *params) -> int:
    return int(db.execute(sql, params).fetchone()[0])


@pytest.mark.realdata
def test_real_price_file_quarantines_the_inconsistent_bar(db, shared_data):
    path = shared_data / "btc_usd_1h_2019-11_2025-05.csv"
    s = _load(db, "prices", path)
    assert (s.read, s.written, s.quarantined, s.skipped) == (48024, 48023, 1, 0)
    assert _count(db, "SELECT count(*) FROM candles WHERE source = 'cryptocompare'") == 48023
    assert _count(db, "SELECT count(*) FROM candles WHERE open_time = %s", BAR.to_pydatetime()) == 0
    key, check, raw = db.execute("SELECT row_key, check_name, raw FROM quarantine").fetchone()
    assert key == "cryptocompare|BTCUSDT|2021-01-04T05:00:00Z" and check == "high_ge_open_close"
    assert raw["open"] == "33287.7" and raw["high"] == "33128.82"  # the raw CSV fields
    # close comes before low in this export: a bar's close must land in `close`.
    row = db.execute(
        "SELECT open, high, low, close, volume, quote_volume FROM candles WHERE open_time = '2019-11-20 11:00+00'"
    ).fetchone()
    assert row == pytest.approx((8073.27, 8109.55, 8064.8, 8098.82, 575.88, 4665150.84))
    again = _load(db, "prices", path)
    assert (again.written, again.unchanged, again.quarantined) == (0, 48023, 1)
    assert _count(db, "SELECT count(*) FROM quarantine") == 1


@pytest.mark.realdata
def test_real_binance_exports(db, shared_data):
    total = 0
    for path in sorted(shared_data.glob("binance_BTCUSDT-1h-2023-0*.csv")):
        s = _load(db, "prices", path)
        assert s.quarantined == 0 and s.written == s.read
        total += s.read
    assert total == 3623
    first = db.execute(
        "SELECT symbol, open, close, trades, quote_volume FROM candles "
        "WHERE source = 'binance' ORDER BY open_time LIMIT 1"
    ).fetchone()
    assert first == ("BTCUSDT", 16541.77, 16529.67, 149854, pytest.approx(72146293.5867229))
    # The 2023-03-24 halt bar closed early; it is still that hour's bar.
    assert _count(db, "SELECT count(*) FROM candles WHERE open_time = '2023-03-24 12:00+00'") == 1


@pytest.mark.realdata
def test_real_news_file(db, shared_data):
    s = _load(db, "news", shared_data / "cryptonews_2021-10_2022-07.csv")
    assert (s.read, s.written, s.quarantined) == (7524, 7496, 28)
    assert _count(db, "SELECT count(DISTINCT row_key) FROM quarantine WHERE check_name = 'title:title_not_empty'") == 28
    # Day-first, naive, treated as UTC; backfilled rows are available published_at + lag later.
    row = db.execute(
        "SELECT published_at, first_seen_at, backfilled, source, categories FROM articles WHERE url = %s",
        ("https://cryptonews.com/news/bitcoin-returns-above-usd-20k-ethereum-rallies-cel-keeps-outperforming.htm",),
    ).fetchone()
    assert row[0] == pd.Timestamp("2022-07-05 04:24", tz="UTC")
    assert row[1] - row[0] == pd.Timedelta(minutes=2)  # the cryptonews lag
    assert row[2] is True and row[3] == "cryptonews" and row[4] == ["bitcoin"]
    cols = {
        r[0]
        for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'articles'"
        ).fetchall()
    }
    assert "sentiment" not in cols  # the TextBlob column is never stored as a label
    assert _count(db, "SELECT count(*) FROM articles WHERE url IS NULL") == 32  # no URL, still kept
    assert _load(db, "news", shared_data / "cryptonews_2021-10_2022-07.csv").written == 0


@pytest.mark.realdata
def test_real_fear_greed_file_one_row_per_day(db, shared_data):
    s = _load(db, "fear-greed", shared_data / "fear_greed_index_2018-02_2024-11.csv")
    assert (s.read, s.written, s.skipped, s.quarantined) == (4981, 2487, 2494, 0)
    assert _count(db, "SELECT count(*) FROM market_index WHERE ts <> date_trunc('day', ts)") == 0
    v = db.execute("SELECT value, classification FROM market_index WHERE ts = '2024-11-25+00'").fetchone()
    assert v == (82.0, "Extreme Greed")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_malformed_price_rows_go_to_quarantine_with_the_raw_row(db, tmp_path):
    text = (
        "time,date,hour,open,high,close,low,volumefrom,volumeto\n"
        "1704067200,2024-01-01,0,100,110,105,95,1,100\n"
        "1704070800,2024-01-01,1,105,abc,106,100,1,100\n"  # not a number
        "1704074400,2024-01-01,2,106,110\n"  # truncated line
        "1704078000,2024-01-01,4,106,110,107,100,1,100\n"  # time != date + hour
        "1704081600,2024-01-01,4,107,111,108,101,-3,100\n"  # negative volume
        "1704081600,2024-01-01,4,107,111,108,101,2,100\n"  # duplicate hour
        "\n"
        "1704085200,2024-01-01,5,108,112,109,,1,100\n"  # empty low
    )
    s = _load(db, "prices", _write(tmp_path, "cc.csv", text))
    assert (s.read, s.written, s.quarantined) == (7, 1, 6)
    checks = dict(db.execute("SELECT row_key, check_name FROM quarantine").fetchall())
    assert checks["cc.csv#2"] == "high:unparseable_number"
    assert checks["cc.csv#3"] == "csv_field_count"
    assert checks["cc.csv#4"] == "time_matches_date_hour"
    assert "volume:volume_non_negative" in checks.values()
    assert "duplicate_key" in checks.values() and "low:not_nullable" in checks.values()
    raw = db.execute("SELECT raw FROM quarantine WHERE row_key = 'cc.csv#3'").fetchone()[0]
    assert raw["fields"] == ["1704074400", "2024-01-01", "2", "106", "110"]


def test_binance_without_header_and_microseconds(db, tmp_path):
    us = 1_735_689_600_000_000  # 2025-01-01 00:00 in µs (exports from 2025 on)
    rows = [f"{us + i * 3_600_000_000},1,2,0.5,1.5,10,{us + (i + 1) * 3_600_000_000 - 1},15,7,5,7,0" for i in range(3)]
    s = _load(db, "prices", _write(tmp_path, "ETHUSDT-1h-2025-01.csv", "\n".join(rows) + "\n"))
    assert s.written == 3
    sym, t0 = db.execute("SELECT symbol, min(open_time) FROM candles GROUP BY symbol").fetchone()
    assert sym == "ETHUSDT" and t0 == pd.Timestamp("2025-01-01", tz="UTC")


def test_minute_klines_are_refused_whole(db, tmp_path):
    rows = [
        f"{1_700_000_000_000 + i * 60_000},1,2,0.5,1.5,10,{1_700_000_000_000 + (i + 1) * 60_000 - 1},15,7,5,7,0"
        for i in range(5)
    ]
    with pytest.raises(BackfillError, match="not 1h"):
        _load(db, "prices", _write(tmp_path, "BTCUSDT-1m-2023-11.csv", "\n".join(rows)), "binance")
    assert _count(db, "SELECT count(*) FROM candles") == 0


def test_wrong_header_is_a_clear_error(tmp_path):
    with pytest.raises(BackfillError, match="header"):
        parse_file("news", _write(tmp_path, "news.csv", "a;b;c\n1;2;3\n"), None, symbol="X", lags=LAGS)
    with pytest.raises(BackfillError, match="unknown price format"):
        parse_file("prices", _write(tmp_path, "p.csv", "x,y\n"), None, symbol="X", lags=LAGS)
    with pytest.raises(BackfillError, match="no such file"):
        parse_file("prices", tmp_path / "missing.csv", None, symbol="X", lags=LAGS)


def test_news_bad_dates_and_fear_greed_conflicts(db, tmp_path):
    news = (
        "date;sentiment;source;subject;text;title;url\n"
        "13-1-2022 09:05;{};CoinTelegraph;bitcoin;t1;A title;https://x/1\n"
        "2022-01-13 09:05;{};CoinTelegraph;bitcoin;t2;Other;https://x/2\n"  # not day-first
        "1-2-2022 00:00;{};CryptoPotato;defi;t3;No url;\n"
    )
    s = _load(db, "news", _write(tmp_path, "news.csv", news))
    assert (s.read, s.written, s.quarantined) == (3, 2, 1)
    assert _count(db, "SELECT count(*) FROM articles WHERE published_at = '2022-02-01+00'") == 1  # 1 Feb
    fg = (
        "value,value_classification,timestamp\n"
        "40,Fear,2024-01-02\n40,Fear,2024-01-02 00:00:00\n"  # the same day twice: skipped
        "55,Greed,2024-01-03 00:00:00\n60,Greed,2024-01-03\n"  # two values for one day
        "50,Neutral,yesterday\n"
    )
    s = _load(db, "fear-greed", _write(tmp_path, "fear.csv", fg))
    assert (s.read, s.written, s.skipped, s.quarantined) == (5, 2, 1, 2)
    assert db.execute("SELECT value FROM market_index WHERE ts = '2024-01-03+00'").fetchone()[0] == 55


def _cli(*args: str) -> subprocess.CompletedProcess:
    # A subprocess: the real `rayapp` entry point, with its own stderr for logging.
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "rayapp.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def test_backfill_cli(db, tmp_path):
    path = _write(tmp_path, "fear.csv", "value,value_classification,timestamp\n40,Fear,2024-01-02\n")
    r = _cli("backfill", "fear-greed", str(path))
    assert r.returncode == 0, r.stderr
    assert "fear_greed" in r.stdout and " ok" in r.stdout  # the row; the table it wrote is in --json
    assert _count(db, "SELECT count(*) FROM market_index") == 1


def test_backfill_cli_errors_and_help(db, settings, tmp_path, capsys):
    from rayapp.cli import build_parser, main

    assert main(["backfill", "prices", str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["backfill", "prices", "--help"])
    assert exc.value.code == 0 and "--format" in capsys.readouterr().out
