"""The 1 h backtest over the real history with weekly retraining: the fold fits as Ray tasks vs the
same fits in a plain sequential loop, then the headline figures of the weekly policy.

Folds: one model per 168 h week after 4,380 training rows (expanding window, purge = horizon),
fixed default hyperparameters (`model.params`), each predicting every later hour
(`rayapp.lifecycle.fit_folds`, the code `rayapp backtest` runs). Ray runs one task per fold with
`num_cpus=1` and one XGBoost thread (the frame put into the object store once); the loop gives
XGBoost every core (or --loop-nthread), the best a single process can do here. Both produce the
same predictions (checked). Like benchmarks/tune_overhead.py the JSON reports
`xgb_thread_speedup` (a spread sample of the folds fitted at 1 thread vs the loop's threads) and
`ratio_floor` (that speedup divided by the concurrent one-thread tasks: the Ray/loop ratio a
scheduler with zero overhead would reach). The figures come from `backtest_horizon` /
`series_metrics`, the same functions as the command's report. Last line: JSON.

    python benchmarks/backtest.py
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--price-csv", default=str(PRICE_FILE))
    ap.add_argument("--horizon", type=int, default=1)
    ap.add_argument("--test-h", type=int, default=168)
    ap.add_argument("--min-train-h", type=int, default=4380)
    ap.add_argument("--probe-folds", type=int, default=12, help="folds fitted at 1 and N threads for the floor")
    ap.add_argument("--loop-nthread", type=int, default=0, help="XGBoost threads of the loop (0 = every CPU)")
    args = ap.parse_args()

    import numpy as np
    import ray

    from rayapp.config import load_settings
    from rayapp.lifecycle import BacktestSettings, History, backtest_horizon, fit_folds, plan_folds
    from rayapp.lifecycle.backtest import FoldData, fit_fold
    from rayapp.training import price_file_frame

    if not Path(args.price_csv).exists():
        print(json.dumps({"skipped": f"{args.price_csv} not found"}))
        return 0
    settings = load_settings([])
    frame = price_file_frame(args.price_csv, args.horizon, settings.features.set)
    plans = plan_folds(frame, args.test_h, args.min_train_h, "expanding")
    params, seed = dict(settings.model.params), settings.model.seed
    cpus = os.cpu_count() or 1
    threads = args.loop_nthread or cpus
    load0 = os.getloadavg()[0]
    print(f"rows={len(frame)} folds={len(plans)} cpus={cpus} load={load0:.2f}", file=sys.stderr)

    # What XGBoost gains from the loop's threads on these folds: a spread sample, each fold at 1
    # and at N threads back to back (interleaved, so a change in the machine's load hits both).
    data = FoldData.of(frame)
    probe = [plans[i] for i in np.linspace(0, len(plans) - 1, args.probe_folds).round().astype(int)]
    one = many = 0.0
    for plan in probe:
        t = time.perf_counter()
        fit_fold(data, plan, params, seed, 1)
        one += time.perf_counter() - t
        t = time.perf_counter()
        fit_fold(data, plan, params, seed, threads)
        many += time.perf_counter() - t
    speedup = one / many
    # `cpus` one-thread tasks run at once; with zero overhead Ray is `cpus` times a one-thread
    # loop, and the loop is `speedup` times a one-thread loop.
    floor = speedup / cpus
    print(f"probe: 1 thread {one:.1f}s, {threads} threads {many:.1f}s, speedup {speedup:.2f}", file=sys.stderr)

    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    t = time.perf_counter()
    ray_fits = fit_folds([(frame, plans)], params, seed, use_ray=True)[0]
    ray_wall = time.perf_counter() - t
    ray.shutdown()
    load_mid = os.getloadavg()[0]
    print(f"ray: {ray_wall:.1f}s load={load_mid:.2f}", file=sys.stderr)

    t = time.perf_counter()
    loop_fits = fit_folds([(frame, plans)], params, seed, use_ray=False, nthread=threads)[0]
    loop_wall = time.perf_counter() - t
    print(f"loop: {loop_wall:.1f}s", file=sys.stderr)
    diff = max(float(np.max(np.abs(a.p - b.p))) for a, b in zip(ray_fits, loop_fits, strict=True))

    t = time.perf_counter()
    hist = History.build(frame, plans, ray_fits, f"price_csv:{Path(args.price_csv).name}")
    hb = backtest_horizon(
        hist,
        bt=BacktestSettings(),
        lifecycle=settings.lifecycle,
        policies=["weekly"],
        fee_bps=settings.tune.fee_bps,
        conformal_alpha=settings.tune.conformal_alpha,
        seed=seed,
    )
    replay_s = time.perf_counter() - t
    w = hb.report["policies"]["weekly"]
    pr = w["probabilistic"]
    out = {
        "horizon_h": args.horizon,
        "folds": len(plans),
        "rows": len(frame),
        "cpus": cpus,
        "ray_wall_s": round(ray_wall, 2),
        "loop_wall_s": round(loop_wall, 2),
        "ratio": round(ray_wall / loop_wall, 3),
        "xgb_thread_speedup": round(speedup, 2),
        "ratio_floor": round(floor, 3),
        "loop_nthread": threads,
        "max_abs_pred_diff": diff,
        "mean_fit_s": round(float(np.mean([f.fit_s for f in ray_fits])), 3),
        # Seconds the tasks spent fitting, over the CPUs: what Ray's wall time would be with no
        # scheduling, transfer or worker-start cost at all.
        "ray_fit_s_per_cpu": round(sum(f.fit_s for f in ray_fits) / cpus, 2),
        "loop_fit_s": round(sum(f.fit_s for f in loop_fits), 2),
        # The same floor from this run's own fits (every fold, at the load of the run): the tasks'
        # one-thread seconds over the CPUs against the loop's wall time.
        "ratio_floor_inrun": round(sum(f.fit_s for f in ray_fits) / cpus / loop_wall, 3),
        "replay_s": round(replay_s, 1),
        "replayed_weeks": hb.report["replayed_weeks"],
        "replay_from": hb.report["replay_from"],
        "accuracy": round(w["accuracy"], 4),
        "acc_low": round(w["acc_low"], 4),
        "acc_high": round(w["acc_high"], 4),
        "best_baseline": w["best_baseline"],
        "best_baseline_accuracy": round(w["best_baseline_accuracy"], 4),
        "p_value": round(w["p_value"], 4),
        "ece": round(pr["calibrated"]["ece"], 4),
        "ece_raw": round(pr["raw"]["ece"], 4),
        "brier": round(pr["calibrated"]["brier"], 5),
        "brier_raw": round(pr["raw"]["brier"], 5),
        "brier_climatology": round(pr["climatology"]["brier"], 5),
        "coverage": round(w["conformal"]["coverage"], 4),
        "coverage_nominal": w["conformal"]["nominal"],
        "sharpe_net": round(w["trading"]["long_short"]["sharpe_net"], 3),
        "band_sharpe_net": round(w["trading"]["band"]["sharpe_net"], 3),
        "buy_and_hold_sharpe": round(w["trading"]["buy_and_hold"]["sharpe_net"], 3),
        "load_avg_start": round(load0, 2),
        "load_avg_after_ray": round(load_mid, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
        "source": "price_csv+features",
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
