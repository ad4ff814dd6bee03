"""`rayapp backtest`: the lifecycle policy replayed over the price history (docs/BACKTEST.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rayapp.errors import InputError
from rayapp.terminal import add_overrides, console, out, progress

if TYPE_CHECKING:
    from rayapp.config import Settings
    from rayapp.lifecycle.settings import BacktestSettings


def backtest_settings(settings: Any) -> BacktestSettings:
    """The configured `backtest` section (conf/backtest/)."""
    return settings.backtest  # type: ignore[no-any-return]


def _ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what} must be comma-separated whole hours, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise InputError(f"{what} must be >= 1 hour each, got {text!r}")
    return sorted(set(vals))


def _policies(text: str | None, default: list[str]) -> list[str]:
    from rayapp.lifecycle.settings import POLICIES

    pols = [p.strip() for p in text.split(",") if p.strip()] if text else list(default)
    bad = [p for p in pols if p not in POLICIES]
    if bad or not pols:
        raise InputError(f"unknown policy {bad or text!r}: choose from {', '.join(POLICIES)}")
    return [p for p in POLICIES if p in pols]


def _frames(args: argparse.Namespace, settings: Any, bt: BacktestSettings, horizons: list[int]) -> tuple[dict, str]:
    from rayapp.training import load_training_frame, price_file_frame

    frames = {}
    if args.store:
        for h in horizons:
            s = settings.model_copy(update={"features": settings.features.model_copy(update={"horizon_h": h})})
            frames[h] = load_training_frame(s, args.start, args.end)
        return frames, "offline_store"
    path = Path(args.price_csv) if args.price_csv else Path(settings.replay.data) / bt.price_file
    if not path.is_file():
        raise InputError(
            f"price file {path} does not exist: pass --price-csv FILE (CryptoCompare hourly layout) or --store"
        )
    for h in horizons:
        frames[h] = price_file_frame(path, h, settings.features.set).between(args.start, args.end)
    return frames, f"price_csv:{path}"


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.lifecycle.backtest import run_backtest
    from rayapp.lifecycle.backtest_report import log_report, write_report

    bt = backtest_settings(settings)
    updates = {k: getattr(args, k) for k in ("test_h", "min_train_h", "window", "warmup_weeks")}
    try:
        bt = bt.model_validate({**bt.model_dump(), **{k: v for k, v in updates.items() if v is not None}})
    except ValueError as exc:
        raise InputError(f"bad backtest setting: {exc}") from exc
    horizons = _ints(args.horizons, "--horizons") if args.horizons else list(settings.features.horizons_h)
    policies = _policies(args.policies, list(bt.policies))
    frames, source = _frames(args, settings, bt, horizons)
    if not args.sequential:
        from rayapp.runtime import ensure_ray

        ensure_ray(settings)
    bar = progress(disable=args.no_progress)
    fit_task = bar.add_task("planning folds", total=None)
    step = bar.add_task("replaying the policies", total=len(horizons) * 2)
    with bar:
        try:
            result = run_backtest(
                frames,
                bt=bt,
                lifecycle=settings.lifecycle,
                params=dict(settings.model.params),
                seed=bt.seed if bt.seed is not None else settings.model.seed,
                fee_bps=settings.tune.fee_bps,
                conformal_alpha=settings.tune.conformal_alpha,
                policies=policies,
                window=bt.window or settings.lifecycle.retrain.window,
                train_size_h=bt.train_size_h or settings.lifecycle.retrain.window_h,
                use_ray=not args.sequential,
                source=source,
                on_planned=lambda n: bar.update(
                    fit_task, total=n, description=f"fitting {n} models ({'loop' if args.sequential else 'Ray tasks'})"
                ),
                on_fit=lambda _i, _f: bar.advance(fit_task),
                on_step=lambda _s: bar.advance(step),
            )
        except ValueError as exc:  # too little data for the folds, the warm-up or the calibration
            raise InputError(str(exc)) from exc
    report_dir = Path(args.report_dir or bt.report_dir)
    write_report(result, report_dir)
    intervals = _intervals(args, settings, bt, frames) if args.intervals else None
    if not args.no_mlflow:
        run_id = log_report(result, report_dir, settings)
        if intervals:
            import mlflow

            from rayapp.lifecycle.interval_backtest import flat_metrics

            mlflow.MlflowClient().log_batch(
                run_id, metrics=[mlflow.entities.Metric(k, v, 0, 0) for k, v in flat_metrics(intervals).items()]
            )
        console.print(f"logged to MLflow run {run_id}", highlight=False)
    _print_summary(result.report)
    print(f"report: {report_dir}/backtest.md (json: {report_dir}/latest/backtest.json)")
    return 0


def _intervals(args: argparse.Namespace, settings: Any, bt: BacktestSettings, frames: dict) -> dict[int, Any]:
    """The interval model and its baselines walked forward weekly over the same frames
    (docs/INTERVALS.md), written as intervals.json / intervals.md beside the backtest report."""
    import os

    from rayapp.lifecycle.interval_backtest import run_interval_backtest, write_interval_report
    from rayapp.training import IntervalConfig

    cfg = IntervalConfig.from_settings(settings.tune.intervals)
    reports = {}
    for h, frame in frames.items():
        console.print(f"intervals: {h} h, weekly refits", highlight=False)
        try:
            reports[h] = run_interval_backtest(
                frame,
                cfg,
                test_h=bt.test_h,
                warmup=bt.calibration_weeks,
                train_h=settings.lifecycle.retrain.window_h,
                calibration_weeks=bt.calibration_weeks,
                seed=bt.seed if bt.seed is not None else settings.model.seed,
                nthread=os.cpu_count(),
            )
        except ValueError as exc:
            raise InputError(f"{h} h intervals: {exc}") from exc
    write_interval_report(reports, Path(args.report_dir or bt.report_dir))
    return reports


def _print_summary(report: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(
        "h",
        "policy",
        "accuracy [95% CI]",
        "best baseline",
        "p",
        "ECE cal/raw",
        "Brier cal/clim",
        "Sharpe l/s band B&H",
        "cover",
        "promoted/rolled back",
        title="backtest (net of costs; Sharpe annualised)",
    )
    for h, pols in report["headline"].items():
        ec = report["horizons"][h]["event_counts"]
        for p, m in pols.items():
            table.add_row(
                h,
                p,
                f"{m['accuracy']:.3f} [{m['acc_low']:.3f}, {m['acc_high']:.3f}]",
                f"{m['best_baseline']} {m['best_baseline_accuracy']:.3f}",
                f"{m['p_value']:.3f}",
                f"{m['ece']:.3f}/{m['ece_raw']:.3f}",
                f"{m['brier']:.4f}/{m['brier_climatology']:.4f}",
                f"{m['sharpe_net']:.2f} {m['band_sharpe_net']:.2f} {m['buy_and_hold_sharpe']:.2f}",
                "n/a" if m["coverage"] is None else f"{m['coverage']:.3f}",
                f"{ec.get('promotion', 0)}/{ec.get('rollback', 0)}" if p == "triggered" else "",
            )
    out.print(table)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "backtest",
        help="replay the retraining policy over the price history: walk-forward accuracy, "
        "calibration, trading figures and the never / weekly / triggered comparison",
        description="Walk forward over the price history: one XGBoost model per test week (fixed "
        "model.params; Ray tasks in parallel), then the never / weekly / triggered policies replayed "
        "over those predictions with the live lifecycle code and thresholds (conf/lifecycle/). Writes "
        "backtest.json / backtest.md / PNGs to the report folder (and latest/), logged to MLflow. "
        "Example: rayapp backtest --horizons 1 --policies weekly,triggered",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--price-csv",
        metavar="FILE",
        help="hourly price CSV (CryptoCompare layout); default: btc_usd_1h_2019-11_2025-05.csv under replay.data",
    )
    src.add_argument("--store", action="store_true", help="read the offline feature store instead of a price file")
    p.add_argument("--horizons", help="comma-separated horizons in hours (default features.horizons_h)")
    p.add_argument("--policies", help="comma-separated subset of never,weekly,triggered (default: all)")
    p.add_argument("--start", help="first feature hour (ISO, UTC)")
    p.add_argument("--end", help="end of the range (exclusive, ISO, UTC)")
    p.add_argument("--report-dir", help="report folder (default reports/backtest)")
    p.add_argument("--test-h", type=int, help="hours per test block, one model each (default 168)")
    p.add_argument("--min-train-h", type=int, help="rows before the first test block (default 4380)")
    p.add_argument(
        "--window", choices=["expanding", "sliding"], help="training window (default lifecycle.retrain.window)"
    )
    p.add_argument(
        "--warmup-weeks", type=int, help="walk-forward weeks before the replay (default lifecycle.gate.n_splits)"
    )
    p.add_argument("--sequential", action="store_true", help="fit in a plain loop (every core), not Ray tasks")
    p.add_argument(
        "--intervals",
        action="store_true",
        help="also walk the interval model and its baselines (constant band, EWMA, GARCH, HAR-RV) forward "
        "weekly: intervals.json / intervals.md (docs/INTERVALS.md)",
    )
    p.add_argument("--no-mlflow", action="store_true", help="do not log the report to MLflow")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_overrides(p)
    p.set_defaults(handler=_backtest)
