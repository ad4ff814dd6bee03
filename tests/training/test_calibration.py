"""Calibration of P(up) and the split-conformal return interval."""

from __future__ import annotations

import numpy as np
import pytest

from rayapp.registry import ModelBundle
from rayapp.training.calibration import (
    CLIP,
    brier_score,
    calibrate_oof,
    expected_calibration_error,
    fit_calibration,
    fit_conformal,
    log_loss,
    reliability_curve,
    select_calibration,
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
    assert res.report["n_select"] + res.report["n_holdout"] == n
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
    with pytest.raises(ValueError, match="too few hours to select"):
        select_calibration(np.full(6, 0.5), np.array([0, 1, 0, 1, 0, 1]), 0.5)


def _coin_flips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An over-confident model of a market with no signal: raw scores spread over [0.3, 0.7],
    outcomes independent of them with P(up) = 0.5."""
    rng = np.random.default_rng(seed)
    raw = np.clip(0.5 + 0.08 * rng.standard_normal(n), 0.2, 0.8)
    y = (rng.uniform(size=n) < 0.5).astype(int)
    ret = np.where(y == 1, 1, -1) * np.abs(rng.normal(0, 0.01, n))
    return raw, y, ret


@pytest.mark.parametrize("method", ["isotonic", "platt", "identity"])
def test_no_map_sends_an_hour_to_zero_or_one(method):
    # The defect seen in a demo run: isotonic on a few hundred hours mapped 4 hours to exactly 0.
    raw, y, _ = _coin_flips(400, 2)
    y[raw < 0.35] = 0  # a handful of extreme scores that happened to go down
    cal = fit_calibration(raw, y, method)
    out = cal(np.linspace(0, 1, 1001))
    assert out.min() >= CLIP and out.max() <= 1 - CLIP


def test_auto_selection_never_ships_a_map_worse_than_raw_where_it_was_chosen():
    for seed in range(10):
        raw, y, _ = _coin_flips(3000, seed)
        sel = select_calibration(raw, y, 0.5)
        assert sel.scores[sel.calibration.method] <= sel.scores["identity"] + 1e-12
        assert set(sel.scores) == {"climatology", "identity", "platt", "isotonic"}
        assert sel.oof.shape == raw.shape


def test_a_model_without_skill_ships_climatology():
    # Over-confident scores of a market with no signal: every map but the constant loses out of
    # sample, so the selection ships the base rate, bounded like any other map.
    picked = []
    for seed in range(10):
        raw, y, _ = _coin_flips(3000, seed)
        sel = select_calibration(raw, y, float(y.mean()), purge=24)
        picked.append(sel.calibration.method)
        if sel.calibration.method == "climatology":
            out = sel.calibration(np.linspace(0, 1, 11))
            assert np.allclose(out, np.clip(y.mean(), CLIP, 1 - CLIP))
    assert picked.count("climatology") >= 8, picked
    assert fit_calibration(np.array([0.1, 0.9]), np.array([0, 1]), "climatology", 0.999)(0.5) == 1 - CLIP


def test_a_model_with_skill_keeps_its_map():
    raw, y, _ = _miscalibrated(6000, 4)
    sel = select_calibration(raw, y, float(y.mean()))
    assert sel.calibration.method in {"platt", "isotonic"}
    assert sel.scores[sel.calibration.method] < sel.scores["climatology"] - 0.01


def test_the_selection_scores_each_block_by_maps_fitted_without_it():
    # Labels that follow the raw score in the first half and its opposite in the second: a map
    # scored on the hours it was fitted on would look good; the cross-fitted score must not.
    rng = np.random.default_rng(9)
    raw = rng.uniform(0.1, 0.9, 4000)
    y = (rng.uniform(size=4000) < raw).astype(int)
    y[2000:] = 1 - y[2000:]
    sel = select_calibration(raw, y, 0.5, folds=2)
    fitted_on_all = fit_calibration(raw, y, "platt")
    assert sel.scores["platt"] > log_loss(fitted_on_all(raw), y) + 0.05
    assert sel.calibration.method == "climatology"


def test_calibrated_coin_flip_beats_the_over_confident_raw_output_out_of_sample():
    raw, y, ret = _coin_flips(8000, 7)
    res = calibrate_oof(raw, y, ret, np.arange(8000), "auto")
    rep = res.report
    # Measured on the last quarter, which neither the fit nor the selection saw.
    assert rep["logloss_calibrated"] < rep["logloss_raw"]
    assert rep["brier_calibrated"] < rep["brier_raw"]
    assert rep["ece_calibrated"] < rep["ece_raw"]
    assert rep["brier_calibrated"] <= rep["brier_climatology"] + 0.002
    assert CLIP <= rep["p_up_range"][0] <= rep["p_up_range"][1] <= 1 - CLIP


def test_expected_calibration_error_and_log_loss_known_values():
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 1, 1, 1])
    # bin 1: mean 0.1, observed 0.5 -> 0.4; bin 9: mean 0.9, observed 1.0 -> 0.1; weights 1/2 each
    assert expected_calibration_error(p, y) == pytest.approx(0.25)
    assert log_loss(np.full(4, 0.5), y) == pytest.approx(np.log(2))
    with pytest.raises(ValueError, match="unknown calibration"):
        calibrate_oof(raw := np.full(40, 0.5), (raw > 1).astype(int), raw, np.arange(40), "magic")
