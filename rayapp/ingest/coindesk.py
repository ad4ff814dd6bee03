"""CoinDesk RSS 2.0 feed (no key): recent items only, no history, so it is polled.

Items carry ``title``, ``link``, ``guid``, ``pubDate`` (RFC-822) and ``category``; the window is
ignored (``history = False``): every call returns the whole current feed, and the article id
(source + guid) makes re-polling idempotent. Items whose date cannot be parsed are rejected with
the raw item, never dropped.
"""

from __future__ import annotations

import email.utils
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd

from rayapp.ingest.base import SourceClient, frame
from rayapp.ingest.ids import article_id
from rayapp.ingest.types import FetchResult, MalformedResponse
from rayapp.warehouse.quarantine import QuarantinedRow


def _text(item: ET.Element, tag: str) -> str | None:
    el = item.find(tag)
    return el.text.strip() if el is not None and el.text else None


def parse_rss(xml: str, source: str, fetched_at: pd.Timestamp) -> tuple[pd.DataFrame, list[QuarantinedRow]]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML: {exc}") from exc
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise ValueError(f"not an RSS 2.0 document (root <{root.tag}>)")
    good: list[dict[str, Any]] = []
    rejects: list[QuarantinedRow] = []
    for i, item in enumerate(channel.findall("item")):
        raw: dict[str, Any] = {
            "title": _text(item, "title"),
            "link": _text(item, "link"),
            "guid": _text(item, "guid"),
            "pubDate": _text(item, "pubDate"),
            "category": [c.text.strip() for c in item.findall("category") if c.text],
        }
        ref: str | None = raw["guid"] or raw["link"]
        try:
            if not ref:
                raise ValueError("item has neither guid nor link")
            if not raw["pubDate"]:
                raise ValueError("item has no pubDate")
            published = pd.Timestamp(email.utils.parsedate_to_datetime(str(raw["pubDate"])))
            if published.tzinfo is None:
                raise ValueError(f"pubDate {raw['pubDate']!r} has no timezone")
        except (TypeError, ValueError) as exc:
            rejects.append(
                QuarantinedRow(str(ref or f"item{i}"), "parse_published_at", f"unparseable item: {exc}", raw)
            )
            continue
        good.append(
            {
                "article_id": article_id(source, str(ref)),
                "kind": "news",
                "source": source,
                "guid": raw["guid"],
                "url": raw["link"],
                "title": raw["title"] or "",
                "body": _text(item, "description"),
                "categories": raw["category"],
                "published_at": published.tz_convert("UTC"),
                "first_seen_at": fetched_at,
                "backfilled": False,
            }
        )
    return frame("articles", good, ("published_at", "first_seen_at")), rejects


class CoinDeskClient(SourceClient):
    source = "coindesk"
    dataset = "rss"
    table = "articles"
    history = False
    granularity = pd.Timedelta(minutes=15)
    key_kind = "query"

    @classmethod
    def default_keys(cls, settings: Any) -> list[str]:
        return ["rss"]

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        resp = await self.get(self.settings.sources.coindesk_rss_url)
        try:
            df, rejects = parse_rss(resp.text, self.source, self.now_of(resp))
        except ValueError as exc:
            raise MalformedResponse(
                f"coindesk: {exc}", source=self.source, url=resp.url, status=resp.status, payload=resp.text
            ) from exc
        yield self.result(resp, df, symbol=key, rejects=rejects, skipped=0, complete_until=self.now_of(resp))
