"""Model fitting: local and data-parallel (Ray Train XGBoostTrainer) fits agree on a planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from rayapp.training.model import fit_final, predict_proba
from tests.training.factories import make_frame

PARAMS = {"max_depth": 3, "n_estimators": 40, "learning_rate": 0.2}


@pytest.mark.slow
def test_distributed_fit_through_ray_train_learns_the_planted_signal(ray_cluster):
    frame = make_frame(1500, {"rsi": 1.2}, seed=5)
    train, test = frame.between(None, "2022-02-20"), frame.between("2022-02-20", None)
    booster = fit_final(train, PARAMS, seed=1, num_workers=2)
    assert isinstance(booster, xgb.Booster)
    assert booster.num_boosted_rounds() == 40
    p = predict_proba(booster, test.X.to_numpy(), test.feature_names)
    acc = float(np.mean((p >= 0.5) == test.y.astype(bool)))
    local = predict_proba(fit_final(train, PARAMS, seed=1), test.X.to_numpy(), test.feature_names)
    local_acc = float(np.mean((local >= 0.5) == test.y.astype(bool)))
    assert acc > 0.65 and abs(acc - local_acc) < 0.08, (acc, local_acc)
