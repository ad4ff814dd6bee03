"""FeatureLookup: the latest feature vector, online first, offline when Redis cannot answer.

Redis (the online store) is read first. When it is down, has no vector, or the vector is older than
`serving.feature_staleness_s` (on the system clock the ingress passes: wall time, or the replay's
market clock), the newest row of the offline store (PostgreSQL `features`) is used
instead if it is newer; the answer then says where it came from and why (`source`, `fallback`,
`reason`), and `stale` stays true when even the best vector is too old. Nothing is invented: if
neither store has the vector, the lookup says so and the API answers 404.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import pandas as pd
import redis

from rayapp.features import OnlineStore, OnlineVector, open_online_store
from rayapp.log import configure, get_logger

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rayapp.config import Settings

log = get_logger(__name__)

_OFFLINE_LATEST = """
SELECT f.ts, f.vals, s.feature_names
FROM features f JOIN feature_sets s USING (feature_set_version)
WHERE f.symbol = %s AND f.feature_set_version = %s
ORDER BY f.ts DESC LIMIT 1
"""
_OFFLINE_LATEST_TS = """
SELECT max(ts) FROM features WHERE symbol = %s AND feature_set_version = %s
"""


class FeatureLookup:
    def __init__(self, settings: Settings, *, pool: ConnectionPool | None = None) -> None:
        from rayapp.warehouse import get_pool

        if not settings.redis.url or not settings.database.url:
            raise ValueError(
                "FeatureLookup needs resolved redis.url and database.url (rayapp.serving.deployments.resolve_settings)"
            )
        configure(settings.log.level, settings.log.format)  # replicas start unconfigured
        self.settings = settings
        self.online: OnlineStore = open_online_store(settings.redis.url, socket_timeout=settings.redis.socket_timeout_s)
        self.pool = pool or get_pool(settings.database.url, migrate_schema=False)
        self.max_age_s = settings.serving.feature_staleness_s
        self.counts = {"online": 0, "offline": 0, "missing": 0, "redis_errors": 0}

    # ---- stores --------------------------------------------------------------------------------
    def _online(self, symbol: str, fsv: str) -> tuple[Any, str | None]:
        try:
            return self.online.read(symbol, fsv), None
        except redis.RedisError as exc:
            self.counts["redis_errors"] += 1
            log.warning("online store unavailable", symbol=symbol, error=type(exc).__name__)
            return None, "online store unavailable"

    def _offline(self, symbol: str, fsv: str) -> tuple[pd.Timestamp, dict[str, float]] | None:
        with self.pool.connection() as conn:
            row = conn.execute(_OFFLINE_LATEST, (symbol, fsv)).fetchone()
        if row is None:
            return None
        ts, vals, names = row
        return pd.Timestamp(ts).tz_convert("UTC"), {
            n: (math.nan if v is None else float(v)) for n, v in zip(names, vals, strict=True)
        }

    # ---- API -----------------------------------------------------------------------------------
    def lookup(self, symbol: str, feature_set_version: str, now: str | None = None) -> dict[str, Any]:
        """{found, values, ts, source, fallback, reason, stale, age_s} for the newest vector.

        `now`: ISO time on the system clock (the ingress's: the replay's market clock in replay
        mode); default wall time."""
        return self._lookup(
            symbol, feature_set_version, pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
        )

    def _lookup(self, symbol: str, feature_set_version: str, now: pd.Timestamp) -> dict[str, Any]:
        vec, reason = self._online(symbol, feature_set_version)
        if vec is not None:
            fresh = fresh_online(vec, self.max_age_s, now)
            if fresh is not None:
                self.counts["online"] += 1
                return fresh
            reason = "online vector stale"
        elif reason is None:
            reason = "online store has no vector"
        offline = self._offline(symbol, feature_set_version)
        if offline is not None and (vec is None or offline[0] > vec.ts):
            self.counts["offline"] += 1
            ts, values = offline
            return _result(
                symbol, feature_set_version, ts, values, "offline", reason, (now - ts).total_seconds(), self.max_age_s
            )
        if vec is not None:  # stale, but nothing newer exists anywhere: serve it, flagged
            self.counts["online"] += 1
            return _result(
                symbol,
                feature_set_version,
                vec.ts,
                vec.values,
                "online",
                None,
                (now - vec.ts).total_seconds(),
                self.max_age_s,
            )
        self.counts["missing"] += 1
        return {
            "found": False,
            "symbol": symbol,
            "feature_set_version": feature_set_version,
            "reason": reason + "; offline store has no row either",
        }

    def latest_ts(self, symbol: str, feature_set_version: str) -> str | None:
        """Timestamp of the newest vector in either store (the WebSocket watcher's trigger)."""
        vec, _ = self._online(symbol, feature_set_version)
        if vec is not None:
            return str(pd.Timestamp(vec.ts).isoformat())
        with self.pool.connection() as conn:
            row = conn.execute(_OFFLINE_LATEST_TS, (symbol, feature_set_version)).fetchone()
        return None if row is None or row[0] is None else pd.Timestamp(row[0]).isoformat()

    def health(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        redis_ok = self.online.ping()
        pg_ok, pg_error = True, None
        try:
            with self.pool.connection(timeout=2) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            pg_ok, pg_error = False, type(exc).__name__
        return {
            "redis": redis_ok,
            "postgres": pg_ok,
            "postgres_error": pg_error,
            "check_ms": (time.perf_counter() - t0) * 1e3,
            "counts": dict(self.counts),
        }


def fresh_online(vec: OnlineVector, max_age_s: float, now: pd.Timestamp | None = None) -> dict[str, Any] | None:
    """The lookup answer for an online vector no older than `max_age_s`; None when it is stale
    (the ingress's own Redis read and FeatureLookup decide freshness the same way)."""
    now = pd.Timestamp.now(tz="UTC") if now is None else now
    age = (now - vec.ts).total_seconds()
    if age > max_age_s:
        return None
    return _result(vec.symbol, vec.feature_set_version, vec.ts, vec.values, "online", None, age, max_age_s)


def _result(
    symbol: str,
    fsv: str,
    ts: pd.Timestamp,
    values: dict[str, float],
    source: str,
    reason: str | None,
    age_s: float,
    max_age_s: float,
) -> dict[str, Any]:
    return {
        "found": True,
        "symbol": symbol,
        "feature_set_version": fsv,
        "ts": ts.isoformat(),
        # JSON has no NaN: a missing feature travels as None.
        "values": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()},
        "source": source,
        "fallback": reason is not None,
        "reason": reason,
        "age_s": age_s,
        "stale": age_s > max_age_s,
    }
