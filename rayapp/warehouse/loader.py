"""Bulk load: COPY a frame into a temporary staging table, then one INSERT ... ON CONFLICT upsert.

The upsert only touches rows whose values differ (`IS DISTINCT FROM`), so loading the same
data twice reports 0 inserted and 0 updated the second time and writes nothing.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import sql

_column_types: dict[tuple[str, str], dict[str, str]] = {}


@dataclass(frozen=True)
class UpsertResult:
    rows: int
    inserted: int
    updated: int

    @property
    def unchanged(self) -> int:
        return self.rows - self.inserted - self.updated

    def as_dict(self) -> dict[str, int]:
        return {"rows": self.rows, "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged}


class DuplicateKeyError(ValueError):
    """The frame holds the same natural key twice; validation must quarantine one of them first."""


def column_types(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """Column name -> udt name (int8, float8, _text, jsonb, timestamptz, ...), cached per database."""
    cache_key = (conn.info.dsn, table)
    if cache_key not in _column_types:
        rows = conn.execute(
            "SELECT column_name, udt_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        ).fetchall()
        if not rows:
            raise ValueError(f"unknown table {table!r}")
        _column_types[cache_key] = {r[0]: r[1] for r in rows}
    return _column_types[cache_key]


def _pg_array(values: Any, element_type: str) -> str | None:
    if values is None:
        return None
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        elif element_type in ("float8", "float4", "numeric"):
            f = float(v)
            items.append("NaN" if math.isnan(f) else repr(f))
        elif element_type in ("int8", "int4", "int2"):
            items.append(str(int(v)))
        else:
            s = str(v).replace("\\", "\\\\").replace('"', '\\"')
            items.append(f'"{s}"')
    return "{" + ",".join(items) + "}"


def _json(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return json.dumps(v, default=str, allow_nan=False) if not isinstance(v, str) else v


def _to_csv(df: pd.DataFrame, types: dict[str, str]) -> bytes:
    """Render the frame as CSV for COPY with Arrow's C++ writer.

    Every string is quoted ("needed" quoting), so an unquoted empty field is NULL and a quoted
    empty one is ''. Float NaN in scalar columns becomes NULL; arrays keep NaN as 'NaN'.
    """
    cols: dict[str, pa.Array] = {}
    for col in df.columns:
        t = types[col]
        s = df[col]
        if t.startswith("_"):
            cols[col] = pa.array([_pg_array(v, t[1:]) for v in s], pa.string())
        elif t in ("jsonb", "json"):
            cols[col] = pa.array([_json(v) for v in s], pa.string())
        elif t == "timestamptz":
            ts = pd.to_datetime(s, utc=True).astype("datetime64[us, UTC]")
            cols[col] = pa.array(ts)
        elif t in ("int8", "int4", "int2"):
            cols[col] = pa.array(pd.array(s, dtype="Int64"))
        elif t in ("float8", "float4") and s.dtype.kind == "f":
            # inf is not a value PostgreSQL float8 columns should carry from market data: NULL
            cols[col] = pa.array(s.replace([np.inf, -np.inf], np.nan), from_pandas=True)
        else:
            cols[col] = pa.array(s, from_pandas=True)
    buf = io.BytesIO()
    pacsv.write_csv(pa.table(cols), buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return buf.getvalue()


def upsert_frame(
    conn: psycopg.Connection,
    table: str,
    df: pd.DataFrame,
    key: Sequence[str],
    *,
    update: Sequence[str] | None = None,
) -> UpsertResult:
    """COPY `df` into `table` through a staging table and upsert on `key`.

    `update` names the columns refreshed when the key exists (default: every non-key column in
    the frame); a row is only rewritten when one of them actually changed.
    """
    if df.empty:
        return UpsertResult(0, 0, 0)
    types = column_types(conn, table)
    cols = list(df.columns)
    unknown = [c for c in cols if c not in types]
    if unknown:
        raise ValueError(f"{table}: unknown columns {unknown}")
    missing_key = [k for k in key if k not in cols]
    if missing_key:
        raise ValueError(f"{table}: key columns {missing_key} missing from the frame")
    dup = df.duplicated(subset=list(key), keep=False)
    if dup.any():
        sample = df.loc[dup, list(key)].head(3).to_dict("records")
        raise DuplicateKeyError(f"{table}: {int(dup.sum())} rows share a key, e.g. {sample}")
    upd = [c for c in (update if update is not None else cols) if c not in key]

    payload = _to_csv(df, types)

    stage = sql.Identifier(f"_stage_{table}")
    ident = sql.Identifier(table)
    col_ids = sql.SQL(", ").join(sql.Identifier(c) for c in cols)
    key_ids = sql.SQL(", ").join(sql.Identifier(c) for c in key)
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
                stage, ident
            )
        )
        with conn.cursor() as cur:
            with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(stage, col_ids)) as copy:
                copy.write(payload)
            if upd:
                set_clause = sql.SQL(", ").join(
                    sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(c), sql.Identifier(c)) for c in upd
                )
                changed = sql.SQL("({}) IS DISTINCT FROM ({})").format(
                    sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in upd),
                    sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in upd),
                )
                conflict: sql.Composable = sql.SQL("DO UPDATE SET {} WHERE {}").format(set_clause, changed)
            else:
                conflict = sql.SQL("DO NOTHING")
            stmt = sql.SQL(
                "WITH up AS (INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) {} "
                "RETURNING (xmax = 0) AS inserted) "
                "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up"
            ).format(ident, col_ids, col_ids, stage, key_ids, conflict)
            row = cur.execute(stmt).fetchone()
    assert row is not None
    return UpsertResult(rows=len(df), inserted=int(row[0]), updated=int(row[1]))
