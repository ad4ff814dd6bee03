"""Can this machine reach the sources at all? One cheap request per enabled source, in parallel.

`rayapp demo` and `rayapp run` with live sources ask this before they fetch anything: a machine
behind a firewall, offline or without DNS otherwise spends every source's retries (the full
backoff) and then carries on with whatever the state directory holds. Each probe is a single
GET on the source's own base URL (the same one its client uses), bounded by
`ingest.reachability_timeout_s`, not retried, through the standard proxy variables like the
clients (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).

A source answers when the probe gets a 2xx (or the status its API gives an unauthenticated
caller, for Reddit's OAuth host). Otherwise the cause is named: DNS failure, connection refused,
timeout, the proxy refusing, TLS, or the HTTP status. `require_reachable` raises
`SourcesUnreachable` when none of the price sources answers: nothing live can be ingested then.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl

from rayapp.errors import RayappError
from rayapp.ingest.http import USER_AGENT, describe_failure
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)

PRICE_TABLE = "candles"


@dataclass(frozen=True)
class Probe:
    url: str
    accept: frozenset[int] = frozenset()  # answers besides 2xx that prove the host is there
    fallback_url: str | None = None  # tried when the first answers 451 (Binance's geo-block)


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path


PROBES: dict[str, Callable[[Any], Probe]] = {
    # The endpoints the clients call (or the cheapest sibling on the same host).
    "binance": lambda sc: Probe(
        _join(sc.binance_url, "/api/v3/ping"), fallback_url=_join(sc.binance_fallback_url, "/api/v3/ping")
    ),
    "coinbase": lambda sc: Probe(_join(sc.coinbase_url, "/time")),
    "cryptocompare": lambda sc: Probe(_join(sc.cryptocompare_url, "/data/v2/news/?lang=EN")),
    "coindesk": lambda sc: Probe(sc.coindesk_rss_url),
    "fear_greed": lambda sc: Probe(_join(sc.fear_greed_url, "/fng/?limit=1&format=json")),
    # Without a token the OAuth API answers 401/403: the host is reachable.
    "reddit": lambda sc: Probe(_join(sc.reddit_url, "/api/v1/me"), accept=frozenset({401, 403})),
}


@dataclass
class SourceReach:
    """One source's probe: did it answer, and if not, why."""

    source: str
    url: str
    ok: bool
    kind: str  # ok | http | timeout | dns | refused | proxy | tls | connect | disconnected | error
    cause: str | None = None  # what a person reads, e.g. "DNS failure: cannot resolve api.binance.com"
    status: int | None = None
    proxy: str | None = None  # the proxy the request went through (from the environment)
    price: bool = False  # a price source (candles): without one nothing can be forecast

    def describe(self) -> str:
        via = f" via proxy {self.proxy}" if self.proxy else ""
        return f"{self.source} ({self.url}{via}): {self.cause or 'ok'}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "url": self.url,
            "ok": self.ok,
            "kind": self.kind,
            "cause": self.cause,
            "status": self.status,
            "proxy": self.proxy,
            "price": self.price,
        }


@dataclass
class Reachability:
    results: dict[str, SourceReach] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # source -> why it is not probed (no credentials)

    @property
    def reachable(self) -> list[str]:
        return [n for n, r in self.results.items() if r.ok]

    @property
    def unreachable(self) -> list[SourceReach]:
        return [r for r in self.results.values() if not r.ok]

    @property
    def price_sources(self) -> list[str]:
        return [n for n, r in self.results.items() if r.price]

    @property
    def prices_down(self) -> bool:
        """Price sources were probed and not one answered."""
        prices = [r for r in self.results.values() if r.price]
        return bool(prices) and not any(r.ok for r in prices)


class SourcesUnreachable(RayappError):
    """No price source answers: a live run has nothing live to work from (exit 1)."""

    def __init__(self, message: str, report: Reachability) -> None:
        super().__init__(message)
        self.report = report


