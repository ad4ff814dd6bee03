"""Quarantine: rows that failed validation, with the failed check and the raw row.

Re-quarantining the same (table, source, row_key, check) is a no-op, so re-running a job keeps
the quarantine idempotent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import psycopg

from rayapp.warehouse.jsonsafe import json_safe
from rayapp.warehouse.loader import upsert_frame


@dataclass(frozen=True)
class QuarantinedRow:
    row_key: str
    check_name: str
    reason: str
    raw: dict[str, Any] = field(default_factory=dict)


def _jsonable(raw: dict[str, Any]) -> dict[str, Any]:
    # str() for timestamps/decimals/numpy scalars, then NaN -> null.
    return json_safe(json.loads(json.dumps(raw, default=str)))  # type: ignore[no-any-return]


def quarantine_rows(conn: psycopg.Connection, target_table: str, source: str, rows: list[QuarantinedRow]) -> int:
    """Record failed rows; returns how many distinct (row, check) pairs were given."""
    if not rows:
        return 0
    frame = pd.DataFrame(
        {
            "target_table": target_table,
            "source": source,
            "row_key": [r.row_key for r in rows],
            "check_name": [r.check_name for r in rows],
            "reason": [r.reason for r in rows],
            "raw": [_jsonable(r.raw) for r in rows],
        }
    ).drop_duplicates(subset=["row_key", "check_name"], keep="last")
    upsert_frame(
        conn,
        "quarantine",
        frame,
        key=["target_table", "source", "row_key", "check_name"],
        update=["reason", "raw"],
    )
    return len(frame)
