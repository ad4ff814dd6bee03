"""Can the sources be reached? One probe per source, with the cause named; the proxy variables.

Everything runs on loopback (tests/ingest/netfaults.py): a port nothing listens on (refused), a
listener that accepts and never answers (timeout), the fault-injecting server answering an HTTP
error, and a local forward proxy that relays http:// requests and refuses CONNECT. A DNS failure
cannot be produced without asking a resolver off this machine, so its wording is checked on the
error aiohttp raises for one.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pandas as pd
import pytest
from aiohttp.client_reqrep import ConnectionKey

from rayapp.ingest import SourcesUnreachable, check_reachability, require_reachable
from rayapp.ingest.binance import BinanceClient
from rayapp.ingest.http import TokenBucketLimiter, describe_failure, open_session, request
from rayapp.ingest.types import IngestError, RetryableError
from tests.ingest.faults import HOUR_MS, FaultServer, kline, klines_handler, respond
from tests.ingest.netfaults import LocalProxy, ServerThread, SilentListener, closed_port, no_proxy_env, proxy_env

PING = "/api/v3/ping"


def live(settings, enabled: list[str], **urls: str):
    """Live-mode settings with `enabled` sources at the given base URLs, a 1 s probe timeout."""
    s = settings.model_copy(deep=True)
    s.sources.mode = "live"
    s.sources.enabled = enabled
    s.ingest.sources = None
    s.ingest.reachability_timeout_s = 1
    for key, value in urls.items():
        setattr(s.sources, key, value)
    return s


def dead(port: int) -> str:
    return f"http://127.0.0.1:{port}"


# ---- the causes, named -------------------------------------------------------------------------
def test_dns_failure_is_named_as_such() -> None:
    key = ConnectionKey("api.binance.com", 443, True, True, None, None, None)
    exc = aiohttp.ClientConnectorDNSError(key, OSError(socket.EAI_NONAME, "Name or service not known"))
    assert describe_failure(exc) == ("dns", "DNS failure: cannot resolve api.binance.com (Name or service not known)")
    gai = aiohttp.ClientConnectorError(key, socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    assert describe_failure(gai) == (
        "dns",
        "DNS failure: cannot resolve api.binance.com (Temporary failure in name resolution)",
    )
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
    assert describe_failure(refused) == ("refused", "connection refused by api.binance.com:443")
    unreachable = aiohttp.ClientConnectorError(key, OSError(101, "Network is unreachable"))
    assert describe_failure(unreachable) == ("connect", "cannot connect to api.binance.com:443: Network is unreachable")
    assert describe_failure(TimeoutError(), 3) == ("timeout", "timeout: no answer within 3 s")


@pytest.mark.integration  # loopback listeners
def test_no_price_source_answering_stops_with_each_cause_and_the_ways_on(settings) -> None:
    refused = closed_port()
    with SilentListener() as silent:
        s = live(
            settings,
            ["binance", "coinbase", "fear_greed"],
            binance_url=dead(refused),
            binance_fallback_url=dead(refused),
            coinbase_url=silent.url,
            fear_greed_url=dead(refused),
        )
        with pytest.raises(SourcesUnreachable) as err:
            require_reachable(s)
    report = err.value.report
    assert report.prices_down and report.price_sources == ["binance", "coinbase"]
    assert {n: r.kind for n, r in report.results.items()} == {
        "binance": "refused",
        "coinbase": "timeout",
        "fear_greed": "refused",
    }
    msg = str(err.value)
    assert msg.startswith("no price source answers (binance, coinbase)")
    assert f"binance (http://127.0.0.1:{refused}/api/v3/ping): connection refused by 127.0.0.1:{refused}" in msg
    assert f"coinbase ({silent.url}/time): timeout: no answer within 1 s" in msg
    assert "fear_greed" in msg  # every source that failed is named, not only the price sources
    assert "sources=replay replay.data=DIR" in msg and "HTTPS_PROXY=" in msg and "HTTP_PROXY" in msg
    assert exc_code(err.value) == 1


def exc_code(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", -1))


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
def test_an_http_error_status_is_the_cause_and_451_tries_the_fallback_host(settings) -> None:
    with (
        ServerThread(FaultServer(defaults={PING: respond(503, {"msg": "maintenance"})})) as down,
        ServerThread(FaultServer(defaults={PING: respond(451, {"msg": "restricted location"})})) as blocked,
        ServerThread(FaultServer(defaults={PING: respond(200, {})})) as fallback,
    ):
        got = check_reachability(live(settings, ["binance"], binance_url=down.url, binance_fallback_url=down.url))
        r = got.results["binance"]
        assert (r.ok, r.kind, r.status, r.cause) == (False, "http", 503, "HTTP 503 Service Unavailable")
        assert got.prices_down

        got = check_reachability(
            live(settings, ["binance"], binance_url=blocked.url, binance_fallback_url=fallback.url)
        )
        r = got.results["binance"]
        assert r.ok and r.url == fallback.url + PING  # as the client does on 451
        assert fallback.server.requests(PING)


@pytest.mark.integration  # loopback listeners and servers
def test_a_partial_outage_goes_on_and_names_what_is_missing(settings) -> None:
    refused = closed_port()
    with (
        ServerThread(FaultServer(defaults={PING: respond(200, {})})) as binance,
        SilentListener() as silent,
    ):
        s = live(
            settings,
            ["binance", "coinbase", "fear_greed", "reddit"],
            binance_url=binance.url,
            coinbase_url=dead(refused),
            fear_greed_url=silent.url,
        )
        s.sources.reddit_client_id = None  # no credentials: skipped, not probed
        report = require_reachable(s)  # binance answers: no error
    assert report.reachable == ["binance"] and not report.prices_down
    assert [(r.source, r.kind) for r in report.unreachable] == [("coinbase", "refused"), ("fear_greed", "timeout")]
    assert set(report.skipped) == {"reddit"}
    assert len(binance.server.requests(PING)) == 1  # one cheap request, not retried


# ---- the request policy says the same ----------------------------------------------------------
@pytest.mark.integration  # a closed loopback port
async def test_a_refused_connection_reads_as_such_in_the_ingest_error(settings) -> None:
    s = settings.model_copy(deep=True)
    s.ingest.max_attempts = 1
    port = closed_port()
    async with open_session(s) as session:
        with pytest.raises(IngestError) as err:
            await request(session, TokenBucketLimiter("binance", 60_000), s, source="binance", url=dead(port) + PING)
    assert isinstance(err.value.__cause__, RetryableError)
    assert f"binance: connection refused by 127.0.0.1:{port} (http://127.0.0.1:{port}{PING})" in str(err.value)


# ---- the proxy variables -----------------------------------------------------------------------
T0 = pd.Timestamp("2024-03-01", tz="UTC")


@pytest.mark.integration  # a loopback origin behind a loopback forward proxy
def test_the_clients_and_the_probe_go_through_http_proxy(settings, monkeypatch) -> None:
    rows = [kline(int(T0.timestamp() * 1000) + i * HOUR_MS) for i in range(24)]
    with (
        ServerThread(FaultServer(defaults={"/api/v3/klines": klines_handler(rows), PING: respond(200, {})})) as origin,
        LocalProxy() as proxy,
    ):
        proxy_env(monkeypatch, proxy.url)
        s = live(settings, ["binance"], binance_url=origin.url, binance_fallback_url=origin.url)

        async def fetch():
            async with open_session(s) as session:
                client = BinanceClient(s, session, TokenBucketLimiter("binance", 60_000))
                return await client.fetch("BTCUSDT", T0, T0 + pd.Timedelta(hours=24))

        pages = asyncio.run(fetch())
        report = check_reachability(s)
    assert sum(len(p.records) for p in pages) == 24  # the data came back through the proxy
    assert any(line.startswith(f"GET {origin.url}/api/v3/klines?") for line in proxy.lines), proxy.lines
    assert f"GET {origin.url}{PING}" in proxy.lines
    r = report.results["binance"]
    assert r.ok and r.proxy == proxy.url
    # every request the origin saw came through the proxy (none went around it)
    assert len(origin.server.requests()) == len(proxy.lines)


@pytest.mark.integration  # a loopback proxy that refuses CONNECT
def test_https_proxy_is_asked_to_connect_and_its_refusal_is_named(settings, monkeypatch) -> None:
    with LocalProxy() as proxy:
        proxy_env(monkeypatch, proxy.url)
        # The host is never resolved here: with a proxy the client only sends it in CONNECT.
        s = live(settings, ["binance"], binance_url="https://api.binance.com")
        report = check_reachability(s)
        r = report.results["binance"]
        assert proxy.lines == ["CONNECT api.binance.com:443"]
        assert (r.ok, r.kind) == (False, "proxy")
        assert r.cause == "the proxy refused the request: HTTP 403 Forbidden"
        assert r.describe() == (
            f"binance (https://api.binance.com/api/v3/ping via proxy {proxy.url}): "
            "the proxy refused the request: HTTP 403 Forbidden"
        )

        async def call():
            async with open_session(s) as session:
                return await request(session, TokenBucketLimiter("binance", 60_000), s, source="binance", url=r.url)

        with pytest.raises(IngestError, match="binance: the proxy refused the request: HTTP 403"):
            asyncio.run(call())


def test_without_proxy_variables_nothing_goes_through_a_proxy(settings, monkeypatch) -> None:
    no_proxy_env(monkeypatch)
    from rayapp.ingest.reachability import _proxy_for

    assert _proxy_for("https://api.binance.com/api/v3/ping") is None
    proxy_env(monkeypatch, "http://127.0.0.1:3128")
    assert _proxy_for("https://api.binance.com/api/v3/ping") == "http://127.0.0.1:3128"
    monkeypatch.setenv("NO_PROXY", "api.binance.com")
    assert _proxy_for("https://api.binance.com/api/v3/ping") is None
