"""The interval model on generated GARCH data: nominal coverage out of sample, better than the
constant band; quantiles that never cross; ACI recovering after a planted volatility shift; the
Diebold-Mariano test; the bundle contract with and without the interval state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayapp.registry import AciState, IntervalModel, ModelBundle, aci_update
from rayapp.registry.bundle import Calibration, Conformal, ReturnModel
from rayapp.training import (
    Boundary,
    IntervalConfig,
    aci_path,
    build_training_frame,
    calibrate,
    diebold_mariano,
    fit_interval_booster,
    interval_features,
    interval_walk_forward,
    predict_raw,
    winkler,
)

FAST = {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1, "min_child_weight": 30.0}


def garch_frame(n: int = 4200, seed: int = 0, horizon: int = 1):
    """Hourly GARCH(1,1) returns with Student-t(6) shocks and an intraday volatility pattern."""
    rng = np.random.default_rng(seed)
    w, a, b, nu = 2e-6, 0.08, 0.9, 6.0
    idx = pd.date_range("2023-01-01", periods=n + 1, freq="h", tz="UTC")
    season = 1.0 + 0.5 * np.sin(2 * np.pi * idx.hour.to_numpy() / 24.0)
    z = rng.standard_t(nu, n + 1) * np.sqrt((nu - 2) / nu)
    r = np.zeros(n + 1)
    s2 = w / (1 - a - b)
    for t in range(1, n + 1):
        s2 = w + a * (r[t - 1] / season[t - 1]) ** 2 + b * s2
        r[t] = np.sqrt(s2) * season[t] * z[t]
    close = pd.Series(30_000 * np.exp(np.cumsum(r)), index=idx)
    feats = pd.DataFrame({"hour_of_day": idx.hour.to_numpy(float)}, index=idx)[:-1]
    return build_training_frame(feats, close, horizon=horizon, feature_set_version="garch_test")


def weekly(n: int, horizon: int, train_h: int, warmup: int, first: int) -> list[Boundary]:
    out, s = [], first - warmup * 168
    while s + 168 <= n - horizon:
        out.append(Boundary(s, s + 168, max(0, s - horizon - train_h), s - horizon))
        s += 168
    return out


@pytest.fixture(scope="module")
def walk_forward():
    frame = garch_frame()
    Xi = interval_features(frame.X, frame.last_ret)
    cfg = IntervalConfig(method="vol", params=FAST)
    bounds = weekly(len(frame), 1, 2000, 4, 2000 + 4 * 168 + 1)
    wf = interval_walk_forward(
        Xi,
        frame.ret,
        frame.last_ret,
        1,
        bounds,
        cfg,
        calibration_weeks=8,
        warmup=4,
        methods=("vol",),
        baselines=("constant",),
        nthread=1,
    )
    return wf


def test_garch_data_nominal_coverage_and_better_than_the_constant_band(walk_forward):
    wf = walk_forward
    assert len(wf.y) >= 1500
    scores = {}
    for name in ("model_vol", "model_vol_aci", "constant"):
        lo, hi = wf.intervals[name][0.9]
        cov = float(np.mean((wf.y >= lo) & (wf.y <= hi)))
        scores[name] = float(winkler(lo, hi, wf.y, 0.9).mean())
        if name != "constant":
            assert abs(cov - 0.9) <= 0.02, (name, cov)
    assert scores["model_vol"] < scores["constant"] and scores["model_vol_aci"] < scores["constant"], scores
    for name in ("model_vol", "model_vol_aci"):  # the fan is nested: 50 % inside 80 % inside 90 %
        (l5, h5), (l8, h8), (l9, h9) = (wf.intervals[name][lv] for lv in (0.5, 0.8, 0.9))
        assert np.all(l9 <= l8) and np.all(l8 <= l5) and np.all(h5 <= h8) and np.all(h8 <= h9)


def test_quantiles_never_cross_and_the_bundle_round_trips():
    frame = garch_frame(1500, seed=2)
    Xi = interval_features(frame.X, frame.last_ret)
    cfg = IntervalConfig(method="quantile", params={**FAST, "n_estimators": 20})
    X = Xi.to_numpy(np.float64)
    model = fit_interval_booster(X[:1000], frame.ret[:1000], list(Xi.columns), cfg, seed=1, nthread=1)
    model.horizon_h = 1
    q, _ = predict_raw(model, X[1000:])
    calibrate(model, q, frame.ret[1000:])
    wild = np.random.default_rng(0).normal(0, 50, (300, X.shape[1]))  # far outside the training data
    for rows in (X[1000:], wild):
        qq, ss = predict_raw(model, rows)
        assert np.all(np.diff(qq, axis=1) >= 0) and np.all(ss >= 0)
    bundle = ModelBundle(
        "v",
        ["hour_of_day"],
        1,
        Calibration("identity"),
        Conformal(0.1, -0.01, 0.01),
        ReturnModel(0.001, -0.001),
        intervals=model,
    )
    back = ModelBundle.from_json(bundle.to_json())
    assert back.interval_method == "cqr_quantile" and back.intervals is not None
    aci = {k: AciState.start(float(k)) for k in back.intervals.cqr}
    out = back.forecast_intervals(X[1200], aci=aci)
    qs = list(out["quantiles"].values())
    assert qs == sorted(qs) and out["volatility"] > 0
    assert [iv["level"] for iv in out["intervals"]] == [0.5, 0.8, 0.9]
    lows, highs = [iv["low"] for iv in out["intervals"]], [iv["high"] for iv in out["intervals"]]
    assert lows == sorted(lows, reverse=True) and highs == sorted(highs)
    np.testing.assert_allclose(back.intervals.raw(X[1200:1201])[0], model.raw(X[1200:1201])[0])


def test_an_old_bundle_without_interval_state_serves_the_old_band_labelled():
    old = ModelBundle("v", ["a"], 1, Calibration("identity"), Conformal(0.1, -0.02, 0.03), ReturnModel(0.001, -0.001))
    d = __import__("json").loads(old.to_json())
    d.pop("intervals")  # written before the interval model existed
    b = ModelBundle.from_json(__import__("json").dumps(d))
    out = b.forecast_intervals(expected_return=0.001)
    assert b.intervals is None and out["method"] == "constant_conformal_legacy"
    assert out["intervals"] == [{"level": 0.9, "low": -0.019, "high": 0.031, "alpha_t": None, "coverage": None}]


def test_aci_recovers_coverage_after_a_planted_volatility_shift():
    """Calibrated on calm hours, then volatility doubles: the static interval's coverage collapses,
    ACI's running coverage (trailing week) is back near nominal within `aci_recovery_h` hours."""
    from rayapp.config import load_settings

    s = load_settings([]).tune.intervals
    rng = np.random.default_rng(5)
    cal = np.abs(rng.standard_normal(4000))  # held-out scores of a unit-width interval around 0
    scores = np.sort(cal)
    shift, n = 500, 500 + 2 * s.aci_recovery_h
    y = rng.standard_normal(n) * np.where(np.arange(n) < shift, 1.0, 2.0)

    def interval(i: int, alpha: float) -> tuple[float, float]:
        k = min(len(scores), max(1, int(np.ceil((len(scores) + 1) * (1 - alpha)))))
        return -scores[k - 1], scores[k - 1]

    lo, hi, alpha_used, state = aci_path(interval, y, np.arange(n), 1, 0.9, s.aci_gamma)
    hit = ((y >= lo) & (y <= hi)).astype(float)
    static = np.abs(y) <= interval(0, 0.1)[1]
    assert static[shift:].mean() < 0.7  # the shift is real
    window = pd.Series(hit).rolling(168).mean().to_numpy()
    back = shift + s.aci_recovery_h
    assert window[back] >= 0.85 and hit[back:].mean() >= 0.87, (window[back], hit[back:].mean())
    assert alpha_used[-1] < 0.1 and state.resolved == n - 1


