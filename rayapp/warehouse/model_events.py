"""The model lifecycle's history and state in PostgreSQL (migration 0008).

`model_events` is append-only: one row per trigger, suppressed trigger, retrain, gate decision,
shadow start and verdict, promotion, watch verdict and rollback, with its evidence as JSON.
`model_lifecycle` is the policy's small mutable state per registered model (which version is in
shadow and since when, when the last retrain was, whether one is running). Every statement is
parameterised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from rayapp.warehouse.jsonsafe import json_safe

KINDS = (
    "trigger",
    "suppressed",
    "retrain",
    "gate",
    "shadow_start",
    "shadow_verdict",
    "promotion",
    "watch_start",
    "watch_verdict",
    "rollback",
    "error",
)
# What may fire a retrain (model_events.trigger; rayapp/lifecycle/policy.py evaluates them).
TRIGGERS = ("schedule", "drift", "degradation", "coverage", "new_data", "max_age", "manual")
EVENT_COLUMNS = (
    "event_id",
    "at",
    "clock_ts",
    "model_name",
    "kind",
    "trigger",
    "version",
    "other_version",
    "decision",
    "p_value",
    "evidence",
    "pipeline_run",
)


def record(
    conn: psycopg.Connection,
    *,
    model_name: str,
    kind: str,
    clock_ts: datetime,
    trigger: str | None = None,
    version: str | None = None,
    other_version: str | None = None,
    decision: str | None = None,
    p_value: float | None = None,
    evidence: dict[str, Any] | None = None,
    pipeline_run: int | None = None,
) -> int:
    """Append one event; returns its id."""
    if kind not in KINDS:
        raise ValueError(f"unknown model event kind {kind!r} (one of {', '.join(KINDS)})")
    pv = None if p_value is None or not math.isfinite(float(p_value)) else float(p_value)
    row = conn.execute(
        "INSERT INTO model_events (clock_ts, model_name, kind, trigger, version, other_version, decision,"
        " p_value, evidence, pipeline_run) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING event_id",
        (
            clock_ts,
            model_name,
            kind,
            trigger,
            version,
            other_version,
            decision,
            pv,
            Jsonb(json_safe(evidence or {})),
            pipeline_run,
        ),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def events(
    conn: psycopg.Connection,
    model_name: str,
    *,
    version: str | None = None,
    kinds: tuple[str, ...] | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest `limit` events of a model (optionally of one version / some kinds), oldest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT " + ", ".join(EVENT_COLUMNS) + " FROM model_events WHERE model_name = %(m)s"
            " AND (%(v)s::text IS NULL OR version = %(v)s OR other_version = %(v)s)"
            " AND (%(k)s::text[] IS NULL OR kind = ANY(%(k)s))"
            " ORDER BY event_id DESC LIMIT %(n)s",
            {"m": model_name, "v": version, "k": list(kinds) if kinds else None, "n": limit},
        ).fetchall()
    for r in rows:
        for k in ("at", "clock_ts"):
            if r[k] is not None:
                r[k] = r[k].isoformat()
    return list(reversed(rows))


@dataclass
class LifecycleState:
    model_name: str
    shadow_version: str | None = None
    shadow_role: str | None = None  # challenger | watch
    shadow_since: datetime | None = None
    last_retrain_at: datetime | None = None
    retrain_running: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "shadow_version": self.shadow_version,
            "shadow_role": self.shadow_role,
            "shadow_since": self.shadow_since.isoformat() if self.shadow_since else None,
            "last_retrain_at": self.last_retrain_at.isoformat() if self.last_retrain_at else None,
            "retrain_running": self.retrain_running,
        }


def state(conn: psycopg.Connection, model_name: str) -> LifecycleState:
    row = conn.execute(
        "SELECT shadow_version, shadow_role, shadow_since, last_retrain_at, retrain_running"
        " FROM model_lifecycle WHERE model_name = %s",
        (model_name,),
    ).fetchone()
    if row is None:
        return LifecycleState(model_name)
    return LifecycleState(model_name, row[0], row[1], row[2], row[3], bool(row[4]))


def save_state(conn: psycopg.Connection, st: LifecycleState) -> None:
    conn.execute(
        "INSERT INTO model_lifecycle (model_name, shadow_version, shadow_role, shadow_since, last_retrain_at,"
        " retrain_running, updated_at) VALUES (%s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (model_name) DO UPDATE SET shadow_version = EXCLUDED.shadow_version,"
        " shadow_role = EXCLUDED.shadow_role, shadow_since = EXCLUDED.shadow_since,"
        " last_retrain_at = EXCLUDED.last_retrain_at, retrain_running = EXCLUDED.retrain_running,"
        " updated_at = now()",
        (st.model_name, st.shadow_version, st.shadow_role, st.shadow_since, st.last_retrain_at, st.retrain_running),
    )
    conn.commit()


def claim_retrain(conn: psycopg.Connection, model_name: str) -> bool:
    """Mark a retrain as running; False when one already is (the trigger is then recorded, not queued)."""
    conn.execute(
        "INSERT INTO model_lifecycle (model_name) VALUES (%s) ON CONFLICT (model_name) DO NOTHING", (model_name,)
    )
    cur = conn.execute(
        "UPDATE model_lifecycle SET retrain_running = true, updated_at = now()"
        " WHERE model_name = %s AND NOT retrain_running",
        (model_name,),
    )
    conn.commit()
    return (cur.rowcount or 0) == 1


def release_retrain(conn: psycopg.Connection, model_name: str, finished_at: datetime | None) -> None:
    conn.execute(
        "UPDATE model_lifecycle SET retrain_running = false,"
        " last_retrain_at = coalesce(%s, last_retrain_at), updated_at = now() WHERE model_name = %s",
        (finished_at, model_name),
    )
    conn.commit()


def resolved_forecasts(
    conn: psycopg.Connection,
    model_name: str,
    version: str,
    *,
    symbol: str | None = None,
    horizon_h: int | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """A version's resolved forecasts (either role), newest `limit` of them, in time order:
    ts, p_up, direction, realized_return, realized_direction, role."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            "SELECT ts, p_up, direction, realized_return, realized_direction, role FROM predictions"
            " WHERE model_name = %(m)s AND model_version = %(v)s AND realized_return IS NOT NULL"
            " AND (%(s)s::text IS NULL OR symbol = %(s)s) AND (%(h)s::int IS NULL OR horizon_h = %(h)s)"
            " AND (%(since)s::timestamptz IS NULL OR ts >= %(since)s)"
            " ORDER BY ts DESC LIMIT %(n)s",
            {"m": model_name, "v": version, "s": symbol, "h": horizon_h, "since": since, "n": limit},
        ).fetchall()
    return list(reversed(rows))


