"""The lifecycle policy replayed over history (`rayapp backtest`, docs/BACKTEST.md).

Two steps.

1. Fits (the expensive, parallel part). Weekly boundaries b_0 < b_1 < ... cut by
   `WalkForwardSplit` (test blocks of `test_h` hours after `min_train_h` rows, purge = horizon):
   model k is fitted once on the rows before b_k whose label ends before b_k (t + h < b_k), with
   the fixed `model.params`, and predicts the raw P(up) of every later hour, since the `never`
   and `triggered` policies keep using an old model. The fits are independent: Ray tasks
   (`num_cpus=1`, one XGBoost thread each, the data put into the object store once), or the same
   function in a plain loop with every core (`use_ray=False`).
2. Replay (cheap, sequential). At each boundary only what was known then is used: a label of
   hour t is usable once t + h < b_k. Model k's calibration map, return model, conformal
   interval and no-trade band are fitted on the out-of-sample walk-forward series of the weeks
   before b_k (model j on its own week j), never on a test week. The policies read the same
   predictions: `never` (the first replayed model forever), `weekly` (model k for week k: the
   plain walk-forward) and `triggered` (rayapp.lifecycle.policy's triggers, retrain decision,
   gate, shadow and watch verdicts with the thresholds of `lifecycle`, every event recorded).

`series_metrics` is the one function every reported figure comes from (the command and
benchmarks/backtest.py both call it through `backtest_horizon`).
"""

from __future__ import annotations

import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rayapp.lifecycle.policy import (
    Champion,
    Live,
    block_for,
    evaluate_triggers,
    log_loss_per_hour,
    retrain_decision,
    shadow_verdict,
    watch_verdict,
)
from rayapp.lifecycle.settings import POLICIES, BacktestSettings
from rayapp.warehouse import json_safe

if TYPE_CHECKING:
    from rayapp.config import LifecycleSettings
    from rayapp.registry import Calibration, Conformal, ReturnModel
    from rayapp.training import GateDecision, TrainingFrame

EULER_GAMMA = 0.5772156649015329
HOURS_PER_YEAR = 24 * 365
REGIMES = ("low", "mid", "high")
FIXED_PARAMS_NOTE = (
    "fixed hyperparameters: the challenger's configuration is the champion's, so the comparison "
    "with the champion happens in shadow, on the hours both score"
)


