"""Adaptive conformal inference online, shared by every replica (table `interval_aci`).

One `AciState` per (registered model, version, horizon, nominal level). When a forecast's outcome
is known, `apply_resolved` counts it: covered or not at each level it was served with (the logged
`predictions.intervals`), alpha_{t+1} = alpha_t + gamma (alpha - err_t) with the step logged with
the forecast (`predictions.aci_gamma`; none for the legacy band, whose alpha_t stays put), and the
running coverage covered / resolved. Forecasts are counted in feature-hour order, each once: the
row is marked (`aci_applied_at`) in the same transaction as the states move, under an advisory
lock, so the scheduler's resolve job and every ingress replica's resolve loop may all run it, as
often as they like, and nothing is counted twice or skipped.

Serving reads the states of the version it serves (`read_states`, cached per replica for
`serving.intervals.aci_refresh_s`) and passes them to the bundle: the served interval uses the
current alpha_t, and `interval.coverage` is the running coverage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger
from rayapp.registry import AciState, aci_update, level_key

if TYPE_CHECKING:
    import psycopg

log = get_logger(__name__)

_LOCK = 7_261_797_020  # pg_advisory_xact_lock key: one ACI update at a time, cluster-wide
BATCH = 5000  # resolved forecasts counted per transaction (the rest in the next one)


def read_states(conn: psycopg.Connection, model_name: str, model_version: str, horizon_h: int) -> dict[str, Any]:
    """level key -> AciState as a dict (level, alpha_t, resolved, covered, coverage) of one version."""
    rows = conn.execute(
        "SELECT level, alpha_t, resolved, covered FROM interval_aci"
        " WHERE model_name = %s AND model_version = %s AND horizon_h = %s",
        (model_name, str(model_version), int(horizon_h)),
    ).fetchall()
    return {level_key(r[0]): AciState(float(r[0]), float(r[1]), int(r[2]), int(r[3])).as_dict() for r in rows}


def _covered(iv: dict[str, Any], y: float) -> bool | None:
    lo, hi = iv.get("low"), iv.get("high")
    if lo is None or hi is None:
        return None
    return float(lo) <= y <= float(hi)


def apply_resolved(conn: psycopg.Connection) -> int:
    """Count every resolved, not yet counted forecast into its version's ACI states; returns how
    many forecasts were counted. Idempotent: a second call right after counts nothing."""
    total = 0
    while True:
        n = _apply_batch(conn)
        total += n
        if n < BATCH:
            return total


def _apply_batch(conn: psycopg.Connection) -> int:
    try:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        rows = conn.execute(
            "SELECT prediction_id, model_name, model_version, horizon_h, ts, intervals, realized_return, aci_gamma"
            " FROM predictions WHERE aci_applied_at IS NULL AND intervals IS NOT NULL"
            " AND realized_return IS NOT NULL ORDER BY ts, prediction_id LIMIT %s",
            (BATCH,),
        ).fetchall()
        if not rows:
            conn.commit()
            return 0
        states: dict[tuple[str, str, int], dict[str, AciState]] = {}
        last: dict[tuple[str, str, int], Any] = {}
        for _pid, name, version, h, ts, intervals, y, gamma in rows:
            key = (str(name), str(version), int(h))
            if key not in states:
                states[key] = {
                    k: AciState(level=s["level"], alpha_t=s["alpha_t"], resolved=s["resolved"], covered=s["covered"])
                    for k, s in read_states(conn, *key).items()
                }
            mine = states[key]
            for iv in intervals or []:
                hit = _covered(iv, float(y))
                level = iv.get("level")
                if hit is None or level is None or not 0 < float(level) < 1:
                    continue
                k = level_key(level)
                st = mine.get(k) or AciState.start(float(level))
                mine[k] = aci_update(st, hit, 0.0 if gamma is None else float(gamma))
            last[key] = ts
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO interval_aci (model_name, model_version, horizon_h, level, alpha_t, resolved, covered,"
                " last_ts) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (model_name, model_version, horizon_h, level) DO UPDATE SET"
                " alpha_t = EXCLUDED.alpha_t, resolved = EXCLUDED.resolved, covered = EXCLUDED.covered,"
                " last_ts = greatest(interval_aci.last_ts, EXCLUDED.last_ts), updated_at = now()",
                [
                    (*key, st.level, st.alpha_t, st.resolved, st.covered, last[key])
                    for key, levels in states.items()
                    for st in levels.values()
                ],
            )
        conn.execute(
            "UPDATE predictions SET aci_applied_at = now() WHERE prediction_id = ANY(%s)", ([r[0] for r in rows],)
        )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    log.info("aci states updated", forecasts=len(rows), versions=len(states))
    return len(rows)
