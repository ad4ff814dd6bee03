"""Training: walk-forward CV, baselines and metrics, the Tune search, calibration, the quality gate,
ablation with significance tests, and the training run that registers a model.

The names below are the stage's public API; other packages import only these (checked by
`lint-imports`). They load on first use so that importing the package stays cheap.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.training.ablation import AblationResult, log_ablation, render_table, run_ablation
    from rayapp.training.calibration import (
        CLIP,
        brier_score,
        expected_calibration_error,
        fit_calibration,
        fit_conformal,
        fit_return_model,
        log_loss,
        reliability_curve,
        select_calibration,
    )
    from rayapp.training.cv import Fold, WalkForwardSplit
    from rayapp.training.data import (
        TrainingDataError,
        TrainingFrame,
        build_training_frame,
        load_training_frame,
        next_hour_returns,
        price_file_frame,
        read_data_file,
    )
    from rayapp.training.dm import DMResult, auto_lag, diebold_mariano, newey_west_variance
    from rayapp.training.gate import GateDecision, quality_gate
    from rayapp.training.interval_metrics import covered, interval_summary, mse_var, pinball, qlike, winkler
    from rayapp.training.intervals import (
        Boundary,
        IntervalConfig,
        WalkForwardIntervals,
        aci_path,
        calibrate,
        fit_interval_booster,
        interval_features,
        interval_walk_forward,
        intervals_from,
        predict_raw,
    )
    from rayapp.training.metrics import (
        baseline_predictions,
        best_baseline,
        evaluate,
        evaluate_baselines,
        sharpe,
        strategy_returns,
        total_return,
        trading_metrics,
        wilson_interval,
    )
    from rayapp.training.model import booster_params, fit_booster, predict_proba
    from rayapp.training.significance import block_bootstrap_pvalue, holm
    from rayapp.training.train import TrainOutcome, train_model

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.training.ablation": ("AblationResult", "log_ablation", "render_table", "run_ablation"),
        "rayapp.training.calibration": (
            "CLIP",
            "brier_score",
            "expected_calibration_error",
            "fit_calibration",
            "fit_conformal",
            "fit_return_model",
            "log_loss",
            "reliability_curve",
            "select_calibration",
        ),
        "rayapp.training.cv": ("Fold", "WalkForwardSplit"),
        "rayapp.training.data": (
            "TrainingDataError",
            "TrainingFrame",
            "build_training_frame",
            "load_training_frame",
            "next_hour_returns",
            "price_file_frame",
            "read_data_file",
        ),
        "rayapp.training.dm": ("DMResult", "auto_lag", "diebold_mariano", "newey_west_variance"),
        "rayapp.training.gate": ("GateDecision", "quality_gate"),
        "rayapp.training.interval_metrics": (
            "covered",
            "interval_summary",
            "mse_var",
            "pinball",
            "qlike",
            "winkler",
        ),
        "rayapp.training.intervals": (
            "Boundary",
            "IntervalConfig",
            "WalkForwardIntervals",
            "aci_path",
            "calibrate",
            "fit_interval_booster",
            "interval_features",
            "interval_walk_forward",
            "intervals_from",
            "predict_raw",
        ),
        "rayapp.training.metrics": (
            "baseline_predictions",
            "best_baseline",
            "evaluate",
            "evaluate_baselines",
            "sharpe",
            "strategy_returns",
            "total_return",
            "trading_metrics",
            "wilson_interval",
        ),
        "rayapp.training.model": ("booster_params", "fit_booster", "predict_proba"),
        "rayapp.training.significance": ("block_bootstrap_pvalue", "holm"),
        "rayapp.training.train": ("TrainOutcome", "train_model"),
    },
)

__all__ = [
    "CLIP",
    "AblationResult",
    "Boundary",
    "DMResult",
    "Fold",
    "GateDecision",
    "IntervalConfig",
    "TrainOutcome",
    "TrainingDataError",
    "TrainingFrame",
    "WalkForwardIntervals",
    "WalkForwardSplit",
    "aci_path",
    "auto_lag",
    "baseline_predictions",
    "best_baseline",
    "block_bootstrap_pvalue",
    "booster_params",
    "brier_score",
    "build_training_frame",
    "calibrate",
    "covered",
    "diebold_mariano",
    "evaluate",
    "evaluate_baselines",
    "expected_calibration_error",
    "fit_booster",
    "fit_calibration",
    "fit_conformal",
    "fit_interval_booster",
    "fit_return_model",
    "holm",
    "interval_features",
    "interval_summary",
    "interval_walk_forward",
    "intervals_from",
    "load_training_frame",
    "log_ablation",
    "log_loss",
    "mse_var",
    "newey_west_variance",
    "next_hour_returns",
    "pinball",
    "predict_proba",
    "predict_raw",
    "price_file_frame",
    "qlike",
    "quality_gate",
    "read_data_file",
    "reliability_curve",
    "render_table",
    "run_ablation",
    "select_calibration",
    "sharpe",
    "strategy_returns",
    "total_return",
    "trading_metrics",
    "train_model",
    "wilson_interval",
    "winkler",
]
