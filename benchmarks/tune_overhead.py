"""Ray Tune (2 concurrent trials) vs a plain sequential Optuna loop: same 16 trials, same objective.

Objective: mean walk-forward directional accuracy over the configured folds (5 x 168 h) on the
real 48k-hour BTC feature set. Both sides use TPE with the same seed and the same successive-
halving early stop (ASHA in Tune, SuccessiveHalvingPruner in Optuna: report after each fold,
grace 2 folds, reduction factor 2). Tune runs 2 trials at once with 1 XGBoost thread each; the
Optuna baseline gets every core for XGBoost (nthread = CPUs, or --optuna-nthread), i.e. the
best a single process can do on this machine. Last line: JSON, with `xgb_thread_speedup` (one CV
of the default model, 1 thread vs the baseline's threads) and `ratio_floor` (that speedup divided
by the concurrent one-thread trials: the ratio a scheduler with zero overhead would reach).

    python benchmarks/tune_overhead.py                  # price file -> features package
    python benchmarks/tune_overhead.py --store          # the offline feature store (warehouse)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRICE_FILE = ROOT.parent / "shared" / "data" / "btc_usd_1h_2019-11_2025-05.csv"


def _suggest(trial, name, dist):
    import optuna.distributions as od

    if isinstance(dist, od.IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high)
    if isinstance(dist, od.FloatDistribution):
        return trial.suggest_float(name, dist.low, dist.high, log=dist.log)
    return trial.suggest_categorical(name, dist.choices)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--store", action="store_true", help="load features from the offline store")
    ap.add_argument("--price-csv", default=str(PRICE_FILE))
    ap.add_argument(
        "--optuna-nthread", type=int, default=0, help="XGBoost threads for the sequential baseline (0 = every CPU)"
    )
    args = ap.parse_args()

    import numpy as np
    import optuna
    import ray

    # Both sides' libraries are imported before either clock starts (optuna above for the
    # baseline; Ray Tune, its Optuna searcher and ASHA here), so neither pays an import.
    import ray.tune
    import ray.tune.schedulers
    import ray.tune.search.optuna

    from rayapp.config import load_settings
    from rayapp.training.cv import WalkForwardSplit
    from rayapp.training.data import load_training_frame, price_file_frame
    from rayapp.training.model import cv_evaluate
    from rayapp.training.tune import optuna_distributions, run_search

    settings = load_settings([])
    if args.store:
        frame, source = load_training_frame(settings), "offline_store"
    else:
        if not Path(args.price_csv).exists():
            print(json.dumps({"skipped": f"{args.price_csv} not found"}))
            return 0
        frame, source = price_file_frame(args.price_csv, settings.features.horizon_h), "price_csv+features"
    folds = WalkForwardSplit.from_settings(settings.tune.cv, frame.horizon).folds(frame.times)
    space, seed, fee = settings.tune.space, settings.tune.seed, settings.tune.fee_bps
    cpus = os.cpu_count() or 1
    opt_threads = args.optuna_nthread or cpus
    print(f"rows={len(frame)} features={len(frame.feature_names)} folds={len(folds)} source={source}", file=sys.stderr)

    # What XGBoost itself gains from the baseline's threads on this data: one CV of the default
    # model at 1 thread and at opt_threads. Tune's `concurrent` one-thread trials can at best be
    # `concurrent` times faster than a one-thread loop, so with zero Ray overhead the ratio is
    # still speedup / concurrent: the floor this machine allows.
    base = dict(settings.model.params)
    t = time.perf_counter()
    cv_evaluate(frame, folds, base, seed, "cpu", 1, fee)
    one = time.perf_counter() - t
    t = time.perf_counter()
    cv_evaluate(frame, folds, base, seed, "cpu", opt_threads, fee)
    speedup = one / (time.perf_counter() - t)
    # (only defined where each trial gets one thread, as on this machine)
    floor = speedup / args.concurrent if cpus // args.concurrent <= 1 else float("nan")

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t0 = time.perf_counter()
    sr = run_search(
        frame,
        folds,
        space,
        num_samples=args.trials,
        max_concurrent=args.concurrent,
        seed=seed,
        fee_bps=fee,
        device="cpu",
        base_params=None,
        storage_path=ROOT / ".rayapp" / "bench_tune",
        name="tune_overhead",
    )
    tune_wall = time.perf_counter() - t0
    tune_stopped = sum(1 for t in sr.trials if t["completed_folds"] < len(folds))
    ray.shutdown()
    print(f"tune: {tune_wall:.1f}s best={sr.best_score:.4f} stopped_early={tune_stopped}", file=sys.stderr)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = optuna_distributions(space)
    grace = max(1, len(folds) // 2)

    def objective(trial: optuna.Trial) -> float:
        params = {k: _suggest(trial, k, d) for k, d in dists.items()}

        def report(k: int, _m: dict, running: float) -> bool:
            trial.report(running, step=k + 1)
            return not trial.should_prune()

        res = cv_evaluate(frame, folds, params, seed, "cpu", opt_threads, fee, on_fold=report)
        if res.stopped_early:
            raise optuna.TrialPruned()
        return res.mean("accuracy")

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=grace, reduction_factor=2),
    )
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=args.trials)
    optuna_wall = time.perf_counter() - t0
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    optuna_best = float(max(t.value for t in done)) if done else float("nan")
    print(f"optuna: {optuna_wall:.1f}s best={optuna_best:.4f} pruned={args.trials - len(done)}", file=sys.stderr)
    out = {
        "trials": args.trials,
        "tune_wall_s": round(tune_wall, 2),
        "optuna_wall_s": round(optuna_wall, 2),
        "ratio": round(tune_wall / optuna_wall, 3),
        "tune_best": round(sr.best_score, 4),
        "optuna_best": round(optuna_best, 4),
        "rows": len(frame),
        "folds": len(folds),
        "concurrent": args.concurrent,
        "optuna_nthread": opt_threads,
        "tune_stopped_early": tune_stopped,
        "optuna_pruned": args.trials - len(done),
        "source": source,
        "xgb_thread_speedup": round(speedup, 2),
        "ratio_floor": round(floor, 3),
        "always_up_accuracy": round(float(np.mean([frame.y[f.test].mean() for f in folds])), 4),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
