"""The model lifecycle, live: the scheduler's `retrain` job runs one step of the policy per slot.

One step, on the scheduler's clock (market time in replay mode):
1. A version in shadow is judged first. A gated challenger: `shadow_verdict` on the hours it and
   the champion both forecast and that have resolved → promote (the `champion` alias moves; the
   previous champion takes the `shadow` alias for the watch period), refuse (the shadow alias is
   removed), or wait. A previous champion in its watch period: `watch_verdict` → roll back (the
   alias moves back), end the watch, or keep watching.
2. The triggers (`evaluate_triggers`: schedule, drift, degradation, interval coverage, new data,
   maximum age, and a
   manual `rayapp schedule trigger retrain`), then `retrain_decision` (cooldown, a retrain in
   flight, a challenger still in shadow). Fired triggers that do not start a retrain are recorded
   as `suppressed`, never queued.
3. A retrain: `train` on the configured window with the long walk-forward gate, without letting
   the gate move `champion` (unless there is no champion at all); a gated challenger takes the
   `shadow` alias and Ray Serve's ShadowPredictor starts scoring it beside the champion.

Every decision is a row in `model_events` and a tag on the MLflow version. The decisions
themselves are rayapp.lifecycle's pure functions, the ones `rayapp backtest` replays over history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from rayapp.log import get_logger

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.flows.jobs import JobResult, RunContext
    from rayapp.lifecycle import Champion, Live, Trigger
    from rayapp.registry import LoadedModel

log = get_logger(__name__)


@dataclass
class Step:
    """What one policy step did, for the job's result and the tests."""

    now: datetime
    champion: str | None = None
    verdict: dict[str, Any] | None = None
    triggers: list[dict[str, Any]] = field(default_factory=list)
    retrain: bool = False
    suppressed: str | None = None
    trained: dict[str, Any] | None = None
    events: list[int] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "champion": self.champion,
            "verdict": self.verdict,
            "triggers": [{k: t[k] for k in ("name", "fired", "p_value")} for t in self.triggers],
            "fired": [t["name"] for t in self.triggers if t["fired"]],
            "retrain": self.retrain,
            "suppressed": self.suppressed,
            "trained": self.trained,
            "events": self.events,
            "actions": self.actions,
        }


def _utc(ts: Any) -> datetime | None:
    if ts is None:
        return None
    import pandas as pd

    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.to_pydatetime()


def _hours(a: datetime, b: datetime | None) -> float:
    return 0.0 if b is None else (a - b).total_seconds() / 3600.0


def champion_facts(model: LoadedModel) -> Champion:
    """The policy's view of the champion, from its serving bundle (data range, out-of-fold figures)."""
    from rayapp.lifecycle import Champion

    b = model.bundle
    pooled = (b.cv_metrics or {}).get("pooled") or {}
    end = _utc(b.data_range[-1]) if b.data_range else None
    return Champion(
        version=str(model.version),
        horizon_h=int(b.horizon_h),
        data_end=end,
        trained_at=None,
        oof_accuracy=pooled.get("accuracy"),
        oof_logloss=pooled.get("logloss"),
    )


def _baseline_up(settings: Settings, model: LoadedModel, ts: list[datetime]) -> np.ndarray | None:
    """The champion's best naive baseline's forecasts on the given hours (from stored closes)."""
    import pandas as pd

    from rayapp.features import load_close
    from rayapp.training import baseline_predictions

    best = (model.bundle.baselines or {}).get("best")
    if not ts or best not in ("always_up", "persistence", "reversal"):
        return None
    from rayapp.errors import InputError

    idx = pd.DatetimeIndex(ts)
    try:
        close = load_close(
            settings,
            settings.symbols[0],
            model.feature_set_version,
            idx[0] - pd.Timedelta(hours=2),
            idx[-1] + pd.Timedelta(hours=1),
        )
    except InputError as exc:  # no candles for the symbol: the baseline test is left out, said so
        log.warning("no closes for the degradation baseline", error=str(exc)[:200])
        return None
    if close.empty:
        return None
    last_ret = np.log(close / close.shift(1)).reindex(idx).to_numpy(dtype=float)
    return np.asarray(baseline_predictions(last_ret, len(idx))[best], dtype=bool)


