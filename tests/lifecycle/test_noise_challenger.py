"""A noise challenger through the whole policy, 20 seeds: the long walk-forward gate, then the
shadow. It must never be promoted; the test records how often each stage alone would have let it
through (printed, and in the JUnit properties)."""

from __future__ import annotations

import numpy as np
import pytest

from rayapp.config import load_settings
from rayapp.lifecycle import shadow_verdict
from rayapp.training import (
    WalkForwardSplit,
    baseline_predictions,
    best_baseline,
    block_bootstrap_pvalue,
    fit_booster,
    predict_proba,
    quality_gate,
)
from rayapp.training.model import cv_evaluate
from rayapp.training.train import fold_baselines
from tests.training.factories import make_frame

pytestmark = pytest.mark.slow

PARAMS = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1}


def test_a_noise_challenger_is_never_promoted_over_20_seeds(record_property):
    cfg = load_settings(["lifecycle.shadow.n_boot=400"]).lifecycle
    gate_passes = shadow_promotions = promoted = 0
    p_values = []
    for seed in range(20):
        frame = make_frame(1500, None, seed=seed)  # a random walk: nothing to learn
        head = frame.between(None, frame.times[1164])  # the gate's history; the last 336 h are the shadow
        folds = WalkForwardSplit(n_splits=5, test_size=168, horizon=1, min_train=168).folds(head.times)
        cv = cv_evaluate(head, folds, PARAMS, seed, nthread=2)
        bfolds = fold_baselines(head, folds, 10.0)
        bmeans = {b: {"accuracy": float(np.mean([m["accuracy"] for m in rows]))} for b, rows in bfolds.items()}
        bname, _ = best_baseline(bmeans)
        ti = cv.test_idx
        bpred = baseline_predictions(head.last_ret[ti], len(ti))[bname]
        diff = cv.correct(head.y) - (bpred.astype(int) == head.y[ti]).astype(float)
        p = block_bootstrap_pvalue(diff, 24, 500, seed, "greater")
        p_values.append(p)
        gate = quality_gate(
            cv.fold_scores("accuracy"),
            bname,
            np.array([m["accuracy"] for m in bfolds[bname]]),
            p,
            None,
            cfg.gate.alpha,
        )
        gate_passes += gate.promote

        # Shadow: the noise challenger beside a champion fitted on the same history with another
        # seed (neither has an edge), on 336 later hours neither saw.
        X = frame.X.to_numpy(np.float64)
        train = np.arange(0, 1164)
        shadow = np.arange(1165, 1500)
        chall = fit_booster(X[train], frame.y[train], PARAMS, seed, nthread=2)
        champ = fit_booster(X[train], frame.y[train], {**PARAMS, "max_depth": 2}, seed + 100, nthread=2)
        pb = predict_proba(chall, X[shadow], nthread=2)
        pa = predict_proba(champ, X[shadow], nthread=2)
        v = shadow_verdict(cfg, pa, pb, frame.y[shadow], len(shadow), 1, seed)
        shadow_promotions += v.decision == "promote"
        promoted += gate.promote and v.decision == "promote"
    print(f"noise challenger over 20 seeds: gate passed {gate_passes}, shadow alone promoted {shadow_promotions}")
    record_property("gate_passes", gate_passes)
    record_property("shadow_promotions", shadow_promotions)
    assert promoted == 0
    # Each stage alone is a level-alpha test: over 20 seeds it lets a noise model through a few
    # times at most (the binomial 99.9% bound at alpha = 0.05 / 0.1 is 5 / 7 of 20).
    assert gate_passes <= 5, (gate_passes, p_values)
    assert shadow_promotions <= 7
