"""PostgreSQL warehouse: migrations, connection pool, COPY+upsert loader, quarantine, stats."""

from rayapp.warehouse.db import database_url, get_pool
from rayapp.warehouse.jsonsafe import json_safe
from rayapp.warehouse.loader import UpsertResult, upsert_frame
from rayapp.warehouse.migrate import migrate
from rayapp.warehouse.quarantine import quarantine_rows
from rayapp.warehouse.stats import table_counts

__all__ = [
    "UpsertResult",
    "database_url",
    "get_pool",
    "json_safe",
    "migrate",
    "quarantine_rows",
    "table_counts",
    "upsert_frame",
]