def _live(settings: Settings, conn: Any, model: LoadedModel, champ: Champion) -> Live | None:
    """The champion's resolved forecasts: what the degradation trigger reads (with the baseline
    when that trigger is on) and the coverage trigger's interval hits."""
    from rayapp.lifecycle import Live
    from rayapp.warehouse import model_events

    rows = model_events.resolved_forecasts(
        conn,
        model.name,
        str(model.version),
        symbol=settings.symbols[0],
        horizon_h=champ.horizon_h,
        limit=settings.lifecycle.degradation.window,
    )
    rows = [r for r in rows if r["role"] == "champion"]
    if not rows:
        return None
    ts = [r["ts"] for r in rows]
    return Live(
        p_up=np.array([float(r["p_up"]) for r in rows]),
        y=np.array([1 if float(r["realized_return"]) > 0 else 0 for r in rows]),
        baseline_up=_baseline_up(settings, model, ts) if settings.lifecycle.degradation.enabled else None,
        covered=_interval_hits(settings, conn, model, champ),
    )


def _interval_hits(settings: Settings, conn: Any, model: LoadedModel, champ: Champion) -> np.ndarray | None:
    """1/0 per resolved champion forecast with an interval: did the realised return fall inside
    the logged interval (`predictions.interval_low/high`, the `lifecycle.coverage.level` one)."""
    c = settings.lifecycle.coverage
    if not c.enabled:
        return None
    rows = conn.execute(
        "SELECT interval_low, interval_high, realized_return FROM predictions"
        " WHERE model_name = %s AND model_version = %s AND role = 'champion' AND symbol = %s"
        " AND horizon_h = %s AND realized_return IS NOT NULL AND interval_low IS NOT NULL"
        " AND interval_high IS NOT NULL ORDER BY ts DESC LIMIT %s",
        (model.name, str(model.version), settings.symbols[0], champ.horizon_h, c.window),
    ).fetchall()
    if not rows:
        return None
    return np.array([1.0 if float(lo) <= float(r) <= float(hi) else 0.0 for lo, hi, r in reversed(rows)])


def _drift(settings: Settings, conn: Any, model: LoadedModel, now: datetime, seed: int) -> Any:
    from rayapp.monitoring import drift_inputs, psi_drift_test

    d = settings.lifecycle.drift
    if not d.enabled or not model.bundle.data_range:
        return None
    names, ref, cur = drift_inputs(
        conn, settings.symbols[0], model.feature_set_version, model.bundle.data_range, now, d.hours
    )
    if len(cur) < d.min_rows:
        from rayapp.monitoring import DriftTest

        return DriftTest(n_reference=len(ref), n_current=len(cur))
    return psi_drift_test(ref, cur, names, n_boot=d.n_boot, alpha=d.alpha, seed=seed)


