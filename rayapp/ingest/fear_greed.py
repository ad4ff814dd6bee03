"""alternative.me Crypto Fear & Greed index (daily): ``GET /fng/?limit=N&format=json``.

Values arrive as strings, newest first, one per day (``timestamp`` = the day's start, unix s).
History comes from ``limit``: enough days to reach back to ``start`` (``limit=0`` is all of it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from rayapp.ingest.base import SourceClient, frame
from rayapp.ingest.types import ApiError, FetchResult, MalformedResponse
from rayapp.warehouse.quarantine import QuarantinedRow

INDEX_NAME = "fear_greed"


def parse_fng(
    body: Any, source: str, *, start: pd.Timestamp, end: pd.Timestamp, fetched_at: pd.Timestamp
) -> tuple[pd.DataFrame, list[QuarantinedRow], dict[str, int]]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ValueError("expected an object with a 'data' array")
    good: list[dict[str, Any]] = []
    rejects: list[QuarantinedRow] = []
    skipped = {"outside_window": 0}
    for i, item in enumerate(data):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {str(item)[:80]}")
            ts = pd.Timestamp(int(item["timestamp"]), unit="s", tz="UTC")
            value = float(item["value"])
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raw = item if isinstance(item, dict) else {"item": item}
            key = str(raw.get("timestamp", f"item{i}"))
            rejects.append(QuarantinedRow(f"{INDEX_NAME}|{key}", "parse_fear_greed", f"unparseable item: {exc!r}", raw))
            continue
        if not start <= ts < end:
            skipped["outside_window"] += 1
            continue
        good.append(
            {
                "index_name": INDEX_NAME,
                "ts": ts,
                "value": value,
                "classification": item.get("value_classification"),
                "source": source,
                "first_seen_at": fetched_at,
            }
        )
    df = frame("market_index", good, ("ts", "first_seen_at"))
    return df.sort_values("ts", kind="stable").reset_index(drop=True), rejects, skipped


class FearGreedClient(SourceClient):
    source = "fear_greed"
    dataset = "fng"
    table = "market_index"
    history = True
    granularity = pd.Timedelta(days=1)
    key_kind = "query"

    @classmethod
    def default_keys(cls, settings: Any) -> list[str]:
        return [INDEX_NAME]

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        base = self.settings.sources.fear_greed_url.rstrip("/")
        days = (pd.Timestamp.now(tz="UTC").normalize() - start.floor("D")).days + 2
        params = {"limit": max(days, 1), "format": "json"}
        resp = await self.get(f"{base}/fng/", params=params)
        body = self.json_body(resp, dict)
        err = (body.get("metadata") or {}).get("error")
        if err:
            raise ApiError(
                f"fear_greed: {err}",
                api_message=str(err),
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            )
        try:
            df, rejects, skipped = parse_fng(body, self.source, start=start, end=end, fetched_at=self.now_of(resp))
        except ValueError as exc:
            raise MalformedResponse(
                f"fear_greed: {exc}: {resp.text[:200]!r}",
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            ) from exc
        # a day is complete once its value is out; today's may not be published yet
        covered = df["ts"].max() + self.granularity if len(df) else start
        yield self.result(
            resp,
            df,
            symbol=key,
            rejects=rejects,
            skipped=sum(skipped.values()),
            skipped_reasons=skipped,
            complete_until=min(end, max(covered, start)),
        )
