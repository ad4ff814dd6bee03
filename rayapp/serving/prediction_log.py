"""The `predictions` table: every served forecast, its realised outcome, and the track record.

Each champion row also records how old its data was when it was served (`data_age_s`, on the
system clock) and whether that was past `serving.feature_staleness_s` (`stale`).

A forecast's id is derived from (symbol, feature hour, horizon, model version), the table's natural
key, so serving the same hour twice (two ingress replicas, a retry, a reconnect) writes one row;
the first forecast logged for an hour is the one the track record scores. Every statement is
parameterised.

A row's `role` is `champion` (the forecast a client got) or `shadow` (the version carrying the
`shadow` alias, scored on the same vector off the request path, never returned). Every read that
feeds a client (`get`, `latest`, `since`, `track_record`, and so the WebSocket replay) reads
champion rows only; outcomes are resolved for both roles, which the lifecycle compares.

One version has one row per hour whatever its role (the natural key has no role). When a
version that scored an hour in shadow is promoted and serves the same hour as champion, its row
becomes the champion's (`insert` relabels it with what the client got); a shadow forecast of an
hour the version already served as champion is a duplicate and is not written.
"""

from __future__ import annotations

import math
import uuid
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from rayapp.warehouse import json_safe

if TYPE_CHECKING:
    import psycopg

_NS = uuid.UUID("6f1c1f9e-6a43-4d7e-9c1b-7c7a3f5d2b10")

COLUMNS = (
    "prediction_id",
    "symbol",
    "ts",
    "horizon_h",
    "model_name",
    "model_version",
    "feature_set_version",
    "expected_return",
    "p_up",
    "direction",
    "interval_low",
    "interval_high",
    "features",
    "explanation",
    "created_at",
    "realized_return",
    "realized_direction",
    "resolved_at",
    "role",
    "data_age_s",
    "stale",
    "interval_method",
    "interval_level",
    "quantiles",
    "volatility",
    "intervals",
    "aci_gamma",
)
# Added by migration 0011 (the served distribution); absent from a row written before it: NULL.
INTERVAL_COLUMNS = ("interval_method", "interval_level", "quantiles", "volatility", "intervals", "aci_gamma")
ROLES = ("champion", "shadow")
_SELECT = "SELECT " + ", ".join(COLUMNS) + " FROM predictions"
# What a client may see: the champion's forecasts (a shadow forecast is never returned).
_CHAMPION = "role = 'champion'"


def prediction_id(symbol: str, ts: str, horizon_h: int, model_name: str, model_version: str) -> str:
    """Stable id of one forecast: the table's key (symbol, hour, horizon, registered model, version)."""
    return str(uuid.uuid5(_NS, f"{symbol}|{ts}|{horizon_h}|{model_name}|{model_version}"))


_INSERT = """
    INSERT INTO predictions (prediction_id, symbol, ts, horizon_h, model_name, model_version,
        feature_set_version, expected_return, p_up, direction, interval_low, interval_high,
        features, explanation, role, data_age_s, stale, interval_method, interval_level, quantiles,
        volatility, intervals, aci_gamma)
    VALUES (%(prediction_id)s, %(symbol)s, %(ts)s, %(horizon_h)s, %(model_name)s,
        %(model_version)s, %(feature_set_version)s, %(expected_return)s, %(p_up)s,
        %(direction)s, %(interval_low)s, %(interval_high)s, %(features)s, %(explanation)s, %(role)s,
        %(data_age_s)s, %(stale)s, %(interval_method)s, %(interval_level)s, %(quantiles)s,
        %(volatility)s, %(intervals)s, %(aci_gamma)s)
    ON CONFLICT DO NOTHING
"""
# The version scored this hour in shadow before it was promoted: the row becomes the champion's,
# with the numbers the client got (the same version on the same hour's vector: normally equal).
_RELABEL = """
    UPDATE predictions SET role = 'champion', feature_set_version = %(feature_set_version)s,
        expected_return = %(expected_return)s, p_up = %(p_up)s, direction = %(direction)s,
        interval_low = %(interval_low)s, interval_high = %(interval_high)s, features = %(features)s,
        explanation = %(explanation)s, created_at = now(), data_age_s = %(data_age_s)s, stale = %(stale)s,
        interval_method = %(interval_method)s, interval_level = %(interval_level)s, quantiles = %(quantiles)s,
        volatility = %(volatility)s, intervals = %(intervals)s, aci_gamma = %(aci_gamma)s
    WHERE symbol = %(symbol)s AND ts = %(ts)s AND horizon_h = %(horizon_h)s AND model_name = %(model_name)s
      AND model_version = %(model_version)s AND role = 'shadow'
"""