def _proxy_for(url: str) -> str | None:
    from aiohttp.helpers import get_env_proxy_for_url

    try:
        proxy, _ = get_env_proxy_for_url(yarl.URL(url))
    except LookupError:
        return None
    return str(proxy.with_user(None))


async def _probe_url(
    session: aiohttp.ClientSession, source: str, url: str, probe: Probe, timeout_s: float
) -> SourceReach:
    proxy = _proxy_for(url)
    try:
        async with session.get(url, allow_redirects=True) as resp:
            status = resp.status
            await resp.read()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        kind, cause = describe_failure(exc, timeout_s)
        return SourceReach(source, url, False, kind, cause, proxy=proxy)
    if 200 <= status < 300 or status in probe.accept:
        return SourceReach(source, url, True, "ok", None, status=status, proxy=proxy)
    return SourceReach(source, url, False, "http", f"HTTP {status} {_reason(status)}".rstrip(), status, proxy)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _probe(session: aiohttp.ClientSession, source: str, probe: Probe, timeout_s: float) -> SourceReach:
    got = await _probe_url(session, source, probe.url, probe, timeout_s)
    if not got.ok and got.status == 451 and probe.fallback_url and probe.fallback_url != probe.url:
        fallback = await _probe_url(session, source, probe.fallback_url, probe, timeout_s)
        if fallback.ok:  # the client switches to the fallback host on 451 too
            return fallback
    return got


async def _check(settings: Settings, names: list[str], timeout_s: float) -> Reachability:
    from rayapp.ingest import CLIENTS

    report = Reachability()
    probes: dict[str, Probe] = {}
    for name in names:
        cls = CLIENTS[name]
        why = cls.skip_reason(settings)
        if why:
            report.skipped[name] = why
            continue
        probes[name] = PROBES[name](settings.sources)
    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, headers={"User-Agent": USER_AGENT}, trust_env=True) as session:
        got = await asyncio.gather(*(_probe(session, n, p, timeout_s) for n, p in probes.items()))
    for r in got:
        r.price = CLIENTS[r.source].table == PRICE_TABLE
        report.results[r.source] = r
        if r.ok:
            log.info("source reachable", source=r.source, url=r.url, status=r.status, proxy=r.proxy)
        else:
            log.warning("source unreachable", source=r.source, url=r.url, kind=r.kind, cause=r.cause, proxy=r.proxy)
    return report


def check_reachability(
    settings: Settings, sources: list[str] | None = None, *, timeout_s: float | None = None
) -> Reachability:
    """Probe every enabled source (or `sources`) once, in parallel, each within the timeout."""
    from rayapp.ingest import client_class

    names = list(sources or settings.ingest.sources or settings.sources.enabled)
    for n in names:
        client_class(n)  # an unknown source is an InputError here, as in the ingest itself
    t = settings.ingest.reachability_timeout_s if timeout_s is None else timeout_s
    return asyncio.run(_check(settings, names, t or 5.0))


def unreachable_message(report: Reachability, *, offline_hint: str) -> str:
    """The error a person reads when no price source answers: which, why, and the two ways on."""
    prices = ", ".join(report.price_sources)
    lines = [
        f"no price source answers ({prices}): this machine cannot reach the markets, so nothing live can be ingested"
    ]
    lines += [f"  {r.describe()}" for r in report.unreachable]
    lines += [
        "ways on:",
        f"  offline: {offline_hint}",
        "  through a proxy: export HTTPS_PROXY=http://HOST:PORT (HTTP_PROXY for http:// URLs, NO_PROXY for "
        "exceptions); every source client honours them",
    ]
    return "\n".join(lines)


def require_reachable(
    settings: Settings, sources: list[str] | None = None, *, offline_hint: str = "sources=replay replay.data=DIR"
) -> Reachability:
    """`check_reachability`, raising `SourcesUnreachable` when none of the price sources answers."""
    report = check_reachability(settings, sources)
    if report.prices_down:
        raise SourcesUnreachable(unreachable_message(report, offline_hint=offline_hint), report)
    return report
