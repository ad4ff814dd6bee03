"""Coinbase Exchange candles, the second price source: ``GET /products/{id}/candles``.

At most 300 candles a call, each ``[time, low, high, open, close, volume]`` (note the order),
newest first; hours without trades are simply missing and stay missing (gaps are kept as gaps,
never filled). The candle of the current hour is still open and is dropped. Symbols map to
products as BTCUSDT -> BTC-USD; rows keep the requested symbol so both price sources line up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from rayapp.ingest.base import SourceClient, candle_rows
from rayapp.ingest.types import FetchResult
from rayapp.warehouse.quarantine import QuarantinedRow

PAGE_LIMIT = 300
GRANULARITY_S = 3600


def product_for(symbol: str) -> str:
    s = symbol.upper()
    if "-" in s:
        return s
    for quote in ("USDT", "USDC", "USD", "EUR", "GBP"):
        if s.endswith(quote) and len(s) > len(quote):
            return f"{s[: -len(quote)]}-{'USD' if quote == 'USDT' else quote}"
    raise ValueError(f"cannot map symbol {symbol!r} to a Coinbase product")


def parse_candles(
    rows: list[Any], source: str, symbol: str, *, start: pd.Timestamp, end: pd.Timestamp, now: pd.Timestamp
) -> tuple[pd.DataFrame, list[QuarantinedRow], dict[str, int]]:
    def parse(row: Any) -> tuple[dict[str, Any], pd.Timestamp]:
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise ValueError(f"expected [time, low, high, open, close, volume], got {str(row)[:120]}")
        t = pd.Timestamp(int(row[0]), unit="s", tz="UTC")
        rec = {
            "source": source,
            "symbol": symbol,
            "open_time": t,
            "open": float(row[3]),
            "high": float(row[2]),
            "low": float(row[1]),
            "close": float(row[4]),
            "volume": float(row[5]),
            "quote_volume": None,
            "trades": None,
        }
        return rec, t + pd.Timedelta(seconds=GRANULARITY_S)

    return candle_rows(
        rows,
        symbol,
        fields=("time", "low", "high", "open", "close", "volume"),
        check_name="parse_candle",
        parse=parse,
        start=start,
        end=end,
        now=now,
    )


class CoinbaseClient(SourceClient):
    source = "coinbase"
    dataset = "candles"
    table = "candles"
    history = True
    granularity = pd.Timedelta(hours=1)

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        symbol = key.upper()
        product = product_for(symbol)
        base = self.settings.sources.coinbase_url.rstrip("/")
        step = pd.Timedelta(seconds=GRANULARITY_S)
        cursor = start.ceil("h")
        while cursor < end:
            # start and end are both inclusive on Coinbase: 300 buckets = cursor .. cursor + 299 h
            last = min(cursor + step * (PAGE_LIMIT - 1), (end - pd.Timedelta(1, "ns")).floor("h"))
            if last < cursor:
                break
            params = {"granularity": GRANULARITY_S, "start": cursor.isoformat(), "end": last.isoformat()}
            resp = await self.get(f"{base}/products/{product}/candles", params=params)
            rows = self.json_body(resp, list)
            now = self.now_of(resp)
            df, rejects, skipped = parse_candles(rows, self.source, symbol, start=start, end=end, now=now)
            yield self.result(
                resp,
                df,
                symbol=symbol,
                rejects=rejects,
                skipped=sum(skipped.values()),
                skipped_reasons=skipped,
                product=product,
                complete_until=min(end, last + step, now.floor("h")),
            )
            if last + step > now:
                break  # nothing after the present
            cursor = last + step