# ---- time helpers ------------------------------------------------------------------------------
def hours_of(times: Any) -> np.ndarray:
    """Integer hours since the epoch (UTC)."""
    idx = pd.DatetimeIndex(times)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return (idx.as_unit("s").asi8 // 3600).astype(np.int64)


def _dt(hour: int | np.integer) -> datetime:
    return datetime.fromtimestamp(int(hour) * 3600, tz=UTC)


def _iso(hour: int | np.integer) -> str:
    return _dt(hour).isoformat()


# ---- step 1: fold plans and fits -----------------------------------------------------------------
@dataclass(frozen=True)
class FoldPlan:
    """Model k: trained on positions [train_lo, train_hi), first predicts position `start`."""

    index: int
    boundary_h: int  # the hour of the first test row: the model is trained "at" b_k
    start: int
    stop: int  # end (exclusive) of its own test block (week k)
    train_lo: int
    train_hi: int


def plan_folds(
    frame: TrainingFrame,
    test_h: int = 168,
    min_train_h: int = 4380,
    window: str = "expanding",
    train_size_h: int | None = None,
) -> list[FoldPlan]:
    """Consecutive test blocks of `test_h` rows covering the data after `min_train_h` rows, cut by
    `WalkForwardSplit` (purge = embargo = the horizon: a training row's label never reaches into
    its block). A ValueError says why the data is too short."""
    from rayapp.training import WalkForwardSplit

    h = frame.horizon
    n = len(frame)
    k = (n - h - min_train_h) // test_h
    if k < 2:
        raise ValueError(
            f"not enough rows for a backtest: have {n}, need {min_train_h} min train + {h} purge "
            f"+ at least 2 test blocks of {test_h} h"
        )
    size = train_size_h if window == "sliding" else None
    split = WalkForwardSplit(
        n_splits=k,
        test_size=test_h,
        horizon=h,
        window=window,
        train_size=size,
        min_train=min(min_train_h, size) if size else min_train_h,
    )
    hours = hours_of(frame.times)
    plans = []
    for fold in split.split(frame.times):
        lo, hi = int(fold.train[0]), int(fold.train[-1]) + 1
        if hi - lo != len(fold.train):  # times are increasing, so the window is one range
            raise ValueError(f"fold {fold.index}: training rows are not one contiguous range")
        start, stop = int(fold.test[0]), int(fold.test[-1]) + 1
        plans.append(FoldPlan(fold.index, int(hours[start]), start, stop, lo, hi))
    return plans


@dataclass
class FoldData:
    """What a fit needs, put into the object store once per horizon."""

    X: np.ndarray
    y: np.ndarray
    hours: np.ndarray
    names: list[str]
    horizon: int

    @classmethod
    def of(cls, frame: TrainingFrame) -> FoldData:
        return cls(
            frame.X.to_numpy(dtype=np.float64),
            np.asarray(frame.y),
            hours_of(frame.times),
            frame.feature_names,
            frame.horizon,
        )


@dataclass
class FoldFit:
    index: int
    start: int  # p[i] is the raw P(up) of position start + i
    p: np.ndarray  # float32
    boundary_h: int
    train_lo: int
    train_hi: int
    train_first_h: int
    train_last_h: int
    fit_s: float

    def window(self) -> dict[str, Any]:
        return {
            "fold": self.index,
            "boundary": _iso(self.boundary_h),
            "train_first": _iso(self.train_first_h),
            "train_last": _iso(self.train_last_h),
            "n_train": self.train_hi - self.train_lo,
        }


def fit_fold(data: FoldData, plan: FoldPlan, params: dict[str, Any], seed: int, nthread: int | None) -> FoldFit:
    """Fit model k on its window and predict every hour from b_k on."""
    from rayapp.training import fit_booster, predict_proba

    lo, hi = plan.train_lo, plan.train_hi
    last = int(data.hours[hi - 1])
    if last + data.horizon >= plan.boundary_h:  # a label would reach into the test block
        raise ValueError(f"fold {plan.index}: training hour {_iso(last)} + {data.horizon} h >= {_iso(plan.boundary_h)}")
    t0 = time.perf_counter()
    bst = fit_booster(data.X[lo:hi], data.y[lo:hi], params, seed, "cpu", nthread, data.names)
    p = predict_proba(bst, data.X[plan.start :], data.names, nthread).astype(np.float32)
    return FoldFit(
        plan.index, plan.start, p, plan.boundary_h, lo, hi, int(data.hours[lo]), last, time.perf_counter() - t0
    )


def _fit_task(data: FoldData, plan: FoldPlan, params: dict[str, Any], seed: int) -> FoldFit:
    return fit_fold(data, plan, params, seed, 1)


OnFit = Callable[[int, FoldFit], None]


def fit_folds(
    items: Sequence[tuple[TrainingFrame, Sequence[FoldPlan]]],
    params: dict[str, Any],
    seed: int,
    *,
    use_ray: bool = True,
    nthread: int | None = None,
    on_done: OnFit | None = None,
) -> list[list[FoldFit]]:
    """Every fold of every (frame, plans) item. `use_ray`: one Ray task per fold (`num_cpus=1`,
    one XGBoost thread; each frame put into the object store once; Ray must be up). Otherwise a
    plain loop with `nthread` XGBoost threads (default: every core). `on_done(item, fit)` is
    called as each fit finishes (for a progress bar)."""
    datas = [FoldData.of(frame) for frame, _ in items]
    if not use_ray:
        threads = nthread or os.cpu_count() or 1
        out: list[list[FoldFit]] = []
        for i, ((_, plans), data) in enumerate(zip(items, datas, strict=True)):
            fits = []
            for plan in plans:
                fit = fit_fold(data, plan, params, seed, threads)
                fits.append(fit)
                if on_done is not None:
                    on_done(i, fit)
            out.append(fits)
        return out

    import ray

    if not ray.is_initialized():
        raise RuntimeError("fit_folds(use_ray=True) needs Ray: call rayapp.runtime.ensure_ray first")
    task = ray.remote(num_cpus=1)(_fit_task)
    refs: list[list[Any]] = []
    owner: dict[Any, int] = {}
    for i, ((_, plans), data) in enumerate(zip(items, datas, strict=True)):
        dref = ray.put(data)
        row = [task.remote(dref, plan, params, seed) for plan in plans]
        owner.update({r: i for r in row})
        refs.append(row)
    pending = [r for row in refs for r in row]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        if on_done is not None:
            for r in done:
                on_done(owner[r], ray.get(r))
    return [list(ray.get(row)) for row in refs]


# ---- step 2: what was known at each boundary -----------------------------------------------------
@dataclass
class History:
    """One horizon: the frame's arrays, its fold plans and fitted folds."""

    horizon: int
    times: pd.DatetimeIndex
    hours: np.ndarray
    X: np.ndarray
    names: list[str]
    y: np.ndarray
    ret: np.ndarray
    last_ret: np.ndarray
    plans: list[FoldPlan]
    fits: list[FoldFit]
    source: str = ""
    vol: np.ndarray = field(default_factory=lambda: np.array([]))
    wf: np.ndarray = field(default_factory=lambda: np.array([]))  # model k on week k (walk-forward)

    @classmethod
    def build(cls, frame: TrainingFrame, plans: list[FoldPlan], fits: list[FoldFit], source: str = "") -> History:
        if [f.index for f in fits] != [p.index for p in plans]:
            raise ValueError("fits do not match the fold plans")
        lr = np.asarray(frame.last_ret, float)
        hist = cls(
            frame.horizon,
            frame.times,
            hours_of(frame.times),
            frame.X.to_numpy(dtype=np.float64),
            frame.feature_names,
            np.asarray(frame.y).astype(int),
            np.asarray(frame.ret, float),
            lr,
            plans,
            fits,
            source,
        )
        # Trailing 24 h realised volatility: known at hour t (returns up to t only).
        hist.vol = pd.Series(lr).rolling(24, min_periods=12).std().to_numpy()
        hist.wf = np.full(len(lr), np.nan)
        for p in plans:
            hist.wf[p.start : p.stop] = hist.raw(p.index, p.start, p.stop)
        return hist

    @property
    def n_folds(self) -> int:
        return len(self.plans)

    def raw(self, m: int, lo: int, hi: int) -> np.ndarray:
        f = self.fits[m]
        if lo < f.start:
            raise ValueError(f"model {m} predicts from position {f.start}, asked for {lo}")
        return f.p[lo - f.start : hi - f.start].astype(np.float64)

    def known_end(self, lo: int, hi: int, now_h: int) -> int:
        """End of the positions in [lo, hi) whose label is known at `now_h` (t + h < now)."""
        cut = int(np.searchsorted(self.hours, now_h - self.horizon, side="left"))
        return max(lo, min(hi, cut))


def band_positions(p: np.ndarray, band: float | np.ndarray) -> np.ndarray:
    """+1 while P(up) >= 0.5 + band, -1 while P(up) <= 0.5 - band, flat inside the band."""
    pp = np.asarray(p, float)
    return np.where(pp >= 0.5 + band, 1.0, np.where(pp <= 0.5 - band, -1.0, 0.0))


@dataclass
class ModelState:
    """What model k ships with, fitted at b_k on the walk-forward weeks before it."""

    index: int
    calibration: Calibration
    selection_logloss: dict[str, float]
    n_hours: int  # walk-forward hours the map was chosen (cross-validated) and refitted on
    n_conformal: int  # the later third: conformal residuals of the cross-fitted output
    return_model: ReturnModel
    conformal: Conformal | None
    band: float
    band_returns: dict[str, float]
    climatology: float  # base rate of its training labels
    brier_select: float | None  # the cross-fitted calibrated output (each hour mapped by a fit without it)
    brier_select_climatology: float | None
    vol_edges: tuple[float, float]

    def summary(self) -> dict[str, Any]:
        return {
            "model": self.index,
            "method": self.calibration.method,
            "selection_logloss": self.selection_logloss,
            "n_hours": self.n_hours,
            "n_conformal": self.n_conformal,
            "band": self.band,
            "climatology": self.climatology,
        }


def model_state(hist: History, k: int, bt: BacktestSettings, fee_bps: float, conformal_alpha: float) -> ModelState:
    """What model k ships with, from the trailing `calibration_weeks` walk-forward weeks whose
    labels are known at b_k: the calibration map (chosen by a blocked cross-validation over the
    whole window, purged by the horizon, climatology being one candidate, then refitted on it);
    the return model (earlier 2/3) and the conformal interval (later 1/3, on the cross-fitted
    calibrated output); the no-trade band (whole window)."""
    from rayapp.training import (
        brier_score,
        fit_calibration,
        fit_conformal,
        fit_return_model,
        select_calibration,
        strategy_returns,
    )

    plan = hist.plans[k]
    now = plan.boundary_h
    h = hist.horizon
    j0 = max(0, k - bt.calibration_weeks)
    lo = hist.plans[j0].start
    hi = hist.known_end(lo, plan.start, now)
    clim = float(np.mean(hist.y[plan.train_lo : plan.train_hi]))
    prior = hist.vol[: plan.start]
    prior = prior[np.isfinite(prior)]
    q = np.quantile(prior, [1 / 3, 2 / 3]) if len(prior) else np.array([np.nan, np.nan])
    edges = (float(q[0]), float(q[1]))
    p, yy, r = hist.wf[lo:hi], hist.y[lo:hi], hist.ret[lo:hi]
    if k - j0 < bt.calibration_min_weeks or len(p) < 30:
        from rayapp.registry import ReturnModel

        return ModelState(
            k,
            fit_calibration(p, yy, "identity"),
            {},
            0,
            0,
            fit_return_model(r) if len(r) else ReturnModel(0.0, 0.0),
            None,
            0.0,
            {},
            clim,
            None,
            None,
            edges,
        )
    sel = select_calibration(p, yy, clim, purge=h)
    cal = sel.calibration
    nf = (2 * len(p)) // 3
    rm = fit_return_model(r[:nf])
    conf = fit_conformal(r[nf:] - rm(sel.oof[nf:]), conformal_alpha)
    pc = cal(p)
    totals = {b: float(np.sum(strategy_returns(band_positions(pc, b), r, h, fee_bps))) for b in bt.band_grid}
    band = max(totals, key=lambda b: (round(totals[b], 10), b))  # a tie goes to the wider band
    return ModelState(
        k,
        cal,
        sel.scores,
        len(p),
        len(p) - nf,
        rm,
        conf,
        float(band),
        {f"{b:g}": v for b, v in totals.items()},
        clim,
        brier_score(sel.oof, yy),
        brier_score(np.full(len(yy), clim), yy),
        edges,
    )


@dataclass
class GateResult:
    decision: GateDecision
    best_baseline: str
    accuracy: float  # pooled walk-forward accuracy of the configuration (raw P(up) >= 0.5)
    logloss: float

    def as_dict(self) -> dict[str, Any]:
        return {**self.decision.as_dict(), "oof_accuracy": self.accuracy, "oof_logloss": self.logloss}


def gate_check(hist: History, k: int, state: ModelState, cfg: LifecycleSettings, seed: int) -> GateResult:
    """The gate of challenger k: its configuration's trailing walk-forward (the previous
    `gate.n_splits` weekly models' own weeks, labels known at b_k) vs the best naive baseline,
    and its calibrated out-of-sample Brier vs climatology."""
    from rayapp.training import (
        GateDecision,
        baseline_predictions,
        best_baseline,
        block_bootstrap_pvalue,
        quality_gate,
    )

    now = hist.plans[k].boundary_h
    j0 = max(0, k - cfg.gate.n_splits)
    acc_w: list[float] = []
    base_w: dict[str, list[float]] = {}
    for j in range(j0, k):
        lo = hist.plans[j].start
        hi = hist.known_end(lo, hist.plans[j].stop, now)
        if hi <= lo:
            continue
        yy = hist.y[lo:hi]
        acc_w.append(float(((hist.wf[lo:hi] >= 0.5).astype(int) == yy).mean()))
        for name, pred in baseline_predictions(hist.last_ret[lo:hi], hi - lo).items():
            base_w.setdefault(name, []).append(float((pred.astype(int) == yy).mean()))
    lo = hist.plans[j0].start
    hi = hist.known_end(lo, hist.plans[k].start, now)
    yy, p = hist.y[lo:hi], hist.wf[lo:hi]
    correct = ((p >= 0.5).astype(int) == yy).astype(float)
    preds = baseline_predictions(hist.last_ret[lo:hi], hi - lo)
    pooled = {name: {"accuracy": float((pred.astype(int) == yy).mean())} for name, pred in preds.items()}
    best, _ = best_baseline(pooled)
    bcorrect = (preds[best].astype(int) == yy).astype(float)
    pv = float(
        block_bootstrap_pvalue(
            correct - bcorrect, block_for(hist.horizon, cfg.gate.block_h), cfg.gate.n_boot, seed, "greater"
        )
    )
    dec = quality_gate(np.array(acc_w), best, np.array(base_w[best]), pv, None, cfg.gate.alpha, FIXED_PARAMS_NOTE)
    if state.brier_select is not None and state.brier_select_climatology is not None:
        dec.checks["brier_oos"] = state.brier_select
        dec.checks["brier_climatology"] = state.brier_select_climatology
        if state.brier_select > state.brier_select_climatology:
            dec = GateDecision(
                False,
                [
                    *dec.reasons,
                    f"out-of-sample Brier {state.brier_select:.5f} loses to climatology "
                    f"({state.brier_select_climatology:.5f})",
                ],
                dec.checks,
            )
    dec.checks["weeks"] = len(acc_w)
    return GateResult(dec, best, float(correct.mean()), float(log_loss_per_hour(p, yy).mean()))


# ---- policies ------------------------------------------------------------------------------------
def _compact(evidence: dict[str, Any]) -> dict[str, Any]:
    """Trigger evidence without the per-feature tables of features that did not drift."""
    ev = dict(evidence)
    drifted = set(ev.get("drifted", []))
    for key in ("psi", "psi_threshold", "p_value"):
        if isinstance(ev.get(key), dict):
            ev[key] = {f: x for f, x in ev[key].items() if f in drifted}
    return ev


@dataclass
class Replay:
    states: dict[int, ModelState]
    gates: dict[int, GateResult]
    k0: int


def replay_triggered(
    hist: History, rp: Replay, cfg: LifecycleSettings, seed: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The live policy at every boundary: shadow verdict, watch verdict, triggers, retrain
    decision, gate. Returns the serving model per week and every event."""
    from rayapp.monitoring import psi_drift_test
    from rayapp.training import baseline_predictions

    plans, h, k0 = hist.plans, hist.horizon, rp.k0
    K = len(plans)
    served = np.full(K, -1, dtype=int)
    events: list[dict[str, Any]] = []
    p_served = np.full(len(hist.y), np.nan)  # calibrated P(up) of the serving champion

    def gate(m: int) -> GateResult:
        if m not in rp.gates:
            rp.gates[m] = gate_check(hist, m, rp.states[m], cfg, seed)
        return rp.gates[m]

    def cal(m: int, lo: int, hi: int) -> np.ndarray:
        return rp.states[m].calibration(hist.raw(m, lo, hi))

    def champion_of(m: int) -> Champion:
        g = gate(m)
        f = hist.fits[m]
        return Champion(f"model-{m}", h, _dt(f.train_last_h), _dt(f.boundary_h), g.accuracy, g.logloss)

    def event(k: int, kind: str, **data: Any) -> None:
        events.append(json_safe({"time": _iso(plans[k].boundary_h), "week": k, "kind": kind, **data}))

    def serve(k: int, m: int) -> None:
        served[k] = m
        p_served[plans[k].start : plans[k].stop] = cal(m, plans[k].start, plans[k].stop)

    champ, since = k0, k0
    champion = champion_of(k0)
    last_retrain: datetime | None = _dt(plans[k0].boundary_h)
    shadow: tuple[int, int] | None = None  # (challenger, week it started)
    watch: tuple[int, int] | None = None  # (previous champion, week of the promotion)
    event(k0, "start", model=k0, note="the first replayed model is every policy's starting champion")
    serve(k0, k0)
    for k in range(k0 + 1, K):
        now_h = plans[k].boundary_h
        now = _dt(now_h)
        if shadow is not None:
            s, ks = shadow
            lo = plans[ks].start
            hi = hist.known_end(lo, plans[k].start, now_h)
            v = shadow_verdict(
                cfg, p_served[lo:hi], cal(s, lo, hi), hist.y[lo:hi], float(now_h - plans[ks].boundary_h), h, seed
            )
            if v.decision != "wait":
                event(k, "shadow", model=s, champion=champ, decision=v.decision, p_value=v.p_value, evidence=v.evidence)
                shadow = None
                if v.decision == "promote":
                    event(k, "promotion", model=s, previous=champ)
                    watch = (champ, k) if cfg.watch.hours > 0 else None
                    champ, since, champion = s, k, champion_of(s)
        if watch is not None and watch[1] < k:
            prev, kw = watch
            lo = plans[kw].start
            hi = hist.known_end(lo, plans[k].start, now_h)
            v = watch_verdict(
                cfg, cal(prev, lo, hi), cal(champ, lo, hi), hist.y[lo:hi], float(now_h - plans[kw].boundary_h), h, seed
            )
            if v.decision == "rollback":
                event(k, "rollback", model=champ, restored=prev, p_value=v.p_value, evidence=v.evidence)
                champ, since, champion = prev, k, champion_of(prev)
                watch = None
            elif v.decision == "end":
                event(k, "watch_end", model=champ, previous=prev, p_value=v.p_value, evidence=v.evidence)
                watch = None
        # Triggers, on what the stores would hold at b_k.
        f = hist.fits[champ]
        cur_lo = int(np.searchsorted(hist.hours, now_h - cfg.drift.hours, side="left"))
        cur_hi = int(np.searchsorted(hist.hours, now_h, side="left"))
        drift = psi_drift_test(
            hist.X[f.train_lo : f.train_hi],
            hist.X[cur_lo:cur_hi],
            hist.names,
            n_boot=cfg.drift.n_boot,
            alpha=cfg.drift.alpha,
            seed=seed,
        )
        lo = plans[since].start
        hi = hist.known_end(lo, plans[k].start, now_h)
        base = baseline_predictions(hist.last_ret[lo:hi], hi - lo)[gate(champ).best_baseline]
        live = Live(hist.raw(champ, lo, hi), hist.y[lo:hi], base)
        triggers = evaluate_triggers(cfg, now, champion, last_retrain, drift, live, seed)
        fired = [t for t in triggers if t.fired]
        for t in fired:
            event(k, "trigger", name=t.name, model=champ, p_value=t.p_value, evidence=_compact(t.evidence))
        dec = retrain_decision(cfg, triggers, now, last_retrain, running=False, shadow_active=shadow is not None)
        if fired:
            event(
                k, "retrain" if dec.retrain else "suppressed", triggers=[t.name for t in fired], reason=dec.suppressed
            )
        if dec.retrain:
            last_retrain = now
            g = gate(k)
            event(k, "gate", model=k, **g.as_dict())
            if g.decision.promote:
                shadow = (k, k)
                event(k, "shadow_start", model=k, champion=champ)
        serve(k, champ)
    return served[k0:], events


def served_models(policy: str, k0: int, n_folds: int) -> np.ndarray:
    if policy == "never":
        return np.full(n_folds - k0, k0, dtype=int)
    if policy == "weekly":
        return np.arange(k0, n_folds, dtype=int)
    raise ValueError(f"unknown policy {policy!r} ({', '.join(POLICIES)})")


@dataclass
class PolicySeries:
    """The evaluated hours as one policy served them."""

    name: str
    times: pd.DatetimeIndex
    y: np.ndarray
    ret: np.ndarray
    last_ret: np.ndarray
    p_raw: np.ndarray
    p_cal: np.ndarray
    climatology: np.ndarray
    band: np.ndarray
    low: np.ndarray
    high: np.ndarray
    regime: np.ndarray  # 0 low, 1 mid, 2 high, -1 unknown (terciles of the hours before each week)
    model: np.ndarray
    age_h: np.ndarray  # hours since the serving model's last training hour


def policy_series(hist: History, rp: Replay, name: str, served: np.ndarray) -> PolicySeries:
    lo0 = hist.plans[rp.k0].start
    n = len(hist.y) - lo0
    arrays = {k: np.full(n, np.nan) for k in ("p_raw", "p_cal", "clim", "band", "low", "high", "age")}
    regime = np.full(n, -1, dtype=int)
    model = np.full(n, -1, dtype=int)
    for w, m in zip(range(rp.k0, hist.n_folds), served, strict=True):
        plan = hist.plans[w]
        a, b = plan.start - lo0, plan.stop - lo0
        st = rp.states[int(m)]
        raw = hist.raw(int(m), plan.start, plan.stop)
        pc = st.calibration(raw)
        arrays["p_raw"][a:b], arrays["p_cal"][a:b] = raw, pc
        arrays["clim"][a:b], arrays["band"][a:b] = st.climatology, st.band
        if st.conformal is not None:
            arrays["low"][a:b], arrays["high"][a:b] = st.conformal.interval(st.return_model(pc))
        arrays["age"][a:b] = hist.hours[plan.start : plan.stop] - hist.fits[int(m)].train_last_h
        model[a:b] = m
        vol = hist.vol[plan.start : plan.stop]
        e1, e2 = rp.states[w].vol_edges
        reg = np.where(vol <= e1, 0, np.where(vol <= e2, 1, 2))
        regime[a:b] = np.where(np.isfinite(vol) & np.isfinite(e1), reg, -1)
    return PolicySeries(
        name,
        hist.times[lo0:],
        hist.y[lo0:],
        hist.ret[lo0:],
        hist.last_ret[lo0:],
        arrays["p_raw"],
        arrays["p_cal"],
        arrays["clim"],
        arrays["band"],
        arrays["low"],
        arrays["high"],
        regime,
        model,
        arrays["age"],
    )


# ---- metrics -------------------------------------------------------------------------------------
def chunked_pvalue(diff: np.ndarray, block: int, n_boot: int, seed: int, alternative: str = "greater") -> float:
    """`block_bootstrap_pvalue` over `n_boot` resamples drawn in chunks (a 40k-hour series times
    1,000 resamples is 320 MB of indices at once); the hit counts add up exactly."""
    from rayapp.training import block_bootstrap_pvalue

    x = np.asarray(diff, float)
    if len(x) == 0 or np.all(x == x[0]):
        return float(block_bootstrap_pvalue(x, block, n_boot, seed, alternative))
    chunk = max(1, min(n_boot, 4_000_000 // max(1, len(x))))
    hits, done, i = 0, 0, 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        p = block_bootstrap_pvalue(x, block, m, seed + i, alternative)
        hits += round(p * (m + 1)) - 1
        done += m
        i += 1
    return float((hits + 1) / (n_boot + 1))


def per_period_sharpe(r: np.ndarray) -> float:
    r = np.asarray(r, float)
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    return float(r.mean() / sd) if sd > 0 and np.isfinite(sd) else 0.0


def expected_max_sharpe(var_sr: float, n_trials: int) -> float:
    """E[max SR] of `n_trials` independent zero-skill strategies (Bailey & Lopez de Prado 2014)."""
    from scipy.stats import norm

    if n_trials <= 1 or var_sr <= 0:
        return 0.0
    return float(
        math.sqrt(var_sr)
        * ((1 - EULER_GAMMA) * norm.ppf(1 - 1 / n_trials) + EULER_GAMMA * norm.ppf(1 - 1 / (n_trials * math.e)))
    )


def deflated_sharpe(returns: np.ndarray, sr0: float) -> dict[str, Any]:
    """Probability that the true per-period Sharpe exceeds `sr0` given the observed one, its
    length and the returns' skewness and kurtosis (the deflated Sharpe ratio when `sr0` is the
    expected maximum over the trials)."""
    from scipy.stats import kurtosis, norm, skew

    r = np.asarray(returns, float)
    t = len(r)
    sr = per_period_sharpe(r)
    if t < 3 or r.std() == 0:
        return {"sr": sr, "sr_annual": sr * math.sqrt(HOURS_PER_YEAR), "dsr": None, "skew": None, "kurtosis": None}
    g3, g4 = float(skew(r)), float(kurtosis(r, fisher=False))
    denom = 1 - g3 * sr + (g4 - 1) / 4 * sr * sr
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(denom) if denom > 0 else float("nan")
    return {
        "sr": sr,
        "sr_annual": sr * math.sqrt(HOURS_PER_YEAR),
        "dsr": float(norm.cdf(z)) if math.isfinite(z) else None,
        "skew": g3,
        "kurtosis": g4,
        "n": t,
    }


def _acc(correct: np.ndarray) -> dict[str, Any]:
    from rayapp.training import wilson_interval

    n = len(correct)
    k = int(np.sum(correct))
    lo, hi = wilson_interval(k, n)
    return {"n": n, "accuracy": k / n if n else None, "acc_low": lo, "acc_high": hi}


def _daily(times: pd.DatetimeIndex, curves: dict[str, np.ndarray]) -> dict[str, Any]:
    """Equity curves (start = 1) at every 24th hour, for the JSON."""
    idx = np.arange(0, len(times), 24)
    out: dict[str, Any] = {"t": [t.isoformat() for t in times[idx]]}
    for name, r in curves.items():
        out[name] = np.round(np.exp(np.cumsum(r))[idx], 5).tolist()
    return out


def series_metrics(
    s: PolicySeries,
    *,
    horizon: int,
    fee_bps: float,
    conformal_alpha: float,
    band_grid: Sequence[float],
    n_boot: int = 1000,
    block_h: int = 24,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every reported figure of one policy: accuracy with Wilson intervals (overall, per year, per
    volatility regime), the best naive baseline and the one-sided block-bootstrap p-value against
    it, after-cost trading figures (long/short, the no-trade band, buy-and-hold), log loss / Brier
    / ECE of the calibrated and raw P(up) and of climatology with the reliability curves, and the
    conformal coverage. Returns (figures, net hourly return series per strategy)."""
    from rayapp.training import (
        baseline_predictions,
        best_baseline,
        brier_score,
        evaluate_baselines,
        expected_calibration_error,
        log_loss,
        next_hour_returns,
        reliability_curve,
        strategy_returns,
        trading_metrics,
    )

    y, ret, n = s.y.astype(int), s.ret, len(s.y)
    r1 = next_hour_returns(s.times, s.last_ret)  # the hourly book's return (training.metrics)
    pred = s.p_cal >= 0.5
    correct = (pred.astype(int) == y).astype(float)
    raw_correct = ((s.p_raw >= 0.5).astype(int) == y).astype(float)
    baselines = evaluate_baselines(y, ret, s.last_ret, horizon, fee_bps, r1)
    best, best_acc = best_baseline(baselines)
    bpred = baseline_predictions(s.last_ret, n)[best]
    bcorrect = (bpred.astype(int) == y).astype(float)
    block = block_for(horizon, block_h)
    p_value = chunked_pvalue(correct - bcorrect, block, n_boot, seed, "greater")
    p_value_raw = chunked_pvalue(raw_correct - bcorrect, block, n_boot, seed, "greater")

    years = s.times.year.to_numpy()
    per_year = {
        str(yr): {**_acc(correct[years == yr]), "best_baseline_accuracy": float(bcorrect[years == yr].mean())}
        for yr in np.unique(years)
    }
    per_regime = {}
    for code, name in enumerate(REGIMES):
        m = s.regime == code
        if m.any():
            per_regime[name] = {**_acc(correct[m]), "best_baseline_accuracy": float(bcorrect[m].mean())}

    ls_pos = np.where(pred, 1.0, -1.0)
    band_pos = band_positions(s.p_cal, s.band)  # each hour: the band of the model serving it
    bh_pos = np.ones(n)
    returns = {
        "long_short": strategy_returns(ls_pos, ret, horizon, fee_bps, r1),
        "band": strategy_returns(band_pos, ret, horizon, fee_bps, r1),
        "buy_and_hold": strategy_returns(bh_pos, ret, horizon, fee_bps, r1),
    }
    for b in band_grid:
        returns[f"band={b:g}"] = strategy_returns(band_positions(s.p_cal, b), ret, horizon, fee_bps, r1)
    trading = {
        "long_short": trading_metrics(ls_pos, ret, horizon, fee_bps, r1),
        "band": {
            **trading_metrics(band_pos, ret, horizon, fee_bps, r1),
            "exposure": float(np.mean(band_pos != 0)),
            "bands_used": dict(Counter(f"{b:g}" for b in s.band[np.isfinite(s.band)])),
        },
        "buy_and_hold": trading_metrics(bh_pos, ret, horizon, fee_bps, r1),
    }

    prob: dict[str, dict[str, float]] = {}
    for name, p in (("calibrated", s.p_cal), ("raw", s.p_raw), ("climatology", s.climatology)):
        prob[name] = {
            "logloss": log_loss(p, y),
            "brier": brier_score(p, y),
            "ece": expected_calibration_error(p, y),
        }
    covered = np.isfinite(s.low)
    cov = {
        "nominal": 1 - conformal_alpha,
        "n": int(covered.sum()),
        "coverage": float(np.mean((ret[covered] >= s.low[covered]) & (ret[covered] <= s.high[covered])))
        if covered.any()
        else None,
        "mean_width": float(np.mean(s.high[covered] - s.low[covered])) if covered.any() else None,
    }
    figures: dict[str, Any] = {
        "policy": s.name,
        "n": n,
        "from": s.times[0].isoformat(),
        "to": s.times[-1].isoformat(),
        **_acc(correct),
        "raw": _acc(raw_correct),
        "best_baseline": best,
        "best_baseline_accuracy": best_acc,
        "baselines": {
            k: {"accuracy": v["accuracy"], "acc_low": v["acc_low"], "acc_high": v["acc_high"]}
            for k, v in baselines.items()
        },
        "p_value": p_value,
        "p_value_raw": p_value_raw,
        "block_h": block,
        "n_boot": n_boot,
        "per_year": per_year,
        "per_regime": per_regime,
        "trading": trading,
        "fee_bps": fee_bps,
        "probabilistic": prob,
        "reliability": {"raw": reliability_curve(s.p_raw, y), "calibrated": reliability_curve(s.p_cal, y)},
        "conformal": cov,
        "models_used": len(np.unique(s.model)),
        "model_age_h": {"mean": float(np.mean(s.age_h)), "max": float(np.max(s.age_h))},
        "equity": _daily(s.times, {k: returns[k] for k in ("long_short", "band", "buy_and_hold")}),
    }
    return figures, returns


# ---- one horizon, end to end ---------------------------------------------------------------------
@dataclass
class HorizonBacktest:
    horizon: int
    report: dict[str, Any]
    series: dict[str, PolicySeries]
    returns: dict[str, dict[str, np.ndarray]]


def backtest_horizon(
    hist: History,
    *,
    bt: BacktestSettings,
    lifecycle: LifecycleSettings,
    policies: Sequence[str],
    fee_bps: float,
    conformal_alpha: float,
    seed: int,
    on_step: Callable[[str], None] | None = None,
) -> HorizonBacktest:
    """Model states, the policies' replays and every figure of one horizon (no fitting here)."""
    warm = bt.warmup_weeks if bt.warmup_weeks is not None else lifecycle.gate.n_splits
    k0 = min(warm, hist.n_folds - 1)
    if hist.n_folds - k0 < 1 or k0 < 1:
        raise ValueError(f"{hist.n_folds} folds leave no week to replay after {warm} warm-up weeks")
    rp = Replay({}, {}, k0)
    for k in range(k0, hist.n_folds):
        rp.states[k] = model_state(hist, k, bt, fee_bps, conformal_alpha)
    if on_step:
        on_step("calibrated")
    served: dict[str, np.ndarray] = {}
    events: list[dict[str, Any]] = []
    for pol in policies:
        if pol == "triggered":
            served[pol], events = replay_triggered(hist, rp, lifecycle, seed)
        else:
            served[pol] = served_models(pol, k0, hist.n_folds)
    if on_step:
        on_step("replayed")
    figures: dict[str, Any] = {}
    returns: dict[str, dict[str, np.ndarray]] = {}
    series: dict[str, PolicySeries] = {}
    for pol in policies:
        series[pol] = policy_series(hist, rp, pol, served[pol])
        figures[pol], returns[pol] = series_metrics(
            series[pol],
            horizon=hist.horizon,
            fee_bps=fee_bps,
            conformal_alpha=conformal_alpha,
            band_grid=bt.band_grid,
            n_boot=bt.n_boot,
            block_h=bt.block_h,
            seed=seed,
        )
        figures[pol]["served_models"] = served[pol].tolist()
    dsr = _deflate(returns, policies, bt.band_grid)
    for pol in policies:
        for strat in ("long_short", "band"):
            figures[pol]["trading"][strat]["dsr"] = dsr["strategies"][f"{pol}/{strat}"]["dsr"]
    states = [rp.states[k] for k in range(k0, hist.n_folds)]
    counts = Counter(e["kind"] for e in events)
    trig = Counter(e["name"] for e in events if e["kind"] == "trigger")
    gates = [e for e in events if e["kind"] == "gate"]
    report = {
        "horizon_h": hist.horizon,
        "source": hist.source,
        "rows": len(hist.y),
        "folds": hist.n_folds,
        "warmup_weeks": k0,
        "replayed_weeks": hist.n_folds - k0,
        "first_test": _iso(hist.plans[0].boundary_h),
        "replay_from": _iso(hist.plans[k0].boundary_h),
        "replay_to": hist.times[-1].isoformat(),
        "block_h": block_for(hist.horizon, bt.block_h),
        "policies": figures,
        "dsr": dsr,
        "calibration": {
            "methods": dict(Counter(s.calibration.method for s in states)),
            "bands": dict(Counter(f"{s.band:g}" for s in states)),
            "weeks": bt.calibration_weeks,
            "min_weeks": bt.calibration_min_weeks,
            "models": [s.summary() for s in states],
        },
        "fits": [f.window() for f in hist.fits],
        "events": events,
        "event_counts": {
            **dict(counts),
            "triggers": dict(trig),
            "gate_passed": sum(1 for e in gates if e["promote"]),
            "gate_failed": sum(1 for e in gates if not e["promote"]),
        },
        "checks": calibration_checks(figures),
    }
    return HorizonBacktest(hist.horizon, report, series, returns)


def _deflate(
    returns: dict[str, dict[str, np.ndarray]], policies: Sequence[str], grid: Sequence[float]
) -> dict[str, Any]:
    """The deflated Sharpe ratio of every reported strategy against the expected maximum Sharpe
    of the configurations tried: policies x (the fixed no-trade bands of the grid, band 0 being
    always in the market, + the band chosen per model on its calibration weeks)."""
    trials = {f"{p}/band={b:g}": returns[p][f"band={b:g}"] for p in policies for b in grid}
    trials.update({f"{p}/band": returns[p]["band"] for p in policies})
    srs = np.array([per_period_sharpe(r) for r in trials.values()])
    var = float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0
    sr0 = expected_max_sharpe(var, len(trials))
    strategies = {f"{p}/{s}": deflated_sharpe(returns[p][s], sr0) for p in policies for s in ("long_short", "band")}
    best = max(trials, key=lambda k: per_period_sharpe(trials[k]))
    return {
        "n_trials": len(trials),
        "trials": "policies x (fixed no-trade bands of the grid, 0 = always in the market, + the band "
        "chosen per model on its calibration weeks); hyperparameters fixed (1 configuration)",
        "trial_sharpe_annual": {k: float(v * math.sqrt(HOURS_PER_YEAR)) for k, v in zip(trials, srs, strict=True)},
        "var_sr": var,
        "sr0": sr0,
        "sr0_annual": sr0 * math.sqrt(HOURS_PER_YEAR),
        "strategies": strategies,
        "best_trial": best,
        "best_trial_dsr": deflated_sharpe(trials[best], sr0),
    }


ECE_MAX = 0.02


def calibration_checks(figures: dict[str, Any]) -> dict[str, Any]:
    """Issue 15 item 6 per policy: ECE(calibrated) <= 0.02 and <= ECE(raw); Brier <= climatology."""
    out = {}
    for pol, f in figures.items():
        pr = f["probabilistic"]
        out[pol] = {
            "ece_calibrated": pr["calibrated"]["ece"],
            "ece_raw": pr["raw"]["ece"],
            "ece_le_max": pr["calibrated"]["ece"] <= ECE_MAX,
            "ece_not_worse_than_raw": pr["calibrated"]["ece"] <= pr["raw"]["ece"],
            "brier_calibrated": pr["calibrated"]["brier"],
            "brier_climatology": pr["climatology"]["brier"],
            "brier_le_climatology": pr["calibrated"]["brier"] <= pr["climatology"]["brier"],
            "ece_max": ECE_MAX,
        }
    return out


# ---- every horizon -------------------------------------------------------------------------------
@dataclass
class BacktestResult:
    report: dict[str, Any]
    horizons: dict[int, HorizonBacktest]


def finish(
    horizons: dict[int, HorizonBacktest], settings_used: dict[str, Any], fit_info: dict[str, Any]
) -> BacktestResult:
    """The report over every horizon: Holm over every (horizon, policy) p-value vs the best baseline."""
    from rayapp.training import holm

    keys = [(h, p) for h, hb in horizons.items() for p in hb.report["policies"]]
    adj = holm([horizons[h].report["policies"][p]["p_value"] for h, p in keys]) if keys else []
    for (h, p), a in zip(keys, adj, strict=True):
        horizons[h].report["policies"][p]["p_value_holm"] = a
    headline = {}
    for h, hb in horizons.items():
        pols = hb.report["policies"]
        headline[str(h)] = {
            p: {
                "accuracy": f["accuracy"],
                "acc_low": f["acc_low"],
                "acc_high": f["acc_high"],
                "best_baseline": f["best_baseline"],
                "best_baseline_accuracy": f["best_baseline_accuracy"],
                "p_value": f["p_value"],
                "p_value_holm": f.get("p_value_holm"),
                "ece": f["probabilistic"]["calibrated"]["ece"],
                "ece_raw": f["probabilistic"]["raw"]["ece"],
                "brier": f["probabilistic"]["calibrated"]["brier"],
                "brier_climatology": f["probabilistic"]["climatology"]["brier"],
                "sharpe_net": f["trading"]["long_short"]["sharpe_net"],
                "band_sharpe_net": f["trading"]["band"]["sharpe_net"],
                "band_total_return_net": f["trading"]["band"]["total_return_net"],
                "buy_and_hold_sharpe": f["trading"]["buy_and_hold"]["sharpe_net"],
                "buy_and_hold_total_return": f["trading"]["buy_and_hold"]["total_return_net"],
                "coverage": f["conformal"]["coverage"],
                "band_dsr": f["trading"]["band"]["dsr"],
            }
            for p, f in pols.items()
        }
    report = json_safe(
        {
            "kind": "backtest",
            "generated_at": datetime.now(UTC).isoformat(),
            "settings": settings_used,
            "fit": fit_info,
            "headline": headline,
            "horizons": {str(h): hb.report for h, hb in horizons.items()},
        }
    )
    return BacktestResult(report, horizons)


def run_backtest(
    frames: dict[int, TrainingFrame],
    *,
    bt: BacktestSettings,
    lifecycle: LifecycleSettings,
    params: dict[str, Any],
    seed: int,
    fee_bps: float,
    conformal_alpha: float,
    policies: Sequence[str] = POLICIES,
    window: str = "expanding",
    train_size_h: int | None = None,
    use_ray: bool = True,
    source: str = "",
    on_planned: Callable[[int], None] | None = None,
    on_fit: OnFit | None = None,
    on_step: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Plan, fit (every horizon's folds in one pool of Ray tasks) and replay each frame (one per
    horizon). A ValueError says which horizon cannot be backtested and why."""
    horizons = sorted(frames)
    plans = {}
    for h in horizons:
        try:
            plans[h] = plan_folds(frames[h], bt.test_h, bt.min_train_h, window, train_size_h)
        except ValueError as exc:
            raise ValueError(f"{h} h horizon: cannot cut backtest folds: {exc}") from exc
    if on_planned is not None:
        on_planned(sum(len(p) for p in plans.values()))
    t0 = time.perf_counter()
    fits = fit_folds([(frames[h], plans[h]) for h in horizons], params, seed, use_ray=use_ray, on_done=on_fit)
    fit_wall = time.perf_counter() - t0
    results = {}
    for h, fh in zip(horizons, fits, strict=True):
        hist = History.build(frames[h], plans[h], fh, source)
        try:
            results[h] = backtest_horizon(
                hist,
                bt=bt,
                lifecycle=lifecycle,
                policies=policies,
                fee_bps=fee_bps,
                conformal_alpha=conformal_alpha,
                seed=seed,
                on_step=on_step,
            )
        except ValueError as exc:
            raise ValueError(f"{h} h horizon: {exc}") from exc
    used = {
        "source": source,
        "horizons": horizons,
        "policies": list(policies),
        **bt.model_dump(),
        "window": window,
        "train_size_h": train_size_h if window == "sliding" else None,
        "warmup_weeks": bt.warmup_weeks if bt.warmup_weeks is not None else lifecycle.gate.n_splits,
        "fee_bps": fee_bps,
        "conformal_alpha": conformal_alpha,
        "params": params,
        "seed": seed,
        "lifecycle": lifecycle.model_dump(),
        "note_gate": f"Gate: {FIXED_PARAMS_NOTE}.",
    }
    total = sum(len(p) for p in plans.values())
    fit_info = {
        "mode": "ray" if use_ray else "loop",
        "models": total,
        "wall_s": round(fit_wall, 2),
        "mean_fit_s": round(sum(f.fit_s for fh in fits for f in fh) / max(1, total), 3),
    }
    return finish(results, used, fit_info)
