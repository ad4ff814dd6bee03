"""Reddit r/Bitcoin new posts through the OAuth API (application-only, client credentials).

``POST {reddit_auth_url}/api/v1/access_token`` (basic auth, ``grant_type=client_credentials``)
gives a bearer token; ``GET {reddit_url}/r/{sub}/new?limit=100&after=...`` pages back through the
newest posts (Reddit keeps only about the last 1000 in a listing: ``history = False``).

Each listing page becomes a FetchResult of ``articles`` (kind ``social``: the post titles, for
sentiment scoring). After the last page one *derived* FetchResult carries ``social_counts``:
per hour, the posts created and those mentioning bitcoin. Only hours the listing fully covers
are counted (an hour with no post is a real zero only if we saw past it). Without credentials
the source is skipped with one log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pandas as pd

from rayapp.ingest.base import SourceClient, frame
from rayapp.ingest.http import HttpResponse
from rayapp.ingest.ids import article_id
from rayapp.ingest.types import ApiError, FetchResult, MalformedResponse
from rayapp.log import get_logger
from rayapp.warehouse.quarantine import QuarantinedRow

log = get_logger(__name__)

MENTION = re.compile(r"\b(bitcoin|btc|xbt|sats)\b", re.IGNORECASE)
PAGE_LIMIT = 100
_skip_logged = False


def parse_listing(
    body: Any, source: str, fetched_at: pd.Timestamp
) -> tuple[list[dict[str, Any]], list[QuarantinedRow], str | None]:
    """(posts as article rows + ``mentions`` flag, rejects, the ``after`` cursor)."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("children"), list):
        raise ValueError("expected a Listing with data.children")
    posts: list[dict[str, Any]] = []
    rejects: list[QuarantinedRow] = []
    for i, child in enumerate(data["children"]):
        post = child.get("data") if isinstance(child, dict) else None
        try:
            if not isinstance(post, dict):
                raise ValueError(f"expected a post object, got {str(child)[:80]}")
            name = str(post["name"])
            created = pd.Timestamp(float(post["created_utc"]), unit="s", tz="UTC")
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raw = post if isinstance(post, dict) else {"child": child}
            rejects.append(
                QuarantinedRow(str(raw.get("name", f"post{i}")), "parse_post", f"unparseable post: {exc!r}", raw)
            )
            continue
        title, body_text = str(post.get("title") or ""), str(post.get("selftext") or "")
        permalink = post.get("permalink")
        link = f"https://www.reddit.com{permalink}" if permalink else post.get("url")
        posts.append(
            {
                "article_id": article_id(source, name),
                "kind": "social",
                "source": source,
                "guid": name,
                "url": link,
                "title": title,
                "body": body_text or None,
                "categories": [post["link_flair_text"]] if post.get("link_flair_text") else [],
                "published_at": created,
                "first_seen_at": fetched_at,
                "backfilled": False,
                "mentions": bool(MENTION.search(f"{title}\n{body_text}")),
            }
        )
    after = data.get("after")
    return posts, rejects, str(after) if after else None


def hourly_counts(
    created: pd.Series,
    mentions: pd.Series,
    *,
    source: str,
    symbol: str,
    cover_from: pd.Timestamp,
    until: pd.Timestamp,
    fetched_at: pd.Timestamp,
) -> pd.DataFrame:
    """One row per complete hour in [cover_from, until): posts and bitcoin mentions (zeros kept)."""
    first, last = cover_from.ceil("h"), until.floor("h")
    hours = pd.date_range(first, last, freq="h", inclusive="left", tz="UTC") if last > first else []
    bucket = created.dt.floor("h")
    rows = [
        {
            "source": source,
            "symbol": symbol,
            "hour": h,
            "mentions": int(mentions[bucket == h].sum()),
            "posts": int((bucket == h).sum()),
            "first_seen_at": fetched_at,
        }
        for h in hours
    ]
    return frame("social_counts", rows, ("hour", "first_seen_at"))


