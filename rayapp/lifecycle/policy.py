"""The model-lifecycle policy as pure decisions: triggers, the retrain decision, shadow and watch
verdicts. The scheduler's `retrain` job (rayapp/flows/lifecycle.py) feeds them what the stores
hold now; `rayapp backtest` (rayapp/lifecycle/backtest.py) feeds them what the history held at
each step. Same functions, same thresholds (conf/lifecycle/), so the backtest measures the policy
that runs live.

Every test here is one-sided, on per-hour series, with a moving-block bootstrap whose blocks are
at least the horizon long (h-hour targets of consecutive hours overlap), and Holm's correction
where one decision reads several tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from rayapp.warehouse.model_events import TRIGGERS as TRIGGERS  # one list, shared with the metrics

if TYPE_CHECKING:
    from rayapp.config import LifecycleSettings
    from rayapp.monitoring import DriftTest


def block_for(horizon_h: int, block_h: int = 24) -> int:
    """Bootstrap block length: at least the horizon (overlapping targets), at least `block_h`."""
    return max(int(block_h), int(horizon_h))


def log_loss_per_hour(p_up: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p_up, float), 1e-6, 1 - 1e-6)
    yy = np.asarray(y, float)
    return -(yy * np.log(p) + (1 - yy) * np.log(1 - p))


def _boot(diff: np.ndarray, block: int, n_boot: int, seed: int, alternative: str) -> float:
    from rayapp.training import block_bootstrap_pvalue

    return float(block_bootstrap_pvalue(diff, block, n_boot, seed, alternative))


def _holm(pvalues: list[float]) -> list[float]:
    from rayapp.training import holm

    return list(holm(pvalues))


def _hours(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return (a - b).total_seconds() / 3600.0


@dataclass
class Trigger:
    name: str  # one of TRIGGERS
    fired: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    p_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Champion:
    """What the policy knows about the serving model."""

    version: str
    horizon_h: int
    data_end: datetime | None  # the last hour of its training data
    trained_at: datetime | None  # when it was trained, on the policy's clock
    oof_accuracy: float | None = None  # its own out-of-fold estimate (pooled walk-forward)
    oof_logloss: float | None = None


@dataclass
class Live:
    """Resolved forecasts of one model on consecutive hours (time order)."""

    p_up: np.ndarray
    y: np.ndarray  # 1 = the realised h-hour return was > 0
    baseline_up: np.ndarray | None = None  # the best naive baseline's forecast on the same hours
    # 1 = the realised return fell inside the served `lifecycle.coverage.level` interval (its own
    # resolved forecasts with an interval, time order; may be shorter than y)
    covered: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def correct(self) -> np.ndarray:
        return ((np.asarray(self.p_up) >= 0.5).astype(int) == np.asarray(self.y).astype(int)).astype(float)


# ---- triggers ----------------------------------------------------------------------------------
def schedule_trigger(
    cfg: LifecycleSettings, now: datetime, last_retrain: datetime | None, champ: Champion | None = None
) -> Trigger:
    """Every `schedule_h` hours since the last retrain; a champion the policy did not train (the
    demo's, an operator's) counts from the end of its training data."""
    if cfg.schedule_h is None:
        return Trigger("schedule", False, {"off": True})
    ref = last_retrain if last_retrain is not None else (champ.data_end if champ is not None else None)
    since = _hours(now, ref)
    fired = since is None or since >= cfg.schedule_h
    return Trigger(
        "schedule",
        fired,
        {
            "hours_since_retrain": since,
            "every_h": cfg.schedule_h,
            "since": "last retrain" if last_retrain else "data end",
        },
    )


def age_trigger(cfg: LifecycleSettings, now: datetime, champ: Champion | None) -> Trigger:
    if cfg.max_age_h is None:
        return Trigger("max_age", False, {"off": True})
    if champ is None:
        return Trigger("max_age", True, {"reason": "no champion"})
    age = _hours(now, champ.data_end)
    return Trigger("max_age", age is not None and age >= cfg.max_age_h, {"age_h": age, "max_age_h": cfg.max_age_h})


def new_data_trigger(cfg: LifecycleSettings, now: datetime, champ: Champion | None) -> Trigger:
    if cfg.min_new_hours is None or champ is None:
        return Trigger("new_data", False, {"off": cfg.min_new_hours is None})
    # Labelled hours since the training data ended: the newest h hours have no label yet.
    gap = _hours(now, champ.data_end)
    new = None if gap is None else max(0.0, gap - champ.horizon_h)
    return Trigger(
        "new_data", new is not None and new >= cfg.min_new_hours, {"new_hours": new, "min_new_hours": cfg.min_new_hours}
    )


def drift_trigger(cfg: LifecycleSettings, test: DriftTest | None) -> Trigger:
    d = cfg.drift
    if not d.enabled:
        return Trigger("drift", False, {"off": True})
    if test is None or test.n_current < d.min_rows or test.tested == 0:
        return Trigger(
            "drift",
            False,
            {"judged": False, "current_rows": 0 if test is None else test.n_current, "min_rows": d.min_rows},
        )
    fired = test.share >= d.share
    ev = {
        "judged": True,
        "share": test.share,
        "share_threshold": d.share,
        "drifted": test.drifted,
        "tested": test.tested,
        "reference_rows": test.n_reference,
        "current_rows": test.n_current,
        "psi": test.psi,
        "psi_threshold": test.threshold,
        "p_value": test.p_value,
        "fdr": d.alpha,
    }
    pmin = min(test.p_value.values()) if test.p_value else None
    return Trigger("drift", fired, ev, pmin)


def degradation_trigger(
    cfg: LifecycleSettings, champ: Champion | None, live: Live | None, seed: int = 0, block_h: int = 24
) -> Trigger:
    """The champion's last N resolved forecasts vs its own out-of-fold estimate (accuracy and log
    loss) and vs the best naive baseline on the same hours; Holm over the three one-sided tests."""
    d = cfg.degradation
    if not d.enabled:
        return Trigger("degradation", False, {"off": True})
    if champ is None or live is None or len(live) < d.min_resolved:
        return Trigger(
            "degradation", False, {"judged": False, "resolved": 0 if live is None else len(live), "min": d.min_resolved}
        )
    p, y = np.asarray(live.p_up, float)[-d.window :], np.asarray(live.y, float)[-d.window :]
    correct = ((p >= 0.5).astype(int) == y.astype(int)).astype(float)
    ll = log_loss_per_hour(p, y)
    block = block_for(champ.horizon_h, block_h)
    n_boot = 1000
    tests: dict[str, dict[str, Any]] = {}
    if champ.oof_accuracy is not None and math.isfinite(champ.oof_accuracy):
        tests["accuracy_vs_oof"] = {
            "live": float(correct.mean()),
            "expected": champ.oof_accuracy,
            "p": _boot(correct - champ.oof_accuracy, block, n_boot, seed, "less"),
        }
    if champ.oof_logloss is not None and math.isfinite(champ.oof_logloss):
        tests["logloss_vs_oof"] = {
            "live": float(ll.mean()),
            "expected": champ.oof_logloss,
            "p": _boot(ll - champ.oof_logloss, block, n_boot, seed, "greater"),
        }
    if live.baseline_up is not None:
        base = np.asarray(live.baseline_up, bool)[-d.window :]
        bcorrect = (base.astype(int) == y.astype(int)).astype(float)
        tests["accuracy_vs_baseline"] = {
            "live": float(correct.mean()),
            "baseline": float(bcorrect.mean()),
            "p": _boot(correct - bcorrect, block, n_boot, seed, "less"),
        }
    if not tests:
        return Trigger("degradation", False, {"judged": False, "reason": "no out-of-fold estimate or baseline"})
    adj = _holm([t["p"] for t in tests.values()])
    for t, a in zip(tests.values(), adj, strict=True):
        t["p_holm"] = a
    pmin = min(adj)
    return Trigger(
        "degradation",
        pmin < d.alpha,
        {"judged": True, "n": len(y), "block_h": block, "alpha": d.alpha, "tests": tests},
        pmin,
    )


def coverage_trigger(cfg: LifecycleSettings, champ: Champion | None, live: Live | None, seed: int = 0) -> Trigger:
    """The champion's live interval coverage (its last `coverage.window` resolved intervals) below
    the nominal level by more than `coverage.margin`. The one-sided moving-block bootstrap p-value
    that coverage is below nominal is recorded as evidence (blocks at least the horizon long)."""
    c = cfg.coverage
    if not c.enabled:
        return Trigger("coverage", False, {"off": True})
    cov = None if live is None or live.covered is None else np.asarray(live.covered, float)
    if champ is None or cov is None or len(cov) < c.min_resolved:
        return Trigger(
            "coverage", False, {"judged": False, "resolved": 0 if cov is None else len(cov), "min": c.min_resolved}
        )
    x = cov[-c.window :]
    rate = float(x.mean())
    block = block_for(champ.horizon_h, cfg.gate.block_h)
    p = _boot(x - c.level, block, 1000, seed, "less")
    fired = rate < c.level - c.margin
    ev = {"judged": True, "n": len(x), "coverage": rate, "nominal": c.level, "margin": c.margin, "block_h": block}
    return Trigger("coverage", fired, ev, p)


def evaluate_triggers(
    cfg: LifecycleSettings,
    now: datetime,
    champ: Champion | None,
    last_retrain: datetime | None,
    drift: DriftTest | None,
    live: Live | None,
    seed: int = 0,
) -> list[Trigger]:
    return [
        schedule_trigger(cfg, now, last_retrain, champ),
        drift_trigger(cfg, drift),
        degradation_trigger(cfg, champ, live, seed, cfg.gate.block_h),
        coverage_trigger(cfg, champ, live, seed),
        new_data_trigger(cfg, now, champ),
        age_trigger(cfg, now, champ),
    ]


@dataclass
class RetrainDecision:
    retrain: bool
    fired: list[Trigger]
    suppressed: str | None = None  # why fired triggers do not start a retrain (recorded, not queued)


def retrain_decision(
    cfg: LifecycleSettings,
    triggers: list[Trigger],
    now: datetime,
    last_retrain: datetime | None,
    running: bool = False,
    shadow_active: bool = False,
) -> RetrainDecision:
    fired = [t for t in triggers if t.fired]
    if not fired or not cfg.enabled:
        return RetrainDecision(False, fired, None if cfg.enabled or not fired else "lifecycle disabled")
    if running:
        return RetrainDecision(False, fired, "a retrain is in flight")
    if shadow_active:
        return RetrainDecision(False, fired, "a challenger is in shadow")
    since = _hours(now, last_retrain)
    if since is not None and since < cfg.cooldown_h:
        return RetrainDecision(False, fired, f"cooldown: {since:.1f} h since the last retrain < {cfg.cooldown_h} h")
    return RetrainDecision(True, fired)


# ---- shadow and watch verdicts -----------------------------------------------------------------
@dataclass
class Verdict:
    decision: str  # promote | refuse | wait   (shadow);  rollback | keep | end   (watch)
    p_value: float | None
    evidence: dict[str, Any] = field(default_factory=dict)


def paired_comparison(
    p_a: np.ndarray,
    p_b: np.ndarray,
    y: np.ndarray,
    horizon_h: int,
    n_boot: int = 1000,
    seed: int = 0,
    block_h: int = 24,
) -> dict[str, Any]:
    """B against A on the same hours: per-hour correctness and log loss, one-sided p-values that B
    is better and that B is worse, each Holm-adjusted over the two metrics."""
    y = np.asarray(y, float)
    pa, pb = np.asarray(p_a, float), np.asarray(p_b, float)
    ca = ((pa >= 0.5).astype(int) == y.astype(int)).astype(float)
    cb = ((pb >= 0.5).astype(int) == y.astype(int)).astype(float)
    lla, llb = log_loss_per_hour(pa, y), log_loss_per_hour(pb, y)
    block = block_for(horizon_h, block_h)
    d_acc, d_ll = cb - ca, lla - llb  # positive = B better
    better = _holm([_boot(d_acc, block, n_boot, seed, "greater"), _boot(d_ll, block, n_boot, seed, "greater")])
    worse = _holm([_boot(d_acc, block, n_boot, seed, "less"), _boot(d_ll, block, n_boot, seed, "less")])
    return {
        "n": len(y),
        "block_h": block,
        "accuracy_a": float(ca.mean()) if len(y) else None,
        "accuracy_b": float(cb.mean()) if len(y) else None,
        "logloss_a": float(lla.mean()) if len(y) else None,
        "logloss_b": float(llb.mean()) if len(y) else None,
        "accuracy_diff": float(d_acc.mean()) if len(y) else 0.0,
        "logloss_gain": float(d_ll.mean()) if len(y) else 0.0,
        "p_better": {"accuracy": better[0], "logloss": better[1]},
        "p_worse": {"accuracy": worse[0], "logloss": worse[1]},
    }


def shadow_verdict(
    cfg: LifecycleSettings,
    champion_p: np.ndarray,
    challenger_p: np.ndarray,
    y: np.ndarray,
    hours_in_shadow: float,
    horizon_h: int,
    seed: int = 0,
) -> Verdict:
    """Promote a shadowing challenger only when it is significantly better than the champion on
    one metric and not worse on average on the other; refuse when it is significantly worse, or
    when the time budget ends without a verdict."""
    s = cfg.shadow
    n = len(y)
    if n < s.min_resolved:
        if hours_in_shadow >= s.max_hours:
            return Verdict("refuse", None, {"n": n, "reason": f"time budget {s.max_hours} h spent with {n} resolved"})
        return Verdict("wait", None, {"n": n, "min_resolved": s.min_resolved})
    cmp = paired_comparison(champion_p, challenger_p, y, horizon_h, s.n_boot, seed, cfg.gate.block_h)
    p_better = min(cmp["p_better"].values())
    p_worse = min(cmp["p_worse"].values())
    cmp.update({"alpha": s.alpha, "hours_in_shadow": hours_in_shadow})
    if p_better < s.alpha and cmp["accuracy_diff"] >= 0 and cmp["logloss_gain"] >= 0:
        return Verdict("promote", p_better, cmp)
    if p_worse < s.alpha:
        return Verdict("refuse", p_worse, {**cmp, "reason": "significantly worse than the champion in shadow"})
    if hours_in_shadow >= s.max_hours:
        return Verdict("refuse", p_better, {**cmp, "reason": f"not significantly better within {s.max_hours} h"})
    return Verdict("wait", p_better, cmp)


def watch_verdict(
    cfg: LifecycleSettings,
    previous_p: np.ndarray,
    new_p: np.ndarray,
    y: np.ndarray,
    hours_in_watch: float,
    horizon_h: int,
    seed: int = 0,
) -> Verdict:
    """After a promotion the previous champion keeps scoring in shadow: roll back when the new
    champion is significantly worse than it live; end the watch when the period is over."""
    w = cfg.watch
    n = len(y)
    if n >= w.min_resolved:
        cmp = paired_comparison(previous_p, new_p, y, horizon_h, w.n_boot, seed, cfg.gate.block_h)
        p_worse = min(cmp["p_worse"].values())
        cmp.update({"alpha": w.alpha, "hours_in_watch": hours_in_watch})
        if p_worse < w.alpha:
            return Verdict("rollback", p_worse, {**cmp, "reason": "the new champion is significantly worse live"})
        if hours_in_watch >= w.hours:
            return Verdict("end", p_worse, cmp)
        return Verdict("keep", p_worse, cmp)
    if hours_in_watch >= w.hours:
        return Verdict("end", None, {"n": n, "reason": "watch period over"})
    return Verdict("keep", None, {"n": n, "min_resolved": w.min_resolved})
