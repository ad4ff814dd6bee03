"""Online store materialization and the online/offline consistency check.

The online store holds the latest feature row per (symbol, version), copied from the offline
store (never recomputed separately), so serving reads exactly the bits training would. The check
compares Redis with PostgreSQL and, for the last N hours, PostgreSQL with a fresh recomputation
from silver: a stale or diverging value in either place is a mismatch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import psycopg

from rayapp.features.definitions import feature_set_from_settings
from rayapp.features.frame import compute_features
from rayapp.features.offline_store import latest_row, load_features, read_inputs
from rayapp.features.online_store import OnlineStore, open_online_store
from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


def online_store(settings: Settings) -> OnlineStore:
    url = settings.redis.url
    if not url:
        from rayapp.services import ensure_services

        url = ensure_services(settings).redis
    return open_online_store(url, socket_timeout=settings.redis.socket_timeout_s)


def materialize_latest(
    conn: psycopg.Connection, store: OnlineStore, symbol: str, feature_set_version: str
) -> pd.Timestamp | None:
    """Copy the newest stored row of (symbol, version) to the online store; returns its ts."""
    row = latest_row(conn, symbol, feature_set_version)
    if row.empty:
        log.warning("no offline row to materialize", symbol=symbol, feature_set_version=feature_set_version)
        return None
    ts = row.index[0]
    store.write(symbol, feature_set_version, ts, {k: float(v) for k, v in row.iloc[0].items()})
    log.info(
        "online vector written", symbol=symbol, feature_set_version=feature_set_version, ts=ts.isoformat(), written=1
    )
    return ts


def same_bits(a: float, b: float) -> bool:
    """Equal as stored values: identical floats, or both missing."""
    return (np.isnan(a) and np.isnan(b)) or a == b


@dataclass
class Mismatch:
    symbol: str
    where: str  # online | offline
    ts: str | None
    feature: str
    expected: float | str | None
    got: float | str | None


@dataclass
class CheckReport:
    feature_set_version: str
    hours: int
    checked_online: int = 0
    checked_offline: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mismatch_count"] = len(self.mismatches)
        return d


def _none(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def online_check(
    settings: Settings, hours: int = 24, symbols: list[str] | None = None, store: OnlineStore | None = None
) -> CheckReport:
    """Compare online vs offline (latest row) and offline vs a recomputation (last `hours`)."""
    from rayapp.warehouse import get_pool

    store = store or online_store(settings)
    with get_pool(settings).connection() as conn:
        fs = feature_set_from_settings(settings, conn)
        report = CheckReport(feature_set_version=fs.version, hours=hours)
        for symbol in symbols or settings.symbols:
            _check_symbol(conn, store, symbol, fs, hours, report)
    log.info(
        "online check",
        feature_set_version=fs.version,
        checked_online=report.checked_online,
        checked_offline=report.checked_offline,
        mismatches=len(report.mismatches),
    )
    return report


def _check_symbol(
    conn: psycopg.Connection, store: OnlineStore, symbol: str, fs: Any, hours: int, report: CheckReport
) -> None:
    add = report.mismatches.append
    offline = latest_row(conn, symbol, fs.version)
    online = store.read(symbol, fs.version)
    if offline.empty:
        add(Mismatch(symbol, "offline", None, "*", "rows", "none (run `rayapp features build`)"))
        return
    ts = offline.index[0]
    if online is None:
        add(Mismatch(symbol, "online", ts.isoformat(), "*", "vector", "missing"))
    elif online.ts != ts:
        add(Mismatch(symbol, "online", ts.isoformat(), "ts", ts.isoformat(), online.ts.isoformat()))
    else:
        for name, want in offline.iloc[0].items():
            got = online.values.get(str(name), float("nan"))
            report.checked_online += 1
            if str(name) not in online.values or not same_bits(float(want), got):
                add(Mismatch(symbol, "online", ts.isoformat(), str(name), _none(float(want)), _none(got)))
    if hours <= 0:
        return
    start = ts - pd.Timedelta(hours=hours - 1)
    end = ts + pd.Timedelta(hours=1)
    stored = load_features(conn, symbol, fs.version, start, end)
    fresh = compute_features(read_inputs(conn, symbol, fs.params, start, end), fs, start, end)
    for t in fresh.index.union(stored.index):
        if t not in stored.index:
            add(Mismatch(symbol, "offline", t.isoformat(), "*", "row", "missing"))
            continue
        if t not in fresh.index:
            add(Mismatch(symbol, "offline", t.isoformat(), "*", "no candle", "stored row"))
            continue
        for name in fs.names:
            want, got = float(fresh.at[t, name]), float(stored.at[t, name])
            report.checked_offline += 1
            if not same_bits(want, got):
                add(Mismatch(symbol, "offline", t.isoformat(), name, _none(want), _none(got)))
