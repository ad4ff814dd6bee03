"""Directional and trading metrics, and the naive baselines always reported beside the model.

Positions are +1 (long) or -1 (short) for the next `horizon` hours. With overlapping h-hour
holds the book is h tranches of 1/h of the capital: the tranche entered at hour t replaces the one
entered at t - h. Its hourly return is r1(t) * mean(position over the last h entries), where r1(t)
is the 1-hour return from t to t+1, and trading costs `fee_bps` per unit of capital that changes
sides: |position_t - position_{t-h}| / h per hour (for h = 1: entering costs 1 unit, a long ->
short flip 2). That is an hourly return series, so Sharpe is comparable across horizons.

Without the 1-hour returns (`ret_1h=None`) the h-hour return is booked at entry, position_t *
r_t / h: the same total, but a smoothed series whose Sharpe overstates by about sqrt(h); callers
that have the prices pass `ret_1h` (TrainingFrame.next_ret).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

HOURS_PER_YEAR = 24 * 365


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n."""
    if n <= 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def directional_accuracy(y_true: np.ndarray, pred_up: np.ndarray) -> dict[str, float]:
    y = np.asarray(y_true).astype(bool)
    p = np.asarray(pred_up).astype(bool)
    if len(y) != len(p):
        raise ValueError(f"length mismatch: {len(y)} labels vs {len(p)} predictions")
    n = len(y)
    k = int((y == p).sum())
    lo, hi = wilson_interval(k, n)
    return {"accuracy": k / n if n else float("nan"), "acc_low": lo, "acc_high": hi, "n": n}


def turnover_series(position: np.ndarray, horizon: int = 1) -> np.ndarray:
    """Capital that changes sides each hour: |pos_t - pos_{t-h}| / h (nothing held before the start)."""
    pos = np.asarray(position, dtype=float)
    h = max(1, int(horizon))
    prev = np.concatenate([np.zeros(min(h, len(pos))), pos[:-h]]) if len(pos) > h else np.zeros(len(pos))
    return np.abs(pos - prev) / h


def strategy_returns(
    position: np.ndarray,
    ret: np.ndarray,
    horizon: int = 1,
    fee_bps: float = 0.0,
    ret_1h: np.ndarray | None = None,
) -> np.ndarray:
    """Hourly log returns of the book that enters `position` (+1/-1/0) at each row for `horizon`
    hours, after costs (module docstring). `ret_1h`: the 1-hour return of each row (NaN = unknown,
    no P&L that hour); needed for h > 1 to get an hourly series instead of one booked at entry."""
    pos = np.asarray(position, dtype=float)
    h = max(1, int(horizon))
    if h == 1 or ret_1h is None:
        gross = pos * np.asarray(ret, dtype=float) / h
    else:
        csum = np.concatenate([[0.0], np.cumsum(pos)])
        idx = np.arange(1, len(pos) + 1)
        exposure = (csum[idx] - csum[np.maximum(0, idx - h)]) / h  # mean of the last h entries, 1/h each
        r1 = np.nan_to_num(np.asarray(ret_1h, dtype=float), nan=0.0)
        gross = exposure * r1
    return gross - turnover_series(pos, h) * fee_bps / 1e4


