"""Training-stage fixtures: small settings with an isolated MLflow store per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.training.factories import SMALL


@pytest.fixture
def small_settings(tmp_path: Path):
    from rayapp.config import load_settings

    def make(*extra: str, state: Path | None = None):
        st = state or tmp_path / "state"
        return load_settings([f"state_dir={st}", f"tune.report_dir={tmp_path / 'reports'}", *SMALL, *extra])

    return make
