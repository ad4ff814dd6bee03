"""The lifecycle policy's decisions on generated data: each trigger fires on what it is planted
for and on nothing else, the gate and the shadow keep a noise challenger out, a worse champion
is rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rayapp.config import load_settings
from rayapp.lifecycle import (
    Champion,
    Live,
    evaluate_triggers,
    retrain_decision,
    shadow_verdict,
    watch_verdict,
)
from rayapp.monitoring import benjamini_hochberg, psi_drift_test

NOW = datetime(2024, 6, 1, tzinfo=UTC)
NAMES = [f"f{i}" for i in range(15)]


@pytest.fixture(scope="module")
def cfg():
    return load_settings(
        [
            "lifecycle.drift.n_boot=500",
            "lifecycle.shadow.n_boot=500",
            "lifecycle.watch.n_boot=500",
            "lifecycle.shadow.min_resolved=168",
            "lifecycle.watch.min_resolved=72",
        ]
    ).lifecycle


def _features(n: int, seed: int, shift: dict[int, float] | None = None) -> np.ndarray:
    """Autocorrelated hourly features (AR(1), like RSI or volatility): a week is not 168 draws."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, len(NAMES)))
    e = rng.standard_normal((n, len(NAMES)))
    for t in range(1, n):
        x[t] = 0.9 * x[t - 1] + e[t]
    for j, s in (shift or {}).items():
        x[:, j] += s
    return x


def _champion(**kw) -> Champion:
    base = {
        "version": "1",
        "horizon_h": 1,
        "data_end": NOW - timedelta(hours=100),
        "trained_at": None,
        "oof_accuracy": 0.55,
        "oof_logloss": 0.688,
    }
    return Champion(**{**base, **kw})


def _live(n: int, accuracy: float, seed: int, baseline_acc: float = 0.5) -> Live:
    """n resolved forecasts hitting at `accuracy`, with confidence that matches it."""
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.5).astype(int)
    hit = rng.uniform(size=n) < accuracy
    up = np.where(hit, y == 1, y == 0)
    # A calibrated model's P(predicted side); a degraded one still believes its old accuracy.
    conf = 0.5 + (accuracy - 0.5) if accuracy > 0.5 else 0.56
    p = np.where(up, conf, 1 - conf)
    base_hit = rng.uniform(size=n) < baseline_acc
    base = np.where(base_hit, y == 1, y == 0)
    return Live(p_up=p, y=y, baseline_up=base)


def _fired(triggers) -> list[str]:
    return [t.name for t in triggers if t.fired]


def test_benjamini_hochberg_step_up():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    # m = 8 tested: thresholds 0.05*k/8 = 0.00625, 0.0125, 0.01875, 0.025, ... -> the first two.
    assert benjamini_hochberg(p, 0.05).tolist() == [True, True] + [False] * 7


def test_planted_drift_fires_the_drift_trigger_and_nothing_else(cfg):
    ref = _features(4000, 0)
    quiet = []
    for seed in range(20):
        cur = _features(168, 100 + seed)
        test = psi_drift_test(ref, cur, NAMES, n_boot=500, alpha=cfg.drift.alpha, seed=seed)
        trig = evaluate_triggers(cfg, NOW, _champion(), NOW - timedelta(hours=30), test, _live(336, 0.55, seed), seed)
        quiet.append(_fired(trig))
    assert all(f == [] for f in quiet), quiet  # 20 ordinary weeks: no trigger fires

    cur = _features(168, 7, shift={j: 4.0 for j in range(6)})  # 6 of 15 features moved by 4 sd
    test = psi_drift_test(ref, cur, NAMES, n_boot=500, alpha=cfg.drift.alpha, seed=1)
    trig = evaluate_triggers(cfg, NOW, _champion(), NOW - timedelta(hours=30), test, _live(336, 0.55, 1), 1)
    assert _fired(trig) == ["drift"]
    ev = next(t for t in trig if t.name == "drift").evidence
    assert set(ev["drifted"]) >= {f"f{j}" for j in range(6)}
    assert ev["share"] >= cfg.drift.share
    assert all(ev["psi"][f"f{j}"] > ev["psi_threshold"][f"f{j}"] for j in range(6))


