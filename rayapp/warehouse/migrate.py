"""Ordered SQL migrations (migrations/NNNN_name.sql), recorded in schema_migrations.

Each file is applied once, in its own transaction, under an advisory lock so that concurrent
workers starting at the same time do not race.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg

from rayapp.log import get_logger

log = get_logger(__name__)
_LOCK_ID = 0x5241_5941  # "RAYA"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def available() -> list[Migration]:
    files = resources.files("rayapp.warehouse").joinpath("migrations")
    out = []
    for f in sorted(files.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".sql"):
            version, _, rest = f.name.partition("_")
            out.append(Migration(version, rest.removesuffix(".sql"), f.read_text()))
    return out


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations; returns the versions applied now (empty when up to date)."""
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r[0]: r[1] for r in conn.execute("SELECT version, checksum FROM schema_migrations")}
        for m in available():
            if m.version in done:
                if done[m.version] != m.checksum:
                    log.warning("migration changed after it was applied", version=m.version, name=m.name)
                continue
            conn.execute(m.sql)  # type: ignore[arg-type]
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (m.version, m.name, m.checksum),
            )
            applied_now.append(m.version)
    if applied_now:
        log.info("migrations applied", versions=",".join(applied_now))
    return applied_now


def applied(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    return [(r[0], r[1]) for r in rows]