def insert(conn: psycopg.Connection, row: dict[str, Any]) -> bool:
    """Insert one forecast (`row["role"]`: champion, the default, or shadow); False when this
    (symbol, hour, horizon, model, version) was logged already. A champion forecast of an hour
    its version scored in shadow takes that row over (True)."""
    role = row.get("role") or "champion"
    if role not in ROLES:
        raise ValueError(f"unknown prediction role {role!r} (one of {', '.join(ROLES)})")
    params = {
        "data_age_s": None,  # how old the data was when served (None: a shadow row)
        "stale": None,
        **dict.fromkeys(INTERVAL_COLUMNS),  # a caller that has no served distribution (old callers)
        **row,
        "role": role,
        "features": Jsonb(json_safe(row["features"])),
        "explanation": None if row.get("explanation") is None else Jsonb(json_safe(row["explanation"])),
    }
    for k in ("quantiles", "intervals"):
        params[k] = None if params[k] is None else Jsonb(json_safe(params[k]))
    cur = conn.execute(_INSERT, params)
    written = cur.rowcount == 1
    if not written and role == "champion":
        written = conn.execute(_RELABEL, params).rowcount == 1
    conn.commit()
    return written


def _as_dict(rec: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, rec, strict=True))
    for k in ("ts", "created_at", "resolved_at"):
        if d[k] is not None:
            d[k] = d[k].isoformat()
    return d


def get(conn: psycopg.Connection, pid: str) -> dict[str, Any] | None:
    """A champion forecast by id (a shadow forecast's id is not found)."""
    rec = conn.execute(_SELECT + f" WHERE prediction_id = %s AND {_CHAMPION}", (pid,)).fetchone()
    return None if rec is None else _as_dict(rec)


def latest(conn: psycopg.Connection, symbol: str) -> dict[str, Any] | None:
    """The newest champion forecast of a symbol."""
    rec = conn.execute(
        _SELECT + f" WHERE symbol = %s AND {_CHAMPION} ORDER BY ts DESC, created_at DESC LIMIT 1", (symbol,)
    ).fetchone()
    return None if rec is None else _as_dict(rec)


def since(
    conn: psycopg.Connection, symbol: str | None, since_ts: Any, limit: int, *, by: str = "ts"
) -> list[dict[str, Any]]:
    """Champion forecasts after `since_ts` (by feature hour, or by `created_at` for reconnect catch-up)."""
    col = {"ts": "ts", "created_at": "created_at"}[by]  # whitelisted identifier, never user text
    recs = conn.execute(
        _SELECT + f" WHERE {_CHAMPION} AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s)"
        f" AND (%(since)s::timestamptz IS NULL OR {col} > %(since)s)"
        f" ORDER BY {col} ASC, prediction_id LIMIT %(limit)s",
        {"symbol": symbol, "since": since_ts, "limit": limit},
    ).fetchall()
    return [_as_dict(r) for r in recs]


def resolve_outcomes(conn: psycopg.Connection, price_sources: list[str]) -> int:
    """Fill realised return/direction of forecasts (champion and shadow) whose horizon has closed,
    then count them into the ACI states (rayapp/serving/aci.py: each forecast once, however often
    this runs); returns rows filled.

    The realised return is log(close(t+h) / close(t)) from one source's candles (the first of
    `price_sources` that has both), the target training used. A candle counts only once closed.
    """
    from rayapp.serving.aci import apply_resolved

    cur = conn.execute(
        """
        UPDATE predictions p
        SET realized_return = x.r,
            realized_direction = CASE WHEN x.r > 0 THEN 1 ELSE -1 END,
            resolved_at = now()
        FROM (
            SELECT p2.prediction_id, (
                SELECT ln(c1.close / c0.close)
                FROM candles c0
                JOIN candles c1 ON c1.source = c0.source AND c1.symbol = c0.symbol
                     AND c1.open_time = c0.open_time + make_interval(hours => p2.horizon_h)
                WHERE c0.symbol = p2.symbol AND c0.open_time = p2.ts
                  AND c1.open_time + interval '1 hour' <= now()
                  AND c0.close > 0 AND c1.close > 0
                ORDER BY coalesce(array_position(%(sources)s::text[], c0.source), 1000000), c0.source
                LIMIT 1) AS r
            FROM predictions p2
            WHERE p2.realized_return IS NULL
        ) x
        WHERE p.prediction_id = x.prediction_id AND x.r IS NOT NULL
        """,
        {"sources": list(price_sources)},
    )
    conn.commit()
    filled = int(cur.rowcount or 0)
    apply_resolved(conn)  # also forecasts filled by an earlier run whose ACI step failed
    return filled