def test_planted_degradation_fires_the_degradation_trigger_and_nothing_else(cfg):
    ok = evaluate_triggers(cfg, NOW, _champion(), NOW - timedelta(hours=30), None, _live(336, 0.55, 3), 3)
    assert _fired(ok) == []
    bad = evaluate_triggers(cfg, NOW, _champion(), NOW - timedelta(hours=30), None, _live(336, 0.42, 3), 3)
    assert _fired(bad) == ["degradation"]
    t = next(t for t in bad if t.name == "degradation")
    assert t.p_value is not None and t.p_value < cfg.degradation.alpha
    assert set(t.evidence["tests"]) == {"accuracy_vs_oof", "logloss_vs_oof", "accuracy_vs_baseline"}
    # Too few resolved forecasts: not judged, whatever they say.
    few = evaluate_triggers(cfg, NOW, _champion(), NOW - timedelta(hours=30), None, _live(50, 0.2, 3), 3)
    assert _fired(few) == []


def test_schedule_age_and_new_data_triggers(cfg):
    c = cfg.model_copy(update={"min_new_hours": 200})
    champ = _champion(data_end=NOW - timedelta(hours=800))
    fired = _fired(evaluate_triggers(c, NOW, champ, NOW - timedelta(hours=200), None, None))
    assert fired == ["schedule", "new_data", "max_age"]
    fresh = _champion(data_end=NOW - timedelta(hours=50))
    assert _fired(evaluate_triggers(c, NOW, fresh, NOW - timedelta(hours=10), None, None)) == []


def test_cooldown_running_and_shadow_suppress_a_retrain_and_say_why(cfg):
    trig = evaluate_triggers(cfg, NOW, _champion(data_end=NOW - timedelta(hours=800)), None, None, None)
    assert retrain_decision(cfg, trig, NOW, None).retrain
    d = retrain_decision(cfg, trig, NOW, NOW - timedelta(hours=3))
    assert not d.retrain and d.suppressed.startswith("cooldown") and [t.name for t in d.fired]
    assert retrain_decision(cfg, trig, NOW, None, running=True).suppressed == "a retrain is in flight"
    assert retrain_decision(cfg, trig, NOW, None, shadow_active=True).suppressed == "a challenger is in shadow"


def _pair(n: int, acc_a: float, acc_b: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a = _live(n, acc_a, seed)
    # Same hours, same outcomes: re-express b's hits against a's outcomes.
    rng = np.random.default_rng(seed + 7)
    hit = rng.uniform(size=n) < acc_b
    up = np.where(hit, a.y == 1, a.y == 0)
    conf = 0.5 + (acc_b - 0.5) if acc_b > 0.5 else 0.52
    pb = np.where(up, conf, 1 - conf)
    return a.p_up, pb, a.y


def test_a_challenger_worse_in_shadow_is_never_promoted(cfg):
    decisions = []
    for seed in range(20):
        pa, pb, y = _pair(336, 0.56, 0.50, seed)
        decisions.append(shadow_verdict(cfg, pa, pb, y, 336, 1, seed).decision)
    assert "promote" not in decisions
    assert decisions.count("refuse") >= 10, decisions  # most are refused outright, the rest wait
    # Before min_resolved nothing is decided; past the time budget a waiting challenger is refused.
    pa, pb, y = _pair(100, 0.56, 0.50, 0)
    assert shadow_verdict(cfg, pa, pb, y, 10, 1).decision == "wait"
    assert shadow_verdict(cfg, pa, pb, y, cfg.shadow.max_hours, 1).decision == "refuse"


def test_a_better_challenger_is_promoted_in_shadow(cfg):
    pa, pb, y = _pair(500, 0.52, 0.66, 3)
    v = shadow_verdict(cfg, pa, pb, y, 500, 1, 3)
    assert v.decision == "promote", v.evidence
    assert v.p_value < cfg.shadow.alpha and v.evidence["accuracy_diff"] > 0


def test_a_promoted_model_that_goes_bad_live_is_rolled_back(cfg):
    prev, new, y = _pair(200, 0.60, 0.40, 5)  # a: the previous champion, b: the new one
    v = watch_verdict(cfg, prev, new, y, 200, 1, 5)
    assert v.decision == "rollback" and v.p_value < cfg.watch.alpha
    good_prev, good_new, y2 = _pair(200, 0.55, 0.56, 6)
    assert watch_verdict(cfg, good_prev, good_new, y2, 100, 1, 6).decision == "keep"
    assert watch_verdict(cfg, good_prev, good_new, y2, cfg.watch.hours, 1, 6).decision == "end"


def test_overlapping_horizons_use_blocks_at_least_the_horizon_long(cfg):
    pa, pb, y = _pair(400, 0.55, 0.55, 9)
    v = shadow_verdict(cfg, pa, pb, y, 400, 24, 9)
    assert v.evidence["block_h"] == 24
    v48 = shadow_verdict(cfg, pa, pb, y, 400, 48, 9)
    assert v48.evidence["block_h"] == 48
