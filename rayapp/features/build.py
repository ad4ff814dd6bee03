"""The feature build: silver -> feature frame (Ray tasks over time chunks) -> offline + online.

History is cut into chunks of `features.chunk_h` output hours; each Ray task gets its chunk's
inputs plus `warmup_h` hours before it, which is more than any feature reads, so every chunk edge
has exactly the single-pass bits (tests/features/test_build.py proves it). Rows that fail the
feature schema are quarantined with the failed check, never written.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psycopg

from rayapp.features.definitions import FeatureSet, feature_set_from_settings, register_feature_set
from rayapp.features.frame import FeatureInputs, compute_features, output_hours
from rayapp.features.inputs import pick_source
from rayapp.features.offline_store import candle_sources, read_inputs, write_features
from rayapp.log import get_logger
from rayapp.runtime import ensure_ray
from rayapp.schemas import feature_frame_schema, split_valid
from rayapp.warehouse.quarantine import QuarantinedRow, quarantine_rows

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


@dataclass
class BuildSummary:
    symbol: str
    feature_set_version: str
    candle_source: str = ""
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    chunks: int = 0
    first_ts: str | None = None
    last_ts: str | None = None
    online_ts: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def chunk_bounds(hours: pd.DatetimeIndex, chunk_h: int) -> list[tuple[pd.Timestamp, pd.Timestamp | None]]:
    """[start, end) spans of `chunk_h` hours from the first output hour; the last is open."""
    if len(hours) == 0:
        return []
    step = pd.Timedelta(hours=chunk_h)
    starts = pd.date_range(hours[0], hours[-1], freq=step)
    return [(s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]


def build_frame(
    inputs: FeatureInputs,
    fs: FeatureSet,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    *,
    chunk_h: int = 4096,
    parallel: bool = True,
    settings: Settings | None = None,
) -> tuple[pd.DataFrame, int]:
    """The feature frame for candle hours in [start, end); returns (frame, number of chunks)."""
    hours = output_hours(inputs, start, end)
    bounds = chunk_bounds(hours, chunk_h)
    if not parallel or len(bounds) <= 1:
        return compute_features(inputs, fs, start, end), max(len(bounds), 1)
    import ray

    ensure_ray(settings)  # only now: a one-chunk or failing build never starts Ray
    # The task is compute_features itself: workers import rayapp.features.frame (numpy, pandas,
    # TA-Lib) and nothing of the warehouse or pandera.
    task = ray.remote(num_cpus=1)(compute_features)
    warm = pd.Timedelta(hours=fs.params.warmup_h)
    fs_ref = ray.put(fs)
    refs = []
    for a, b in bounds:
        hi = b if b is not None else end
        refs.append(task.remote(inputs.window(a - warm, hi), fs_ref, a, hi))
    parts = ray.get(refs)
    return pd.concat(parts), len(bounds)


def validate_features(frame: pd.DataFrame, fs: FeatureSet) -> tuple[pd.DataFrame, list[QuarantinedRow]]:
    """Rows that pass the feature schema, and one quarantine record per failed (row, check)."""
    schema = feature_frame_schema(fs.names)
    valid, failures = split_valid(schema, frame)
    rows = []
    for f in failures.itertuples(index=False):
        ts = frame.index[int(f.index)] if isinstance(f.index, (int, np.integer)) else f.index
        raw = {k: (None if not np.isfinite(v) else float(v)) for k, v in frame.loc[ts].items()}
        rows.append(
            QuarantinedRow(
                row_key=f"{frame.attrs.get('symbol', '')}|{pd.Timestamp(ts).isoformat()}",
                check_name=str(f.check),
                reason=f"{f.column}={f.failure_case}",
                raw=raw,
            )
        )
    return valid, rows


def _utc(value: Any) -> pd.Timestamp | None:
    if value is None:
        return None
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _last_candle(conn: psycopg.Connection, inputs_source: str, symbol: str) -> pd.Timestamp | None:
    row = conn.execute(
        "SELECT max(open_time) FROM candles WHERE symbol = %s AND source = %s", (symbol, inputs_source)
    ).fetchone()
    return None if row is None or row[0] is None else pd.Timestamp(row[0]).tz_convert("UTC")


def build_symbol(
    conn: psycopg.Connection,
    symbol: str,
    fs: FeatureSet,
    *,
    start: Any = None,
    end: Any = None,
    chunk_h: int = 4096,
    parallel: bool = True,
    online: Any = None,
    settings: Settings | None = None,
) -> BuildSummary:
    """Read, compute, validate, upsert one symbol; write its latest row online if a store is given."""
    from rayapp.features.online import materialize_latest

    summary = BuildSummary(symbol=symbol, feature_set_version=fs.version)
    t0 = time.perf_counter()
    lo, hi = _utc(start), _utc(end)
    inputs = read_inputs(conn, symbol, fs.params, lo, hi)
    summary.candle_source = inputs.candle_source
    t1 = time.perf_counter()
    frame, summary.chunks = build_frame(inputs, fs, lo, hi, chunk_h=chunk_h, parallel=parallel, settings=settings)
    frame.attrs["symbol"] = symbol
    t2 = time.perf_counter()
    valid, bad = validate_features(frame, fs)
    if bad:
        quarantine_rows(conn, "features", fs.version, bad)
        conn.commit()
        log.warning("feature rows quarantined", symbol=symbol, rows=len(frame) - len(valid), checks=len(bad))
    summary.quarantined = len(frame) - len(valid)
    t3 = time.perf_counter()
    result = write_features(conn, symbol, fs.version, valid)
    t4 = time.perf_counter()
    summary.rows, summary.inserted, summary.updated = result.rows, result.inserted, result.updated
    summary.unchanged = result.unchanged
    if len(valid):
        summary.first_ts, summary.last_ts = valid.index[0].isoformat(), valid.index[-1].isoformat()
    if online is not None:
        ts = materialize_latest(conn, online, symbol, fs.version)
        summary.online_ts = ts.isoformat() if ts is not None else None
    summary.timings_s = {
        "read_s": round(t1 - t0, 3),
        "compute_s": round(t2 - t1, 3),
        "validate_s": round(t3 - t2, 3),
        "write_s": round(t4 - t3, 3),
    }
    log.info(
        "features built",
        symbol=symbol,
        feature_set_version=fs.version,
        candle_source=summary.candle_source,
        read=len(inputs.candles),
        rows=len(frame),
        written=result.inserted + result.updated,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        quarantined=summary.quarantined,
        chunks=summary.chunks,
        online_ts=summary.online_ts,
        **summary.timings_s,
    )
    return summary


def run_build(
    settings: Settings,
    *,
    symbols: list[str] | None = None,
    start: Any = None,
    end: Any = None,
    last_hours: int | None = None,
    online: bool = True,
    parallel: bool = True,
    skip_missing: bool = False,
) -> list[BuildSummary]:
    """The `rayapp features build` job: every symbol, then the latest row of each to Redis.

    `last_hours` recomputes only the newest N candle hours per symbol (the incremental path
    ingest calls after each run); `skip_missing` skips (and logs) symbols without candles
    instead of failing.
    """
    from rayapp.features.online import online_store
    from rayapp.warehouse import get_pool

    store = online_store(settings) if online else None
    out = []
    with get_pool(settings).connection() as conn:
        fs = feature_set_from_settings(settings, conn)
        register_feature_set(conn, fs)
        for symbol in symbols or settings.symbols:
            lo = start
            counts = candle_sources(conn, symbol)
            if not counts and skip_missing:
                log.warning("no candles: features skipped", symbol=symbol, skipped=1)
                continue
            if last_hours is not None and counts:
                last = _last_candle(conn, pick_source(counts, fs.params.candle_sources), symbol)
                lo = None if last is None else last - pd.Timedelta(hours=last_hours - 1)
            out.append(
                build_symbol(
                    conn,
                    symbol,
                    fs,
                    start=lo,
                    end=end,
                    chunk_h=settings.features.chunk_h,
                    parallel=parallel,
                    online=store,
                    settings=settings,
                )
            )
    return out


def update_after_ingest(settings: Settings, symbols: list[str] | None = None, hours: int = 48) -> list[BuildSummary]:
    """Recompute the newest `hours` feature rows from silver, upsert them, refresh Redis.

    Ingest calls this after every incremental run so the online vector follows new candles.
    """
    return run_build(settings, symbols=symbols, last_hours=hours, online=True, parallel=False, skip_missing=True)
