"""What the serving app's /metrics exposes about the pipeline, the data and the model lifecycle,
read from PostgreSQL at scrape time (issue 16; the alert rules in deploy/rules/ and the Grafana
dashboards read these). Read-only and bounded: aggregates over indexed columns, the live model
statistics over each version's newest `window` resolved forecasts.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

from rayapp.warehouse.model_events import KINDS, TRIGGERS

FAILED = ("failed", "timed_out")
FINISHED = ("succeeded", "partial", "failed", "timed_out", "cancelled")
CALIBRATION_BINS = 10


def pipeline_snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """Per job: its cron, enabled/paused, first run start, newest finished run's status, and the
    rows read / written / quarantined over its history."""
    with conn.cursor(row_factory=dict_row) as cur:
        jobs = cur.execute("SELECT job, cron, enabled, paused, clock FROM pipeline_jobs ORDER BY job").fetchall()
        firsts = {
            r["job"]: r["t"]
            for r in cur.execute(
                "SELECT job, extract(epoch FROM min(coalesce(started_at, finished_at)))::float8 AS t"
                " FROM pipeline_runs GROUP BY job"
            ).fetchall()
        }
        lasts = {
            r["job"]: r["status"]
            for r in cur.execute(
                "SELECT DISTINCT ON (job) job, status FROM pipeline_runs WHERE status = ANY(%s)"
                " ORDER BY job, run_id DESC",
                (list(FINISHED),),
            ).fetchall()
        }
        rows = {
            r["job"]: (int(r["r"]), int(r["w"]), int(r["q"]))
            for r in cur.execute(
                "SELECT job, coalesce(sum(rows_read), 0) AS r, coalesce(sum(rows_written), 0) AS w,"
                " coalesce(sum(rows_quarantined), 0) AS q FROM pipeline_runs GROUP BY job"
            ).fetchall()
        }
    out = []
    for j in jobs:
        name = j["job"]
        out.append(
            {
                **j,
                "first_run": firsts.get(name),
                "last_status": lasts.get(name),
                "last_failed": lasts.get(name) in FAILED,
                "rows": rows.get(name, (0, 0, 0)),
            }
        )
    return {"jobs": out}


def quarantine_counts(conn: psycopg.Connection, sources: list[str]) -> dict[str, int]:
    """Rows of the quarantine table per source; every source in `sources` is present (0 when it
    has none), so its first quarantined rows are an increase the rules see."""
    counts = dict.fromkeys(sources, 0)
    for s, n in conn.execute("SELECT source, count(*) FROM quarantine GROUP BY source ORDER BY 1").fetchall():
        counts[str(s)] = int(n)
    return counts


def latest_drift(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The newest successful drift job's reports (PSI per symbol and feature) and when it ran."""
    row = conn.execute(
        "SELECT extract(epoch FROM finished_at)::float8, stats FROM pipeline_runs"
        " WHERE job = 'drift' AND status = 'succeeded' AND (stats->>'checked')::boolean"
        " ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    reports = row[1].get("reports") or []
    return {
        "checked_at": row[0],
        "psi": [(str(r["symbol"]), str(f), float(v)) for r in reports for f, v in (r.get("psi") or {}).items()],
    }


def event_counts(conn: psycopg.Connection, model_name: str) -> dict[str, Any]:
    """Lifecycle events per (kind, trigger), every kind present (0 when none), and how many gate
    decisions in a row, newest first, were refusals."""
    # every series exists from the start (at 0), so the first event is an increase the rules see
    counts: dict[tuple[str, str], int] = {(k, ""): 0 for k in KINDS if k not in ("trigger", "suppressed")}
    counts.update({(k, t): 0 for k in ("trigger", "suppressed") for t in TRIGGERS})
    for kind, trig, n in conn.execute(
        "SELECT kind, coalesce(trigger, ''), count(*) FROM model_events WHERE model_name = %s GROUP BY 1, 2",
        (model_name,),
    ).fetchall():
        key = (str(kind), str(trig) if kind in ("trigger", "suppressed") else "")
        counts[key] = counts.get(key, 0) + int(n)
    gates = conn.execute(
        "SELECT decision FROM model_events WHERE model_name = %s AND kind = 'gate' ORDER BY event_id DESC LIMIT 100",
        (model_name,),
    ).fetchall()
    refusals = 0
    for (decision,) in gates:
        if decision != "refused":
            break
        refusals += 1
    return {"counts": counts, "gate_refusals_consecutive": refusals}


def live_model_stats(conn: psycopg.Connection, model_name: str, window: int) -> list[dict[str, Any]]:
    """Per (version, role) over its newest `window` resolved forecasts: accuracy, log loss, Brier
    and expected calibration error (10 equal-width bins of P(up)), and the calibration bins."""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            """
            WITH recent AS (
                SELECT model_version AS version, role, p_up,
                       (realized_direction = 1)::int AS y, (direction = realized_direction)::int AS hit,
                       row_number() OVER (PARTITION BY model_version, role ORDER BY ts DESC) AS k
                FROM predictions
                WHERE model_name = %s AND realized_return IS NOT NULL AND p_up IS NOT NULL
            )
            SELECT version, role, least(width_bucket(p_up, 0, 1, %s), %s) AS bin,
                   count(*) AS n, sum(y) AS ups, sum(hit) AS hits, sum(p_up) AS p_sum,
                   sum(CASE WHEN y = 1 THEN -ln(greatest(p_up, 1e-6)) ELSE -ln(greatest(1 - p_up, 1e-6)) END) AS ll,
                   sum((p_up - y) * (p_up - y)) AS brier
            FROM recent WHERE k <= %s GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
            """,
            (model_name, CALIBRATION_BINS, CALIBRATION_BINS, window),
        ).fetchall()
    stats: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        key = (str(r["version"]), str(r["role"]))
        s = stats.setdefault(
            key, {"version": key[0], "role": key[1], "n": 0, "hits": 0, "ll": 0.0, "brier": 0.0, "bins": []}
        )
        n = int(r["n"])
        s["n"] += n
        s["hits"] += int(r["hits"])
        s["ll"] += float(r["ll"])
        s["brier"] += float(r["brier"])
        lo = (int(r["bin"]) - 1) / CALIBRATION_BINS
        s["bins"].append(
            {
                "bin": f"{lo:.1f}-{lo + 1 / CALIBRATION_BINS:.1f}",
                "n": n,
                "observed": int(r["ups"]) / n,
                "predicted": float(r["p_sum"]) / n,
            }
        )
    out = []
    for s in stats.values():
        n = s["n"]
        out.append(
            {
                "version": s["version"],
                "role": s["role"],
                "resolved": n,
                "accuracy": s["hits"] / n,
                "log_loss": s["ll"] / n,
                "brier": s["brier"] / n,
                "ece": sum(b["n"] * abs(b["observed"] - b["predicted"]) for b in s["bins"]) / n,
                "bins": s["bins"],
            }
        )
    return out


def interval_states(conn: psycopg.Connection, model_name: str) -> list[dict[str, Any]]:
    """The ACI states (table interval_aci) of every version of the registered model: live running
    coverage (covered / resolved) and alpha_t per (version, horizon, nominal level)."""
    rows = conn.execute(
        "SELECT model_version, horizon_h, level, alpha_t, resolved, covered FROM interval_aci"
        " WHERE model_name = %s ORDER BY model_version, horizon_h, level",
        (model_name,),
    ).fetchall()
    return [
        {
            "version": str(v),
            "horizon_h": int(h),
            "level": float(level),
            "alpha_t": float(a),
            "resolved": int(n),
            "covered": int(c),
        }
        for v, h, level, a, n, c in rows
    ]


def ops_snapshot(conn: psycopg.Connection, *, model_name: str, window: int, sources: list[str]) -> dict[str, Any]:
    """Everything the scrape-time collector needs from PostgreSQL, in one connection."""
    return {
        "pipeline": pipeline_snapshot(conn),
        "quarantine": quarantine_counts(conn, sources),
        "drift": latest_drift(conn),
        "events": event_counts(conn, model_name),
        "live": live_model_stats(conn, model_name, window),
        "intervals": interval_states(conn, model_name),
    }
