"""Row counts per table (`rayapp db stats`)."""

from __future__ import annotations

import psycopg
from psycopg import sql

TABLES = (
    "candles",
    "articles",
    "article_sentiment",
    "social_counts",
    "market_index",
    "quarantine",
    "watermarks",
    "feature_sets",
    "features",
    "predictions",
)


def table_counts(conn: psycopg.Connection) -> dict[str, int]:
    out: dict[str, int] = {}
    for table in TABLES:
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
        out[table] = int(row[0]) if row else 0
    return out
