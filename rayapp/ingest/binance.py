"""Binance spot klines: ``GET /api/v3/klines`` paged by ``startTime``, 1000 bars a call.

Each response's ``X-MBX-USED-WEIGHT-1M`` feeds the limiter, which pauses the source to the end of
the minute once the used weight passes ``sources.binance_weight_soft`` of the limit, so we slow
down before Binance's 429 (and long before a 418 ban). On HTTP 451 (geo-blocked) the client
switches to ``sources.binance_fallback_url`` (data-api.binance.vision serves the same paths).
The last bar may still be open: bars whose closeTime is after "now" are dropped (counted in
``meta['skipped']``), where now is the earlier of our clock and the server's ``Date``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from rayapp.ingest.base import SourceClient, candle_rows
from rayapp.ingest.http import BINANCE_WEIGHT_HEADER, HttpResponse
from rayapp.ingest.types import FetchResult, GeoBlocked, MalformedResponse
from rayapp.log import get_logger
from rayapp.warehouse.quarantine import QuarantinedRow

log = get_logger(__name__)

PAGE_LIMIT = 1000
KLINES_WEIGHT = 2
INTERVAL_MS = 3_600_000  # 1h bars
# Hosts that answered 451 in this process: later clients (one per partition) go straight to the
# fallback instead of paying a refused request each.
GEO_BLOCKED: set[str] = set()
KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)


def parse_kline(row: Any, source: str, symbol: str) -> dict[str, Any]:
    """One kline array -> a candles row (+ ``close_time``); raises ValueError on a bad row."""
    if not isinstance(row, list | tuple) or len(row) < 11:
        raise ValueError(f"expected a 12-element kline array, got {str(row)[:120]}")
    try:
        open_ms, close_ms = int(row[0]), int(row[6])
        out = {
            "source": source,
            "symbol": symbol,
            "open_time": pd.Timestamp(open_ms, unit="ms", tz="UTC"),
            "open": float(row[1]),
            "high": float(row[2]),
            "low": float(row[3]),
            "close": float(row[4]),
            "volume": float(row[5]),
            "quote_volume": float(row[7]),
            "trades": int(row[8]),
            "close_time": pd.Timestamp(close_ms, unit="ms", tz="UTC"),
        }
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"unparseable kline field: {exc}") from exc
    return out


def parse_klines(
    rows: list[Any], source: str, symbol: str, *, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> tuple[pd.DataFrame, list[QuarantinedRow], dict[str, int]]:
    """Parsed rows sorted by open time, the rejects, and the skip counts (open bar, outside window)."""

    def parse(row: Any) -> tuple[dict[str, Any], pd.Timestamp]:
        rec = parse_kline(row, source, symbol)
        return rec, rec.pop("close_time")

    return candle_rows(
        rows, symbol, fields=KLINE_FIELDS, check_name="parse_kline", parse=parse, start=start, end=end, now=now
    )


class BinanceClient(SourceClient):
    source = "binance"
    dataset = "klines"
    table = "candles"
    history = True
    granularity = pd.Timedelta(hours=1)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        sc = self.settings.sources
        self.base = sc.binance_url.rstrip("/")
        if self.base in GEO_BLOCKED:
            self.base = sc.binance_fallback_url.rstrip("/")
        self.used_weight: int | None = None

    async def _observe(self, resp: HttpResponse) -> None:
        raw = resp.headers.get(BINANCE_WEIGHT_HEADER)
        if raw is None:
            return
        try:
            self.used_weight = int(raw)
        except ValueError:
            return
        sc = self.settings.sources
        paused = await self.limiter.observe_used_weight(
            self.used_weight, sc.binance_weight_limit, sc.binance_weight_window_s, sc.binance_weight_soft
        )
        if paused > 0:
            log.info(
                "binance weight near the limit: pausing",
                used_weight=self.used_weight,
                limit=sc.binance_weight_limit,
                pause_s=round(paused, 2),
            )

    async def _get_klines(self, params: dict[str, Any]) -> HttpResponse:
        try:
            return await self.get(
                f"{self.base}/api/v3/klines", params=params, weight=KLINES_WEIGHT, observe=self._observe
            )
        except GeoBlocked:
            fallback = self.settings.sources.binance_fallback_url.rstrip("/")
            if fallback == self.base:
                raise
            log.warning("binance host geo-blocked (HTTP 451): switching host", host=self.base, fallback=fallback)
            GEO_BLOCKED.add(self.base)
            self.base = fallback
            return await self.get(
                f"{self.base}/api/v3/klines", params=params, weight=KLINES_WEIGHT, observe=self._observe
            )

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        symbol = key.upper()
        cursor = int(start.timestamp() * 1000)
        end_ms = int(end.timestamp() * 1000) - 1  # endTime is inclusive on Binance
        while cursor <= end_ms:
            params = {"symbol": symbol, "interval": "1h", "startTime": cursor, "endTime": end_ms, "limit": PAGE_LIMIT}
            resp = await self._get_klines(params)
            rows = self.json_body(resp, list)
            now = self.now_of(resp)
            df, rejects, skipped = parse_klines(rows, self.source, symbol, start=start, end=end, now=now)
            opens = [r[0] for r in rows if isinstance(r, list) and r and isinstance(r[0], int | float)]
            last_page = len(rows) < PAGE_LIMIT or not opens or bool(skipped["open_bar"])
            nxt = int(max(opens)) + INTERVAL_MS if opens else cursor
            # the server had no more: every bar that has closed by now is in; else up to this page
            covered = now.floor("h") if last_page else pd.Timestamp(nxt, unit="ms", tz="UTC")
            yield self.result(
                resp,
                df,
                symbol=symbol,
                rejects=rejects,
                skipped=sum(skipped.values()),
                skipped_reasons=skipped,
                used_weight=self.used_weight,
                host=self.base,
                complete_until=min(end, covered),
            )
            if last_page:
                break  # the server had no more (or we reached the still-open bar)
            if nxt <= cursor:
                raise MalformedResponse(
                    f"binance: page did not advance past startTime={cursor}",
                    source=self.source,
                    url=resp.url,
                    status=resp.status,
                    payload=resp.text,
                )
            cursor = nxt
