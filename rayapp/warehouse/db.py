"""Connection pool per database URL; migrations applied on first use."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from rayapp.errors import StoreUnavailable

if TYPE_CHECKING:
    from rayapp.config import Settings

# The pool logs every failed attempt at WARNING; a down store is reported once, by StoreUnavailable.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

_pools: dict[str, ConnectionPool] = {}
_lock = threading.Lock()


def database_url(settings: Settings) -> str:
    """The configured URL, or the embedded server's (started on demand)."""
    if settings.database.url:
        return settings.database.url
    from rayapp.services import ensure_services

    return ensure_services(settings).postgres


def get_pool(target: Settings | str, *, migrate_schema: bool = True) -> ConnectionPool:
    """A shared, opened pool for this URL (or settings). Applies pending migrations once."""
    if isinstance(target, str):
        url, min_size, max_size, timeout = target, 1, 8, 10.0
    else:
        url = database_url(target)
        min_size, max_size = target.database.pool_min, target.database.pool_max
        timeout = target.database.connect_timeout_s
    with _lock:
        pool = _pools.get(url)
        if pool is None or pool.closed:
            pool = ConnectionPool(
                url,
                min_size=min_size,
                max_size=max(max_size, min_size, 1),
                timeout=timeout,
                open=False,
                name="rayapp",
            )
            try:
                pool.open(wait=True, timeout=timeout)
            except PoolTimeout as exc:
                pool.close()
                reason = _last_error(url)
                raise StoreUnavailable(f"PostgreSQL is unreachable at {_safe(url)}: {reason}") from exc
            if migrate_schema:
                from rayapp.warehouse.migrate import migrate

                with pool.connection() as conn:
                    migrate(conn)
            _pools[url] = pool
        return pool


def close_pools() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()


def _safe(url: str) -> str:
    from rayapp.config import masked

    return str(masked(url))


def _last_error(url: str) -> str:
    """The driver's own reason (the pool only says it timed out)."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return "connection timed out"
