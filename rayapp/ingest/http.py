"""The policy every source client shares: one aiohttp session, one retry policy, rate limiters.

* :func:`open_session` - the one ``aiohttp.ClientSession`` of a process/event loop (timeouts from
  ``settings.ingest.timeout_s``; the ``HTTPS_PROXY``/``HTTP_PROXY`` variables honoured), passed to
  every client.
* :func:`request` - one logical GET/POST under the tenacity policy: exponential backoff with full
  jitter (``sources.backoff_initial_s`` ... ``backoff_max_s``), at least ``Retry-After`` when the
  server sends it, at most ``settings.ingest.max_attempts`` attempts. Only timeouts, connection
  errors (incl. truncated bodies), 5xx and 429 are retried. 418 bans the source in its limiter:
  nothing is sent until the ban ends (waited out when it is shorter than ``sources.max_wait_s``,
  else :class:`SourceBanned`). 451 raises :class:`GeoBlocked`; other 4xx fail fast with
  :class:`ApiError` carrying the API's own code and message.
* Rate limiters with ``acquire(weight)``: :class:`TokenBucketLimiter` (in-process) and
  :class:`RayRateLimiter` (one named Ray actor per source, so N workers share one budget).
  ``observe_used_weight`` slows down before Binance's ``X-MBX-USED-WEIGHT-1M`` ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp
import pandas as pd
from multidict import CIMultiDict, CIMultiDictProxy
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from rayapp.ingest.ratelimit import BucketState, LimiterActor
from rayapp.ingest.types import ApiError, GeoBlocked, IngestError, RetryableError, SourceBanned
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)

USER_AGENT = "rayapp/0.1 (+https://github.com/rayapp)"
BINANCE_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"


# ---- session -----------------------------------------------------------------------------------
def make_session(settings: Settings, *, limit: int = 32) -> aiohttp.ClientSession:
    """A new session; create it inside the event loop that will use it.

    ``trust_env``: the standard ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` variables (and
    ``~/.netrc``) apply, so a machine that reaches the public APIs only through a proxy ingests
    through it. Ray workers inherit the variables from the process that starts a local cluster;
    on a cluster, set them on every node (or in the job's runtime_env).
    """
    timeout = aiohttp.ClientTimeout(total=settings.ingest.timeout_s, sock_connect=min(10.0, settings.ingest.timeout_s))
    return aiohttp.ClientSession(
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        connector=aiohttp.TCPConnector(limit=limit),
        raise_for_status=False,
        trust_env=True,
    )


@contextlib.asynccontextmanager
async def open_session(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    session = make_session(settings)
    try:
        yield session
    finally:
        await session.close()


# ---- rate limiting -----------------------------------------------------------------------------
class RateLimiter(Protocol):
    """What clients need from a limiter (both implementations below satisfy it)."""

    source: str

    async def acquire(self, weight: float = 1.0) -> None: ...

    async def pause(self, seconds: float, banned: bool = False) -> None: ...

    async def observe_used_weight(self, used: int, limit: int, window_s: float, soft: float) -> float: ...


class _LimiterBase:
    source: str
    max_wait_s: float

    async def _reserve(self, weight: float) -> tuple[float, float]:
        raise NotImplementedError

    async def acquire(self, weight: float = 1.0) -> None:
        """Wait for ``weight`` tokens; raise :class:`SourceBanned` when a ban outlasts max_wait_s."""
        while True:
            wait, ban_left = await self._reserve(weight)
            if ban_left <= 0:
                break
            if ban_left > self.max_wait_s:
                until = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=ban_left)
                raise SourceBanned(
                    f"{self.source}: banned (HTTP 418) until {until.isoformat()}; no request sent",
                    source=self.source,
                    until=until,
                )
            log.warning("source banned: waiting", source=self.source, wait_s=round(ban_left, 2))
            await asyncio.sleep(ban_left)
        if wait > 0:
            await asyncio.sleep(wait)


class TokenBucketLimiter(_LimiterBase):
    """In-process limiter: enough when one process talks to the source."""

    def __init__(
        self, source: str, rate_per_min: float, *, capacity: float | None = None, max_wait_s: float = 300.0
    ) -> None:
        self.source = source
        self.max_wait_s = max_wait_s
        self.state = BucketState(rate_per_min / 60.0, capacity or max(rate_per_min / 6.0, 1.0))

    async def _reserve(self, weight: float) -> tuple[float, float]:
        return self.state.reserve(weight)

    async def pause(self, seconds: float, banned: bool = False) -> None:
        self.state.pause(seconds, banned)

    async def observe_used_weight(self, used: int, limit: int, window_s: float, soft: float) -> float:
        return self.state.observe_used_weight(used, limit, window_s, soft)


_HELD: dict[tuple[str, str], Any] = {}  # (job id, source) -> limiter actor handle


class RayRateLimiter(_LimiterBase):
    """A picklable handle on the named actor ``rayapp-ratelimit-<source>`` (namespace ``rayapp``).

    Create it in the driver (``RayRateLimiter.create``) and pass it to Ray tasks/actors, or look it
    up by name from any worker of the cluster: every worker then draws from the same bucket.
    """

    NAMESPACE = "rayapp"

    def __init__(self, source: str, handle: Any, max_wait_s: float = 300.0) -> None:
        self.source = source
        self.handle = handle
        self.max_wait_s = max_wait_s

    @classmethod
    def actor_name(cls, source: str) -> str:
        return f"rayapp-ratelimit-{source}"

    @classmethod
    def create(
        cls, source: str, rate_per_min: float, *, capacity: float | None = None, max_wait_s: float = 300.0
    ) -> RayRateLimiter:
        import ray

        key = (ray.get_runtime_context().get_job_id(), source)
        handle = _HELD.get(key)
        if handle is None:
            actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(LimiterActor)
            handle = actor_cls.options(  # type: ignore[attr-defined]
                name=cls.actor_name(source),
                namespace=cls.NAMESPACE,
                get_if_exists=True,
            ).remote(rate_per_min / 60.0, capacity or max(rate_per_min / 6.0, 1.0))
            # The creating process holds the handle for as long as it runs: the actor is not
            # detached, and dropped by its last reference it would die under the workers of
            # this run, or while the next run's get_if_exists hands it out again.
            _HELD[key] = handle
        return cls(source, handle, max_wait_s)

    @classmethod
    def lookup(cls, source: str, max_wait_s: float = 300.0) -> RayRateLimiter:
        import ray

        return cls(source, ray.get_actor(cls.actor_name(source), namespace=cls.NAMESPACE), max_wait_s)

    async def _reserve(self, weight: float) -> tuple[float, float]:
        wait, ban = await self.handle.reserve.remote(weight)
        return float(wait), float(ban)

    async def pause(self, seconds: float, banned: bool = False) -> None:
        await self.handle.pause.remote(seconds, banned)

    async def observe_used_weight(self, used: int, limit: int, window_s: float, soft: float) -> float:
        return float(await self.handle.observe_used_weight.remote(used, limit, window_s, soft))

    async def total_reserved(self) -> float:
        return float(await self.handle.total_reserved.remote())


def make_limiter(source: str, settings: Settings, *, shared: bool = False) -> RateLimiter:
    """The limiter for ``source`` at ``sources.rate_limits[source]`` weight per minute.

    ``shared=True`` (Ray fan-out) returns the cluster-wide actor-backed limiter (``ray.init`` first).
    """
    rate = settings.sources.rate_limits.get(source, 60.0)
    if shared:
        return RayRateLimiter.create(source, rate, max_wait_s=settings.sources.max_wait_s)
    return TokenBucketLimiter(source, rate, max_wait_s=settings.sources.max_wait_s)


# ---- one request under the policy --------------------------------------------------------------
@dataclass
class HttpResponse:
    url: str  # the final URL, query included
    status: int
    text: str
    headers: CIMultiDictProxy[str]
    fetched_at: pd.Timestamp

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def server_time(self) -> pd.Timestamp | None:
        """The server's clock (``Date``), which the replay server sets to its simulated time."""
        raw = self.headers.get("Date")
        if not raw:
            return None
        try:
            return pd.Timestamp(email.utils.parsedate_to_datetime(raw)).tz_convert("UTC")
        except (TypeError, ValueError):
            return None


def describe_failure(exc: BaseException, timeout_s: float | None = None) -> tuple[str, str]:
    """(kind, what a person reads) for a request that got no HTTP answer.

    kind is one of ``timeout``, ``proxy``, ``dns``, ``refused``, ``tls``, ``connect``,
    ``disconnected``, ``error``: the cause named the way an operator fixes it (a DNS failure is
    not a firewall dropping packets, which is not a server refusing the port).
    """
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return "timeout", f"timeout: no answer within {timeout_s:g} s" if timeout_s else "timeout: no answer"
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return "proxy", f"the proxy refused the request: HTTP {exc.status} {exc.message}".rstrip()
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return "proxy", f"cannot connect to the proxy {exc.host}:{exc.port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", f"DNS failure: cannot resolve {exc.host} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls", f"TLS error: {exc}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        err = exc.os_error
        if isinstance(err, ConnectionRefusedError):
            return "refused", f"connection refused by {exc.host}:{exc.port}"
        if isinstance(err, socket.gaierror):
            return "dns", f"DNS failure: cannot resolve {exc.host} ({err.strerror or err})"
        return "connect", f"cannot connect to {exc.host}:{exc.port}: {err.strerror or err}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected", "the server closed the connection without an answer"
    return "error", f"{type(exc).__name__}: {exc}"


class RetriesExhausted(IngestError):
    """Every allowed attempt failed with a retryable error; the last one is ``__cause__``."""


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent/invalid."""
    raw = headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max((pd.Timestamp(when) - pd.Timestamp.now(tz="UTC")).total_seconds(), 0.0)


def api_message(text: str) -> tuple[Any, str]:
    """(code, message) from an error body: Binance {code,msg}, Coinbase {message},
    CryptoCompare {Message}, Reddit {error,message}; else the text itself (shortened)."""
    try:
        body = json.loads(text)
    except (ValueError, TypeError):
        return None, text.strip()[:300]
    if isinstance(body, dict):
        code = body.get("code", body.get("error", body.get("Type")))
        msg = body.get("msg") or body.get("message") or body.get("Message") or body.get("error")
        if msg is not None:
            return code, str(msg)
    return None, text.strip()[:300]


class _Wait:
    """Exponential backoff with full jitter, never shorter than the server's Retry-After."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.backoff = wait_random_exponential(multiplier=initial, max=maximum)

    def __call__(self, state: RetryCallState) -> float:
        base = float(self.backoff(state))
        exc = state.outcome.exception() if state.outcome else None
        after = getattr(exc, "retry_after_s", None)
        return max(base, after) if after is not None else base


Observer = Callable[[HttpResponse], Awaitable[None]]


def _decode(body: bytes, charset: str | None) -> str:
    # A body in a wrong or unknown charset is still kept (for bronze and the error message)
    # rather than crashing the fetch; undecodable bytes become U+FFFD.
    try:
        return body.decode(charset or "utf-8")
    except (LookupError, UnicodeDecodeError):
        return body.decode("utf-8", errors="replace")


async def _attempt(
    session: aiohttp.ClientSession,
    limiter: RateLimiter,
    settings: Settings,
    source: str,
    method: str,
    url: str,
    weight: float,
    observe: Observer | None,
    kw: dict[str, Any],
) -> HttpResponse:
    await limiter.acquire(weight)
    try:
        async with session.request(method, url, **kw) as resp:
            text = _decode(await resp.read(), resp.charset)
            out = HttpResponse(
                str(resp.url),
                resp.status,
                text,
                CIMultiDictProxy(CIMultiDict(resp.headers)),
                pd.Timestamp.now(tz="UTC"),
            )
    except TimeoutError as exc:
        raise RetryableError(
            f"{source}: timeout after {settings.ingest.timeout_s}s on {url}", source=source, url=url
        ) from exc
    except aiohttp.ClientHttpProxyError as exc:  # the proxy answered CONNECT with an error
        _, what = describe_failure(exc)
        if exc.status >= 500 or exc.status == 429:
            raise RetryableError(f"{source}: {what} ({url})", source=source, url=url) from exc
        raise IngestError(f"{source}: {what} ({url})", source=source, url=url, status=exc.status) from exc
    except aiohttp.ClientConnectorError as exc:  # DNS, refused, proxy, TLS: said as such
        _, what = describe_failure(exc)
        raise RetryableError(f"{source}: {what} ({url})", source=source, url=url) from exc
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise RetryableError(f"{source}: {type(exc).__name__}: {exc} on {url}", source=source, url=url) from exc
    if observe is not None:
        await observe(out)
    status = out.status
    if 200 <= status < 300:
        return out
    code, msg = api_message(out.text)
    after = retry_after_s(out.headers)
    common: dict[str, Any] = {"source": source, "url": out.url, "status": status, "payload": out.text}
    if status == 418:
        ban = after if after is not None else 120.0  # Binance's shortest ban
        await limiter.pause(ban, banned=True)
        log.warning("source banned (HTTP 418)", source=source, ban_s=ban, message=msg)
        if ban > settings.sources.max_wait_s:
            until = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=ban)
            raise SourceBanned(f"{source}: HTTP 418 banned until {until.isoformat()}: {msg}", until=until, **common)
        raise RetryableError(f"{source}: HTTP 418 banned for {ban}s: {msg}", retry_after_s=ban, **common)
    if status == 429 or status >= 500:
        if after is not None and after > settings.sources.max_wait_s:
            raise IngestError(
                f"{source}: HTTP {status} asks to wait {after}s, more than "
                f"sources.max_wait_s={settings.sources.max_wait_s}: {msg}",
                **common,
            )
        if status == 429 and after is not None:
            await limiter.pause(after)  # every worker of this source backs off, not just us
        raise RetryableError(f"{source}: HTTP {status}: {msg}", retry_after_s=after, **common)
    if status == 451:
        raise GeoBlocked(
            f"{source}: HTTP 451 (unavailable for legal reasons) from {out.url}: {msg}",
            code=code,
            api_message=msg,
            **common,
        )
    raise ApiError(
        f"{source}: HTTP {status}: {msg}" + (f" (code {code})" if code is not None else ""),
        code=code,
        api_message=msg,
        **common,
    )


async def request(
    session: aiohttp.ClientSession,
    limiter: RateLimiter,
    settings: Settings,
    *,
    source: str,
    url: str,
    method: str = "GET",
    weight: float = 1.0,
    observe: Observer | None = None,
    **kw: Any,
) -> HttpResponse:
    """One call under the shared policy; returns a 2xx response or raises an IngestError."""
    sc = settings.sources
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(RetryableError),
        stop=stop_after_attempt(settings.ingest.max_attempts),
        wait=_Wait(sc.backoff_initial_s, sc.backoff_max_s),
        before_sleep=lambda st: log.warning(
            "retrying",
            source=source,
            attempt=st.attempt_number,
            wait_s=round(st.next_action.sleep, 2) if st.next_action else None,
            error=str(st.outcome.exception()) if st.outcome else None,
        ),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                return await _attempt(session, limiter, settings, source, method, url, weight, observe, kw)
    except RetryableError as exc:
        raise RetriesExhausted(
            f"{source}: gave up after {settings.ingest.max_attempts} attempts: {exc}",
            source=source,
            url=exc.url,
            status=exc.status,
            payload=exc.payload,
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
