"""Training-stage fixtures: small settings with an isolated MLflow store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL = [
    "tune.num_samples=2",
    "tune.max_concurrent=2",
    "tune.cv.n_splits=3",
    "tune.ablation.n_boot=300",
    "model.params.n_estimators=80",
    "model.params.max_depth=3",
    "tune.space.n_estimators.high=120",
    "tune.space.max_depth.high=4",
]


@pytest.fixture
def small_settings(tmp_path: Path):
    from rayapp.config import load_settings

    def make(*extra: str, state: Path | None = None):
        st = state or tmp_path / "state"
        return load_settings([f"state_dir={st}", f"tune.report_dir={tmp_path / 'reports'}", *SMALL, *extra])

    return make