def sharpe(returns: np.ndarray, periods_per_year: int = HOURS_PER_YEAR) -> float:
    r = np.asarray(returns, dtype=float)
    sd = r.std(ddof=1) if len(r) > 1 else 0.0
    if sd == 0 or not np.isfinite(sd):
        return 0.0
    return float(r.mean() / sd * math.sqrt(periods_per_year))


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough fall of the equity curve exp(cumsum(log returns)), as a fraction <= 0."""
    r = np.asarray(returns, dtype=float)
    if len(r) == 0:
        return 0.0
    equity = np.exp(np.concatenate([[0.0], np.cumsum(r)]))
    peak = np.maximum.accumulate(equity)
    return float((equity / peak - 1.0).min())


def total_return(returns: np.ndarray) -> float:
    return float(np.expm1(np.sum(np.asarray(returns, dtype=float))))


def win_rate(position: np.ndarray, ret: np.ndarray) -> float:
    pos = np.asarray(position, dtype=float)
    pnl = pos * np.asarray(ret, dtype=float)
    active = pos != 0
    return float((pnl[active] > 0).mean()) if active.any() else float("nan")


def trading_metrics(
    position: np.ndarray,
    ret: np.ndarray,
    horizon: int = 1,
    fee_bps: float = 10.0,
    ret_1h: np.ndarray | None = None,
) -> dict[str, float]:
    gross = strategy_returns(position, ret, horizon, 0.0, ret_1h)
    net = strategy_returns(position, ret, horizon, fee_bps, ret_1h)
    return {
        "sharpe": sharpe(gross),
        "sharpe_net": sharpe(net),
        "max_drawdown": max_drawdown(gross),
        "max_drawdown_net": max_drawdown(net),
        "total_return": total_return(gross),
        "total_return_net": total_return(net),
        "win_rate": win_rate(position, ret),
        "turnover": float(turnover_series(position, horizon).sum()),
    }


def evaluate(
    pred_up: np.ndarray,
    y: np.ndarray,
    ret: np.ndarray,
    horizon: int = 1,
    fee_bps: float = 10.0,
    p_up: np.ndarray | None = None,
    ret_1h: np.ndarray | None = None,
) -> dict[str, float]:
    """Accuracy (with Wilson interval) and long/short trading metrics of a direction forecast."""
    pred = np.asarray(pred_up).astype(bool)
    out: dict[str, float] = dict(directional_accuracy(y, pred))
    out.update(trading_metrics(np.where(pred, 1.0, -1.0), ret, horizon, fee_bps, ret_1h))
    if p_up is not None:
        p = np.clip(np.asarray(p_up, dtype=float), 1e-6, 1 - 1e-6)
        yy = np.asarray(y, dtype=float)
        out["brier"] = float(np.mean((p - yy) ** 2))
        out["logloss"] = float(-np.mean(yy * np.log(p) + (1 - yy) * np.log(1 - p)))
    return out


def baseline_predictions(last_ret: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """Direction forecasts of the naive baselines (True = up)."""
    last = np.asarray(last_ret, dtype=float)
    # An unknown or zero last return carries no sign: persistence and reversal then say "up",
    # the unconditional majority, rather than silently dropping the row.
    known = np.isfinite(last) & (last != 0)
    persistence = np.where(known, last > 0, True)
    reversal = np.where(known, last < 0, True)
    return {"always_up": np.ones(n, dtype=bool), "persistence": persistence, "reversal": reversal}


def evaluate_baselines(
    y: np.ndarray,
    ret: np.ndarray,
    last_ret: np.ndarray,
    horizon: int = 1,
    fee_bps: float = 10.0,
    ret_1h: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, Any]] = {}
    for name, pred in baseline_predictions(last_ret, len(y)).items():
        out[name] = evaluate(pred, y, ret, horizon, fee_bps, ret_1h=ret_1h)
    # Buy-and-hold: long all the time, one entry fee; its hit rate is always-up's.
    bh = dict(directional_accuracy(y, np.ones(len(y), dtype=bool)))
    bh.update(trading_metrics(np.ones(len(y)), ret, horizon, fee_bps, ret_1h))
    out["buy_and_hold"] = bh
    return out


def best_baseline(baselines: dict[str, dict[str, float]], metric: str = "accuracy") -> tuple[str, float]:
    """The strongest direction baseline (buy-and-hold shares always-up's accuracy, so it is skipped)."""
    cands = {k: v[metric] for k, v in baselines.items() if k != "buy_and_hold"}
    name = max(cands, key=lambda k: cands[k])
    return name, float(cands[name])
