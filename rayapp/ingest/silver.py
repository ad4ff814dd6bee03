"""Validation before silver: pandera checks, quarantine with the raw row, then one upsert.

Every row handed to :func:`write_silver` ends up in exactly one bucket of the returned
:class:`SourceSummary`: written (inserted or updated), unchanged (already identical in silver),
quarantined (failed a check; kept in `quarantine` with the check's name and the raw row) or
skipped (told so by the caller, e.g. an exact duplicate line of a CSV export). So
`read == written + unchanged + quarantined + skipped` always holds and nothing is lost silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeAlias

import pandas as pd
import psycopg
from pandera.pandas import DataFrameSchema

from rayapp.log import get_logger
from rayapp.schemas import articles_schema, candles_schema, market_index_schema, social_counts_schema
from rayapp.warehouse import quarantine_rows, upsert_frame
from rayapp.warehouse.loader import column_types
from rayapp.warehouse.quarantine import QuarantinedRow

log = get_logger(__name__)


@dataclass(frozen=True)
class SilverTable:
    name: str
    schema: DataFrameSchema
    key: tuple[str, ...]
    # Columns that describe *when we first saw* a row: never overwritten by a later load, so a
    # CSV backfill cannot make a live-seen article look older or newer than it was.
    keep_first: tuple[str, ...] = ()


TABLES: dict[str, SilverTable] = {
    "candles": SilverTable("candles", candles_schema, ("source", "symbol", "open_time")),
    "articles": SilverTable("articles", articles_schema, ("article_id",), keep_first=("first_seen_at", "backfilled")),
    "market_index": SilverTable(
        "market_index", market_index_schema, ("index_name", "ts"), keep_first=("first_seen_at",)
    ),
    "social_counts": SilverTable(
        "social_counts", social_counts_schema, ("source", "symbol", "hour"), keep_first=("first_seen_at",)
    ),
}


@dataclass
class SourceSummary:
    """What one source (or one backfill file) did to silver."""

    source: str
    table: str = ""
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    skipped: int = 0
    requests: int = 0
    partitions: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""  # e.g. why a source was skipped

    @property
    def written(self) -> int:
        return self.inserted + self.updated

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, other: SourceSummary) -> SourceSummary:
        for name in ("read", "inserted", "updated", "unchanged", "quarantined", "skipped", "requests", "partitions"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.errors.extend(other.errors)
        self.table = self.table or other.table
        self.note = self.note or other.note
        return self

    def __str__(self) -> str:
        # What a person reads wherever a summary ends up in text (never the dataclass repr).
        head = (
            f"{self.source}: read {self.read:,}, written {self.written:,}, unchanged {self.unchanged:,}, "
            f"quarantined {self.quarantined:,}, skipped {self.skipped:,}"
        )
        if self.errors:
            more = f" (+{len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            return f"{head}; failed: {self.errors[0]}{more}"
        return f"{head}; {self.note}" if self.note else head

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["written"] = self.written
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SourceSummary:
        d = {k: v for k, v in d.items() if k != "written"}
        return cls(**d)


def row_keys(df: pd.DataFrame, key: Sequence[str]) -> pd.Series:
    """`a|b|2021-01-04T05:00:00Z` per row: the quarantine's row_key (vectorised)."""
    parts = []
    for col in key:
        s = df[col]
        if isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s):
            parts.append(s.dt.strftime("%Y-%m-%dT%H:%M:%SZ").fillna("NaT").astype(str))
        else:
            parts.append(s.astype(str).fillna("None"))
    out = parts[0]
    for p in parts[1:]:
        out = out.str.cat(p, sep="|")
    return out


def _check_names(schema: DataFrameSchema) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """pandera reports a check by its error text; map that back to the check's stable name."""
    frame = {str(c.error): str(c.name) for c in schema.checks if c.error}
    cols: dict[tuple[str, str], str] = {}
    for col_name, col in schema.columns.items():
        for c in col.checks:
            cols[(col_name, str(c.error or c.name))] = f"{col_name}:{c.name}"
    return frame, cols


RawRows: TypeAlias = pd.Series | pd.DataFrame | None


def _raw_of(df: pd.DataFrame, raw: RawRows, idx: Any) -> dict[str, Any]:
    # Only failing rows are turned into dicts: the valid majority never pays for it.
    if isinstance(raw, pd.DataFrame) and idx in raw.index:
        return {str(k): v for k, v in raw.loc[idx].items()}
    if isinstance(raw, pd.Series) and idx in raw.index and isinstance(raw.loc[idx], dict):
        return dict(raw.loc[idx])
    return {str(k): v for k, v in df.loc[idx].items()}


