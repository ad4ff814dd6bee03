"""`rayapp train` and `rayapp ablate`."""

from __future__ import annotations

import argparse
from typing import Any

from rayapp.errors import InputError
from rayapp.runtime import ensure_ray
from rayapp.terminal import add_overrides


def _data_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--data",
        metavar="FILE",
        help="parquet/csv of features + target_ret (+ last_ret), index or column ts; "
        "default: the offline feature store",
    )
    src.add_argument(
        "--price-csv",
        metavar="FILE",
        help="hourly price CSV (CryptoCompare layout): price features computed on the fly",
    )
    p.add_argument("--start", help="first feature hour (ISO, UTC)")
    p.add_argument("--end", help="end of the range (exclusive, ISO, UTC)")


def load_frame(args: argparse.Namespace, settings: Any) -> tuple[Any, str]:
    from rayapp.training.data import load_training_frame, price_file_frame, read_data_file

    h = settings.features.horizon_h
    if args.data:
        frame, src = read_data_file(args.data, h), f"file:{args.data}"
    elif args.price_csv:
        frame, src = price_file_frame(args.price_csv, h, settings.features.set), f"price_csv:{args.price_csv}"
    else:
        return load_training_frame(settings, args.start, args.end), "offline_store"
    return frame.between(args.start, args.end), src


def _train(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.training.cv import WalkForwardSplit
    from rayapp.training.train import train_model

    frame, src = load_frame(args, settings)
    try:
        # Bad input fails here, before a Ray cluster is started for nothing.
        WalkForwardSplit.from_settings(settings.tune.cv, frame.horizon).folds(frame.times)
    except ValueError as exc:
        raise InputError(f"cannot cut walk-forward folds: {exc}") from exc
    ensure_ray(settings)
    cols = [c.strip() for c in args.features.split(",") if c.strip()] if args.features else None
    try:
        out = train_model(settings, frame, features=cols, report_dir=args.report_dir, data_source=src)
    except ValueError as exc:  # e.g. a column list naming unknown features, a search space typo
        raise InputError(str(exc)) from exc
    print(
        f"run {out.run_id}: {settings.mlflow.registered_model} v{out.version} "
        f"({'promoted to champion' if out.promoted else 'challenger only'}); "
        f"cv {settings.tune.metric}={out.cv_mean:.4f}"
    )
    for reason in out.gate["reasons"]:
        print(f"  gate: {reason}")
    print(f"report: {out.report_dir}/report.md")
    return 0


def _ablate(args: argparse.Namespace, settings: Any) -> int:
    from rayapp.training.ablation import log_ablation, render_table, run_ablation
    from rayapp.training.cv import WalkForwardSplit

    ab = settings.tune.ablation
    periods = ab.periods or {"all": [None, None]}
    chosen = args.period or list(periods)
    unknown = [p for p in chosen if p not in periods]
    if unknown:
        raise InputError(f"unknown period(s) {unknown}; configured: {list(periods)}")
    full, _ = load_frame(args, settings)
    ensure_ray(settings)
    results = []
    try:
        for name in chosen:
            lo, hi = [*list(periods[name]), None, None][:2]
            frame = full.between(lo, hi)
            if len(frame) == 0:
                print(f"period {name}: no rows in [{lo}, {hi}), skipped")
                continue
            folds = WalkForwardSplit.from_settings(settings.tune.cv, frame.horizon).folds(frame.times)
            res = run_ablation(
                frame,
                folds,
                dict(settings.model.params),
                seed=settings.model.seed,
                fee_bps=settings.tune.fee_bps,
                block=ab.block_h,
                n_boot=ab.n_boot,
                alpha=ab.alpha,
                threshold=ab.practical_threshold,
                period=name,
            )
            print(render_table(res))
            print()
            results.append(res)
    except ValueError as exc:  # too few rows for the folds of a period, an unknown column, ...
        raise InputError(str(exc)) from exc
    if results:
        run_id = log_ablation(results, settings)
        print(f"logged to MLflow run {run_id}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="Ray Tune + Optuna search, walk-forward evaluation, MLflow registration and gate",
        description="Search XGBoost hyperparameters with Ray Tune (OptunaSearch TPE + ASHA) on walk-forward "
        "folds, evaluate against naive baselines, calibrate, register bitcoin_predictor as "
        "challenger and promote it to champion only if it passes the quality gate. "
        "Example: rayapp train tune.num_samples=50",
    )
    _data_args(p)
    p.add_argument("--report-dir", help="where to publish the report (default tune.report_dir)")
    p.add_argument("--features", help="comma-separated subset of feature columns (default: all)")
    add_overrides(p)
    p.set_defaults(handler=_train)

    q = subparsers.add_parser(
        "ablate",
        help="feature-group ablation with significance tests on identical folds",
        description="Compare price_only, sentiment_only, social_only, price_sentiment, all_features and "
        "leave-one-group-out on the same walk-forward folds (paired t-test, block bootstrap, "
        "Cohen's d), per configured period (tune.ablation.periods).",
    )
    _data_args(q)
    q.add_argument("--period", action="append", help="a period from tune.ablation.periods (repeatable; default: all)")
    add_overrides(q)
    q.set_defaults(handler=_ablate)
