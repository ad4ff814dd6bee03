"""Generated silver data for the feature tests: candles, articles, scores, social counts, F&G.

Deterministic for a seed; the shapes and column names are exactly the warehouse tables', so the
same frames go through `upsert_frame` or straight into `inputs_from_silver`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MODEL_ID = "test/vader@1"
START = pd.Timestamp("2024-01-01 00:00", tz="UTC")


@dataclass
class Silver:
    candles: pd.DataFrame
    articles: pd.DataFrame
    sentiment: pd.DataFrame
    social_counts: pd.DataFrame
    market: pd.DataFrame

    def tables(self) -> list[tuple[str, pd.DataFrame, list[str]]]:
        return [
            ("candles", self.candles, ["source", "symbol", "open_time"]),
            ("articles", self.articles, ["article_id"]),
            ("article_sentiment", self.sentiment, ["article_id", "model_id"]),
            ("social_counts", self.social_counts, ["source", "symbol", "hour"]),
            ("market_index", self.market, ["index_name", "ts"]),
        ]


def candles(
    n: int,
    *,
    start: pd.Timestamp = START,
    symbol: str = "BTCUSDT",
    source: str = "binance",
    seed: int = 0,
    price: float = 30_000.0,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.004, n)) * close
    high = np.maximum(open_, close) + spread
    low = np.minimum(open_, close) - spread * rng.uniform(0.2, 1.0, n)
    volume = rng.gamma(2.0, 50.0, n)
    return pd.DataFrame(
        {
            "source": source,
            "symbol": symbol,
            "open_time": pd.date_range(start, periods=n, freq="h"),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume,
            "quote_volume": volume * close,
            "trades": rng.integers(100, 5000, n),
        }
    )


def articles(
    n: int,
    *,
    start: pd.Timestamp = START,
    hours: int = 500,
    seed: int = 1,
    kind: str = "news",
    backfilled_share: float = 0.5,
    sources: tuple[str, ...] = ("cointelegraph", "cryptopotato"),
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    published = start + pd.to_timedelta(np.sort(rng.uniform(0, hours * 60, n)).round(), unit="min")
    seen = published + pd.to_timedelta(rng.uniform(0, 90, n).round(), unit="min")
    ids = [f"{kind}-{seed}-{i}" for i in range(n)]
    return pd.DataFrame(
        {
            "article_id": ids,
            "kind": kind,
            "source": [sources[i % len(sources)] for i in range(n)],
            "guid": ids,
            "url": [f"https://example.test/{i}" for i in ids],
            "title": [f"headline {i}" for i in range(n)],
            "body": "text",
            "categories": [["bitcoin"] for _ in range(n)],
            "published_at": published,
            "first_seen_at": seen,
            "backfilled": rng.uniform(size=n) < backfilled_share,
        }
    )


def scores(article_ids: pd.Series, *, seed: int = 2, model_id: str = MODEL_ID) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(article_ids)
    p = rng.dirichlet([1.0, 1.0, 1.0], n)
    return pd.DataFrame(
        {
            "article_id": article_ids.to_numpy(),
            "model_id": model_id,
            "model_revision": "1",
            "p_bearish": p[:, 0],
            "p_neutral": p[:, 1],
            "p_bullish": p[:, 2],
            "score": np.clip(p[:, 2] - p[:, 0], -1, 1),
            "scored_at": pd.Timestamp("2025-01-01", tz="UTC"),
        }
    )


def social_counts(
    hours: int,
    *,
    start: pd.Timestamp = START,
    symbol: str = "BTCUSDT",
    seed: int = 3,
    source: str = "reddit",
    every: int = 1,
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hour = pd.date_range(start, periods=hours, freq="h")[::every]
    n = len(hour)
    return pd.DataFrame(
        {
            "source": source,
            "symbol": symbol,
            "hour": hour,
            "mentions": rng.integers(0, 200, n),
            "posts": rng.integers(0, 50, n),
            # Mostly seen a few minutes after the hour closes; some late.
            "first_seen_at": hour + pd.Timedelta(hours=1) + pd.to_timedelta(rng.choice([2, 5, 30, 130], n), unit="min"),
        }
    )


def fear_greed(days: int, *, start: pd.Timestamp = START, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start.floor("D"), periods=days, freq="D")
    return pd.DataFrame(
        {
            "index_name": "fear_greed",
            "ts": ts,
            "value": rng.integers(5, 95, days).astype(float),
            "classification": "Neutral",
            "source": "alternative.me",
            "first_seen_at": ts + pd.Timedelta(minutes=10),
        }
    )


def silver(
    hours: int = 2000, *, n_news: int = 1500, n_social: int = 300, seed: int = 0, symbol: str = "BTCUSDT"
) -> Silver:
    news = articles(n_news, hours=hours, seed=seed + 1)
    social = articles(n_social, hours=hours, seed=seed + 5, kind="social", sources=("reddit",), backfilled_share=0.0)
    arts = pd.concat([news, social], ignore_index=True)
    return Silver(
        candles=candles(hours, seed=seed, symbol=symbol),
        articles=arts,
        sentiment=scores(arts["article_id"], seed=seed + 2),
        social_counts=social_counts(hours, seed=seed + 3, symbol=symbol),
        market=fear_greed(hours // 24 + 2, seed=seed + 4),
    )