def version_stats(conn: psycopg.Connection, model_name: str) -> list[dict[str, Any]]:
    """Live accuracy and log loss per (version, role) over every resolved forecast."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            SELECT model_version AS version, role, count(*) AS served,
                   count(realized_return) AS resolved,
                   avg(CASE WHEN realized_return IS NULL THEN NULL
                            WHEN direction = realized_direction THEN 1.0 ELSE 0.0 END) AS accuracy,
                   avg(CASE WHEN realized_return IS NULL THEN NULL
                            WHEN realized_direction = 1 THEN -ln(greatest(p_up, 1e-6))
                            ELSE -ln(greatest(1 - p_up, 1e-6)) END) AS log_loss,
                   min(ts) AS first_ts, max(ts) AS last_ts
            FROM predictions WHERE model_name = %s
            GROUP BY model_version, role ORDER BY min(ts), role
            """,
            (model_name,),
        ).fetchall()
    for r in rows:
        for k in ("first_ts", "last_ts"):
            if r[k] is not None:
                r[k] = r[k].isoformat()
        for k in ("accuracy", "log_loss"):
            if r[k] is not None:
                r[k] = float(r[k])
    return rows


def paired_forecasts(
    conn: psycopg.Connection,
    model_name: str,
    version_a: str,
    version_b: str,
    *,
    symbol: str | None = None,
    horizon_h: int | None = None,
    since: datetime | None = None,
) -> dict[str, list[Any]]:
    """Hours both versions forecast and whose outcome is known, in time order: ts, p_a, p_b, y
    (1 = the realised return was > 0). The paired series every shadow and watch verdict reads."""
    rows = conn.execute(
        """
        SELECT a.ts, a.p_up, b.p_up, CASE WHEN a.realized_return > 0 THEN 1 ELSE 0 END
        FROM predictions a
        JOIN predictions b ON b.symbol = a.symbol AND b.ts = a.ts AND b.horizon_h = a.horizon_h
             AND b.model_name = a.model_name AND b.model_version = %(vb)s
        WHERE a.model_name = %(m)s AND a.model_version = %(va)s AND a.realized_return IS NOT NULL
          AND (%(s)s::text IS NULL OR a.symbol = %(s)s) AND (%(h)s::int IS NULL OR a.horizon_h = %(h)s)
          AND (%(since)s::timestamptz IS NULL OR a.ts >= %(since)s)
        ORDER BY a.ts
        """,
        {"m": model_name, "va": version_a, "vb": version_b, "s": symbol, "h": horizon_h, "since": since},
    ).fetchall()
    return {
        "ts": [r[0] for r in rows],
        "p_a": [float(r[1]) for r in rows],
        "p_b": [float(r[2]) for r in rows],
        "y": [int(r[3]) for r in rows],
    }
