"""The shared retry / rate-limit policy against a real fault-injecting server on loopback."""

from __future__ import annotations

import asyncio
import time

import pandas as pd
import pytest

from rayapp.ingest.http import (
    BucketState,
    RayRateLimiter,
    RetriesExhausted,
    TokenBucketLimiter,
    open_session,
    request,
    retry_after_s,
)
from rayapp.ingest.types import ApiError, IngestError, SourceBanned
from tests.ingest.faults import FaultServer, cut, drop, hang, respond, retry_after

OK = respond(200, [[1, 2, 3]])


@pytest.fixture
def fast(settings):
    """The session settings with quick backoff and a short timeout (tests must not wait)."""
    s = settings.model_copy(deep=True)
    s.sources.backoff_initial_s = 0.01
    s.sources.backoff_max_s = 0.05
    s.sources.max_wait_s = 5
    s.ingest.max_attempts = 3
    s.ingest.timeout_s = 0.5
    return s


def limiter(**kw) -> TokenBucketLimiter:
    return TokenBucketLimiter("test", 60_000, **{"max_wait_s": 5, **kw})


async def call(settings, srv: FaultServer, lim=None, path: str = "/x"):
    async with open_session(settings) as session:
        return await request(session, lim or limiter(), settings, source="test", url=srv.url + path)


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_429_honours_retry_after_then_succeeds(fast):
    async with FaultServer() as srv:
        srv.script("/x", retry_after(429, 1), OK)
        resp = await call(fast, srv)
        assert resp.status == 200 and resp.json() == [[1, 2, 3]]
        first, second = srv.requests("/x")
        # the backoff alone is <= 0.05 s: a second request after ~1 s means Retry-After was honoured
        assert second.at - first.at >= 0.95


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_5xx_retried_until_success(fast):
    async with FaultServer() as srv:
        srv.script("/x", respond(500, {"msg": "boom"}), respond(503, text="unavailable"), OK)
        resp = await call(fast, srv)
        assert resp.status == 200 and len(srv.requests("/x")) == 3


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_attempts_are_capped(fast):
    async with FaultServer() as srv:
        srv.script("/x", *[respond(502, {"msg": "bad gateway"})] * 10)
        with pytest.raises(RetriesExhausted, match="gave up after 3 attempts") as err:
            await call(fast, srv)
        assert len(srv.requests("/x")) == 3
        assert err.value.status == 502 and "bad gateway" in (err.value.payload or "")


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_timeout_and_connection_errors_are_retried(fast):
    async with FaultServer() as srv:
        srv.script("/x", hang(2), drop(), OK)
        assert (await call(fast, srv)).status == 200
        assert len(srv.requests("/x")) == 3


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_truncated_transfer_is_retried(fast):
    async with FaultServer() as srv:
        srv.script("/x", cut("[[1, 2, 3], [4, 5"), OK)
        resp = await call(fast, srv)
        assert resp.json() == [[1, 2, 3]] and len(srv.requests("/x")) == 2


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_invalid_symbol_fails_fast_with_the_api_message(fast):
    async with FaultServer() as srv:
        srv.script("/x", respond(400, {"code": -1121, "msg": "Invalid symbol."}), OK)
        with pytest.raises(ApiError, match="Invalid symbol") as err:
            await call(fast, srv)
        assert err.value.code == -1121 and err.value.api_message == "Invalid symbol."
        assert err.value.status == 400 and len(srv.requests("/x")) == 1  # not retried


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
@pytest.mark.parametrize("status", [401, 403, 404])
async def test_other_4xx_fail_fast(fast, status):
    async with FaultServer() as srv:
        srv.script("/x", respond(status, {"message": "nope"}), OK)
        with pytest.raises(ApiError, match="nope"):
            await call(fast, srv)
        assert len(srv.requests("/x")) == 1


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_short_418_ban_pauses_the_source_then_resumes(fast):
    lim = limiter()
    async with FaultServer() as srv:
        srv.script("/x", retry_after(418, 1, {"code": -1003, "msg": "Way too many requests; IP banned"}), OK)
        resp = await call(fast, srv, lim)
        assert resp.status == 200
        first, second = srv.requests("/x")
        assert second.at - first.at >= 0.95


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_long_418_ban_stops_the_source_without_sending_more(fast):
    lim = limiter()
    async with FaultServer() as srv:
        srv.script("/x", retry_after(418, 3600), OK, OK)
        with pytest.raises(SourceBanned) as err:
            await call(fast, srv, lim)
        assert err.value.until > pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=59)
        # the ban holds for every later call of this source: nothing reaches the server
        with pytest.raises(SourceBanned, match="no request sent"):
            await call(fast, srv, lim)
        assert len(srv.requests("/x")) == 1


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_retry_after_longer_than_allowed_fails_instead_of_sleeping(fast):
    async with FaultServer() as srv:
        srv.script("/x", retry_after(429, 600), OK)
        with pytest.raises(IngestError, match=r"more than sources\.max_wait_s"):
            await call(fast, srv)
        assert len(srv.requests("/x")) == 1


