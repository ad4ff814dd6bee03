"""`rayapp services up|down|status`: embedded services when URLs are unset, checks when set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rayapp.services.postgres import EmbeddedPostgres
from rayapp.services.redis import EmbeddedRedis, _ping

if TYPE_CHECKING:
    from rayapp.config import Settings


@dataclass(frozen=True)
class ServiceUrls:
    postgres: str
    redis: str


def _pg(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.state_path)


def _redis(settings: Settings) -> EmbeddedRedis:
    return EmbeddedRedis(settings.state_path, settings.redis.port)


def postgres_healthy(url: str, timeout_s: float = 5) -> tuple[bool, str | None]:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout_s))) as conn:
            conn.execute("SELECT 1")
        return True, None
    except Exception as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def redis_healthy(url: str) -> tuple[bool, str | None]:
    return (True, None) if _ping(url) else (False, "no PONG")


def services_up(settings: Settings) -> dict[str, Any]:
    """Start the embedded services that have no configured URL; reuse running ones."""
    state = settings.state_path
    state.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    if settings.database.url:
        out["postgres"] = {"url": settings.database.url, "embedded": False, "started": False}
    else:
        url, started = _pg(settings).start()
        out["postgres"] = {"url": url, "embedded": True, "started": started}
    if settings.redis.url:
        out["redis"] = {"url": settings.redis.url, "embedded": False, "started": False}
    else:
        url, started = _redis(settings).start()
        out["redis"] = {"url": url, "embedded": True, "started": started}
    return out


def services_down(settings: Settings) -> dict[str, bool]:
    """Stop the embedded services (external ones are never touched)."""
    return {
        "postgres": False if settings.database.url else _pg(settings).stop(),
        "redis": False if settings.redis.url else _redis(settings).stop(),
    }


def services_status(settings: Settings) -> dict[str, dict[str, Any]]:
    pg_url = settings.database.url or _pg(settings).url()
    rd_url = settings.redis.url or _redis(settings).url()
    out: dict[str, dict[str, Any]] = {}
    for name, url, check, embedded in (
        ("postgres", pg_url, postgres_healthy, settings.database.url is None),
        ("redis", rd_url, redis_healthy, settings.redis.url is None),
    ):
        if url is None:
            out[name] = {"url": None, "healthy": False, "embedded": embedded, "error": "not running"}
        else:
            ok, err = check(url)
            out[name] = {"url": url, "healthy": ok, "embedded": embedded, "error": err}
    return out


def ensure_services(settings: Settings) -> ServiceUrls:
    """URLs of the stores, starting the embedded ones on demand."""
    info = services_up(settings)
    return ServiceUrls(postgres=info["postgres"]["url"], redis=info["redis"]["url"])
