"""Market replay: a local HTTP server that speaks the public APIs from CSV history.

Paths, parameters, paging and headers are the real ones, so the live clients run unchanged with
``sources=replay``:

* Binance ``GET /api/v3/klines`` (symbol, interval=1h, startTime, endTime, limit <= 1000), weight 2
  per call counted per ``replay.weight_window_s`` window and reported in ``X-MBX-USED-WEIGHT-1M``;
  past ``replay.weight_limit`` it answers 429 with ``Retry-After`` (seconds to the window's end).
  Bars come from ``replay.klines_files`` (CryptoCompare-style hourly CSV or Binance kline exports;
  the CryptoCompare file has no trade counts, served as 0). Served as symbol BTCUSDT.
* Coinbase ``GET /products/BTC-USD/candles`` (granularity=3600, start, end; <= 300, newest first).
* CryptoCompare ``GET /data/v2/news/`` (lang, categories, lTs: items with published_on <= lTs,
  newest first, ``replay.news_page_size`` a page), from the news CSV (day-first dates, read as
  UTC; the same URL under several subjects is one article with several categories).
* alternative.me ``GET /fng/`` (limit, 0 = all; values as strings, newest first, one per day).
* CoinDesk ``GET /arc/outboundfeeds/rss/``: the newest ``replay.rss_items`` articles as RSS 2.0.

Clock: with ``start`` the server lives at simulated time ``start + speed * wall seconds elapsed``
and serves only what has happened by then (the current hour's bar included, as an open bar whose
closeTime is in the future; ``Date`` carries the simulated time). Without ``start`` it serves all.
``GET /replay/stats`` reports requests and rows served (for benchmarks).
"""

from __future__ import annotations

import asyncio
import email.utils
import glob
import hashlib
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from aiohttp import web

from rayapp.log import get_logger

log = get_logger(__name__)

HOUR_MS = 3_600_000
SYMBOL = "BTCUSDT"
CATEGORY = {
    "bitcoin": "BTC",
    "ethereum": "ETH",
    "altcoin": "Altcoin",
    "blockchain": "Blockchain",
    "nft": "NFT",
    "defi": "DeFi",
}


