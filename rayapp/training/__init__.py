"""Training: walk-forward CV, baselines and metrics, the Tune search, calibration, the quality gate,
ablation with significance tests, and the training run that registers a model.

The names below are the stage's public API; other packages import only these (checked by
`lint-imports`). They load on first use so that importing the package stays cheap.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.training.ablation import AblationResult, log_ablation, render_table, run_ablation
    from rayapp.training.cv import WalkForwardSplit
    from rayapp.training.data import (
        TrainingDataError,
        TrainingFrame,
        build_training_frame,
        load_training_frame,
        price_file_frame,
        read_data_file,
    )
    from rayapp.training.train import TrainOutcome, train_model

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.training.ablation": ("AblationResult", "log_ablation", "render_table", "run_ablation"),
        "rayapp.training.cv": ("WalkForwardSplit",),
        "rayapp.training.data": (
            "TrainingDataError",
            "TrainingFrame",
            "build_training_frame",
            "load_training_frame",
            "price_file_frame",
            "read_data_file",
        ),
        "rayapp.training.train": ("TrainOutcome", "train_model"),
    },
)

__all__ = [
    "AblationResult",
    "TrainOutcome",
    "TrainingDataError",
    "TrainingFrame",
    "WalkForwardSplit",
    "build_training_frame",
    "load_training_frame",
    "log_ablation",
    "price_file_frame",
    "read_data_file",
    "render_table",
    "run_ablation",
    "train_model",
]