class Policy:
    """One policy step against the live stores (PostgreSQL, the MLflow registry)."""

    def __init__(self, settings: Settings, now: datetime, pipeline_run: int | None = None) -> None:
        from rayapp.registry import setup_mlflow
        from rayapp.warehouse import get_pool

        # The alias moves and tags go through MLflow's process-wide client: point it at this
        # deployment's registry first (a scheduler runner is a fresh process).
        setup_mlflow(settings)
        self.settings = settings
        self.cfg = settings.lifecycle
        self.name = settings.mlflow.registered_model
        self.now = now
        self.run = pipeline_run
        self.pool = get_pool(settings)
        self.seed = int(settings.model.seed)
        self.step = Step(now)

    # ---- recording -----------------------------------------------------------------------------
    def event(self, kind: str, **kw: Any) -> int:
        from rayapp.warehouse import model_events

        with self.pool.connection() as conn:
            eid = model_events.record(
                conn, model_name=self.name, kind=kind, clock_ts=self.now, pipeline_run=self.run, **kw
            )
        self.step.events.append(eid)
        log.info(
            "model event",
            kind=kind,
            trigger=kw.get("trigger"),
            version=kw.get("version"),
            decision=kw.get("decision"),
            p_value=kw.get("p_value"),
        )
        return eid

    def tag(self, version: str | None, tags: dict[str, str]) -> None:
        from rayapp.registry import tag_version

        if version is None:
            return
        try:
            tag_version(self.name, version, tags)
        except Exception as exc:  # a tag is a copy of the event row: never lose the decision for it
            log.warning("version tag failed", version=version, error=type(exc).__name__)

    def state(self) -> Any:
        from rayapp.warehouse import model_events

        with self.pool.connection() as conn:
            return model_events.state(conn, self.name)

    def save(self, st: Any) -> None:
        from rayapp.warehouse import model_events

        with self.pool.connection() as conn:
            model_events.save_state(conn, st)

    # ---- the champion --------------------------------------------------------------------------
    def champion(self) -> LoadedModel | None:
        from rayapp.registry import ModelNotFound, load_alias

        try:
            return load_alias(self.settings)
        except ModelNotFound:
            return None

    # ---- 1. shadow and watch -------------------------------------------------------------------
    def judge_shadow(self, st: Any, champ: LoadedModel | None) -> None:
        from rayapp.lifecycle import shadow_verdict, watch_verdict
        from rayapp.registry import CHAMPION, SHADOW, clear_alias, set_alias
        from rayapp.warehouse import model_events

        if st.shadow_version is None:
            return
        if champ is None or str(champ.version) == st.shadow_version:
            # The alias moved under us (an operator promoted it by hand): the shadow is over.
            clear_alias(self.name, SHADOW)
            self.event(
                "shadow_verdict",
                version=st.shadow_version,
                decision="abandoned",
                evidence={"reason": "no separate champion"},
            )
            st.shadow_version = st.shadow_role = st.shadow_since = None
            self.save(st)
            return
        horizon = int(champ.bundle.horizon_h)
        with self.pool.connection() as conn:
            pair = model_events.paired_forecasts(
                conn,
                self.name,
                str(champ.version),
                st.shadow_version,
                symbol=self.settings.symbols[0],
                horizon_h=horizon,
                since=st.shadow_since,
            )
        hours = _hours(self.now, st.shadow_since)
        pa, pb, y = np.array(pair["p_a"]), np.array(pair["p_b"]), np.array(pair["y"])
        cur, sh = str(champ.version), st.shadow_version
        if st.shadow_role == "challenger":
            v = shadow_verdict(self.cfg, pa, pb, y, hours, horizon, self.seed)
            self.step.verdict = {"kind": "shadow", "decision": v.decision, "p_value": v.p_value, "n": len(y)}
            if v.decision == "wait":
                return
            self.event(
                "shadow_verdict",
                version=sh,
                other_version=cur,
                decision="promoted" if v.decision == "promote" else "refused",
                p_value=v.p_value,
                evidence=v.evidence,
            )
            self.tag(sh, {"shadow_verdict": v.decision, "shadow_p_value": f"{v.p_value}", "shadow_n": str(len(y))})
            if v.decision == "promote":
                set_alias(self.name, CHAMPION, sh)
                set_alias(self.name, SHADOW, cur)  # the previous champion scores in shadow: the watch
                self.event("promotion", version=sh, other_version=cur, decision="promoted", p_value=v.p_value)
                self.tag(sh, {"promoted_at": self.now.isoformat(), "replaced": cur})
                st.shadow_version, st.shadow_role, st.shadow_since = cur, "watch", self.now
                self.event(
                    "watch_start",
                    version=cur,
                    other_version=sh,
                    decision="watching",
                    evidence={"hours": self.cfg.watch.hours},
                )
                self.step.actions.append(f"promoted v{sh} over v{cur}")
            else:
                clear_alias(self.name, SHADOW)
                st.shadow_version = st.shadow_role = st.shadow_since = None
                self.step.actions.append(f"refused v{sh} after shadow")
            self.save(st)
            return
        # The watch: the shadow is the previous champion, the champion the newly promoted one.
        v = watch_verdict(self.cfg, pb, pa, y, hours, horizon, self.seed)
        self.step.verdict = {"kind": "watch", "decision": v.decision, "p_value": v.p_value, "n": len(y)}
        if v.decision == "keep":
            return
        rolled = v.decision == "rollback"
        self.event(
            "watch_verdict",
            version=cur,
            other_version=sh,
            decision="rolled_back" if rolled else "kept",
            p_value=v.p_value,
            evidence=v.evidence,
        )
        self.tag(cur, {"watch_verdict": "rolled_back" if rolled else "kept", "watch_p_value": f"{v.p_value}"})
        if rolled:
            set_alias(self.name, CHAMPION, sh)
            self.event(
                "rollback",
                version=sh,
                other_version=cur,
                decision="rolled_back",
                p_value=v.p_value,
                evidence=v.evidence,
            )
            self.tag(cur, {"rolled_back_at": self.now.isoformat()})
            self.step.actions.append(f"rolled back v{cur} to v{sh}")
        else:
            self.step.actions.append(f"watch of v{cur} ended: kept")
        clear_alias(self.name, SHADOW)
        st.shadow_version = st.shadow_role = st.shadow_since = None
        self.save(st)

    # ---- 2. triggers ---------------------------------------------------------------------------
    def triggers(self, st: Any, champ: LoadedModel | None, manual: bool) -> list[Trigger]:
        from rayapp.lifecycle import Trigger, evaluate_triggers

        facts = live = drift = None
        if champ is not None:
            facts = champion_facts(champ)
            with self.pool.connection() as conn:
                if self.cfg.degradation.enabled or self.cfg.coverage.enabled:
                    live = _live(self.settings, conn, champ, facts)
                if self.cfg.drift.enabled:
                    drift = _drift(self.settings, conn, champ, self.now, self.seed)
        out = evaluate_triggers(self.cfg, self.now, facts, st.last_retrain_at, drift, live, self.seed)
        if manual:
            out.append(Trigger("manual", True, {"by": "rayapp schedule trigger"}))
        return out

    def record_triggers(self, fired: list[Trigger], suppressed: str | None) -> None:
        from rayapp.warehouse import model_events

        for t in fired:
            if suppressed is None:
                self.event("trigger", trigger=t.name, decision="fired", p_value=t.p_value, evidence=t.evidence)
                continue
            # A trigger that keeps firing while it cannot act (cooldown, shadow) is recorded once
            # per reason, not once per slot.
            with self.pool.connection() as conn:
                last = model_events.events(conn, self.name, kinds=("suppressed", "trigger", "retrain"), limit=1)
            if (
                last
                and last[-1]["kind"] == "suppressed"
                and last[-1]["trigger"] == t.name
                and ((last[-1]["evidence"] or {}).get("reason") == suppressed)
            ):
                continue
            self.event(
                "suppressed",
                trigger=t.name,
                decision="suppressed",
                p_value=t.p_value,
                evidence={**t.evidence, "reason": suppressed},
            )

    # ---- 3. retrain ----------------------------------------------------------------------------
    def retrain(self, st: Any, champ: LoadedModel | None, fired: list[Trigger], trials: int | None) -> None:
        from rayapp.registry import SHADOW, set_alias
        from rayapp.training import load_training_frame, train_model
        from rayapp.warehouse import model_events

        with self.pool.connection() as conn:
            if not model_events.claim_retrain(conn, self.name):
                self.record_triggers(fired, "a retrain is in flight")
                return
        reasons = ",".join(t.name for t in fired)
        try:
            r = self.cfg.retrain
            start = self.now - timedelta(hours=r.window_h) if r.window == "sliding" else None
            frame = load_training_frame(self.settings, start, self.now)
            n_trials = r.trials if r.trials is not None else self.settings.tune.num_samples
            if trials is not None:
                n_trials = trials
            out = train_model(
                self.settings,
                frame,
                num_samples=int(n_trials),
                data_source=f"offline_store (lifecycle: {reasons})",
                promote_on_pass=champ is None,  # the first model needs no shadow: nothing to compare with
            )
        except Exception as exc:
            self.event(
                "error",
                trigger=reasons,
                decision="retrain_failed",
                evidence={"error": f"{type(exc).__name__}: {exc}"[:2000]},
            )
            with self.pool.connection() as conn:
                model_events.release_retrain(conn, self.name, self.now)
            raise
        with self.pool.connection() as conn:
            model_events.release_retrain(conn, self.name, self.now)
        st = self.state()
        self.event(
            "retrain",
            trigger=reasons,
            version=out.version,
            other_version=str(champ.version) if champ else None,
            decision="trained",
            evidence={"run_id": out.run_id, "rows": len(frame), "trials": n_trials, "window": self.cfg.retrain.window},
        )
        gate = out.gate
        p = (gate.get("checks") or {}).get("p_vs_baseline")
        self.event(
            "gate",
            version=out.version,
            other_version=str(champ.version) if champ else None,
            decision="passed" if out.gate_passed else "refused",
            p_value=p,
            evidence=gate,
        )
        self.tag(out.version, {"lifecycle_trigger": reasons, "gate": "passed" if out.gate_passed else "refused"})
        self.step.trained = {"version": out.version, "gate_passed": out.gate_passed, "promoted": out.promoted}
        if out.promoted:
            self.event("promotion", version=out.version, decision="promoted", evidence={"reason": "first champion"})
            self.step.actions.append(f"v{out.version} became the first champion")
        elif out.gate_passed and champ is not None:
            set_alias(self.name, SHADOW, out.version)
            st.shadow_version, st.shadow_role, st.shadow_since = out.version, "challenger", self.now
            self.save(st)
            self.event(
                "shadow_start",
                version=out.version,
                other_version=str(champ.version),
                decision="shadowing",
                evidence={"min_resolved": self.cfg.shadow.min_resolved, "max_hours": self.cfg.shadow.max_hours},
            )
            self.step.actions.append(f"v{out.version} scores in shadow beside v{champ.version}")
        else:
            self.step.actions.append(f"v{out.version} refused by the gate")

    # ---- the step ------------------------------------------------------------------------------
    def run_step(self, manual: bool = False, trials: int | None = None) -> Step:
        from rayapp.lifecycle import retrain_decision

        st = self.state()
        champ = self.champion()
        self.judge_shadow(st, champ)
        champ = self.champion() if self.step.actions else champ
        self.step.champion = str(champ.version) if champ else None
        st = self.state()
        trig = self.triggers(st, champ, manual)
        self.step.triggers = [t.as_dict() for t in trig]
        cfg = self.cfg
        if manual and not cfg.enabled:
            cfg = cfg.model_copy(update={"enabled": True})
        dec = retrain_decision(
            cfg,
            trig,
            self.now,
            None if manual else st.last_retrain_at,
            st.retrain_running,
            shadow_active=st.shadow_version is not None,
        )
        self.step.retrain, self.step.suppressed = dec.retrain, dec.suppressed
        if not dec.retrain:
            self.record_triggers(dec.fired, dec.suppressed)
            return self.step
        self.record_triggers(dec.fired, None)
        self.retrain(st, champ, dec.fired, trials)
        return self.step


def lifecycle_step(settings: Settings, ctx: RunContext) -> JobResult:
    """The scheduler's `retrain` job: one step of the model-lifecycle policy."""
    from rayapp.flows.jobs import JobResult

    now = ctx.slot if ctx.slot.tzinfo else ctx.slot.replace(tzinfo=UTC)
    trials = ctx.params.get("trials")
    step = Policy(settings, now, ctx.run_id).run_step(
        manual=ctx.trigger == "manual", trials=None if trials is None else int(trials)
    )
    return JobResult(rows_written=len(step.events), stats=step.as_dict())