def test_aci_update_and_delayed_feedback():
    st = AciState.start(0.9)
    miss = aci_update(st, False, 0.01)
    assert np.isclose(miss.alpha_t, 0.1 + 0.01 * (0.1 - 1)) and miss.coverage == 0.0
    hit = aci_update(st, True, 0.01)
    assert np.isclose(hit.alpha_t, 0.1 + 0.01 * 0.1) and hit.coverage == 1.0
    y = np.full(60, 10.0)  # every forecast misses
    _, _, used, _ = aci_path(lambda i, a: (-1.0, 1.0), y, np.arange(60), 24, 0.9, 0.01)
    assert np.allclose(used[:24], 0.1) and used[24] < 0.099  # forecast 0 resolves at hour 0 + 24


def test_diebold_mariano():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(2000) ** 2
    b = a.copy()
    same = diebold_mariano(a, b + 1e-12 * rng.standard_normal(2000), 1)
    assert 0.0 < same.p_value <= 1.0
    worse = diebold_mariano(a + 0.3, a, 1)
    assert worse.p_value < 1e-6 and worse.mean_diff > 0
    assert diebold_mariano(a, a + 0.3, 1).p_value > 0.99
    # lag 0 without the HLN factor is the plain one-sample z statistic of the differences
    d = rng.standard_normal(500) + 0.1
    res = diebold_mariano(d, np.zeros(500), 1, hln=False, lag=0)
    assert np.isclose(res.stat, d.mean() / np.sqrt(np.var(d) / 500))
    # overlapping 24 h losses: a HAC variance with lag 23 is wider than lag 0's
    ma = np.convolve(rng.standard_normal(3000), np.ones(24), "valid")
    assert (
        diebold_mariano(ma + 0.2, np.zeros(len(ma)), 24).p_value
        > diebold_mariano(ma + 0.2, np.zeros(len(ma)), 24, lag=0).p_value
    )


def test_interval_model_dict_is_the_json_contract():
    m = IntervalModel("vol", 1, ["x"], [0.05, 0.5, 0.95], [0.9], "", z_quantiles=[-1.6, 0.0, 1.6])
    assert IntervalModel.from_dict(m.as_dict()).as_dict() == m.as_dict()
