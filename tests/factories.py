"""Factories for small, self-contained fixtures (no files from ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def candles(
    n: int = 48,
    *,
    start: str = "2024-01-01 00:00",
    source: str = "test",
    symbol: str = "BTCUSDT",
    seed: int = 0,
    price: float = 40_000.0,
) -> pd.DataFrame:
    """A consistent hourly OHLCV random walk: high >= max(open, close), low <= min(open, close)."""
    rng = np.random.default_rng(seed)
    close = price * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    open_ = np.concatenate([[price], close[:-1]])
    spread = np.abs(rng.normal(0, 0.002, n)) * close
    return pd.DataFrame(
        {
            "source": source,
            "symbol": symbol,
            "open_time": pd.date_range(start, periods=n, freq="h", tz="UTC"),
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(10, 1000, n),
            "quote_volume": rng.uniform(1e5, 1e7, n),
            "trades": rng.integers(100, 10_000, n),
        }
    )


def write_replay_history(d: Path, hours: int = 1500, t0: pd.Timestamp = pd.Timestamp("2024-01-01", tz="UTC")) -> None:
    """Replay input in the shared data formats: hourly prices, news, fear & greed (generated)."""
    c = candles(hours, start=t0.strftime("%Y-%m-%d %H:%M"), seed=3)
    t = c["open_time"]
    pd.DataFrame(
        {
            "time": (t - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1),
            "date": t.dt.strftime("%Y-%m-%d"),
            "hour": t.dt.hour,
            "open": c["open"].round(2),
            "high": c["high"].round(2) + 0.01,
            "close": c["close"].round(2),
            "low": c["low"].round(2) - 0.01,
            "volumefrom": c["volume"].round(2),
            "volumeto": c["quote_volume"].round(2),
        }
    ).to_csv(d / "btc_usd_1h_test.csv", index=False)
    rng = np.random.default_rng(1)
    pub = t0 + pd.to_timedelta(np.sort(rng.integers(0, hours * 60, 240))[::-1], unit="min")
    pd.DataFrame(
        {
            "date": [f"{p.day}-{p.month}-{p.year} {p:%H:%M}" for p in pub],
            "sentiment": "{}",
            "source": "CoinTelegraph",
            "subject": "bitcoin",
            "text": "body",
            "title": [f"Bitcoin story {i}" for i in range(len(pub))],
            "url": [f"https://news.test/{i}" for i in range(len(pub))],
        }
    ).to_csv(d / "cryptonews_test.csv", sep=";", index=False)
    days = pd.date_range(t0, periods=hours // 24 + 1, freq="D")
    pd.DataFrame(
        {
            "value": rng.integers(5, 95, len(days)),
            "value_classification": "Neutral",
            "timestamp": days.strftime("%Y-%m-%d"),
        }
    ).to_csv(d / "fear_greed_index_test.csv", index=False)
