"""The base every source client shares: construction, the request call, window semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import pandas as pd

from rayapp.ingest.http import HttpResponse, Observer, RateLimiter, request
from rayapp.ingest.types import SILVER_COLUMNS, FetchResult, MalformedResponse
from rayapp.log import get_logger
from rayapp.warehouse.quarantine import QuarantinedRow

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


def utc(ts: Any) -> pd.Timestamp:
    """A tz-aware UTC timestamp from a timestamp/ISO string (naive means UTC)."""
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def empty_records(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in SILVER_COLUMNS[table]})


def frame(table: str, rows: list[dict[str, Any]], time_cols: tuple[str, ...]) -> pd.DataFrame:
    """Rows -> the silver table's columns, times as datetime64[ns, UTC]."""
    df = pd.DataFrame(rows, columns=SILVER_COLUMNS[table]) if rows else empty_records(table)
    for c in time_cols:
        df[c] = pd.to_datetime(df[c], utc=True).astype("datetime64[ns, UTC]")
    return df.reset_index(drop=True)


def candle_rows(
    rows: list[Any],
    symbol: str,
    *,
    fields: tuple[str, ...],
    check_name: str,
    parse: Callable[[Any], tuple[dict[str, Any], pd.Timestamp]],
    start: pd.Timestamp,
    end: pd.Timestamp,
    now: pd.Timestamp,
) -> tuple[pd.DataFrame, list[QuarantinedRow], dict[str, int]]:
    """The price clients' common loop: `parse(row) -> (candle record, time the bar closes)`.

    A row that does not parse becomes a reject carrying its raw fields; the bar that is still open
    (closes after `now`) and bars outside ``[start, end)`` are counted as skipped; the rest come
    back as a candles frame sorted by open time.
    """
    good: list[dict[str, Any]] = []
    rejects: list[QuarantinedRow] = []
    skipped = {"open_bar": 0, "outside_window": 0}
    for i, row in enumerate(rows):
        try:
            rec, closes_at = parse(row)
        except (TypeError, ValueError, OverflowError) as exc:
            raw = dict(zip(fields, row, strict=False)) if isinstance(row, list) else {"row": row}
            key = f"{symbol}|{row[0]}" if isinstance(row, list) and row else f"{symbol}|row{i}"
            rejects.append(QuarantinedRow(key, check_name, str(exc), raw))
            continue
        if closes_at > now:
            skipped["open_bar"] += 1
        elif not start <= rec["open_time"] < end:
            skipped["outside_window"] += 1
        else:
            good.append(rec)
    df = frame("candles", good, ("open_time",))
    df["quote_volume"] = df["quote_volume"].astype("float64")
    df["trades"] = df["trades"].astype("Int64")
    return df.sort_values("open_time", kind="stable").reset_index(drop=True), rejects, skipped


class SourceClient:
    """One public source. Construct with ``(settings, session, limiter)``.

    Class attributes tell the fan-out how to partition work:

    * ``history`` - True: any past ``[start, end)`` window can be fetched (partition freely);
      False: the API only serves recent items, the window is ignored and the whole current
      feed is returned on every call (one partition per run; poll it).
    * ``granularity`` - the natural step of the data (align windows to it).
    * ``key_kind`` - what the first fetch argument is: ``symbol`` (BTCUSDT) or ``query``.
    """

    source: ClassVar[str]
    dataset: ClassVar[str]
    table: ClassVar[str]
    history: ClassVar[bool] = True
    granularity: ClassVar[pd.Timedelta] = pd.Timedelta(hours=1)
    key_kind: ClassVar[str] = "symbol"

    def __init__(self, settings: Settings, session: aiohttp.ClientSession, limiter: RateLimiter) -> None:
        self.settings = settings
        self.session = session
        self.limiter = limiter

    # ---- what the fan-out asks --------------------------------------------------------------
    @classmethod
    def skip_reason(cls, settings: Settings) -> str | None:
        """Why this source cannot run with these settings (then it is skipped), else None."""
        return None

    @classmethod
    def default_keys(cls, settings: Settings) -> list[str]:
        """The keys one ingest run fetches (the symbols, or the source's query)."""
        return list(settings.symbols)

    # ---- fetching --------------------------------------------------------------------------
    def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        """One FetchResult per response, in fetch order; records keyed in ``[start, end)``."""
        raise NotImplementedError

    async def fetch(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> list[FetchResult]:
        return [page async for page in self.pages(key, utc(start), utc(end))]

    # ---- helpers ---------------------------------------------------------------------------
    @staticmethod
    def now_of(resp: HttpResponse) -> pd.Timestamp:
        """The earlier of our clock and the server's (the replay server's clock is simulated)."""
        now = pd.Timestamp.now(tz="UTC")
        server = resp.server_time
        return min(now, server) if server is not None else now

    def json_body(self, resp: HttpResponse, expected: type[list] | type[dict]) -> Any:
        """The response's JSON, which must be a `expected` (array or object); else MalformedResponse."""
        try:
            body = resp.json()
        except ValueError as exc:
            raise MalformedResponse(
                f"{self.source}: response is not JSON ({exc}): {resp.text[:200]!r}",
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            ) from exc
        if not isinstance(body, expected):
            kind = "a JSON array" if expected is list else "an object"
            raise MalformedResponse(
                f"{self.source}: expected {kind}, got {resp.text[:200]!r}",
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            )
        return body

    async def get(self, url: str, *, weight: float = 1.0, observe: Observer | None = None, **kw: Any) -> HttpResponse:
        return await request(
            self.session, self.limiter, self.settings, source=self.source, url=url, weight=weight, observe=observe, **kw
        )

    def result(
        self,
        resp: HttpResponse,
        records: pd.DataFrame,
        *,
        symbol: str | None = None,
        rejects: list[QuarantinedRow] | None = None,
        dataset: str | None = None,
        table: str | None = None,
        complete_until: pd.Timestamp | None = None,
        **meta: Any,
    ) -> FetchResult:
        res = FetchResult(
            source=self.source,
            dataset=dataset or self.dataset,
            table=table or self.table,
            url=resp.url,
            status=resp.status,
            fetched_at=resp.fetched_at,
            payload=resp.text,
            records=records,
            symbol=symbol,
            rejects=list(rejects or []),
            meta=dict(meta),
            complete_until=complete_until,
        )
        log.debug(
            "page fetched",
            source=self.source,
            url=resp.url,
            records=len(records),
            rejected=len(res.rejects),
            skipped=meta.get("skipped", 0),
        )
        return res
