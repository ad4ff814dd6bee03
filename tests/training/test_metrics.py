"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rayapp.training.metrics import (
    baseline_predictions,
    best_baseline,
    directional_accuracy,
    evaluate_baselines,
    max_drawdown,
    sharpe,
    strategy_returns,
    total_return,
    trading_metrics,
    wilson_interval,
)
from rayapp.training.significance import block_bootstrap_pvalue, holm, paired_ttest

POS = np.array([1.0, 1.0, -1.0, -1.0])
RET = np.array([0.01, -0.02, -0.01, 0.03])


def test_wilson_interval_matches_the_textbook_value():
    lo, hi = wilson_interval(50, 100)
    assert lo == pytest.approx(0.40383, abs=1e-5)
    assert hi == pytest.approx(0.59617, abs=1e-5)
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_directional_accuracy():
    m = directional_accuracy(np.array([1, 0, 0, 1]), np.array([True, True, False, False]))
    assert m["accuracy"] == 0.5 and m["n"] == 4
    with pytest.raises(ValueError, match="length mismatch"):
        directional_accuracy(np.array([1, 0]), np.array([True]))


def test_strategy_returns_charge_the_fee_per_unit_of_position_change():
    # gross = [.01, -.02, .01, -.03]; turnover [1, 0, 2, 0] at 10 bps
    net = strategy_returns(POS, RET, horizon=1, fee_bps=10)
    assert net == pytest.approx([0.009, -0.02, 0.008, -0.03])
    assert strategy_returns(POS, RET, horizon=2) == pytest.approx([0.005, -0.01, 0.005, -0.015])


def test_overlapping_horizons_are_an_hourly_book_of_h_tranches():
    # h = 2: two tranches of 1/2 capital. Hourly exposure = mean of the last 2 entries:
    # [0.5, 1, 0, -1]; 1-hour returns r1 -> gross = exposure * r1.
    r1 = np.array([0.01, -0.02, 0.005, 0.01])
    gross = strategy_returns(POS, RET, horizon=2, ret_1h=r1)
    assert gross == pytest.approx([0.005, -0.02, 0.0, -0.01])
    # Costs: the tranche entered at t replaces the one from t-2: |pos_t - pos_{t-2}| / 2 units
    # -> [0.5, 0.5, 1, 1] units at 10 bps.
    net = strategy_returns(POS, RET, horizon=2, fee_bps=10, ret_1h=r1)
    assert net - gross == pytest.approx([-0.0005, -0.0005, -0.001, -0.001])


def test_buy_and_hold_sharpe_does_not_depend_on_the_horizon():
    # Booked at entry, an h-hour hold is a moving average whose Sharpe overstates by ~sqrt(h).
    rng = np.random.default_rng(0)
    r1 = rng.normal(0.0005, 0.01, 5000)
    close = np.concatenate([[0.0], np.cumsum(r1)])
    for h in (1, 4, 24):
        n = len(r1) - h + 1
        ret_h = close[h : h + n] - close[:n]
        held = trading_metrics(np.ones(n), ret_h, h, 0.0, r1[:n])
        # the same hours held the whole time (less the first h-1 hours' ramp-up)
        assert held["sharpe"] == pytest.approx(sharpe(r1[:n]), rel=0.02)
        assert trading_metrics(np.ones(n), ret_h, h, 10.0, r1[:n])["turnover"] == pytest.approx(1.0)
    n = len(r1) - 23
    booked = trading_metrics(np.ones(n), close[24 : 24 + n] - close[:n], 24, 0.0)["sharpe"]
    assert booked > 3 * sharpe(r1[:n])  # the old entry-booked series: what this replaces


def test_trading_metrics_by_hand():
    m = trading_metrics(POS, RET, fee_bps=10)
    assert m["total_return"] == pytest.approx(math.exp(-0.03) - 1)
    assert m["total_return_net"] == pytest.approx(math.exp(-0.033) - 1)
    # equity 1, e^.01, e^-.01, 1, e^-.03: peak e^.01, trough e^-.03
    assert m["max_drawdown"] == pytest.approx(math.exp(-0.04) - 1)
    assert m["win_rate"] == 0.5
    assert m["turnover"] == 3.0
    # mean -0.0075, sd (ddof 1) sqrt(0.001275/3), hourly -> x sqrt(8760)
    assert m["sharpe"] == pytest.approx(-0.0075 / math.sqrt(0.001275 / 3) * math.sqrt(8760))
    assert sharpe(np.zeros(5)) == 0.0
    assert max_drawdown(np.array([0.01, 0.02])) == 0.0
    assert total_return(np.array([])) == 0.0


def test_baselines():
    last = np.array([0.01, -0.02, np.nan, 0.0])
    p = baseline_predictions(last, 4)
    assert p["always_up"].tolist() == [True] * 4
    assert p["persistence"].tolist() == [True, False, True, True]
    assert p["reversal"].tolist() == [False, True, True, True]
    y = np.array([1, 0, 0, 1])
    b = evaluate_baselines(y, RET, last, fee_bps=10)
    assert b["always_up"]["accuracy"] == 0.5
    assert b["persistence"]["accuracy"] == 0.75
    assert b["reversal"]["accuracy"] == 0.25
    # buy and hold pays one entry fee
    assert b["buy_and_hold"]["total_return_net"] == pytest.approx(math.exp(0.01 - 0.001) - 1)
    assert best_baseline(b) == ("persistence", 0.75)


def test_significance_helpers():
    t = paired_ttest(np.array([0.6, 0.62, 0.58]), np.array([0.5, 0.52, 0.49]))
    assert t["mean_diff"] == pytest.approx(0.0966667, abs=1e-6)
    assert t["p_ttest"] < 0.01 and t["cohens_d"] > 5
    assert paired_ttest(np.array([0.5, 0.5]), np.array([0.5, 0.5]))["p_ttest"] == 1.0
    rng = np.random.default_rng(0)
    noise = rng.choice([-1.0, 0.0, 1.0], size=2000)
    assert block_bootstrap_pvalue(noise, 24, 500, seed=1) > 0.05
    assert block_bootstrap_pvalue(noise + 0.3, 24, 500, seed=1) < 0.01
    assert block_bootstrap_pvalue(np.zeros(100)) == 1.0
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