def test_retry_after_formats():
    assert retry_after_s({"Retry-After": "7"}) == 7.0
    assert retry_after_s({}) is None
    assert retry_after_s({"Retry-After": "soon"}) is None
    later = (pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=30)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= retry_after_s({"Retry-After": later}) <= 31


def test_token_bucket_reserves_ahead():
    b = BucketState(rate_per_s=10, capacity=10)
    assert b.reserve(10) == (0.0, 0.0)
    wait, ban = b.reserve(5)  # 5 tokens short at 10/s
    assert 0.4 <= wait <= 0.5 and ban == 0.0
    wait2, _ = b.reserve(5)  # queued behind the first: ~1 s
    assert 0.9 <= wait2 <= 1.0


def test_used_weight_header_slows_down_before_the_limit():
    b = BucketState(rate_per_s=100, capacity=100)
    assert b.observe_used_weight(100, 6000, 60, 0.8) == 0.0
    pause = b.observe_used_weight(4900, 6000, 60, 0.8)
    assert 0 < pause <= 60.1
    wait, _ = b.reserve(1)
    assert wait >= pause - 0.1  # the next request waits for the window to reset


async def test_limiter_ban_applies_to_acquire():
    lim = limiter(max_wait_s=1)
    await lim.pause(30, banned=True)
    with pytest.raises(SourceBanned):
        await lim.acquire(1)


def test_ray_limiter_is_one_budget_across_workers(ray_cluster):
    """2 Ray tasks x 6 acquisitions from a bucket of 2 at 10/s: one shared budget means the
    12 grants spread over >= (12 - 2) / 10 s; per-worker buckets would finish in ~0.4 s."""
    import ray

    lim = RayRateLimiter.create("test-shared", rate_per_min=600, capacity=2)

    @ray.remote(num_cpus=0)
    def worker(limiter: RayRateLimiter) -> list[float]:
        async def go() -> list[float]:
            out = []
            for _ in range(6):
                await limiter.acquire(1)
                out.append(time.time())
            return out

        return asyncio.run(go())

    grants = sorted(t for ts in ray.get([worker.remote(lim) for _ in range(2)]) for t in ts)
    assert len(grants) == 12
    assert grants[-1] - grants[0] >= 0.9
    assert ray.get(lim.handle.total_reserved.remote()) == 12
    # a second handle by name reaches the same actor (how workers that were not passed one find it)
    assert ray.get(RayRateLimiter.lookup("test-shared").handle.total_reserved.remote()) == 12


@pytest.mark.integration  # a fault-injecting HTTP server on loopback
async def test_undecodable_body_is_kept_not_crashing(fast):
    from aiohttp import web

    async def latin1_labelled_utf8(request):
        return web.Response(body="café [1]".encode("latin-1"), content_type="text/plain", charset="utf-8")

    async with FaultServer() as srv:
        srv.script("/x", latin1_labelled_utf8)
        resp = await call(fast, srv)
        assert resp.status == 200 and resp.text == "caf\ufffd [1]"
