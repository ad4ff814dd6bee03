"""The training target: the forward log return close(t) -> close(t+h), looked up by time."""

import numpy as np
import pandas as pd
import pytest

from rayapp.training.data import TrainingDataError, build_training_frame

START = pd.Timestamp("2024-01-01", tz="UTC")


def test_targets_forward_log_return_and_direction():
    idx = pd.date_range(START, periods=6, freq="h")
    close = pd.Series([100.0, 110.0, 99.0, 99.0, 120.0, 130.0], index=idx).drop(idx[3])
    feats = pd.DataFrame({"x": np.arange(6.0)}, index=idx)

    one = build_training_frame(feats, close, 1)
    at = {t: i for i, t in enumerate(one.times)}
    assert one.ret[at[idx[0]]] == pytest.approx(np.log(1.1))
    assert one.y[at[idx[0]]] == 1 and one.y[at[idx[1]]] == 0
    # t+1 missing (idx[3] has no candle), t itself missing, or past the end: no target, never filled
    assert idx[2] not in at and idx[3] not in at and idx[5] not in at
    assert list(one.times) == [idx[0], idx[1], idx[4]]

    two = build_training_frame(feats, close, 2)
    assert two.ret[list(two.times).index(idx[2])] == pytest.approx(np.log(120 / 99))
    with pytest.raises(TrainingDataError):
        build_training_frame(feats, close, 0)
