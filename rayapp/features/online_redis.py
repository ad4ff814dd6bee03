"""The Redis online store: one hash per (version, symbol) holding the timestamp and the vector as
JSON, so a lookup is a single round trip; the write is one MULTI/EXEC transaction, so a reader
never sees a new timestamp with an old vector. `AsyncOnlineReader` reads the same hashes from an
asyncio loop (the serving ingress's hot path).
"""

from __future__ import annotations

import json
import math

import pandas as pd
import redis

from rayapp.errors import StoreUnavailable
from rayapp.features.online_store import OnlineVector

PREFIX = "rayapp:features"


def _key(feature_set_version: str, symbol: str) -> str:
    return f"{PREFIX}:{feature_set_version}:{symbol}"


def _encode(values: dict[str, float]) -> str:
    # JSON has no NaN: missing values travel as null.
    return json.dumps(
        {k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in values.items()}
    )


def _decode(text: str | bytes) -> dict[str, float]:
    return {k: (math.nan if v is None else float(v)) for k, v in json.loads(text).items()}


def _vector(symbol: str, feature_set_version: str, raw: dict[bytes, bytes]) -> OnlineVector | None:
    if not raw:
        return None
    return OnlineVector(
        symbol=symbol,
        feature_set_version=feature_set_version,
        ts=pd.Timestamp(raw[b"ts"].decode()),
        values=_decode(raw[b"values"]),
        written_at=pd.Timestamp(raw[b"written_at"].decode()),
    )


def _safe_url(url: str) -> str:
    from rayapp.config import masked

    return str(masked(url))


class AsyncOnlineReader:
    """Reads of the same hashes from an asyncio event loop (the serving ingress's hot path)."""

    def __init__(self, url: str, *, socket_timeout: float = 2.0) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout
        )

    async def read(self, symbol: str, feature_set_version: str) -> OnlineVector | None:
        raw: dict[bytes, bytes] = await self.client.hgetall(_key(feature_set_version, symbol))  # type: ignore[misc, assignment]
        return _vector(symbol, feature_set_version, raw)


class RedisOnlineStore:
    """`OnlineStore` on Redis."""

    def __init__(self, url: str, *, socket_timeout: float = 2.0) -> None:
        self.url = url
        self.client = redis.Redis.from_url(url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout)

    def write(self, symbol: str, feature_set_version: str, ts: pd.Timestamp, values: dict[str, float]) -> None:
        ts = pd.Timestamp(ts)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        now = pd.Timestamp.now(tz="UTC")
        try:
            self._write(symbol, feature_set_version, ts, values, now)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis (online store) is unreachable at {_safe_url(self.url)}: {exc}") from exc

    def _write(
        self, symbol: str, feature_set_version: str, ts: pd.Timestamp, values: dict[str, float], now: pd.Timestamp
    ) -> None:
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(
                _key(feature_set_version, symbol),
                mapping={
                    "ts": ts.isoformat(),
                    "values": _encode(values),
                    "written_at": now.isoformat(),
                },
            )
            pipe.sadd(f"{PREFIX}:{feature_set_version}:symbols", symbol)
            pipe.execute()

    def read(self, symbol: str, feature_set_version: str) -> OnlineVector | None:
        raw: dict[bytes, bytes] = self.client.hgetall(_key(feature_set_version, symbol))  # type: ignore[assignment]
        return _vector(symbol, feature_set_version, raw)

    def symbols(self, feature_set_version: str) -> list[str]:
        members: set[bytes] = self.client.smembers(f"{PREFIX}:{feature_set_version}:symbols")  # type: ignore[assignment]
        return sorted(s.decode() for s in members)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False