def wilson(hits: int, n: int, z: float = 1.959963984540054) -> tuple[float | None, float | None]:
    """Wilson score interval for a binomial proportion (95% by default)."""
    if n == 0:
        return None, None
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def track_record(
    conn: psycopg.Connection, symbol: str, horizon_h: int | None, model_version: str | None, max_points: int = 500
) -> dict[str, Any]:
    """Directional accuracy of the champion's forecasts with a Wilson interval; cumulative return vs
    buy-and-hold."""
    recs = conn.execute(
        """
        SELECT ts, direction, realized_return, realized_direction, model_version, horizon_h, intervals,
               interval_method
        FROM predictions
        WHERE role = 'champion' AND symbol = %(symbol)s AND realized_return IS NOT NULL
          AND (%(h)s::int IS NULL OR horizon_h = %(h)s)
          AND (%(v)s::text IS NULL OR model_version = %(v)s)
        ORDER BY ts
        """,
        {"symbol": symbol, "h": horizon_h, "v": model_version},
    ).fetchall()
    pending = conn.execute(
        "SELECT count(*) FROM predictions WHERE role = 'champion' AND symbol = %s AND realized_return IS NULL",
        (symbol,),
    ).fetchone()
    n = len(recs)
    hits = sum(1 for r in recs if r[1] == r[3])
    lo, hi = wilson(hits, n)
    strat = bh = 0.0
    series = []
    for ts, direction, r, _, version, _h, _iv, _m in recs:
        strat += direction * r  # long when up is predicted, short when down: log returns add
        bh += r
        series.append(
            {
                "ts": ts.isoformat(),
                "strategy": math.expm1(strat),
                "buy_and_hold": math.expm1(bh),
                "model_version": version,
            }
        )
    step = max(1, math.ceil(len(series) / max_points))
    points = series[::step]
    if series and points[-1] is not series[-1]:
        points.append(series[-1])
    return {
        "symbol": symbol,
        "horizon_h": horizon_h,
        "model_version": model_version,
        "resolved": n,
        "pending": int(pending[0]) if pending else 0,
        "hits": hits,
        "accuracy": hits / n if n else None,
        "accuracy_ci95": [lo, hi],
        "cumulative_return": math.expm1(strat) if n else None,
        "buy_and_hold_return": math.expm1(bh) if n else None,
        # Overlapping horizons (h > 1 with hourly forecasts) make the cumulative sums an upper
        # bound of a tradable strategy; the dashboard says so beside the chart.
        "overlapping": bool(recs) and any(r[5] > 1 for r in recs),
        "series": points,
        "coverage": interval_coverage((r[6], r[2], r[7]) for r in recs),
    }


def interval_coverage(rows: Any) -> list[dict[str, Any]]:
    """Live coverage per nominal level of resolved forecasts: (intervals, realised return, method)
    per forecast; forecasts logged before the served distribution (no `intervals`) are left out."""
    by_level: dict[float, dict[str, Any]] = {}
    for intervals, y, method in rows:
        for iv in intervals or []:
            lo, hi, level = iv.get("low"), iv.get("high"), iv.get("level")
            if lo is None or hi is None or level is None:
                continue
            c = by_level.setdefault(float(level), {"resolved": 0, "covered": 0, "methods": set()})
            c["resolved"] += 1
            c["covered"] += 1 if float(lo) <= float(y) <= float(hi) else 0
            if method:
                c["methods"].add(str(method))
    out = []
    for level in sorted(by_level):
        c = by_level[level]
        lo, hi = wilson(c["covered"], c["resolved"])
        out.append(
            {
                "level": level,
                "resolved": c["resolved"],
                "covered": c["covered"],
                "coverage": c["covered"] / c["resolved"],
                "coverage_ci95": [lo, hi],
                "methods": sorted(c["methods"]),
            }
        )
    return out
