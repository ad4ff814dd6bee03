"""Online feature store: the latest feature vector per (symbol, feature-set version).

A small protocol with one implementation a file, the way Feast keeps its online stores: callers
(the feature build, `online-check`, serving's FeatureLookup) code against `OnlineStore`, and
`open_online_store(url)` picks the implementation from the URL (`redis://`: `online_redis`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class OnlineVector:
    symbol: str
    feature_set_version: str
    ts: pd.Timestamp
    values: dict[str, float]  # NaN for missing
    written_at: pd.Timestamp


class OnlineStore(Protocol):
    def write(self, symbol: str, feature_set_version: str, ts: pd.Timestamp, values: dict[str, float]) -> None:
        """Replace the vector of (symbol, version) atomically: a reader never sees a mix."""
        ...

    def read(self, symbol: str, feature_set_version: str) -> OnlineVector | None:
        """The vector of (symbol, version), None when none was written."""
        ...

    def symbols(self, feature_set_version: str) -> list[str]:
        """Every symbol with a vector of this version."""
        ...

    def ping(self) -> bool:
        """Whether the store answers now."""
        ...


def open_online_store(url: str, *, socket_timeout: float = 2.0) -> OnlineStore:
    """The online store behind `url`."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        from rayapp.features.online_redis import RedisOnlineStore

        return RedisOnlineStore(url, socket_timeout=socket_timeout)
    raise ValueError(f"no online store implementation for {url.split(':', 1)[0]!r} URLs (use redis://)")
