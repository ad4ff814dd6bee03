"""The interval model inside a training run: out-of-fold on the gate's long walk-forward,
conformalized on held-out folds, and compared with the champion's intervals on the same hours.

On the gate folds (lifecycle.gate), fold j's interval model is fitted on fold j's training rows
and predicts fold j's test hours; its CQR correction comes from the earlier folds' out-of-fold
predictions only (`interval_walk_forward` with the folds as boundaries), so every reported figure
and the gate's interval scores are out of sample. The shipped model is fitted on every row and
calibrated on the out-of-fold predictions of all the folds (held-out training folds, Romano et
al. 2019). The champion's interval configuration is replayed on the same folds for the paired
comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.registry import IntervalModel, level_key
from rayapp.training.cv import Fold
from rayapp.training.data import TrainingFrame
from rayapp.training.interval_metrics import interval_summary, winkler
from rayapp.training.intervals import (
    Boundary,
    IntervalConfig,
    WalkForwardIntervals,
    aci_step,
    calibrate,
    fit_interval_booster,
    forward_realized_variance,
    interval_features,
    interval_walk_forward,
)

log = get_logger(__name__)
GATE_LEVEL = 0.9
MIN_CAL_FOLDS = 2  # folds that only calibrate the first evaluated one


@dataclass
class IntervalOutcome:
    model: IntervalModel
    report: dict[str, Any]
    rows: np.ndarray  # the gate's evaluated hours (positions in the frame)
    winkler90: np.ndarray  # the challenger's per-hour 90 % Winkler score on them
    wf: WalkForwardIntervals | None = field(default=None, repr=False)


def _same_setup(model: IntervalModel, cfg: IntervalConfig, base: list[str], seed: int) -> bool:
    from rayapp.features import RV_FEATURES

    c = model.report.get("config", {})
    mine = [n for n in model.feature_names if n not in RV_FEATURES]
    return bool(
        c.get("method") == cfg.method
        and [float(q) for q in c.get("quantiles", [])] == [float(q) for q in cfg.quantiles]
        and [float(v) for v in c.get("levels", [])] == [float(v) for v in cfg.levels]
        and dict(c.get("params", {})) == dict(cfg.params)
        and model.report.get("seed") == seed
        and mine == base
    )


def fold_boundaries(folds: list[Fold]) -> list[Boundary]:
    out = []
    for f in folds:
        tr = np.asarray(f.train)
        if len(tr) and int(tr[-1]) - int(tr[0]) + 1 != len(tr):
            raise ValueError(f"fold {f.index}: training rows are not one contiguous range")
        out.append(Boundary(int(f.test[0]), int(f.test[-1]) + 1, int(tr[0]), int(tr[-1]) + 1))
    return out


def oof_intervals(
    frame: TrainingFrame,
    folds: list[Fold],
    cfg: IntervalConfig,
    seed: int,
    nthread: int | None,
    baselines: tuple[str, ...] = ("constant", "ewma"),
    columns: list[str] | None = None,  # the frame's columns to use (the RV group is always added)
) -> WalkForwardIntervals:
    Xi = interval_features(frame.X if columns is None else frame.X[columns], frame.last_ret)
    return interval_walk_forward(
        Xi,
        frame.ret,
        frame.last_ret,
        frame.horizon,
        fold_boundaries(folds),
        cfg,
        calibration_weeks=len(folds),
        warmup=min(MIN_CAL_FOLDS, len(folds) - 1),
        seed=seed,
        nthread=nthread,
        methods=(cfg.method,),
        baselines=baselines,
    )


def fit_intervals(
    frame: TrainingFrame, folds: list[Fold], cfg: IntervalConfig, seed: int, nthread: int | None
) -> IntervalOutcome:
    """The shipped interval model (fitted on every row, CQR on all folds' out-of-fold rows) and its
    out-of-sample report beside the constant band and EWMA on the same hours."""
    wf = oof_intervals(frame, folds, cfg, seed, nthread)
    Xi = interval_features(frame.X, frame.last_ret)
    rv_fwd = forward_realized_variance(frame.times, frame.last_ret, frame.horizon)
    model = fit_interval_booster(Xi.to_numpy(np.float64), frame.ret, list(Xi.columns), cfg, seed, nthread, rv_fwd)
    model.horizon_h = frame.horizon
    model.aci_gamma = aci_step(cfg.aci_gamma, frame.horizon)
    q = wf.oof_q[cfg.method]
    held = np.flatnonzero(np.isfinite(q).all(axis=1))
    calibrate(model, q[held], frame.ret[held])
    name = f"model_{cfg.method}"
    report: dict[str, Any] = {
        "method": cfg.method,
        "config": {"method": cfg.method, "quantiles": cfg.quantiles, "levels": cfg.levels, "params": cfg.params},
        "aci_gamma": aci_step(cfg.aci_gamma, frame.horizon),
        "seed": seed,
        "n_calibration": len(held),
        "n_evaluated": len(wf.rows),
        "cqr": dict(model.cqr),
    }
    for m in (name, f"{name}_aci", "constant", "ewma"):
        for level, (lo, hi) in wf.intervals[m].items():
            for k, v in interval_summary(lo, hi, wf.y, level).items():
                report[f"{m.replace(name, 'model')}_{k}_{round(level * 100)}"] = v
    model.report = report
    lo, hi = wf.intervals[name][GATE_LEVEL]
    return IntervalOutcome(model, report, wf.rows, winkler(lo, hi, wf.y, GATE_LEVEL), wf)


def champion_interval_scores(
    frame: TrainingFrame,
    folds: list[Fold],
    champion_bundle: Any,
    seed: int,
    nthread: int | None,
    challenger: IntervalOutcome | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """(rows, per-hour 90 % Winkler) of the champion's interval configuration refitted on each of
    the same folds, and a note. None: not comparable (no champion, another horizon, features not
    in this frame, or an older bundle without an interval model)."""
    if champion_bundle is None:
        return None, None, "no champion: no interval comparison"
    if int(champion_bundle.horizon_h) != frame.horizon:
        return None, None, "the champion has another horizon: no interval comparison"
    iv = champion_bundle.intervals
    if iv is None:
        # A bundle from before the interval model serves the constant band: a different kind of
        # forecast, which the out-of-fold report compares on the same hours (constant_* figures).
        # The gate compares like with like, so this one migration is not blocked by it.
        return None, None, "the champion serves the legacy constant band: not compared (see the interval report)"
    c = iv.report.get("config", {})
    cfg = IntervalConfig(
        method=str(c.get("method", iv.method)),
        quantiles=list(c.get("quantiles", iv.quantiles)),
        levels=list(c.get("levels", iv.levels)),
        params=dict(c.get("params", {})),
    )
    from rayapp.features import RV_FEATURES

    base = [n for n in iv.feature_names if n not in RV_FEATURES]
    missing = [n for n in base if n not in frame.X.columns]
    if missing:
        return None, None, f"the champion's interval model uses features not in this frame {missing}"
    if level_key(GATE_LEVEL) not in {level_key(v) for v in cfg.levels}:
        cfg.levels = sorted({*cfg.levels, GATE_LEVEL})
    if challenger is not None and _same_setup(challenger.model, cfg, base, seed):
        # Deterministic fits of the same configuration on the same rows: the replay would
        # reproduce the challenger's own scores, so they are reused (the comparison is a tie).
        return challenger.rows, challenger.winkler90, "the champion's interval configuration is the challenger's"
    wf = oof_intervals(frame, folds, cfg, seed, nthread, baselines=(), columns=base)
    lo, hi = wf.intervals[f"model_{cfg.method}"][GATE_LEVEL]
    return wf.rows, winkler(lo, hi, wf.y, GATE_LEVEL), "the champion's interval configuration on the same folds"
