"""The in-app alert feed in PostgreSQL (migration 0009): what Alertmanager told the webhook.

One row per alert occurrence, keyed by Alertmanager's fingerprint and the alert's start: a later
notification about the same occurrence (a repeat while firing, then the resolution) updates it
in place; the same alert firing again after it resolved is a new row. Writes are idempotent (a
retried webhook delivery changes nothing but the notification count). Every statement is
parameterised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

SEVERITIES = ("high", "medium", "info")
COLUMNS = (
    "fingerprint",
    "starts_at",
    "alertname",
    "severity",
    "status",
    "ends_at",
    "labels",
    "annotations",
    "generator_url",
    "receiver",
    "group_key",
    "first_received_at",
    "received_at",
    "notifications",
)


def store_notification(
    conn: psycopg.Connection, *, receiver: str, group_key: str, alerts: Sequence[dict[str, Any]]
) -> dict[str, int]:
    """Upsert the alerts of one webhook notification in one transaction; returns how many were
    new, updated, and (a resolution older than what is stored) left as they were."""
    new = updated = 0
    with conn.transaction():
        for a in alerts:
            row = conn.execute(
                """
                INSERT INTO alerts (fingerprint, starts_at, alertname, severity, status, ends_at, labels,
                                    annotations, generator_url, receiver, group_key)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (fingerprint, starts_at) DO UPDATE SET
                    status = CASE WHEN alerts.status = 'resolved' THEN 'resolved' ELSE EXCLUDED.status END,
                    ends_at = coalesce(EXCLUDED.ends_at, alerts.ends_at),
                    annotations = EXCLUDED.annotations,
                    received_at = now(),
                    notifications = alerts.notifications + 1
                RETURNING (xmax = 0) AS inserted
                """,
                (
                    a["fingerprint"],
                    a["starts_at"],
                    a["alertname"],
                    a["severity"],
                    a["status"],
                    a["ends_at"] if a["status"] == "resolved" else None,
                    Jsonb(a["labels"]),
                    Jsonb(a["annotations"]),
                    a.get("generator_url"),
                    receiver,
                    group_key,
                ),
            ).fetchone()
            if row is not None and row[0]:
                new += 1
            else:
                updated += 1
    return {"new": new, "updated": updated}


def _rows(conn: psycopg.Connection, where: str, params: tuple[Any, ...], limit: int) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {', '.join(COLUMNS)} FROM alerts WHERE {where} ORDER BY received_at DESC, starts_at DESC LIMIT %s",
            (*params, limit),
        ).fetchall()


def list_alerts(conn: psycopg.Connection, *, limit: int = 50, since: datetime | None = None) -> dict[str, Any]:
    """The firing alerts (most severe first) and the newest `limit` notifications of any status."""
    active = _rows(conn, "status = 'firing'", (), 500)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    active.sort(key=lambda r: (order.get(r["severity"], len(order)), -r["starts_at"].timestamp()))
    recent = _rows(conn, "received_at >= %s", (since,), limit) if since else _rows(conn, "true", (), limit)
    return {"active": active, "recent": recent}


def active_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Firing alerts per severity (every severity present, 0 when none)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for sev, n in conn.execute("SELECT severity, count(*) FROM alerts WHERE status = 'firing' GROUP BY severity"):
        counts[str(sev)] = int(n)
    return counts