# ---- data ----------------------------------------------------------------------------------------
def _load_klines(paths: list[Path]) -> tuple[np.ndarray, list[str], list[list[Any]]]:
    """(open_ms sorted, the pre-serialised JSON array per bar, Coinbase rows)."""
    frames = []
    for p in paths:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False)
        if {"time", "volumefrom", "volumeto"} <= set(raw.columns):  # CryptoCompare-style hourly
            df = pd.DataFrame(
                {
                    "open_ms": raw["time"].astype("int64") * 1000,
                    "open": raw["open"],
                    "high": raw["high"],
                    "low": raw["low"],
                    "close": raw["close"],
                    "volume": raw["volumefrom"],
                    "quote_volume": raw["volumeto"],
                    "trades": "0",
                    "taker_base": "0",
                    "taker_quote": "0",
                }
            )
        elif "open_time" in raw.columns:  # Binance data-portal export = the API array
            df = pd.DataFrame(
                {
                    "open_ms": raw["open_time"].astype("int64"),
                    "open": raw["open"],
                    "high": raw["high"],
                    "low": raw["low"],
                    "close": raw["close"],
                    "volume": raw["volume"],
                    "quote_volume": raw["quote_volume"],
                    "trades": raw["count"],
                    "taker_base": raw["taker_buy_volume"],
                    "taker_quote": raw["taker_buy_quote_volume"],
                }
            )
        else:
            raise ValueError(f"{p}: not a klines CSV (header {list(raw.columns)})")
        frames.append(df)
    if not frames:
        return np.array([], dtype="int64"), [], []
    df = pd.concat(frames).drop_duplicates("open_ms", keep="first").sort_values("open_ms")
    opens = df["open_ms"].to_numpy(dtype="int64")
    compact = (",", ":")
    rows = [
        json.dumps([int(o), a, b, c, d, v, int(o) + HOUR_MS - 1, q, int(t), tb, tq, "0"], separators=compact)
        for o, a, b, c, d, v, q, t, tb, tq in zip(
            opens,
            df["open"],
            df["high"],
            df["low"],
            df["close"],
            df["volume"],
            df["quote_volume"],
            df["trades"],
            df["taker_base"],
            df["taker_quote"],
            strict=True,
        )
    ]
    cb = [
        [int(o) // 1000, float(lo), float(h), float(op), float(c), float(v)]
        for o, lo, h, op, c, v in zip(opens, df["low"], df["high"], df["open"], df["close"], df["volume"], strict=True)
    ]
    return opens, rows, cb


def _unix_s(ts: pd.Series) -> pd.Series:
    # pandas 3 may parse to us/ms resolution: divide by the unit's own epoch second, not 10**9.
    return (ts - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)


def _load_news(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    ts = pd.to_datetime(raw["date"], format="%d-%m-%Y %H:%M", errors="coerce", utc=True)
    bad = int(ts.isna().sum())
    if bad:
        log.warning("replay: news rows with unparseable dates not served", path=str(path), skipped=bad)
    raw = raw.assign(published_on=_unix_s(ts))
    raw = raw[ts.notna()]
    raw["category"] = raw["subject"].map(lambda s: CATEGORY.get(s, s.capitalize()))
    merged = raw.groupby("url", sort=False).agg(
        published_on=("published_on", "first"),
        title=("title", "first"),
        body=("text", "first"),
        source=("source", "first"),
        categories=("category", lambda c: "|".join(dict.fromkeys(c))),
    )
    merged = merged.reset_index()
    merged["published_on"] = merged["published_on"].astype("int64")
    merged["id"] = [str(int(hashlib.sha1(u.encode()).hexdigest()[:12], 16)) for u in merged["url"]]
    return merged.sort_values("published_on", ascending=False, kind="stable").reset_index(drop=True)


def _load_fng(path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    day = pd.to_datetime(raw["timestamp"], format="ISO8601", utc=True).dt.normalize()
    df = raw.assign(ts=_unix_s(day)).drop_duplicates("ts", keep="first")
    return df.sort_values("ts", ascending=False).reset_index(drop=True)


@dataclass
class ReplayData:
    opens: np.ndarray
    klines: list[str]
    coinbase: list[list[Any]]
    news: pd.DataFrame
    fng: pd.DataFrame

    @classmethod
    def load(cls, data_dir: str | Path, klines_globs: list[str]) -> ReplayData:
        d = Path(data_dir).expanduser().resolve()
        if not d.is_dir():
            raise FileNotFoundError(f"replay data folder {d} does not exist")
        kpaths = sorted({Path(p) for g in klines_globs for p in glob.glob(str(d / g))})
        news = sorted(d.glob("cryptonews_*.csv"))
        fng = sorted(d.glob("fear_greed_index_*.csv"))
        opens, rows, cb = _load_klines(kpaths)
        out = cls(
            opens,
            rows,
            cb,
            _load_news(news[0]) if news else pd.DataFrame(columns=["published_on"]),
            _load_fng(fng[0]) if fng else pd.DataFrame(columns=["ts"]),
        )
        log.info(
            "replay data loaded", data=str(d), klines=len(rows), articles=len(out.news), fear_greed_days=len(out.fng)
        )
        return out


# ---- clock and weight ----------------------------------------------------------------------------
@dataclass
class Clock:
    start: pd.Timestamp | None = None
    speed: float = 0.0
    t0: float = field(default_factory=time.monotonic)
    # identifies this simulated timeline: a scheduler following it keys its slots by it
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def now(self) -> pd.Timestamp | None:
        """The simulated time, or None when every row is served."""
        if self.start is None:
            return None
        return self.start + pd.Timedelta(seconds=(time.monotonic() - self.t0) * self.speed)


@dataclass
class WeightCounter:
    limit: int
    window_s: float
    window: int = -1
    used: int = 0

    def add(self, weight: int) -> tuple[int, float]:
        """(used weight in this window after the call, seconds left in the window)."""
        now = time.time()
        w = int(now // self.window_s)
        if w != self.window:
            self.window, self.used = w, 0
        self.used += weight
        return self.used, self.window_s - (now % self.window_s)


def _binance_error(status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status, headers=headers)


def _int_param(q: Any, name: str) -> int | None:
    v = q.get(name)
    if v is None or v == "":
        return None
    return int(v)


# ---- handlers ------------------------------------------------------------------------------------
class Replay:
    def __init__(
        self,
        data: ReplayData,
        clock: Clock,
        *,
        weight_limit: int = 6000,
        weight_window_s: float = 60,
        news_page_size: int = 50,
        rss_items: int = 25,
    ) -> None:
        self.data, self.clock = data, clock
        self.weight = WeightCounter(weight_limit, weight_window_s)
        self.news_page_size, self.rss_items = news_page_size, rss_items
        self.stats = {"requests": 0, "rows": 0, "throttled": 0}

    def _headers(self) -> dict[str, str]:
        now = self.clock.now()
        return {} if now is None else {"Date": email.utils.format_datetime(now.floor("s").to_pydatetime(), usegmt=True)}

    def _now_s(self) -> float:
        now = self.clock.now()
        return float("inf") if now is None else now.timestamp()

    async def klines(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        used, left = self.weight.add(2)
        headers = {**self._headers(), "X-MBX-USED-WEIGHT-1M": str(used)}
        if used > self.weight.limit:
            self.stats["throttled"] += 1
            headers["Retry-After"] = str(max(1, int(np.ceil(left))))
            return _binance_error(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.weight.limit} request weight per 1 MINUTE.",
                headers,
            )
        q = request.query
        if q.get("symbol", "").upper() != SYMBOL:
            return _binance_error(400, -1121, "Invalid symbol.", headers)
        if q.get("interval") != "1h":
            return _binance_error(400, -1120, "Invalid interval.", headers)
        try:
            start, end, limit = _int_param(q, "startTime"), _int_param(q, "endTime"), _int_param(q, "limit")
        except ValueError:
            return _binance_error(400, -1100, "Illegal characters found in a parameter.", headers)
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1000:
            return _binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.", headers)
        opens = self.data.opens
        hi = len(opens)
        now_s = self._now_s()
        if now_s != float("inf"):
            hi = int(np.searchsorted(opens, int(now_s * 1000), side="right"))  # bars opened by now
        if end is not None:
            hi = min(hi, int(np.searchsorted(opens, end, side="right")))
        if start is not None:
            lo = int(np.searchsorted(opens, start, side="left"))
            sel = range(lo, min(hi, lo + limit))
        else:
            sel = range(max(0, hi - limit), hi)
        self.stats["rows"] += len(sel)
        body = "[" + ",".join(self.data.klines[i] for i in sel) + "]"
        return web.Response(text=body, content_type="application/json", headers=headers)

    async def coinbase_candles(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        if request.match_info["product"] != "BTC-USD":
            return web.json_response({"message": "NotFound"}, status=404)
        q = request.query
        if q.get("granularity") != "3600":
            return web.json_response({"message": "Unsupported granularity"}, status=400)
        try:
            start = pd.Timestamp(q["start"]).timestamp()
            end = pd.Timestamp(q["end"]).timestamp()
        except (KeyError, ValueError):
            return web.json_response({"message": "start and end must be ISO 8601 times"}, status=400)
        if (end - start) / 3600 + 1 > 300:
            return web.json_response(
                {
                    "message": "granularity too small for the requested time range. "
                    "Count of aggregations requested exceeds 300"
                },
                status=400,
            )
        end = min(end, self._now_s())
        lo = int(np.searchsorted(self.data.opens, int(start * 1000), side="left"))
        hi = int(np.searchsorted(self.data.opens, int(end * 1000), side="right"))
        rows = self.data.coinbase[lo:hi][::-1]
        self.stats["rows"] += len(rows)
        return web.json_response(rows, headers=self._headers())

    async def news(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        q = request.query
        df = self.data.news
        if q.get("lang", "EN").upper() != "EN":
            df = df.iloc[0:0]
        cats = [c.strip().lower() for c in q.get("categories", "").split(",") if c.strip()]
        if cats:
            mask = df["categories"].str.lower().str.split("|").map(lambda cs: any(c in cs for c in cats))
            df = df[mask.astype(bool)]
        try:
            lts = float(q["lTs"]) if q.get("lTs") else float("inf")
        except ValueError:
            return web.json_response(
                {"Response": "Error", "Message": "lTs must be a unix timestamp", "Type": 2, "Data": []}
            )
        df = df[df["published_on"] <= min(lts, self._now_s())].head(self.news_page_size)
        self.stats["rows"] += len(df)
        items = [
            {
                "id": r.id,
                "guid": r.url,
                "published_on": int(r.published_on),
                "imageurl": "",
                "title": r.title,
                "url": r.url,
                "body": r.body,
                "tags": "",
                "lang": "EN",
                "upvotes": "0",
                "downvotes": "0",
                "categories": r.categories,
                "source": r.source.lower(),
                "source_info": {"name": r.source, "lang": "EN", "img": ""},
            }
            for r in df.itertuples()
        ]
        return web.json_response(
            {
                "Type": 100,
                "Message": "News list successfully returned",
                "Promoted": [],
                "Data": items,
                "RateLimit": {},
                "HasWarning": False,
            },
            headers=self._headers(),
        )

    async def fng(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        try:
            limit = int(request.query.get("limit", "1"))
        except ValueError:
            return web.json_response(
                {"name": "Fear and Greed Index", "data": [], "metadata": {"error": "limit must be an integer"}}
            )
        df = self.data.fng[self.data.fng["ts"] <= self._now_s()]
        if limit > 0:
            df = df.head(limit)
        self.stats["rows"] += len(df)
        data = [
            {"value": str(r.value), "value_classification": r.value_classification, "timestamp": str(int(r.ts))}
            for r in df.itertuples()
        ]
        return web.json_response(
            {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}, headers=self._headers()
        )

    async def rss(self, request: web.Request) -> web.Response:
        self.stats["requests"] += 1
        df = self.data.news[self.data.news["published_on"] <= self._now_s()].head(self.rss_items)
        self.stats["rows"] += len(df)
        items = []
        for r in df.itertuples():
            pub = email.utils.formatdate(float(r.published_on), usegmt=True)
            cats = "".join(f"<category>{escape(c)}</category>" for c in r.categories.split("|"))
            items.append(
                f"<item><title>{escape(r.title)}</title><link>{escape(r.url)}</link>"
                f'<guid isPermaLink="false">{escape(r.url)}</guid><pubDate>{pub}</pubDate>'
                f"{cats}<description>{escape(r.body)}</description></item>"
            )
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            "<title>CoinDesk (replay)</title><link>https://www.coindesk.com</link>"
            "<description>replayed history</description>" + "".join(items) + "</channel></rss>"
        )
        return web.Response(text=xml, content_type="application/rss+xml", headers=self._headers())

    async def stats_view(self, request: web.Request) -> web.Response:
        now = self.clock.now()
        return web.json_response(
            {
                **self.stats,
                "now": None if now is None else now.isoformat(),
                "speed": self.clock.speed if now is not None else 0.0,
                "session": self.clock.session,
            }
        )


REPLAY = web.AppKey("replay", Replay)  # app[REPLAY].stats: requests, rows, throttled


def make_app(data: ReplayData, clock: Clock | None = None, **kw: Any) -> web.Application:
    replay = Replay(data, clock or Clock(), **kw)
    app = web.Application()
    app[REPLAY] = replay
    app.router.add_get("/api/v3/klines", replay.klines)
    app.router.add_get("/products/{product}/candles", replay.coinbase_candles)
    app.router.add_get("/data/v2/news/", replay.news)
    app.router.add_get("/fng/", replay.fng)
    app.router.add_get("/arc/outboundfeeds/rss/", replay.rss)
    app.router.add_get("/replay/stats", replay.stats_view)
    return app


def app_from_settings(rs: Any, data_dir: str | None = None, *, data: ReplayData | None = None) -> web.Application:
    """The app for ``settings.replay`` (``rs``); ``data`` skips re-reading the CSVs."""
    data = data or ReplayData.load(data_dir or rs.data, rs.klines_files)
    start = pd.Timestamp(rs.start) if rs.start else None
    if start is not None:
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    return make_app(
        data,
        Clock(start, rs.speed),
        weight_limit=rs.weight_limit,
        weight_window_s=rs.weight_window_s,
        news_page_size=rs.news_page_size,
        rss_items=rs.rss_items,
    )


class ReplayServer:
    """The replay app on a background thread, for code that is not async (benchmarks, Ray drivers).

    ``with ReplayServer(app) as url:`` serves on 127.0.0.1 (port 0 = a free one) until the block ends.
    """

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app, self.host, self.port = app, host, port
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replay-server", daemon=True)
        self._runner: web.AppRunner | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{self.host}:{port}"

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("replay server did not start within 30 s")
        return self.url

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
