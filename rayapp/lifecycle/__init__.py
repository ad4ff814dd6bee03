"""The model lifecycle: triggers, the retrain decision, shadow and watch verdicts (`policy`), and
the same policy replayed over history (`backtest`, `rayapp backtest`).

Public API, loaded on first use.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.lifecycle.backtest import (
        BacktestResult,
        FoldFit,
        FoldPlan,
        History,
        HorizonBacktest,
        PolicySeries,
        backtest_horizon,
        deflated_sharpe,
        finish,
        fit_folds,
        plan_folds,
        run_backtest,
        series_metrics,
    )
    from rayapp.lifecycle.backtest_report import log_report, render_markdown, write_report
    from rayapp.lifecycle.interval_backtest import evaluate_intervals, run_interval_backtest, weekly_boundaries
    from rayapp.lifecycle.policy import (
        TRIGGERS,
        Champion,
        Live,
        RetrainDecision,
        Trigger,
        Verdict,
        block_for,
        coverage_trigger,
        degradation_trigger,
        drift_trigger,
        evaluate_triggers,
        log_loss_per_hour,
        paired_comparison,
        retrain_decision,
        shadow_verdict,
        watch_verdict,
    )
    from rayapp.lifecycle.settings import POLICIES, BacktestSettings

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.lifecycle.backtest": (
            "BacktestResult",
            "FoldFit",
            "FoldPlan",
            "History",
            "HorizonBacktest",
            "PolicySeries",
            "backtest_horizon",
            "deflated_sharpe",
            "finish",
            "fit_folds",
            "plan_folds",
            "run_backtest",
            "series_metrics",
        ),
        "rayapp.lifecycle.backtest_report": ("log_report", "render_markdown", "write_report"),
        "rayapp.lifecycle.interval_backtest": ("evaluate_intervals", "run_interval_backtest", "weekly_boundaries"),
        "rayapp.lifecycle.settings": ("POLICIES", "BacktestSettings"),
        "rayapp.lifecycle.policy": (
            "TRIGGERS",
            "Champion",
            "Live",
            "RetrainDecision",
            "Trigger",
            "Verdict",
            "block_for",
            "coverage_trigger",
            "degradation_trigger",
            "drift_trigger",
            "evaluate_triggers",
            "log_loss_per_hour",
            "paired_comparison",
            "retrain_decision",
            "shadow_verdict",
            "watch_verdict",
        ),
    },
)

__all__ = [
    "POLICIES",
    "TRIGGERS",
    "BacktestResult",
    "BacktestSettings",
    "Champion",
    "FoldFit",
    "FoldPlan",
    "History",
    "HorizonBacktest",
    "Live",
    "PolicySeries",
    "RetrainDecision",
    "Trigger",
    "Verdict",
    "backtest_horizon",
    "block_for",
    "coverage_trigger",
    "deflated_sharpe",
    "degradation_trigger",
    "drift_trigger",
    "evaluate_intervals",
    "evaluate_triggers",
    "finish",
    "fit_folds",
    "log_loss_per_hour",
    "log_report",
    "paired_comparison",
    "plan_folds",
    "render_markdown",
    "retrain_decision",
    "run_backtest",
    "run_interval_backtest",
    "series_metrics",
    "shadow_verdict",
    "watch_verdict",
    "weekly_boundaries",
    "write_report",
]
