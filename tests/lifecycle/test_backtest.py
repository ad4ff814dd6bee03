"""`rayapp backtest` on generated data: no look-ahead, the weekly policy is the plain walk-forward,
Ray and the loop give the same predictions, calibration never loses to the raw output where it is
chosen, a planted signal is found and noise is not, the triggered policy records its events, and
the command's error paths."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.config import LifecycleSettings
from rayapp.lifecycle import (
    BacktestSettings,
    History,
    backtest_horizon,
    deflated_sharpe,
    finish,
    fit_folds,
    plan_folds,
)
from rayapp.lifecycle.backtest import expected_max_sharpe, model_state
from rayapp.training import WalkForwardSplit
from rayapp.training.model import cv_evaluate
from tests.training.factories import make_frame

PARAMS = {"n_estimators": 25, "max_depth": 3, "learning_rate": 0.2}
BT = BacktestSettings(
    test_h=48, min_train_h=400, warmup_weeks=8, calibration_weeks=8, calibration_min_weeks=4, n_boot=300
)
# The live policy's thresholds scaled to 48-hour "weeks".
LC = LifecycleSettings(
    schedule_h=96,
    max_age_h=240,
    cooldown_h=24,
    drift={"hours": 48, "min_rows": 24, "n_boot": 200},
    degradation={"window": 96, "min_resolved": 48},
    gate={"n_splits": 6, "test_size_h": 48, "n_boot": 200, "alpha": 0.1},
    shadow={"min_resolved": 40, "max_hours": 192, "n_boot": 200, "alpha": 0.2},
    watch={"hours": 96, "min_resolved": 20, "n_boot": 200},
)
KW = {"fee_bps": 10.0, "conformal_alpha": 0.1, "seed": 0}


def _fit(frame, **kw):
    plans = plan_folds(frame, BT.test_h, BT.min_train_h, **kw)
    return plans, fit_folds([(frame, plans)], PARAMS, 0, use_ray=False, nthread=1)[0]


@pytest.fixture(scope="module")
def planted():
    frame = make_frame(2400, {"rsi": 0.6}, seed=1)
    plans, fits = _fit(frame)
    return frame, plans, fits


@pytest.fixture(scope="module")
def planted_run(planted):
    frame, plans, fits = planted
    hist = History.build(frame, plans, fits)
    return hist, backtest_horizon(hist, bt=BT, lifecycle=LC, policies=["never", "weekly", "triggered"], **KW)


@pytest.mark.parametrize(("horizon", "window"), [(1, "expanding"), (6, "sliding")])
def test_no_model_sees_a_label_that_ends_at_or_after_its_boundary(horizon, window):
    frame = make_frame(1600, seed=2, horizon=horizon)
    plans, fits = _fit(frame, window=window, train_size_h=500)
    hours = (frame.times.as_unit("s").asi8 // 3600).astype(int)
    assert len(plans) >= 20
    for plan, fit in zip(plans, fits, strict=True):
        assert fit.train_last_h + horizon < fit.boundary_h  # its last label ends before b_k
        assert hours[fit.train_hi - 1] == fit.train_last_h and hours[plan.start] == fit.boundary_h
        assert fit.train_hi <= plan.start and len(fit.p) == len(frame) - plan.start
        if window == "sliding":
            assert fit.train_hi - fit.train_lo <= 500 + horizon
    assert all(b.boundary_h - a.boundary_h == BT.test_h for a, b in itertools.pairwise(plans))


def test_the_future_cannot_change_what_was_decided_at_a_boundary(planted):
    """Scramble every label and return not yet known at b_k: model k, its calibration, interval,
    band and climatology stay exactly the same."""
    frame, plans, fits = planted
    k = 12
    hist = History.build(frame, plans, fits)
    cut = hist.known_end(0, len(frame), plans[k].boundary_h)
    assert frame.times[cut - 1] + pd.Timedelta(hours=1) < frame.times[plans[k].start]
    future = make_frame(2400, {"rsi": 0.6}, seed=1)
    future.ret[cut:] = np.random.default_rng(5).standard_normal(len(frame) - cut) * 0.01
    future.y[cut:] = (future.ret[cut:] > 0).astype(np.int8)
    refit = fit_folds([(future, plans[k : k + 1])], PARAMS, 0, use_ray=False, nthread=1)[0][0]
    assert refit.train_lo == fits[k].train_lo and refit.train_hi == fits[k].train_hi
    np.testing.assert_array_equal(refit.p, fits[k].p)
    hist2 = History.build(future, plans, [*fits[:k], refit, *fits[k + 1 :]])
    a, b = model_state(hist, k, BT, 10.0, 0.1), model_state(hist2, k, BT, 10.0, 0.1)
    assert a.calibration == b.calibration and a.conformal == b.conformal
    assert a.band == b.band and a.climatology == b.climatology and a.return_model == b.return_model
    assert not np.array_equal(hist.y, hist2.y)


def test_weekly_policy_is_the_plain_walk_forward(planted, planted_run):
    frame, plans, _ = planted
    _, hb = planted_run
    folds = WalkForwardSplit(len(plans), BT.test_h, 1, min_train=BT.min_train_h).folds(frame.times)
    oof = cv_evaluate(frame, folds, PARAMS, 0, "cpu", 1).oof_p
    s = hb.series["weekly"]
    start = plans[hb.report["warmup_weeks"]].start
    np.testing.assert_allclose(s.p_raw, oof[start:], rtol=0, atol=1e-6)  # stored as float32
    assert hb.report["policies"]["weekly"]["served_models"] == list(range(hb.report["warmup_weeks"], len(plans)))
    assert set(hb.report["policies"]["never"]["served_models"]) == {hb.report["warmup_weeks"]}


def test_calibration_never_loses_to_the_raw_output_on_its_selection_hours(planted_run):
    _, hb = planted_run
    chosen = [m for m in hb.report["calibration"]["models"] if m["selection_logloss"]]
    assert len(chosen) >= 10
    for m in chosen:
        assert m["selection_logloss"][m["method"]] <= m["selection_logloss"]["identity"] + 1e-9


def test_a_planted_signal_beats_the_baselines_and_calibration_holds(planted_run):
    _, hb = planted_run
    w = hb.report["policies"]["weekly"]
    assert w["acc_low"] > 0.5 and w["accuracy"] > w["best_baseline_accuracy"]
    assert w["p_value"] < 0.05
    pr = w["probabilistic"]
    assert pr["calibrated"]["brier"] < pr["climatology"]["brier"]
    assert 0.8 < w["conformal"]["coverage"] < 0.97
    assert set(w["per_regime"]) == {"low", "mid", "high"} and w["per_year"]
    assert w["trading"]["band"]["sharpe_net"] > w["trading"]["buy_and_hold"]["sharpe_net"]
    assert hb.report["dsr"]["n_trials"] == 3 * (len(BT.band_grid) + 1)


def test_noise_does_not_beat_the_best_baseline():
    frame = make_frame(2400, seed=4)
    plans, fits = _fit(frame)
    hb = backtest_horizon(History.build(frame, plans, fits), bt=BT, lifecycle=LC, policies=["weekly"], **KW)
    w = hb.report["policies"]["weekly"]
    assert w["p_value"] > 0.05
    assert w["acc_low"] < 0.5 < w["acc_high"] or w["acc_high"] < 0.5


def test_the_triggered_policy_records_every_decision_with_its_evidence(planted_run):
    hist, hb = planted_run
    events = hb.report["events"]
    kinds = {e["kind"] for e in events}
    assert {"start", "trigger", "retrain", "gate", "shadow_start", "shadow"} <= kinds
    assert [e["week"] for e in events] == sorted(e["week"] for e in events)
    for e in events:
        assert e["time"] == hist.times[hist.plans[e["week"]].start].isoformat()
    for g in (e for e in events if e["kind"] == "gate"):
        assert "p_vs_baseline" in g["checks"] and g["reasons"]
    for s in (e for e in events if e["kind"] == "shadow"):
        assert s["decision"] in ("promote", "refuse") and "n" in s["evidence"]
    served = hb.report["policies"]["triggered"]["served_models"]
    promotions = [e for e in events if e["kind"] == "promotion"]
    rollbacks = [e for e in events if e["kind"] == "rollback"]
    assert promotions, "the planted signal's challengers never won a shadow"
    k0 = hb.report["warmup_weeks"]
    changes = {k0 + i: m for i, (a, m) in enumerate(itertools.pairwise(served), start=1) if m != a}
    decided = {e["week"]: e["model"] for e in promotions} | {e["week"]: e["restored"] for e in rollbacks}
    assert changes == decided  # the serving model changes exactly at a promotion or a rollback
    res = finish({1: hb}, {"horizons": [1]}, {"mode": "loop"})
    json.dumps(res.report, allow_nan=False)  # plain JSON: no NaN, no numpy types
    assert res.report["headline"]["1"]["weekly"]["p_value_holm"] >= res.report["headline"]["1"]["weekly"]["p_value"]


def test_deflated_sharpe():
    rng = np.random.default_rng(0)
    r = 0.001 + 0.01 * rng.standard_normal(5000)
    assert deflated_sharpe(r, 0.0)["dsr"] > 0.99
    assert expected_max_sharpe(0.0004, 1) == 0.0
    assert 0 < expected_max_sharpe(0.0004, 10) < expected_max_sharpe(0.0004, 100)
    assert deflated_sharpe(r, expected_max_sharpe(0.01, 1000))["dsr"] < 0.5


@pytest.mark.integration
def test_ray_tasks_and_the_loop_give_identical_predictions(ray_cluster):
    frame = make_frame(1200, {"rsi": 0.5}, seed=3, horizon=4)
    plans = plan_folds(frame, 96, 400)
    ray_fits = fit_folds([(frame, plans)], PARAMS, 0, use_ray=True)[0]
    loop_fits = fit_folds([(frame, plans)], PARAMS, 0, use_ray=False, nthread=1)[0]
    assert len(ray_fits) == len(plans) >= 7
    for a, b in zip(ray_fits, loop_fits, strict=True):
        assert a.train_lo == b.train_lo and a.train_hi == b.train_hi
        np.testing.assert_array_equal(a.p, b.p)


# ---- the command -------------------------------------------------------------------------------
def write_price_csv(path: Path, n_hours: int, seed: int = 0) -> Path:
    """A random-walk hourly file in the CryptoCompare layout `price_file_frame` reads."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2022-01-01", periods=n_hours, freq="h", tz="UTC")
    close = 20000 * np.exp(np.cumsum(0.004 * rng.standard_normal(n_hours)))
    open_ = np.concatenate([[20000.0], close[:-1]])
    vol = rng.uniform(100, 1000, n_hours)
    pd.DataFrame(
        {
            "time": idx.as_unit("s").asi8,
            "date": idx.strftime("%Y-%m-%d"),
            "hour": idx.hour,
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "close": close,
            "low": np.minimum(open_, close) * 0.999,
            "volumefrom": vol,
            "volumeto": vol * close,
        }
    ).to_csv(path, index=False)
    return path


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["backtest", "--help"])
    assert exc.value.code == 0
    assert "--price-csv" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--price-csv", "/nonexistent/prices.csv"], "does not exist"),
        (["--horizons", "1,x"], "--horizons must be"),
        (["--horizons", "0"], "--horizons must be"),
        (["--policies", "weekly,monthly"], "unknown policy"),
        (["--test-h", "0"], "bad backtest setting"),
    ],
)
def test_bad_input_is_exit_2_with_one_error_line(args, fragment, tmp_path, capsys):
    assert main(["backtest", *args, f"state_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1 and fragment in lines[0], err


def test_default_price_file_missing_is_exit_2(tmp_path, capsys):
    assert main(["backtest", f"replay.data={tmp_path}", f"state_dir={tmp_path}"]) == 2
    assert "pass --price-csv FILE" in capsys.readouterr().err


def test_too_short_a_file_is_exit_2(tmp_path, capsys):
    csv = write_price_csv(tmp_path / "p.csv", 600)
    assert main(["backtest", "--price-csv", str(csv), "--horizons", "1", f"state_dir={tmp_path}"]) == 2
    assert "not enough rows for a backtest" in capsys.readouterr().err


@pytest.mark.integration  # MLflow's tracking store
def test_command_writes_the_report_and_logs_it(tmp_path, capsys):
    import mlflow

    csv = write_price_csv(tmp_path / "p.csv", 2000)
    out = tmp_path / "rep"
    args = ["--price-csv", str(csv), "--horizons", "1,4", "--sequential", "--no-progress", "--report-dir", str(out)]
    args += ["--test-h", "48", "--min-train-h", "500", "--warmup-weeks", "8", "--policies", "weekly,triggered"]
    rc = main(["backtest", *args, f"state_dir={tmp_path / 's'}", "model.params.n_estimators=20"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "report:" in text
    rep = json.loads((out / "latest" / "backtest.json").read_text())
    assert set(rep["horizons"]) == {"1", "4"} and set(rep["headline"]["4"]) == {"weekly", "triggered"}
    assert rep["horizons"]["4"]["block_h"] == 24 and rep["settings"]["test_h"] == 48
    for name in ("backtest.md", "equity_h1.png", "reliability_h4.png", "years_h1.png"):
        assert (out / name).stat().st_size > 0
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="attributes.run_name = 'backtest'")
    assert len(runs) == 1 and "metrics.h1_weekly_accuracy" in runs.columns
    arts = mlflow.MlflowClient().list_artifacts(runs.iloc[0].run_id, "backtest")
    assert {Path(a.path).name for a in arts} >= {"backtest.json", "backtest.md"}


def test_real_history_half_a_year(shared_data):
    from rayapp.training import price_file_frame

    frame = price_file_frame(shared_data / "btc_usd_1h_2019-11_2025-05.csv", 4).between("2022-01-01", "2022-07-01")
    plans = plan_folds(frame, 168, 1000)
    fits = fit_folds([(frame, plans)], {**PARAMS, "n_estimators": 50}, 0, use_ray=False)[0]
    bt = BacktestSettings(warmup_weeks=8, calibration_min_weeks=4, n_boot=300)
    hb = backtest_horizon(
        History.build(frame, plans, fits), bt=bt, lifecycle=LifecycleSettings(), policies=["weekly", "triggered"], **KW
    )
    w = hb.report["policies"]["weekly"]
    assert w["n"] == (len(plans) - 8) * 168 and w["block_h"] == 24
    assert 0.4 < w["accuracy"] < 0.6 and 0.6 < w["conformal"]["coverage"] <= 1.0
    assert all(np.isfinite(v["brier"]) for v in w["probabilistic"].values())
