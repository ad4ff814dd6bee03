"""Ablation: the planted group is flagged significant; pure noise flags nothing."""

from __future__ import annotations

import pytest

from rayapp.training.ablation import configurations, render_table, run_ablation
from rayapp.training.cv import WalkForwardSplit
from tests.training.factories import make_frame

pytestmark = pytest.mark.slow
PARAMS = {"max_depth": 3, "n_estimators": 60, "learning_rate": 0.1, "subsample": 0.9}


def _run(frame, period="test"):
    folds = WalkForwardSplit(3, 168, horizon=frame.horizon).folds(frame.times)
    return run_ablation(frame, folds, PARAMS, seed=1, n_boot=400, period=period)


def test_planted_group_is_flagged_significant(ray_cluster):
    res = _run(make_frame(1300, {"sentiment_mean": 1.0}, seed=3))
    rows = {r["config"]: r for r in res.rows}
    assert res.significant_groups == ["sentiment"]
    assert rows["sentiment_only"]["significant"] and rows["sentiment_only"]["practical"]
    assert rows["all_minus_sentiment"]["significant"] and rows["all_minus_sentiment"]["delta"] < -0.02
    assert not rows["price_only"]["significant"] and not rows["social_only"]["significant"]
    assert rows["all_minus_sentiment"]["vs"] == "all_features"
    table = render_table(res)
    assert "groups with a significant contribution: sentiment" in table
    assert "groups with data: price 100%" in table


def test_pure_noise_reports_no_significance(ray_cluster):
    res = _run(make_frame(1300, None, seed=11))
    assert res.significant_groups == []
    assert not any(r.get("significant") for r in res.rows)
    assert "groups with a significant contribution: none" in render_table(res)


def test_groups_without_data_are_named_and_their_configs_skipped():
    frame = make_frame(800, None, seed=2, nan_groups=("sentiment", "social"))
    configs, skipped = configurations(frame)
    assert set(skipped) == {"sentiment_only", "social_only"}
    assert "no data" in skipped["sentiment_only"]
    assert configs["price_sentiment"] == frame.group_columns("price")
    assert "all_minus_sentiment" not in configs and "all_minus_price" in configs
    info = frame.groups_with_data()
    assert not info["sentiment"]["has_data"] and info["price"]["has_data"]
