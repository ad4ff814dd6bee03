"""Intervals in the lifecycle: live coverage below nominal by more than the margin is a trigger;
a challenger whose interval score loses to the champion's (paired DM test) fails the gate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from rayapp.config import load_settings
from rayapp.lifecycle import Champion, Live, coverage_trigger, evaluate_triggers
from rayapp.training import quality_gate
from rayapp.training.gate import interval_check

NOW = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def cfg():
    return load_settings([]).lifecycle


def _champ() -> Champion:
    return Champion("3", 1, NOW - timedelta(hours=100), None, 0.52, 0.69)


def _live(n: int, coverage: float, seed: int = 0) -> Live:
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.5).astype(int)
    return Live(p_up=np.full(n, 0.5), y=y, covered=(rng.uniform(size=n) < coverage).astype(float))


def test_coverage_below_nominal_by_more_than_the_margin_fires(cfg):
    c = cfg.coverage
    low = coverage_trigger(cfg, _champ(), _live(c.window, c.level - c.margin - 0.06))
    assert low.fired and low.evidence["coverage"] < c.level - c.margin and low.p_value < 0.05
    ok = coverage_trigger(cfg, _champ(), _live(c.window, c.level))
    assert not ok.fired and ok.evidence["judged"]
    few = coverage_trigger(cfg, _champ(), _live(c.min_resolved - 1, 0.5))
    assert not few.fired and not few.evidence["judged"]
    no_intervals = coverage_trigger(cfg, _champ(), Live(p_up=np.full(300, 0.5), y=np.zeros(300)))
    assert not no_intervals.fired and not no_intervals.evidence["judged"]
    fired = [t.name for t in evaluate_triggers(cfg, NOW, _champ(), NOW - timedelta(hours=30), None, _live(336, 0.7))]
    assert "coverage" in fired
    off = cfg.model_copy(update={"coverage": c.model_copy(update={"enabled": False})})
    assert coverage_trigger(off, _champ(), _live(336, 0.5)).evidence == {"off": True}


def _scores(n: int, seed: int, scale: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vol = np.exp(np.convolve(rng.standard_normal(n + 23), np.ones(24) / 5, "valid"))  # clustered
    return vol * scale * (1 + rng.exponential(size=n))


def test_a_challenger_that_loses_on_interval_score_fails_the_gate():
    rows = np.arange(2000)
    champion = _scores(2000, 1, 1.0)
    worse = champion * 1.15
    alike = champion * np.random.default_rng(2).uniform(0.97, 1.03, 2000)
    lose = interval_check(rows, worse, rows, champion, 1, 0.05, "same folds")
    assert lose["judged"] and lose["loses"] and lose["p_worse"] < 0.05
    tie = interval_check(rows, alike, rows, champion, 1, 0.05)
    assert tie["judged"] and not tie["loses"]
    none = interval_check(rows, worse, None, None, 1, 0.05, "no champion")
    assert none == {"judged": False, "note": "no champion"}

    acc = np.full(6, 0.56)
    base = np.full(6, 0.5)
    passed = quality_gate(acc, "always_up", base, 0.01, None, 0.05, interval=tie)
    failed = quality_gate(acc, "always_up", base, 0.01, None, 0.05, interval=lose)
    assert passed.promote and not failed.promote
    assert any("interval score" in r and "loses" in r for r in failed.reasons), failed.reasons
    assert failed.checks["interval"]["loses"]


def test_the_interval_walk_forward_reports_every_baseline_per_year_and_regime(tmp_path):
    """`rayapp backtest --intervals` on a short GARCH-like history: every method on the same hours,
    DM p-values against each baseline, per year and per volatility regime, written and flattened."""
    import pandas as pd

    from rayapp.lifecycle import run_interval_backtest
    from rayapp.lifecycle.interval_backtest import flat_metrics, write_interval_report
    from rayapp.training import IntervalConfig, build_training_frame

    rng = np.random.default_rng(4)
    n = 1800
    idx = pd.date_range("2023-12-01", periods=n + 1, freq="h", tz="UTC")
    r, s2 = np.zeros(n + 1), 1e-4
    for t in range(1, n + 1):
        s2 = 2e-6 + 0.1 * r[t - 1] ** 2 + 0.88 * s2
        r[t] = np.sqrt(s2) * rng.standard_t(5) * np.sqrt(3 / 5)
    close = pd.Series(40_000 * np.exp(np.cumsum(r)), index=idx)
    regime = np.tile([0.0, 1.0, 2.0], n // 3 + 1)[:n]
    feats = pd.DataFrame({"hour_of_day": idx.hour[:-1].to_numpy(float), "volatility_regime": regime}, index=idx[:-1])
    frame = build_training_frame(feats, close, horizon=1)
    cfg = IntervalConfig(params={"n_estimators": 30, "max_depth": 3})
    rep = run_interval_backtest(frame, cfg, eval_h=2 * 168, warmup=2, train_h=1000, calibration_weeks=2, nthread=1)
    assert set(rep["methods"]) == {"constant", "ewma", "garch", "har", "model_vol", "model_vol_aci"}
    assert set(rep["dm_winkler90"]) == {"constant", "ewma", "garch", "har", "model_vol"}
    assert rep["n"] == 2 * 168 and {"2024"} <= set(rep["per_year"]) and set(rep["per_regime"]) == {"low", "mid", "high"}
    assert rep["wall_s"]["garch"] > 0 and rep["wall_s"]["model_vol"] > 0
    for m in rep["methods"].values():
        assert 0 < m["90"]["coverage"] <= 1 and m["90"]["width"] > 0 and np.isfinite(m["qlike"])
    write_interval_report({1: rep}, tmp_path)
    assert "garch" in (tmp_path / "intervals.md").read_text() and (tmp_path / "intervals.json").exists()
    assert "intervals_h1_model_vol_aci_winkler_90" in flat_metrics({1: rep})
