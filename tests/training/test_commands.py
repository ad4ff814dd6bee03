"""The `rayapp train` / `rayapp ablate` commands: help, bad input, and an ablation run."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from rayapp.cli import main
from tests.training.factories import SMALL, make_frame


@pytest.mark.parametrize("cmd", ["train", "ablate"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as exc:
        main([cmd, "--help"])
    assert exc.value.code == 0
    assert "key=value" in capsys.readouterr().out


def test_missing_or_malformed_data_file_is_a_clear_error(tmp_path: Path, capsys):
    base = [f"state_dir={tmp_path / 's'}"]
    assert main(["train", "--data", str(tmp_path / "nope.parquet"), *base]) == 2
    assert "does not exist" in capsys.readouterr().err  # one error: line on stderr
    bad = tmp_path / "bad.parquet"
    make_frame(300).X.rename_axis("ts").to_parquet(bad)  # no target column
    assert main(["train", "--data", str(bad), *base]) == 2
    assert "target_ret" in capsys.readouterr().err  # one error: line on stderr
    assert main(["ablate", "--period", "nosuch", "--data", str(bad), *base]) == 2
    assert "unknown period" in capsys.readouterr().err  # one error: line on stderr
    # Too little data for the folds: a clear message, nothing registered.
    tiny = tmp_path / "tiny.parquet"
    make_frame(200).to_frame().rename_axis("ts").to_parquet(tiny)
    assert main(["train", "--data", str(tiny), *base]) == 2
    assert "not enough rows" in capsys.readouterr().err  # one error: line on stderr


def test_ablate_command_prints_the_table_per_period_and_logs_it(ray_cluster, tmp_path: Path, capsys):
    data = tmp_path / "f.parquet"
    make_frame(1300, {"sentiment_mean": 1.0}, seed=3, nan_groups=("social",)).to_frame().rename_axis("ts").to_parquet(
        data
    )
    state = tmp_path / "s"
    rc = main(
        [
            "ablate",
            "--period",
            "news",
            "--data",
            str(data),
            f"state_dir={state}",
            *SMALL,
            "model.params.n_estimators=40",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "period news (2022-01-01" in out and "without data: social" in out
    assert "social_only | skipped: no data" in out
    assert "groups with a significant contribution: sentiment" in out
    mlflow.set_tracking_uri(f"sqlite:///{state / 'mlflow' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["rayapp"], filter_string="tags.stage = 'ablation'")
    assert len(runs) == 1
