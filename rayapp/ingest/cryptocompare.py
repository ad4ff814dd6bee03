"""CryptoCompare news: ``GET /data/v2/news/?lang=EN&categories=BTC&lTs=UNIX_S``.

The API key goes in the ``authorization: Apikey KEY`` header. Pages (about 50 items) come newest
first; we page backwards by setting ``lTs`` to the oldest ``published_on`` seen, until we pass
``start``. Items already seen (a page boundary inside one second) are not emitted twice; a page
that brings nothing new moves ``lTs`` one second back so paging cannot loop. Errors arrive with
HTTP 200 and ``{"Response": "Error", "Message": ...}``: they fail fast with that message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from rayapp.ingest.base import SourceClient, frame
from rayapp.ingest.ids import article_id
from rayapp.ingest.types import ApiError, FetchResult, MalformedResponse
from rayapp.warehouse.quarantine import QuarantinedRow


def parse_news(
    items: list[Any], source: str, *, start: pd.Timestamp, end: pd.Timestamp, fetched_at: pd.Timestamp, seen: set[str]
) -> tuple[pd.DataFrame, list[QuarantinedRow], dict[str, int], list[int]]:
    """(articles, rejects, skip counts, published_on of every parseable item)."""
    good: list[dict[str, Any]] = []
    rejects: list[QuarantinedRow] = []
    skipped = {"outside_window": 0, "already_seen": 0}
    stamps: list[int] = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise ValueError(f"expected an object, got {str(item)[:80]}")
            ref = item.get("guid") or item.get("url")
            if not ref:
                raise ValueError("item has neither guid nor url")
            published = int(item["published_on"])
            ts = pd.Timestamp(published, unit="s", tz="UTC")
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raw = item if isinstance(item, dict) else {"item": item}
            key = str(raw.get("id") or raw.get("url") or f"item{i}")
            rejects.append(QuarantinedRow(key, "parse_article", f"unparseable item: {exc}", raw))
            continue
        stamps.append(published)
        aid = article_id(source, str(ref))
        if aid in seen:
            skipped["already_seen"] += 1
            continue
        seen.add(aid)
        if not start <= ts < end:
            skipped["outside_window"] += 1
            continue
        cats = [c for c in str(item.get("categories") or "").split("|") if c]
        good.append(
            {
                "article_id": aid,
                "kind": "news",
                "source": source,
                "guid": str(item["guid"]) if item.get("guid") else None,
                "url": item.get("url"),
                "title": str(item.get("title") or ""),
                "body": item.get("body"),
                "categories": cats,
                "published_at": ts,
                "first_seen_at": fetched_at,
                "backfilled": False,
            }
        )
    df = frame("articles", good, ("published_at", "first_seen_at"))
    return df, rejects, skipped, stamps


class CryptoCompareClient(SourceClient):
    source = "cryptocompare"
    dataset = "news"
    table = "articles"
    history = True
    granularity = pd.Timedelta(hours=1)
    key_kind = "query"

    @classmethod
    def default_keys(cls, settings: Any) -> list[str]:
        return ["BTC"]  # the categories query

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        sc = self.settings.sources
        url = f"{sc.cryptocompare_url.rstrip('/')}/data/v2/news/"
        headers = {"authorization": f"Apikey {sc.cryptocompare_api_key}"} if sc.cryptocompare_api_key else {}
        lts = int(end.timestamp())
        seen: set[str] = set()
        now: pd.Timestamp | None = None
        while True:
            params = {"lang": "EN", "categories": key, "lTs": lts}
            resp = await self.get(url, params=params, headers=headers)
            body = self.json_body(resp, dict)
            if body.get("Response") == "Error" or not isinstance(body.get("Data"), list):
                msg = str(body.get("Message") or "no Data in response")
                raise ApiError(
                    f"cryptocompare: {msg}",
                    code=body.get("Type"),
                    api_message=msg,
                    source=self.source,
                    url=resp.url,
                    status=resp.status,
                    payload=resp.text,
                )
            items = body["Data"]
            df, rejects, skipped, stamps = parse_news(
                items, self.source, start=start, end=end, fetched_at=self.now_of(resp), seen=seen
            )
            now = now or self.now_of(resp)  # the first page saw the newest news as of this time
            oldest = min(stamps) if stamps else None
            done = oldest is None or oldest < start.timestamp()
            yield self.result(
                resp,
                df,
                symbol=key,
                rejects=rejects,
                skipped=sum(skipped.values()),
                skipped_reasons=skipped,
                lTs=lts,
                complete_until=min(end, now) if done else None,
            )
            if done or oldest is None:
                break
            new = len(df) + skipped["outside_window"]
            nxt = oldest if new else oldest - 1  # a page of nothing new: step past that second
            if nxt >= lts:
                if not new:
                    raise MalformedResponse(
                        f"cryptocompare: paging with lTs={lts} does not go back",
                        source=self.source,
                        url=resp.url,
                        status=resp.status,
                        payload=resp.text,
                    )
                nxt = lts - 1
            lts = nxt