class RedditClient(SourceClient):
    source = "reddit"
    dataset = "posts"
    table = "articles"
    history = False
    granularity = pd.Timedelta(hours=1)

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._token: str | None = None

    @classmethod
    def skip_reason(cls, settings: Any) -> str | None:
        sc = settings.sources
        if not sc.reddit_client_id or not sc.reddit_client_secret:
            return (
                "reddit: no sources.reddit_client_id / reddit_client_secret (env RAYAPP_REDDIT_CLIENT_ID"
                " / RAYAPP_REDDIT_CLIENT_SECRET); source skipped"
            )
        return None

    async def _auth(self) -> str:
        sc = self.settings.sources
        assert sc.reddit_client_id and sc.reddit_client_secret
        resp = await self.get(
            f"{sc.reddit_auth_url.rstrip('/')}/api/v1/access_token",
            method="POST",
            data={"grant_type": "client_credentials"},
            auth=aiohttp.BasicAuth(sc.reddit_client_id, sc.reddit_client_secret),
            headers={"User-Agent": sc.reddit_user_agent},
        )
        try:
            token = resp.json().get("access_token")
        except (ValueError, AttributeError) as exc:
            raise MalformedResponse(
                f"reddit: token response is not JSON: {resp.text[:200]!r}",
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            ) from exc
        if not token:
            raise ApiError(
                f"reddit: no access_token in token response: {resp.text[:200]}",
                source=self.source,
                url=resp.url,
                status=resp.status,
                payload=resp.text,
            )
        return str(token)

    async def _listing(self, url: str, params: dict[str, Any]) -> HttpResponse:
        for fresh in (False, True):
            if self._token is None or fresh:
                self._token = await self._auth()
            headers = {"Authorization": f"bearer {self._token}", "User-Agent": self.settings.sources.reddit_user_agent}
            try:
                return await self.get(url, params=params, headers=headers)
            except ApiError as exc:
                if exc.status != 401 or fresh:
                    raise  # an expired token gets one fresh try, nothing else does
        raise AssertionError("unreachable")  # pragma: no cover

    async def pages(self, key: str, start: pd.Timestamp, end: pd.Timestamp) -> AsyncIterator[FetchResult]:
        global _skip_logged
        reason = self.skip_reason(self.settings)
        if reason:
            if not _skip_logged:
                log.warning("source skipped", source=self.source, reason=reason)
                _skip_logged = True
            return
        sc = self.settings.sources
        url = f"{sc.reddit_url.rstrip('/')}/r/{sc.reddit_subreddit}/new"
        after: str | None = None
        all_posts: list[dict[str, Any]] = []
        first_url, reached_start, fetched_at = "", False, pd.Timestamp.now(tz="UTC")
        now = fetched_at
        while True:
            params: dict[str, Any] = {"limit": PAGE_LIMIT, "raw_json": 1}
            if after:
                params["after"] = after
            resp = await self._listing(url, params)
            first_url = first_url or resp.url
            fetched_at = resp.fetched_at
            try:
                posts, rejects, after = parse_listing(resp.json(), self.source, self.now_of(resp))
            except ValueError as exc:
                raise MalformedResponse(
                    f"reddit: {exc}: {resp.text[:200]!r}",
                    source=self.source,
                    url=resp.url,
                    status=resp.status,
                    payload=resp.text,
                ) from exc
            all_posts.extend(posts)
            reached_start = reached_start or any(p["published_at"] < start for p in posts)
            df = frame(
                "articles",
                [{k: v for k, v in p.items() if k != "mentions"} for p in posts],
                ("published_at", "first_seen_at"),
            )
            yield self.result(resp, df, symbol=key, rejects=rejects, skipped=0, after=after)
            now = self.now_of(resp)
            if not after or reached_start or not posts:
                break
        created = pd.Series([p["published_at"] for p in all_posts], dtype="datetime64[ns, UTC]")
        mentions = pd.Series([p["mentions"] for p in all_posts], dtype=bool)
        cover_from = start if reached_start or not all_posts else max(start, created.min())
        counts = hourly_counts(
            created,
            mentions,
            source=self.source,
            symbol=key,
            cover_from=cover_from,
            until=min(end, now),
            fetched_at=now,
        )
        payload = json.dumps(
            counts.assign(hour=counts["hour"].astype(str), first_seen_at=counts["first_seen_at"].astype(str)).to_dict(
                "records"
            )
        )
        res = FetchResult(
            source=self.source,
            dataset="mentions",
            table="social_counts",
            url=first_url,
            status=200,
            fetched_at=fetched_at,
            payload=payload,
            records=counts,
            symbol=key,
            derived=True,
            meta={"skipped": 0, "posts": len(all_posts)},
            complete_until=min(end, now).floor("h"),
        )
        yield res