def validate_frame(table: str, df: pd.DataFrame, raw: RawRows = None) -> tuple[pd.DataFrame, list[QuarantinedRow], int]:
    """(valid rows coerced to the schema, one QuarantinedRow per failed (row, check), bad rows)."""
    spec = TABLES[table]
    key = list(spec.key)
    keys = row_keys(df, key) if len(df) else pd.Series([], dtype=str)
    bad: list[QuarantinedRow] = []

    # Duplicate keys: keep the first occurrence, quarantine the others with their raw row. The
    # occurrence number keeps the 2nd and 3rd copies apart in quarantine (same key otherwise)
    # and is stable across re-runs, so re-quarantining stays idempotent.
    has_key = df[key].notna().all(axis=1)
    dup = has_key & df.duplicated(subset=key, keep="first")
    nth = df.groupby(key, dropna=True, sort=False).cumcount() if len(df) else pd.Series([], dtype=int)
    keys = keys.where(~dup, keys + "#dup" + nth.reindex(df.index).fillna(0).astype(int).astype(str))
    # A row whose key did not parse has no identity: its position in the batch gives it one.
    keys = keys.where(has_key, keys + "#row" + pd.Series(df.index.astype(str), index=df.index))
    for idx in df.index[dup]:
        bad.append(
            QuarantinedRow(
                keys.loc[idx],
                "duplicate_key",
                f"{'/'.join(key)} already seen earlier in this batch",
                _raw_of(df, raw, idx),
            )
        )
    candidates = df.loc[~dup]

    from rayapp.schemas import split_valid

    valid, failures = split_valid(spec.schema, candidates)
    if len(failures):
        frame_names, col_names = _check_names(spec.schema)
        failures = failures.drop_duplicates(subset=["index", "check"])
        for rec in failures.itertuples(index=False):
            check, column, idx = str(rec.check), str(rec.column), rec.index
            name = frame_names.get(check) or col_names.get((column, check)) or f"{column}:{check}"
            reason = check if check in frame_names else f"{column}={rec.failure_case!r} failed {check}"
            bad.append(QuarantinedRow(keys.loc[idx], name, reason, _raw_of(df, raw, idx)))
    n_bad = int(dup.sum()) + (int(failures["index"].nunique()) if len(failures) else 0)
    return valid, bad, n_bad


def write_silver(
    conn: psycopg.Connection,
    table: str,
    df: pd.DataFrame,
    *,
    source: str,
    raw: RawRows = None,
    rejected: Iterable[QuarantinedRow] = (),
    skipped: int = 0,
) -> SourceSummary:
    """Validate `df`, quarantine failures (and the parser's `rejected` rows), upsert the rest.

    Runs in one transaction: either the rows, their quarantine records and anything the caller
    does in an enclosing `conn.transaction()` (the ingest watermark) all commit, or none does.
    `raw` (indexed like `df`: a frame, or a Series of dicts) holds each row as it was received,
    for the quarantine record; without it the normalised row is recorded.
    """
    spec = TABLES[table]
    rejected = list(rejected)
    n_rejected = len({r.row_key for r in rejected})
    summary = SourceSummary(source=source, table=table, skipped=skipped)
    summary.read = len(df) + n_rejected + skipped
    if not df.index.is_unique:
        df = df.reset_index(drop=True)
        raw = raw.reset_index(drop=True) if raw is not None else None
    valid, bad, n_bad = validate_frame(table, df, raw)
    bad = rejected + bad

    types = column_types(conn, table)
    cols = [c for c in valid.columns if c in types]
    update = [c for c in cols if c not in spec.key and c not in spec.keep_first]
    with conn.transaction():
        if bad:
            quarantine_rows(conn, table, source, bad)
        result = upsert_frame(conn, table, valid[cols], key=list(spec.key), update=update)
    summary.quarantined = n_rejected + n_bad
    summary.inserted, summary.updated = result.inserted, result.updated
    summary.unchanged = result.unchanged
    if bad:
        by_check: dict[str, int] = {}
        for r in bad:
            by_check[r.check_name] = by_check.get(r.check_name, 0) + 1
        log.warning("rows quarantined", table=table, source=source, rows=summary.quarantined, checks=by_check)
    log.info(
        "silver written",
        table=table,
        source=source,
        read=summary.read,
        written=summary.written,
        unchanged=summary.unchanged,
        quarantined=summary.quarantined,
        skipped=summary.skipped,
    )
    return summary
