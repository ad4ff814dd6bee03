"""Calibration of P(up) and the split-conformal return interval."""

from __future__ import annotations

import numpy as np
import pytest

from rayapp.registry import ModelBundle
from rayapp.training.calibration import (
    brier_score,
    calibrate_oof,
    fit_calibration,
    fit_conformal,
    reliability_curve,
)


def _miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw scores that are over-confident: the true P(up) is a squashed version of them."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.05, 0.95, n)
    true_p = 0.5 + 0.4 * (raw - 0.5)
    y = (rng.uniform(size=n) < true_p).astype(int)
    ret = np.where(y == 1, 1, -1) * np.abs(rng.normal(0, 0.01, n))
    return raw, y, ret


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_reduces_brier_on_fresh_data(method):
    raw, y, _ = _miscalibrated(6000, 0)
    cal = fit_calibration(raw, y, method)
    assert cal.method == method
    assert np.all(np.diff(cal(np.linspace(0, 1, 50))) >= -1e-12)  # monotone
    raw2, y2, _ = _miscalibrated(6000, 1)
    assert brier_score(cal(raw2), y2) < brier_score(raw2, y2) - 0.005


def test_conformal_interval_covers_fresh_returns_at_the_nominal_rate():
    rng = np.random.default_rng(3)
    n = 4000
    raw = rng.uniform(0.3, 0.7, n)
    ret = 0.01 * (raw - 0.5) + rng.standard_t(4, n) * 0.004  # heavy tails, like hourly returns
    y = (ret > 0).astype(int)
    idx = np.arange(n)
    res = calibrate_oof(raw, y, ret, idx, "isotonic", alpha=0.1)
    assert res.conformal.q_low < 0 < res.conformal.q_high
    # Fresh draws from the same process: coverage close to 90%.
    raw2 = rng.uniform(0.3, 0.7, 20000)
    ret2 = 0.01 * (raw2 - 0.5) + rng.standard_t(4, 20000) * 0.004
    lo, hi = res.conformal.interval(res.expected_return(res.calibration(raw2)))
    coverage = np.mean((ret2 >= lo) & (ret2 <= hi))
    assert 0.87 <= coverage <= 0.93
    assert res.report["n_fit"] + res.report["n_holdout"] == n
    assert {"brier_raw", "brier_calibrated", "reliability_calibrated"} <= set(res.report)


def test_bundle_round_trip_through_json():
    raw, y, ret = _miscalibrated(2000, 5)
    res = calibrate_oof(raw, y, ret, np.arange(2000), "isotonic", 0.2)
    b = ModelBundle("fs1", ["a", "b"], 1, res.calibration, res.conformal, res.expected_return)
    b2 = ModelBundle.from_json(b.to_json())
    out = b2.predict(np.array([0.2, 0.8]))
    assert out["p_up"][0] < out["p_up"][1]
    assert np.all(out["interval_low"] < out["expected_return"])
    assert np.all(out["expected_return"] < out["interval_high"])
    assert out["direction"].tolist() == [-1, 1]


def test_reliability_curve_and_errors():
    curve = reliability_curve(np.array([0.05, 0.15, 0.12, 0.95]), np.array([0, 1, 0, 1]))
    assert [c["count"] for c in curve] == [1, 2, 1]
    assert curve[1]["observed"] == 0.5
    with pytest.raises(ValueError, match="at least 2"):
        fit_conformal(np.array([0.1]))
    with pytest.raises(ValueError, match="unknown calibration"):
        fit_calibration(np.array([0.1, 0.9]), np.array([0, 1]), "magic")
    with pytest.raises(ValueError, match="too few"):
        calibrate_oof(np.zeros(10), np.zeros(10), np.zeros(10), np.arange(10))
