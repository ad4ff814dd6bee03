"""Read-only market views for the dashboard: recent closes and data freshness per source.

Queries are parameterised and bounded (hours capped by the route); the candle source is chosen by
the same rule the feature build uses, so the chart shows the prices the model saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from rayapp.features import candle_sources, pick_source

# (dataset, table, source column, time column): the newest row per source of each silver/gold table
FRESHNESS_QUERIES: tuple[tuple[str, str, str, str], ...] = (
    ("candles", "candles", "source", "open_time"),
    ("articles", "articles", "source", "published_at"),
    ("article_sentiment", "article_sentiment", "model_id", "scored_at"),
    ("social_counts", "social_counts", "source", "hour"),
    ("market_index", "market_index", "index_name", "ts"),
    ("features", "features", "feature_set_version", "ts"),
)


def prices(conn: psycopg.Connection, symbol: str, hours: int, preference: Sequence[str]) -> dict[str, Any]:
    """The newest `hours` hourly closes (ascending), ending at the newest candle in the store.

    The window ends at the data, not the wall clock: a replayed feed runs years behind now.
    """
    counts = candle_sources(conn, symbol)
    if not counts:
        return {"symbol": symbol, "source": None, "items": []}
    source = pick_source(counts, preference)
    rows = conn.execute(
        "SELECT open_time, close FROM candles WHERE symbol = %s AND source = %s ORDER BY open_time DESC LIMIT %s",
        (symbol, source, hours),
    ).fetchall()
    items = [{"ts": r[0].astimezone(UTC), "close": float(r[1])} for r in reversed(rows)]
    return {"symbol": symbol, "source": source, "items": items}


def freshness(
    conn: psycopg.Connection, now: datetime | None = None, clock: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The newest row per source of each table, aged against `now` (the system clock: market time
    during a replay, so replayed data is as fresh as the simulation says)."""
    now = now or datetime.now(UTC)
    items = []
    for dataset, table, source_col, time_col in FRESHNESS_QUERIES:
        # identifiers come from the constant above, never from a request
        for source, latest in conn.execute(
            f"SELECT {source_col}, max({time_col}) FROM {table} GROUP BY {source_col} ORDER BY {source_col}"
        ).fetchall():
            items.append(
                {
                    "source": str(source),
                    "dataset": dataset,
                    "latest": latest,
                    "age_s": (now - latest).total_seconds() if latest is not None else None,
                }
            )
    return {"checked_at": now, "clock": clock, "items": items}
