"""Each source client against a loopback server speaking its API (real HTTP, no monkeypatching)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rayapp.ingest import CLIENTS
from rayapp.ingest.binance import GEO_BLOCKED
from rayapp.ingest.http import TokenBucketLimiter, open_session
from rayapp.ingest.ids import article_id
from rayapp.ingest.types import SILVER_COLUMNS, ApiError, MalformedResponse
from tests.ingest.faults import HOUR_MS, FaultServer, kline, klines_handler, respond

T0 = pd.Timestamp("2023-01-01", tz="UTC")
T0_MS = int(T0.timestamp() * 1000)
KLINES = "/api/v3/klines"


@pytest.fixture
def fast(settings):
    s = settings.model_copy(deep=True)
    s.sources.backoff_initial_s = 0.01
    s.sources.backoff_max_s = 0.05
    s.ingest.max_attempts = 3
    s.ingest.timeout_s = 2
    return s


def point(s, srv: FaultServer, fallback: FaultServer | None = None):
    for key in ("binance_url", "coinbase_url", "cryptocompare_url", "fear_greed_url", "reddit_url", "reddit_auth_url"):
        setattr(s.sources, key, srv.url)
    s.sources.binance_fallback_url = (fallback or srv).url
    s.sources.coindesk_rss_url = srv.url + "/arc/outboundfeeds/rss/"
    return s


async def fetch(s, source: str, key: str, start: pd.Timestamp, end: pd.Timestamp):
    async with open_session(s) as session:
        client = CLIENTS[source](s, session, TokenBucketLimiter(source, 600_000))
        return await client.fetch(key, start, end)


def records(results) -> pd.DataFrame:
    return pd.concat([r.records for r in results], ignore_index=True)


# ---- Binance -----------------------------------------------------------------------------------
@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_pages_by_start_time_and_normalises(fast):
    bars = [kline(T0_MS + i * HOUR_MS, 20000 + i) for i in range(2500)]
    async with FaultServer(defaults={KLINES: klines_handler(bars, weight_header=lambda: "10")}) as srv:
        res = await fetch(point(fast, srv), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=2500))
    starts = [int(r.query["startTime"]) for r in srv.requests(KLINES)]
    assert starts == [T0_MS, T0_MS + 1000 * HOUR_MS, T0_MS + 2000 * HOUR_MS]
    assert all(r.query["limit"] == "1000" for r in srv.requests(KLINES))
    df = records(res)
    assert len(df) == 2500 and df["open_time"].is_unique and df["open_time"].is_monotonic_increasing
    assert list(df.columns) == SILVER_COLUMNS["candles"]
    assert str(df["open_time"].dtype) == "datetime64[ns, UTC]"
    assert df.loc[0, "open"] == 20000.0 and df.loc[0, "trades"] == 100
    assert [r.meta["used_weight"] for r in res] == [10, 10, 10]
    assert [r.complete_until for r in res] == [T0 + pd.Timedelta(hours=h) for h in (1000, 2000, 2500)]
    assert all(r.payload.startswith("[[") and r.status == 200 and r.table == "candles" for r in res)


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_drops_the_open_bar(fast):
    now_hour = pd.Timestamp.now(tz="UTC").floor("h")
    first = int((now_hour - pd.Timedelta(hours=3)).timestamp() * 1000)
    bars = [kline(first + i * HOUR_MS) for i in range(4)]  # the last one closes in the future
    async with FaultServer(defaults={KLINES: klines_handler(bars)}) as srv:
        res = await fetch(
            point(fast, srv), "binance", "BTCUSDT", now_hour - pd.Timedelta(hours=3), now_hour + pd.Timedelta(hours=1)
        )
    df = records(res)
    assert len(df) == 3 and df["open_time"].max() == now_hour - pd.Timedelta(hours=1)
    assert res[-1].meta["skipped_reasons"]["open_bar"] == 1
    assert res[-1].complete_until == now_hour  # the watermark must not pass the open bar


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_switches_to_fallback_host_on_451(fast):
    bars = [kline(T0_MS + i * HOUR_MS) for i in range(5)]
    async with FaultServer() as main, FaultServer(defaults={KLINES: klines_handler(bars)}) as fb:
        main.script(KLINES, respond(451, {"code": 0, "msg": "Service unavailable from a restricted location"}))
        res = await fetch(point(fast, main, fb), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=5))
        assert len(records(res)) == 5 and res[0].meta["host"] == fb.url
        assert len(main.requests(KLINES)) == 1 and len(fb.requests(KLINES)) == 1
        # the next client of this process goes straight to the fallback host
        try:
            await fetch(point(fast, main, fb), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=5))
        finally:
            GEO_BLOCKED.discard(main.url)  # a later server may get this port again
        assert len(main.requests(KLINES)) == 1 and len(fb.requests(KLINES)) == 2


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_invalid_symbol(fast):
    async with FaultServer(defaults={KLINES: klines_handler([])}) as srv:
        with pytest.raises(ApiError, match=r"Invalid symbol\.") as err:
            await fetch(point(fast, srv), "binance", "BTCUSDX", T0, T0 + pd.Timedelta(hours=5))
    assert err.value.code == -1121 and len(srv.requests(KLINES)) == 1


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
@pytest.mark.parametrize("body", ['[[1672531200000, "16541.77", "16545.7"', '{"code": 0, "msg": }', "<html>"])
async def test_binance_malformed_or_truncated_json_keeps_the_payload(fast, body):
    async with FaultServer() as srv:
        srv.script(KLINES, respond(200, text=body))
        with pytest.raises(MalformedResponse, match="not JSON") as err:
            await fetch(point(fast, srv), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=5))
    assert err.value.payload == body and len(srv.requests(KLINES)) == 1


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_empty_page_ends_the_window(fast):
    async with FaultServer(defaults={KLINES: klines_handler([])}) as srv:
        res = await fetch(point(fast, srv), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=5000))
    assert len(res) == 1 and res[0].records.empty and res[0].payload == "[]"
    assert list(res[0].records.columns) == SILVER_COLUMNS["candles"]


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_duplicates_out_of_order_and_bad_rows_are_all_accounted_for(fast):
    rows = [
        kline(T0_MS + 2 * HOUR_MS),
        kline(T0_MS),
        kline(T0_MS + HOUR_MS),
        kline(T0_MS + HOUR_MS),
        [T0_MS + 3 * HOUR_MS, "abc", "1", "1", "1", "1", T0_MS + 4 * HOUR_MS - 1, "1", 1, "1", "1", "0"],
        [T0_MS + 4 * HOUR_MS, "1"],
    ]
    async with FaultServer() as srv:
        srv.script(KLINES, respond(200, rows))
        res = await fetch(point(fast, srv), "binance", "BTCUSDT", T0, T0 + pd.Timedelta(hours=6))
    (page,) = res
    # sorted; the duplicate is kept for validation to quarantine (not silently collapsed)
    assert page.records["open_time"].tolist() == [
        T0,
        T0 + pd.Timedelta(hours=1),
        T0 + pd.Timedelta(hours=1),
        T0 + pd.Timedelta(hours=2),
    ]
    assert [r.check_name for r in page.rejects] == ["parse_kline", "parse_kline"]
    assert page.rejects[0].raw["open"] == "abc" and page.rejects[0].row_key == f"BTCUSDT|{T0_MS + 3 * HOUR_MS}"
    assert page.read == len(rows)


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_binance_parses_the_real_export(fast, shared_data):
    csv = pd.read_csv(shared_data / "binance_BTCUSDT-1h-2023-01.csv")
    bars = [
        [
            int(r[0]),
            *(f"{x:.8f}" for x in r[1:6]),
            int(r[6]),
            f"{r[7]:.8f}",
            int(r[8]),
            f"{r[9]:.8f}",
            f"{r[10]:.8f}",
            "0",
        ]
        for r in csv.itertuples(index=False)
    ]
    async with FaultServer(defaults={KLINES: klines_handler(bars)}) as srv:
        res = await fetch(point(fast, srv), "binance", "BTCUSDT", T0, pd.Timestamp("2023-02-01", tz="UTC"))
    df = records(res)
    assert len(df) == len(csv) == 744
    assert df["open_time"].iloc[0] == pd.Timestamp(int(csv["open_time"].iloc[0]), unit="ms", tz="UTC")
    assert df["close"].tolist() == pytest.approx(csv["close"].tolist())
    assert df["quote_volume"].tolist() == pytest.approx(csv["quote_volume"].tolist())
    assert df["trades"].astype(int).tolist() == csv["count"].tolist()


# ---- Coinbase ----------------------------------------------------------------------------------
@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_coinbase_reorders_sorts_and_keeps_gaps(fast):
    t = int(T0.timestamp())
    # newest first, [time, low, high, open, close, volume]; hour 2 had no trades
    rows = [[t + 3 * 3600, 9, 14, 10, 13, 5.0], [t + 3600, 8, 12, 9, 11, 3.0], [t, 7, 11, 8, 10, 2.0]]
    async with FaultServer() as srv:
        srv.script("/products/BTC-USD/candles", respond(200, rows))
        res = await fetch(point(fast, srv), "coinbase", "BTCUSDT", T0, T0 + pd.Timedelta(hours=4))
    df = records(res)
    assert df["open_time"].tolist() == [T0, T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=3)]
    first = df.iloc[0]
    assert (first.low, first.high, first.open, first.close, first.volume) == (7, 11, 8, 10, 2.0)
    (req,) = srv.requests("/products/BTC-USD/candles")
    assert req.query["granularity"] == "3600"
    assert pd.Timestamp(req.query["end"]) == T0 + pd.Timedelta(hours=3)  # inclusive end


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_coinbase_pages_300_at_a_time(fast):
    async with FaultServer() as srv:
        srv.script("/products/BTC-USD/candles", respond(200, []), respond(200, []), respond(200, []))
        await fetch(point(fast, srv), "coinbase", "BTCUSDT", T0, T0 + pd.Timedelta(hours=700))
    starts = [pd.Timestamp(r.query["start"]) for r in srv.requests("/products/BTC-USD/candles")]
    assert starts == [T0, T0 + pd.Timedelta(hours=300), T0 + pd.Timedelta(hours=600)]


# ---- CryptoCompare -----------------------------------------------------------------------------
def cc_item(i: int, ts: int, **kw):
    return {
        "id": str(i),
        "guid": f"https://news.example/{i}",
        "published_on": ts,
        "title": f"BTC news {i}",
        "url": f"https://news.example/{i}",
        "body": "body",
        "categories": "BTC|Market",
        "lang": "EN",
        "source": "example",
        "source_info": {"name": "Example"},
        **kw,
    }


def cc_handler(items):
    async def run(request):
        lts = int(request.query.get("lTs", 2**40))
        page = sorted((x for x in items if x["published_on"] <= lts), key=lambda x: -x["published_on"])[:50]
        return await respond(200, {"Type": 100, "Message": "News list successfully returned", "Data": page})(request)

    return run


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_cryptocompare_pages_back_with_lts_and_sends_the_key(fast):
    base = int(T0.timestamp())
    items = [cc_item(i, base + i * 600) for i in range(120)]
    items.append(cc_item(999, base + 70 * 600))  # same second as another item, across a page edge
    async with FaultServer(defaults={"/data/v2/news/": cc_handler(items)}) as srv:
        s = point(fast, srv)
        s.sources.cryptocompare_api_key = "secret-key"
        res = await fetch(s, "cryptocompare", "BTC", T0, T0 + pd.Timedelta(days=2))
    df = records(res)
    assert len(df) == 121 and df["article_id"].is_unique
    assert set(df["article_id"]) == {article_id("cryptocompare", x["guid"]) for x in items}
    reqs = srv.requests("/data/v2/news/")
    assert all(r.headers["authorization"] == "Apikey secret-key" for r in reqs)
    assert int(reqs[0].query["lTs"]) == int((T0 + pd.Timedelta(days=2)).timestamp())
    assert int(reqs[1].query["lTs"]) == base + 70 * 600  # the oldest published_on of page 1
    assert df.loc[0, "categories"] == ["BTC", "Market"] and df.loc[0, "kind"] == "news"


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_cryptocompare_error_body_fails_with_its_message(fast):
    async with FaultServer() as srv:
        srv.script(
            "/data/v2/news/",
            respond(200, {"Response": "Error", "Message": "You are over your rate limit", "Type": 99, "Data": []}),
        )
        with pytest.raises(ApiError, match="over your rate limit"):
            await fetch(point(fast, srv), "cryptocompare", "BTC", T0, T0 + pd.Timedelta(days=1))


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_cryptocompare_unparseable_items_are_rejected_not_dropped(fast):
    items = [cc_item(1, int(T0.timestamp()) + 10), cc_item(2, "yesterday"), {"title": "no id"}]
    async with FaultServer() as srv:
        srv.script(
            "/data/v2/news/", respond(200, {"Type": 100, "Data": items}), respond(200, {"Type": 100, "Data": []})
        )  # nothing older: paging ends
        res = await fetch(point(fast, srv), "cryptocompare", "BTC", T0, T0 + pd.Timedelta(hours=1))
    assert len(res) == 2 and res[1].records.empty
    assert len(res[0].records) == 1 and len(res[0].rejects) == 2
    assert {r.check_name for r in res[0].rejects} == {"parse_article"}


# ---- CoinDesk RSS ------------------------------------------------------------------------------
RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>CoinDesk</title>
<item><title>Bitcoin rallies</title><link>https://www.coindesk.com/a</link><guid isPermaLink="false">g-a</guid>
<pubDate>Tue, 03 Jan 2023 10:15:00 +0000</pubDate><category>Markets</category><category>Bitcoin</category></item>
<item><title>Ether slips</title><link>https://www.coindesk.com/b</link>
<pubDate>Tue, 03 Jan 2023 05:00:00 EST</pubDate></item>
<item><title>Broken date</title><link>https://www.coindesk.com/c</link><pubDate>yesterday-ish</pubDate></item>
</channel></rss>"""


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_coindesk_rss_parses_rfc822_and_rejects_bad_dates(fast):
    async with FaultServer() as srv:
        srv.script("/arc/outboundfeeds/rss/", respond(200, text=RSS, content_type="application/rss+xml"))
        (page,) = await fetch(point(fast, srv), "coindesk", "rss", T0, T0)  # the window is ignored: polled
    df = page.records
    assert df["published_at"].tolist() == [
        pd.Timestamp("2023-01-03 10:15", tz="UTC"),
        pd.Timestamp("2023-01-03 10:00", tz="UTC"),
    ]
    assert df.loc[0, "article_id"] == article_id("coindesk", "g-a")
    assert df.loc[1, "article_id"] == article_id("coindesk", "https://www.coindesk.com/b")  # no guid: link
    assert df.loc[0, "categories"] == ["Markets", "Bitcoin"]
    (bad,) = page.rejects
    assert bad.check_name == "parse_published_at" and bad.raw["pubDate"] == "yesterday-ish"


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_coindesk_malformed_xml(fast):
    async with FaultServer() as srv:
        srv.script("/arc/outboundfeeds/rss/", respond(200, text=RSS[:200], content_type="application/rss+xml"))
        with pytest.raises(MalformedResponse, match="XML"):
            await fetch(point(fast, srv), "coindesk", "rss", T0, T0)


