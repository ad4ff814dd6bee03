"""Ingest: source clients, the shared HTTP policy, backfill, planning, watermarks and the Ray Data fan-out.

Client interface (stable; the fan-out and backfill code against it)
--------------------------------------------------------------------
``CLIENTS[name](settings, session, limiter)`` builds a client for one source, where

* ``session`` is the one ``aiohttp.ClientSession`` of the process (``http.open_session``),
* ``limiter`` is that source's rate limiter (``http.make_limiter(name, settings, shared=...)``;
  ``shared=True`` gives the Ray-actor-backed one so every worker draws on one budget).

Each client has

* ``await client.fetch(key, start, end) -> list[FetchResult]`` and the same as an async iterator
  of pages, ``async for page in client.pages(key, start, end)``. ``key`` is a symbol (BTCUSDT)
  or the source's query (``default_keys(settings)`` lists what a run fetches). Windows are
  half-open ``[start, end)`` on the row's own time (candle open time, article ``published_at``,
  index day, social hour), both tz-aware UTC.
* ``FetchResult`` (``rayapp.ingest.types``): ``source, dataset, table, url, status,
  fetched_at (UTC), payload`` (the raw text as received, for bronze) and ``records`` - a
  DataFrame with exactly ``types.SILVER_COLUMNS[table]`` - plus ``rejects``
  (``QuarantinedRow``s: rows that could not be parsed, ready for ``quarantine_rows``),
  ``derived`` (True when computed from earlier pages, no bronze payload of its own) and
  ``meta`` (``skipped``: rows left out on purpose with ``skipped_reasons``, e.g. the still-open
  bar, rows outside the window; ``used_weight``; ``host``) and ``complete_until``: every row keyed
  before it is in this page or an earlier page of the same fetch, so a watermark may advance to
  the last page's ``complete_until`` (never blindly to ``end``: the newest bar may still be open,
  and under replay "now" is the server's simulated clock, read from its ``Date`` header).
* Class attributes for partitioning: ``history`` (True: any past window can be fetched, split
  the range freely; False: only recent items exist, the window is ignored, one partition per
  run), ``granularity`` (align windows to it), ``table``, ``dataset``, ``key_kind``.
* ``skip_reason(settings)`` (classmethod): why the source cannot run here, else None (Reddit
  without credentials). ``pages`` of a skipped source logs one line and yields nothing.

Errors (``rayapp.ingest.types``): ``ApiError`` (4xx, the API's own ``code``/``api_message``),
``SourceBanned`` (418; ``until``), ``RetriesExhausted`` (``http``), ``MalformedResponse``,
``GeoBlocked``, ``SourceUnavailable`` - all ``IngestError`` with ``source, url, status, payload``.

Per source: ``binance`` (candles, history, 1000 bars a call), ``coinbase`` (candles, history,
300 a call), ``cryptocompare`` (articles, history by paging back with ``lTs``), ``coindesk``
(articles, RSS, no history), ``fear_greed`` (market_index, daily, history via ``limit``),
``reddit`` (articles of kind ``social`` per page + one derived ``social_counts`` result with
hourly mention counts; no history beyond Reddit's newest ~1000 posts).

Reachability (``rayapp.ingest.reachability``): ``check_reachability(settings)`` sends one cheap
request per enabled source, in parallel, within ``ingest.reachability_timeout_s``, and names why
a source did not answer (DNS failure, connection refused, timeout, proxy, TLS, HTTP status);
``require_reachable`` raises ``SourcesUnreachable`` when no price source answers. Every request
(probes and clients) honours ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``.

``first_seen_at`` of live rows is when we saw them: the fetch time, or the server's clock when that
is earlier (so history replayed at ``--speed`` is "seen" at its simulated time and point-in-time
features work offline). Upserts must not overwrite it on conflict.
Article ids: ``rayapp.ingest.ids.article_id(source, guid or url)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rayapp.errors import InputError
from rayapp.exports import lazy_exports
from rayapp.ingest.base import SourceClient
from rayapp.ingest.binance import BinanceClient
from rayapp.ingest.coinbase import CoinbaseClient
from rayapp.ingest.coindesk import CoinDeskClient
from rayapp.ingest.cryptocompare import CryptoCompareClient
from rayapp.ingest.fear_greed import FearGreedClient
from rayapp.ingest.reddit import RedditClient

CLIENTS: dict[str, type[SourceClient]] = {
    "binance": BinanceClient,
    "coinbase": CoinbaseClient,
    "cryptocompare": CryptoCompareClient,
    "coindesk": CoinDeskClient,
    "fear_greed": FearGreedClient,
    "reddit": RedditClient,
}


def client_class(name: str) -> type[SourceClient]:
    """The client class of a source; a clear error for an unknown name."""
    try:
        return CLIENTS[name]
    except KeyError:
        raise InputError(f"unknown source {name!r}; known: {', '.join(CLIENTS)}") from None


# The rest of the public API loads on first use (the fan-out pulls in Ray Data).
if TYPE_CHECKING:
    from rayapp.ingest.backfill import BackfillError, backfill_file
    from rayapp.ingest.commands import print_summaries, summaries_json, summary_table
    from rayapp.ingest.fanout import IngestReport, run_ingest
    from rayapp.ingest.plan import Partition, Plan, source_now
    from rayapp.ingest.reachability import (
        Reachability,
        SourceReach,
        SourcesUnreachable,
        check_reachability,
        require_reachable,
    )
    from rayapp.ingest.silver import SourceSummary

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.ingest.backfill": ("BackfillError", "backfill_file"),
        "rayapp.ingest.commands": ("print_summaries", "summaries_json", "summary_table"),
        "rayapp.ingest.fanout": ("IngestReport", "run_ingest"),
        "rayapp.ingest.plan": ("Partition", "Plan", "source_now"),
        "rayapp.ingest.reachability": (
            "Reachability",
            "SourceReach",
            "SourcesUnreachable",
            "check_reachability",
            "require_reachable",
        ),
        "rayapp.ingest.silver": ("SourceSummary",),
    },
)

__all__ = [
    "CLIENTS",
    "BackfillError",
    "IngestReport",
    "Partition",
    "Plan",
    "Reachability",
    "SourceClient",
    "SourceReach",
    "SourceSummary",
    "SourcesUnreachable",
    "backfill_file",
    "check_reachability",
    "client_class",
    "print_summaries",
    "require_reachable",
    "run_ingest",
    "source_now",
    "summaries_json",
    "summary_table",
]
