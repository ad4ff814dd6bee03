"""The market replay server on real history (../shared/data), driven by the real clients."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pandas as pd
import pytest
from aiohttp import web

from rayapp.ingest import CLIENTS
from rayapp.ingest.http import TokenBucketLimiter, open_session
from rayapp.ingest.ids import article_id
from rayapp.replay.server import REPLAY, Clock, ReplayData, ReplayServer, make_app
from rayapp.services import free_port
from rayapp.testing import wait_until

T = pd.Timestamp
UTC = "UTC"


@pytest.fixture(scope="module")
def data(shared_data) -> ReplayData:
    return ReplayData.load(shared_data, ["btc_usd_1h_*.csv"])


@pytest.fixture
def fast(settings):
    s = settings.model_copy(deep=True)
    s.sources.backoff_initial_s = 0.01
    s.sources.backoff_max_s = 0.05
    s.ingest.timeout_s = 10
    return s


def point(s, url: str):
    for key in ("binance_url", "binance_fallback_url", "coinbase_url", "cryptocompare_url", "fear_greed_url"):
        setattr(s.sources, key, url)
    s.sources.coindesk_rss_url = url + "/arc/outboundfeeds/rss/"
    return s


@contextlib.asynccontextmanager
async def serve(app: web.Application):
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


async def fetch(s, source, key, start, end, rate=600_000):
    async with open_session(s) as session:
        return await CLIENTS[source](s, session, TokenBucketLimiter(source, rate)).fetch(key, start, end)


def frame(results) -> pd.DataFrame:
    return pd.concat([r.records for r in results], ignore_index=True)


@pytest.mark.integration  # the replay server on loopback
def test_whole_price_history_through_the_binance_client(fast, data, shared_data):
    """The benchmark's path: all 48,024 hours, 1000 a page, through a server on its own thread."""
    app = make_app(data)
    with ReplayServer(app) as url:
        res = asyncio.run(
            fetch(point(fast, url), "binance", "BTCUSDT", T("2019-01-01", tz=UTC), T("2025-06-01", tz=UTC))
        )
    df = frame(res)
    csv = pd.read_csv(shared_data / "btc_usd_1h_2019-11_2025-05.csv")
    assert len(res) == 49 == app[REPLAY].stats["requests"]
    assert len(df) == len(csv) == 48_024 and df["open_time"].is_unique
    assert (df["open_time"].astype("int64") // 10**9).tolist() == csv["time"].tolist()
    assert df["close"].tolist() == pytest.approx(csv["close"].tolist())
    assert df["quote_volume"].tolist() == pytest.approx(csv["volumeto"].tolist())
    # the real file's inconsistent bar is served as it is: validation (not the client) quarantines it
    bad = df[df["open_time"] == T("2021-01-04 05:00", tz=UTC)].iloc[0]
    assert bad["open"] > bad["high"]


@pytest.mark.integration  # the replay server on loopback
async def test_binance_api_semantics_and_weight_limit(data):
    app = make_app(data, weight_limit=8, weight_window_s=60)
    async with serve(app) as url, aiohttp.ClientSession() as http:

        async def get(**params):
            async with http.get(f"{url}/api/v3/klines", params=params) as r:
                return r.status, r.headers, await r.json()

        status, headers, body = await get(symbol="BTCUSDT", interval="1h", startTime=1574247600000, limit=3)
        assert status == 200 and [row[0] for row in body] == [1574247600000 + i * 3_600_000 for i in range(3)]
        assert body[0][6] == 1574247600000 + 3_599_999 and len(body[0]) == 12
        assert isinstance(body[0][1], str)  # prices as strings, like Binance
        assert headers["X-MBX-USED-WEIGHT-1M"] == "2"
        assert (await get(symbol="ETHBTC", interval="1h"))[2] == {"code": -1121, "msg": "Invalid symbol."}
        assert (await get(symbol="BTCUSDT", interval="1h", limit=5000))[2]["code"] == -1130
        status, headers, body = await get(symbol="BTCUSDT", interval="1h", endTime=1574254800000, limit=2)
        assert [row[0] for row in body] == [1574251200000, 1574254800000]  # the last `limit` before endTime
        status, headers, body = await get(symbol="BTCUSDT", interval="1h")
        assert status == 429 and body["code"] == -1003
        assert 1 <= int(headers["Retry-After"]) <= 60 and headers["X-MBX-USED-WEIGHT-1M"] == "10"
    assert app[REPLAY].stats["throttled"] == 1


@pytest.mark.integration  # the replay server on loopback
async def test_binance_client_slows_down_before_the_weight_limit(fast, data):
    """20 weight per 1 s window (10 calls); 12 pages. Reading X-MBX-USED-WEIGHT-1M the client
    pauses at 80% and is never throttled."""
    app = make_app(data, weight_limit=20, weight_window_s=1)
    fast.sources.binance_weight_limit, fast.sources.binance_weight_window_s = 20, 1
    async with serve(app) as url:
        res = await fetch(
            point(fast, url),
            "binance",
            "BTCUSDT",
            T("2020-01-01", tz=UTC),
            T("2020-01-01", tz=UTC) + pd.Timedelta(hours=12_000),
        )
    assert len(frame(res)) == 12_000 and app[REPLAY].stats["throttled"] == 0
    assert app[REPLAY].stats["requests"] == 12


@pytest.mark.integration  # the replay server on loopback
async def test_binance_client_recovers_from_429_past_the_limit(fast, data):
    """No soft slow-down: the replay answers 429 + Retry-After and the client waits and goes on."""
    app = make_app(data, weight_limit=10, weight_window_s=1)
    fast.sources.binance_weight_soft = 1.0
    fast.ingest.max_attempts = 5
    async with serve(app) as url:
        res = await fetch(
            point(fast, url),
            "binance",
            "BTCUSDT",
            T("2020-01-01", tz=UTC),
            T("2020-01-01", tz=UTC) + pd.Timedelta(hours=7_000),
        )
    df = frame(res)
    assert len(df) == 7_000 and df["open_time"].is_unique
    assert app[REPLAY].stats["throttled"] >= 1


@pytest.mark.integration  # the replay server on loopback
async def test_simulated_clock_serves_only_what_has_happened(fast, data, shared_data):
    now = T("2022-01-10 12:00", tz=UTC)
    app = make_app(data, Clock(now, speed=0))  # frozen clock
    async with serve(app) as url:
        s = point(fast, url)
        day = T("2022-01-10", tz=UTC)
        kl = await fetch(s, "binance", "BTCUSDT", day, day + pd.Timedelta(days=1))
        cc = await fetch(s, "cryptocompare", "BTC", day, day + pd.Timedelta(days=1))
        fg = await fetch(s, "fear_greed", "fear_greed", T("2022-01-01", tz=UTC), day + pd.Timedelta(days=5))
        candles, news, fng = frame(kl), frame(cc), frame(fg)
        (rss,) = await fetch(s, "coindesk", "rss", day, day)
        async with aiohttp.ClientSession() as http, http.get(f"{url}/fng/?limit=1") as r:
            assert pd.Timestamp(r.headers["Date"]) == now  # the server's clock is the simulated one
    # 12:00's bar is still open at 12:00 (dropped by the client); 00:00 .. 11:00 are closed
    assert candles["open_time"].tolist() == list(pd.date_range(day, periods=12, freq="h", tz=UTC))
    # how far a watermark may move: the simulated present, not the wall clock nor the window's end
    assert kl[-1].complete_until == now and cc[-1].complete_until == now
    assert fg[-1].complete_until == T("2022-01-11", tz=UTC)  # 2022-01-10's value is out

    raw = pd.read_csv(shared_data / "cryptonews_2021-10_2022-07.csv", sep=";", dtype=str, keep_default_na=False)
    raw["ts"] = pd.to_datetime(raw["date"], format="%d-%m-%Y %H:%M", utc=True)
    first = raw.groupby("url", sort=False).agg(ts=("ts", "first"), subjects=("subject", set))
    want = first[first["subjects"].map(lambda s: "bitcoin" in s) & (first["ts"] >= day) & (first["ts"] <= now)]
    assert len(want) > 0
    assert set(news["article_id"]) == {article_id("cryptocompare", u) for u in want.index}
    assert (news["published_at"] <= now).all()
    assert (news["first_seen_at"] == now).all()  # seen at the simulated time, not the wall clock

    assert fng["ts"].tolist() == list(pd.date_range("2022-01-01", "2022-01-10", freq="D", tz=UTC))  # deduped
    assert len(rss.records) == 25 and (rss.records["published_at"] <= now).all()
    assert rss.records["published_at"].max() == raw.loc[raw["ts"] <= now, "ts"].max()


def test_clock_moves_at_speed():
    start = T("2021-01-04", tz=UTC)
    clock = Clock(start, speed=3600, t0=time.monotonic() - 2)  # started 2 wall seconds ago
    now = clock.now()
    assert now is not None and start + pd.Timedelta(hours=2) <= now < start + pd.Timedelta(hours=3)
    assert Clock().now() is None  # no start: no clock, all history is served


@pytest.mark.integration  # a `rayapp replay` subprocess
def test_replay_command_serves_over_http(shared_data, state_dir):
    port = free_port()
    env = {**os.environ, "RAYAPP_STATE_DIR": str(state_dir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rayapp.cli",
            "replay",
            "--data",
            str(shared_data),
            "--port",
            str(port),
            "--start",
            "2021-01-04T06:00:00",
            "--speed",
            "0",
            "replay.weight_limit=100",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def replay_stats() -> dict | None:
            try:
                with urllib.request.urlopen(f"{url}/replay/stats", timeout=1) as r:
                    return json.loads(r.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                return None

        stats = wait_until(replay_stats, 60, interval_s=0.25, what="the replay server to come up")
        assert stats["now"].startswith("2021-01-04T06:00:00")
        with urllib.request.urlopen(f"{url}/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=2") as r:
            body = json.loads(r.read())
        assert [row[0] // 1000 for row in body] == [
            int(T("2021-01-04 05:00", tz=UTC).timestamp()),
            int(T("2021-01-04 06:00", tz=UTC).timestamp()),
        ]
    finally:
        proc.terminate()
        proc.wait(10)


def test_replay_command_help(capsys):
    from rayapp.cli import build_parser

    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["replay", "--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and "--speed" in out and "--start" in out and "key=value" in out


@pytest.mark.integration  # the replay server on loopback
def test_replay_serves_binance_exports_with_their_trade_counts(fast, shared_data):
    data = ReplayData.load(shared_data, ["binance_BTCUSDT-1h-2023-0*.csv"])
    assert len(data.klines) == 3_623

    async def go():
        async with serve(make_app(data)) as url:
            return await fetch(point(fast, url), "binance", "BTCUSDT", T("2023-01-01", tz=UTC), T("2023-06-01", tz=UTC))

    df = frame(asyncio.run(go()))
    csv = pd.concat(pd.read_csv(p) for p in sorted(shared_data.glob("binance_BTCUSDT-1h-2023-0*.csv")))
    assert len(df) == 3_623 and df["trades"].astype(int).tolist() == csv["count"].tolist()
