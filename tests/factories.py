"""Factories for small, self-contained fixtures (no files from ../shared/data)."""

from __future__ import annotations

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
