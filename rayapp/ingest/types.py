"""What every source client returns, and the errors it raises.

One :class:`FetchResult` per HTTP response: the raw payload exactly as received (for bronze) plus
the records already normalised to the silver table's columns, plus the rows the client could not
normalise (``rejects``, ready for ``quarantine_rows``): nothing is dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from rayapp.warehouse.quarantine import QuarantinedRow

# Silver columns per table, in the order of warehouse/migrations/0001_init.sql (defaults omitted).
SILVER_COLUMNS: dict[str, list[str]] = {
    "candles": ["source", "symbol", "open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades"],
    "articles": [
        "article_id",
        "kind",
        "source",
        "guid",
        "url",
        "title",
        "body",
        "categories",
        "published_at",
        "first_seen_at",
        "backfilled",
    ],
    "market_index": ["index_name", "ts", "value", "classification", "source", "first_seen_at"],
    "social_counts": ["source", "symbol", "hour", "mentions", "posts", "first_seen_at"],
}


@dataclass
class FetchResult:
    """One response of one source.

    ``records`` has exactly ``SILVER_COLUMNS[table]`` with tz-aware UTC timestamps; ``rejects`` are
    rows of this payload that could not be parsed at all (wrong shape, unparseable number/date),
    with the check that failed and the raw row. ``derived`` marks a result computed from earlier
    responses of the same fetch (Reddit's hourly counts): its payload is our JSON, not the API's.
    """

    source: str
    dataset: str  # bronze dataset name: klines, candles, news, rss, fng, posts, mentions
    table: str  # silver table: candles | articles | market_index | social_counts
    url: str
    status: int
    fetched_at: pd.Timestamp
    payload: str
    records: pd.DataFrame
    symbol: str | None = None
    rejects: list[QuarantinedRow] = field(default_factory=list)
    derived: bool = False
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. used_weight, host, page cursor
    # Rows keyed before this time are all in this page and the fetch's earlier pages: the watermark
    # may advance to it (not to ``end``: the last bar may still be open, and in replay "now" is the
    # server's simulated clock). None: this page alone proves nothing (news pages going back).
    complete_until: pd.Timestamp | None = None

    @property
    def read(self) -> int:
        """Rows this response carried (normalised + rejected)."""
        return len(self.records) + len(self.rejects)


class IngestError(Exception):
    """A source failed; carries what is needed to report it (and to keep the payload)."""

    def __init__(
        self, message: str, *, source: str = "", url: str = "", status: int | None = None, payload: str | None = None
    ) -> None:
        super().__init__(message)
        self.source = source
        self.url = url
        self.status = status
        self.payload = payload


class RetryableError(IngestError):
    """5xx, 429, a timeout, a dropped connection: tried again by the retry policy."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class ApiError(IngestError):
    """A 4xx other than 418/429/451: the request is wrong, retrying cannot help.

    ``code`` and ``api_message`` are the API's own (Binance: -1121 / "Invalid symbol.").
    """

    def __init__(self, message: str, *, code: Any = None, api_message: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.code = code
        self.api_message = api_message


class GeoBlocked(ApiError):
    """HTTP 451: this host refuses our region (Binance switches to its fallback host)."""


class SourceBanned(IngestError):
    """HTTP 418 (or a ban already in force): no request goes to this source until ``until``."""

    def __init__(self, message: str, *, until: pd.Timestamp, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.until = until


class MalformedResponse(IngestError):
    """A 2xx whose body is not what the API promises (bad JSON, wrong shape); not retried."""


class SourceUnavailable(IngestError):
    """The source cannot run in this configuration (e.g. Reddit without credentials)."""