# ---- Fear & Greed ------------------------------------------------------------------------------
@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_fear_greed_strings_newest_first(fast):
    days = [T0 + pd.Timedelta(days=d) for d in (2, 1, 0)]
    body = {
        "name": "Fear and Greed Index",
        "metadata": {"error": None},
        "data": [
            {"value": v, "value_classification": c, "timestamp": str(int(d.timestamp()))}
            for v, c, d in zip(("47", "25", "80"), ("Neutral", "Extreme Fear", "Extreme Greed"), days, strict=True)
        ],
    }
    async with FaultServer() as srv:
        srv.script("/fng/", respond(200, body))
        (page,) = await fetch(point(fast, srv), "fear_greed", "fear_greed", T0, T0 + pd.Timedelta(days=3))
    df = page.records
    assert df["ts"].tolist() == days[::-1] and df["value"].tolist() == [80.0, 25.0, 47.0]
    assert df["classification"].tolist()[0] == "Extreme Greed" and int(srv.requests("/fng/")[0].query["limit"]) > 3


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_fear_greed_api_error(fast):
    async with FaultServer() as srv:
        srv.script(
            "/fng/", respond(200, {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Invalid limit"}})
        )
        with pytest.raises(ApiError, match="Invalid limit"):
            await fetch(point(fast, srv), "fear_greed", "fear_greed", T0, T0 + pd.Timedelta(days=3))


# ---- Reddit ------------------------------------------------------------------------------------
def post(i: int, created: pd.Timestamp, title: str) -> dict:
    return {
        "kind": "t3",
        "data": {
            "name": f"t3_{i}",
            "id": str(i),
            "title": title,
            "selftext": "",
            "created_utc": created.timestamp(),
            "permalink": f"/r/Bitcoin/comments/{i}/",
        },
    }


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_reddit_without_credentials_is_skipped(fast):
    fast.sources.reddit_client_id = None
    assert "source skipped" in (CLIENTS["reddit"].skip_reason(fast) or "")
    async with FaultServer() as srv:
        assert await fetch(point(fast, srv), "reddit", "BTCUSDT", T0, T0 + pd.Timedelta(hours=1)) == []
    assert srv.seen == []


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_reddit_oauth_paging_and_hourly_counts(fast):
    now = pd.Timestamp.now(tz="UTC").floor("h")
    h = pd.Timedelta(hours=1)
    page1 = [
        post(5, now - 0.5 * h, "BTC to the moon"),
        post(4, now - 1.5 * h, "Bitcoin fees"),
        post(3, now - 1.7 * h, "my cat"),
    ]
    page2 = [post(2, now - 2.2 * h, "sats stacking"), post(1, now - 5 * h, "old btc post")]
    listing = "/r/Bitcoin/new"
    async with FaultServer() as srv:
        srv.script(
            "/api/v1/access_token",
            respond(200, {"access_token": "tok1", "token_type": "bearer"}),
            respond(200, {"access_token": "tok2", "token_type": "bearer"}),
        )
        srv.script(
            listing,
            respond(401, {"message": "Unauthorized", "error": 401}),
            respond(200, {"kind": "Listing", "data": {"after": "t3_3", "children": page1}}),
            respond(200, {"kind": "Listing", "data": {"after": "t3_1", "children": page2}}),
        )
        s = point(fast, srv)
        s.sources.reddit_client_id, s.sources.reddit_client_secret = "id", "secret"
        res = await fetch(s, "reddit", "BTCUSDT", now - 3 * h, now + h)
    posts = [r for r in res if r.table == "articles"]
    (counts,) = [r for r in res if r.table == "social_counts"]
    assert counts.derived and len(posts) == 2
    assert sum(len(p.records) for p in posts) == 5 and (records(posts)["kind"] == "social").all()
    assert [r.headers["Authorization"] for r in srv.requests(listing)] == ["bearer tok1", "bearer tok2", "bearer tok2"]
    assert srv.requests(listing)[2].query["after"] == "t3_3"
    c = counts.records.set_index("hour")
    # three complete hours covered (the current hour is not complete, older hours are outside)
    assert c.index.tolist() == [now - 3 * h, now - 2 * h, now - h]
    assert c["posts"].tolist() == [1, 2, 1] and c["mentions"].tolist() == [1, 1, 1]
    assert json.loads(counts.payload)[0]["posts"] == 1


def test_registry_declares_partitioning():
    assert set(CLIENTS) == {"binance", "coinbase", "cryptocompare", "coindesk", "fear_greed", "reddit"}
    assert not CLIENTS["coindesk"].history and CLIENTS["binance"].history
    assert {c.table for c in CLIENTS.values()} == {"candles", "articles", "market_index"}
