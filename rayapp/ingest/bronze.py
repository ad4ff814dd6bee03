"""Bronze: every response exactly as received, with its fetch time, URL and HTTP status.

One parquet file per (source, dataset, partition window), one row per response (page), under
``{source}/{dataset}/dt=<window start day>/<key>_<start>_<end>.parquet``. The part name is a
function of the window only, so fetching the same window again replaces the file: bronze holds
the latest receipt of each window and a re-run never piles up copies. Responses that failed
(a malformed body, an API error) are kept too, in the ``<dataset>_errors`` dataset, so the
payload that broke a run can be inspected later.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from rayapp.ingest.types import FetchResult
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.lake import BronzeLake

log = get_logger(__name__)

BRONZE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("dataset", pa.string()),
        ("key", pa.string()),
        ("window_start", pa.timestamp("us", tz="UTC")),
        ("window_end", pa.timestamp("us", tz="UTC")),
        ("page", pa.int32()),
        ("url", pa.string()),
        ("status", pa.int32()),
        ("fetched_at", pa.timestamp("us", tz="UTC")),
        ("payload", pa.large_string()),
        ("records", pa.int64()),
        ("rejected", pa.int64()),
        ("meta", pa.string()),
        ("error", pa.string()),
    ]
)


def part_name(key: str, start: pd.Timestamp, end: pd.Timestamp) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.\-]", "-", key) or "all"
    return f"{safe}_{start:%Y%m%dT%H%M}_{end:%Y%m%dT%H%M}"


def _meta(meta: dict[str, Any]) -> str:
    return json.dumps(meta, default=str, sort_keys=True)


def bronze_rows(
    results: Sequence[FetchResult], *, key: str, start: pd.Timestamp, end: pd.Timestamp
) -> dict[str, pa.Table]:
    """dataset -> its table of responses. Derived results (computed by us) have no payload."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for page, r in enumerate(results):
        if r.derived:
            continue
        by_dataset.setdefault(r.dataset, []).append(
            {
                "source": r.source,
                "dataset": r.dataset,
                "key": key,
                "window_start": start,
                "window_end": end,
                "page": page,
                "url": r.url,
                "status": r.status,
                "fetched_at": r.fetched_at,
                "payload": r.payload,
                "records": len(r.records),
                "rejected": len(r.rejects),
                "meta": _meta(r.meta),
                "error": None,
            }
        )
    return {ds: pa.Table.from_pylist(rows, schema=BRONZE_SCHEMA) for ds, rows in by_dataset.items()}


def write_bronze(
    lake: BronzeLake, source: str, results: Sequence[FetchResult], *, key: str, start: pd.Timestamp, end: pd.Timestamp
) -> list[str]:
    """Write one window's responses; returns the files written (same window -> same files)."""
    paths = []
    for dataset, table in bronze_rows(results, key=key, start=start, end=end).items():
        paths.append(lake.write(source, dataset, start.date(), table, part=part_name(key, start, end)))
    if paths:
        log.debug(
            "bronze written",
            source=source,
            key=key,
            files=len(paths),
            responses=sum(1 for r in results if not r.derived),
        )
    return paths


def write_bronze_error(
    lake: BronzeLake,
    source: str,
    dataset: str,
    *,
    key: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    url: str,
    status: int | None,
    payload: str | None,
    error: str,
) -> str:
    """Keep the body of a response that failed the window (malformed JSON, API error)."""
    row = {
        "source": source,
        "dataset": dataset,
        "key": key,
        "window_start": start,
        "window_end": end,
        "page": 0,
        "url": url,
        "status": status,
        "fetched_at": pd.Timestamp.now(tz="UTC"),
        "payload": payload,
        "records": 0,
        "rejected": 0,
        "meta": "{}",
        "error": error,
    }
    table = pa.Table.from_pylist([row], schema=BRONZE_SCHEMA)
    return lake.write(source, f"{dataset}_errors", start.date(), table, part=part_name(key, start, end))
