"""The interval model: quantiles and a volatility of the h-hour log return, conformalized.

Two XGBoost constructions, on the same point-in-time features (the core set plus the realised-
volatility group, rayapp.features.RV_FEATURES):

- "quantile": one multi-quantile booster (`objective="reg:quantileerror"` with a `quantile_alpha`
  list), target in units of the training returns' standard deviation; the quantiles of a row are
  sorted, so they never cross.
- "vol": a booster on the log realised variance of the next h hours (the log squared return at
  1 h: a log-ARCH regression); sigma^2 = exp(prediction) times Duan's smearing factor against the
  squared h-hour return, and the quantiles are sigma times the empirical quantiles of the
  standardised training returns (increasing by construction).

Either is calibrated by scaled conformalized quantile regression (Romano et al. 2019; see
rayapp.registry.intervals) on held-out out-of-fold rows, and in serving by adaptive conformal
inference (Gibbs & Candès 2021). `interval_walk_forward` replays both over weekly refits, the way
the backtest and the benchmark measure them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rayapp.registry import (
    AciState,
    IntervalModel,
    aci_update,
    conformal_rank_quantile,
    level_key,
    nest_intervals,
    raw_quantiles,
    thin_scores,
)

QUANTILES = [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
LEVELS = [0.5, 0.8, 0.9]
METHODS = ("quantile", "vol")
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "max_depth": 4,
    "learning_rate": 0.05,
    "min_child_weight": 50.0,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
}


@dataclass
class IntervalConfig:
    method: str = "vol"
    quantiles: list[float] = field(default_factory=lambda: list(QUANTILES))
    levels: list[float] = field(default_factory=lambda: list(LEVELS))
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    aci_gamma: float = 0.005

    @classmethod
    def from_settings(cls, s: Any) -> IntervalConfig:
        """From `tune.intervals` (rayapp.config.IntervalSettings)."""
        return cls(
            method=str(s.method),
            quantiles=sorted({*(float(q) for q in s.quantiles), *pair_probs(s.levels)}),
            levels=sorted(float(v) for v in s.levels),
            params={**DEFAULT_PARAMS, **dict(s.params)},
            aci_gamma=float(s.aci_gamma),
        )


def pair_probs(levels: list[float]) -> list[float]:
    return [p for lv in levels for p in (round((1 - lv) / 2, 6), round((1 + lv) / 2, 6))]


# ---- features ----------------------------------------------------------------------------------
def interval_features(X: pd.DataFrame, last_ret: np.ndarray) -> pd.DataFrame:
    """The interval model's inputs: the frame's features plus the realised-volatility group
    computed from its own `last_ret` column (point in time: hour t reads returns up to t)."""
    from rayapp.features import RV_FEATURES, realized_vol_for_rows

    rv = realized_vol_for_rows(pd.DatetimeIndex(X.index), last_ret)
    base = X.drop(columns=[c for c in RV_FEATURES if c in X.columns])
    return pd.concat([base, rv.set_axis(X.index)], axis=1).astype("float64")


# ---- fitting -----------------------------------------------------------------------------------
def _xgb_params(cfg: IntervalConfig, seed: int, nthread: int | None) -> tuple[dict[str, Any], int]:
    p = dict(cfg.params)
    rounds = int(p.pop("n_estimators", 200))
    p.update({"tree_method": "hist", "seed": int(seed), "verbosity": 0})
    if nthread is not None:
        p["nthread"] = int(nthread)
    return p, rounds


def forward_realized_variance(times: Any, last_ret: np.ndarray, horizon: int) -> np.ndarray:
    """Per row at hour t: the sum of the squared hourly returns of hours t+1 .. t+h (NaN when one
    is missing). A far less noisy proxy of the h-hour variance than the squared h-hour return
    (Andersen & Bollerslev 1998); it ends at close(t+h), exactly when the row's label does."""
    idx = pd.DatetimeIndex(times)
    grid = pd.Series(np.asarray(last_ret, float), index=idx)
    grid = grid[~grid.index.duplicated(keep="last")].sort_index()
    full = grid.reindex(pd.date_range(grid.index[0], grid.index[-1], freq="h")).to_numpy()
    sq = full * full
    n = len(sq)
    out = np.full(n, np.nan)
    if n > horizon:
        win = np.lib.stride_tricks.sliding_window_view(sq[1:], horizon)  # sq[t+1 .. t+h]
        out[: len(win)] = win.sum(axis=1)
    pos = pd.DatetimeIndex(pd.date_range(grid.index[0], grid.index[-1], freq="h")).get_indexer(idx)
    return out[pos]


def fit_interval_booster(
    X: np.ndarray,
    ret: np.ndarray,
    names: list[str],
    cfg: IntervalConfig,
    seed: int = 0,
    nthread: int | None = None,
    rv_fwd: np.ndarray | None = None,
) -> IntervalModel:
    """Fit on rows whose h-hour label is known; the result is uncalibrated (no `cqr` yet).

    "vol" regresses log `rv_fwd` (the realised variance over the next h hours) when given, else
    log r^2 (the same thing at h = 1); the smearing factor and the standardised quantiles are
    then taken against the h-hour return itself, so sigma is the h-hour return's scale."""
    import xgboost as xgb

    X = np.asarray(X, np.float64)
    r = np.asarray(ret, float)
    v = r * r if rv_fwd is None else np.asarray(rv_fwd, float)
    ok = np.isfinite(r) & np.isfinite(v)
    X, r, v = X[ok], r[ok], v[ok]
    params, rounds = _xgb_params(cfg, seed, nthread)
    scale = float(np.std(r)) or 1.0
    if cfg.method == "quantile":
        params.update({"objective": "reg:quantileerror", "quantile_alpha": np.asarray(cfg.quantiles)})
        d = xgb.DMatrix(X, label=r / scale, missing=np.nan, feature_names=names)
        booster = xgb.train(params, d, num_boost_round=rounds)
        model = IntervalModel("quantile", 0, names, list(cfg.quantiles), list(cfg.levels), "", target_scale=scale)
    elif cfg.method == "vol":
        eps = 1e-4 * scale * scale  # a flat hour (r = 0) must not be log(0)
        y = np.log(v + eps)
        params.update({"objective": "reg:squarederror"})
        d = xgb.DMatrix(X, label=y, missing=np.nan, feature_names=names)
        booster = xgb.train(params, d, num_boost_round=rounds)
        pred = booster.predict(d)
        bias = float(np.log(np.mean(r * r / np.exp(pred))))  # Duan's smearing, in logs
        sig = np.sqrt(np.exp(pred + bias))
        z = np.quantile(r / sig, cfg.quantiles)
        model = IntervalModel(
            "vol", 0, names, list(cfg.quantiles), list(cfg.levels), "", vol_bias=bias, z_quantiles=list(map(float, z))
        )
    else:
        raise ValueError(f"unknown interval method {cfg.method!r} ({' | '.join(METHODS)})")
    model.booster_ubj = IntervalModel.encode_booster(booster)
    model._booster = booster
    model.aci_gamma = cfg.aci_gamma
    return model


def aci_step(gamma: float, horizon: int) -> float:
    """The ACI step of an h-hour forecast: gamma / h. Consecutive h-hour outcomes overlap, so one
    market move is h correlated misses in a row; dividing the step by h keeps the response to that
    move the size of one hourly miss (otherwise alpha_t swings by h steps at once)."""
    return float(gamma) / max(1, int(horizon))


def predict_raw(model: IntervalModel, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted quantiles, sigma) for many rows at once (the training-side batch form of `raw`)."""
    import xgboost as xgb

    d = xgb.DMatrix(np.asarray(X, np.float64), missing=np.nan, feature_names=model.feature_names)
    return raw_quantiles(model, np.asarray(model.booster.predict(d)))


# ---- conformal calibration ---------------------------------------------------------------------
def cqr_scores(q: np.ndarray, y: np.ndarray, lo_i: int, hi_i: int) -> np.ndarray:
    """Scaled CQR scores max(q_lo - y, y - q_hi) / (q_hi - q_lo) (Romano et al. 2019, with the
    width normalisation of Kivaranovic et al. 2020 / Sesia & Candès 2020)."""
    lo, hi = q[:, lo_i], q[:, hi_i]
    w = np.maximum(hi - lo, 1e-12)
    return np.maximum(lo - y, y - hi) / w


def calibrate(model: IntervalModel, q_cal: np.ndarray, y_cal: np.ndarray) -> IntervalModel:
    """Set the model's CQR corrections and held-out scores from out-of-fold raw quantiles `q_cal`
    of rows it was not fitted on and their outcomes `y_cal`."""
    y = np.asarray(y_cal, float)
    ok = np.isfinite(y) & np.isfinite(q_cal).all(axis=1)
    q, y = q_cal[ok], y[ok]
    if len(y) < 20:
        raise ValueError(f"too few held-out rows to calibrate the intervals ({len(y)})")
    for level in model.levels:
        lo_i, hi_i = model.pair(level)
        s = np.sort(cqr_scores(q, y, lo_i, hi_i))
        model.cqr[level_key(level)] = conformal_rank_quantile(s, level)
        model.scores[level_key(level)] = thin_scores(s)
    return model


def intervals_from(
    model: IntervalModel, q: np.ndarray, alphas: dict[float, np.ndarray] | None = None
) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Calibrated, nested intervals per level for rows of raw quantiles `q`; `alphas` (level ->
    per-row ACI miscoverage) replaces the nominal one."""
    out: dict[float, tuple[np.ndarray, np.ndarray]] = {}
    for level in sorted(model.levels):
        lo_i, hi_i = model.pair(level)
        w = np.maximum(q[:, hi_i] - q[:, lo_i], 1e-12)
        key = level_key(level)
        if alphas is None:
            Q = np.full(len(q), model.cqr[key])
        else:
            s = np.asarray(model.scores[key])
            Q = np.array([conformal_rank_quantile(s, 1.0 - a) for a in alphas[level]])
        out[level] = (q[:, lo_i] - Q * w, q[:, hi_i] + Q * w)
    nest_intervals(out)
    return out


def aci_path(
    lo_of: Any,
    y: np.ndarray,
    hours: np.ndarray,
    horizon: int,
    level: float,
    gamma: float,
    state: AciState | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, AciState]:
    """Adaptive conformal inference over consecutive forecasts with delayed feedback.

    `lo_of(i, alpha)` gives the (low, high) interval of forecast i at miscoverage alpha. Forecast i
    is made at hours[i]; its outcome is known at hours[i] + horizon, and only then updates alpha
    (Gibbs & Candès 2021, with the feedback delay of an h-step forecast). Returns (low, high,
    alpha used, final state)."""
    st = state or AciState.start(level)
    n = len(y)
    lo, hi, used = np.empty(n), np.empty(n), np.empty(n)
    pending: list[int] = []
    for i in range(n):
        now = hours[i]
        while pending and hours[pending[0]] + horizon <= now:
            j = pending.pop(0)
            st = aci_update(st, bool(lo[j] <= y[j] <= hi[j]), gamma)
        used[i] = st.alpha_t
        lo[i], hi[i] = lo_of(i, st.alpha_t)
        pending.append(i)
    return lo, hi, used, st


# ---- walk-forward ------------------------------------------------------------------------------
@dataclass
class Boundary:
    """One refit: trained on rows [train_lo, train_hi), predicts rows [start, stop)."""

    start: int
    stop: int
    train_lo: int
    train_hi: int


@dataclass
class WalkForwardIntervals:
    """Per evaluated hour, every method's quantiles and sigma, and the model's calibrated
    intervals (static CQR, and CQR + ACI)."""

    rows: np.ndarray  # row positions evaluated
    y: np.ndarray
    q: dict[str, np.ndarray]  # method -> (n, k) quantiles
    sigma: dict[str, np.ndarray]
    intervals: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]]  # method -> level -> (lo, hi)
    wall_s: dict[str, float]
    fits: int
    info: dict[str, Any] = field(default_factory=dict)
    oof_q: dict[str, np.ndarray] = field(default_factory=dict)  # method -> raw quantiles of every row (NaN: none)


def interval_walk_forward(
    Xi: pd.DataFrame,
    ret: np.ndarray,
    last_ret: np.ndarray,
    horizon: int,
    boundaries: list[Boundary],
    cfg: IntervalConfig,
    *,
    calibration_weeks: int = 26,
    warmup: int = 26,
    seed: int = 0,
    nthread: int | None = None,
    methods: tuple[str, ...] = ("quantile", "vol"),
    baselines: tuple[str, ...] = ("constant", "ewma", "garch", "har"),
) -> WalkForwardIntervals:
    """Weekly refits: at boundary k each model is fitted on its training rows and predicts its own
    block; its CQR correction comes from the out-of-fold predictions of the previous
    `calibration_weeks` blocks whose labels are known at the boundary (row t + h < start). The
    first `warmup` boundaries only build that history. Baselines (constant band on the same
    calibration hours, EWMA, GARCH(1,1)-t, HAR-RV) are fitted on the same training windows."""
    from rayapp.features import RV_FEATURES
    from rayapp.training import vol_baselines as vb

    X = Xi.to_numpy(np.float64)
    names = [str(c) for c in Xi.columns]
    r1 = np.asarray(last_ret, float)
    y_all = np.asarray(ret, float)
    probs = list(cfg.quantiles)
    n_all = len(y_all)
    oof_q: dict[str, np.ndarray] = {m: np.full((n_all, len(probs)), np.nan) for m in methods}
    oof_s: dict[str, np.ndarray] = {m: np.full(n_all, np.nan) for m in methods}
    out_q: dict[str, list[np.ndarray]] = {}
    out_s: dict[str, list[np.ndarray]] = {}
    out_iv: dict[str, dict[float, list[np.ndarray]]] = {}
    wall: dict[str, float] = {}
    ev_rows: list[np.ndarray] = []
    week_models: dict[str, list[IntervalModel]] = {}
    v_ewma = vb.ewma_variance(r1) if "ewma" in baselines else None
    rv = Xi[RV_FEATURES].to_numpy(np.float64) if "har" in baselines else None
    hours = np.asarray(pd.DatetimeIndex(Xi.index).as_unit("s").asi8 // 3600)
    rv_fwd = forward_realized_variance(Xi.index, r1, horizon)

    def add(store: dict[str, list[np.ndarray]], key: str, v: np.ndarray) -> None:
        store.setdefault(key, []).append(v)

    def timed(key: str, t0: float) -> None:
        wall[key] = wall.get(key, 0.0) + time.perf_counter() - t0

    for k, b in enumerate(boundaries):
        rows = np.arange(b.start, b.stop)
        tr = slice(b.train_lo, b.train_hi)
        models: dict[str, IntervalModel] = {}
        for m in methods:
            t0 = time.perf_counter()
            mcfg = IntervalConfig(**{**cfg.__dict__, "method": m})
            mod = fit_interval_booster(X[tr], y_all[tr], names, mcfg, seed, nthread, rv_fwd[tr])
            mod.horizon_h = horizon
            mod.aci_gamma = aci_step(cfg.aci_gamma, horizon)
            q, s = predict_raw(mod, X[rows])
            timed(f"model_{m}", t0)
            oof_q[m][rows], oof_s[m][rows] = q, s
            models[m] = mod
        if k < warmup:
            continue
        # calibration rows: earlier blocks' out-of-fold predictions whose labels are known now
        cal_lo = boundaries[max(0, k - calibration_weeks)].start
        known = np.arange(cal_lo, b.start)
        known = known[hours[known] + horizon < hours[b.start]]
        ev_rows.append(rows)
        for m, mod in models.items():
            ok = known[np.isfinite(oof_q[m][known]).all(axis=1)]
            calibrate(mod, oof_q[m][ok], y_all[ok])
            add(out_q, m, oof_q[m][rows])
            add(out_s, m, oof_s[m][rows])
            ivs = intervals_from(mod, oof_q[m][rows])
            for level, (lo, hi) in ivs.items():
                out_iv.setdefault(f"model_{m}", {}).setdefault(level, []).append(np.column_stack([lo, hi]))
            week_models.setdefault(m, []).append(mod)  # its held-out scores serve ACI this week
        fc: dict[str, vb.VolForecast] = {}
        for name in baselines:
            t0 = time.perf_counter()
            if name == "constant":
                fc[name] = vb.constant_band(y_all[known], probs, len(rows))
            elif name == "ewma":
                assert v_ewma is not None
                fc[name] = vb.ewma_forecast(v_ewma, y_all, horizon, b.train_lo, b.train_hi, rows, probs)
            elif name == "garch":
                fc[name] = vb.garch_forecast(r1, y_all, horizon, b.train_lo, b.train_hi, rows, probs)
            elif name == "har":
                assert rv is not None
                fc[name] = vb.har_forecast(rv, r1, y_all, horizon, b.train_lo, b.train_hi, rows, probs)
            else:
                raise ValueError(f"unknown baseline {name!r} (constant | ewma | garch | har)")
            timed(name, t0)
        for name, f in fc.items():
            add(out_q, name, f.q)
            add(out_s, name, f.sigma)
            for level in cfg.levels:
                lo_i, hi_i = _pair(probs, level)
                out_iv.setdefault(name, {}).setdefault(level, []).append(np.column_stack([f.q[:, lo_i], f.q[:, hi_i]]))
    if not ev_rows:
        raise ValueError(f"no evaluated block: {len(boundaries)} boundaries <= warmup {warmup}")
    rows_all = np.concatenate(ev_rows)
    y = y_all[rows_all]
    intervals: dict[str, dict[float, tuple[np.ndarray, np.ndarray]]] = {}
    for name, per_level in out_iv.items():
        intervals[name] = {}
        for level, chunks in per_level.items():
            a = np.concatenate(chunks)
            intervals[name][level] = (a[:, 0], a[:, 1])
    # ACI on top of each model's weekly calibration, feedback delayed by the horizon
    block_of = np.concatenate([np.full(len(r), i) for i, r in enumerate(ev_rows)])
    qs = {m: np.concatenate(out_q[m]) for m in methods}
    for m in methods:
        intervals[f"model_{m}_aci"] = {}
        for level in cfg.levels:
            key = level_key(level)
            lo_i, hi_i = week_models[m][0].pair(level)

            def lo_of(i: int, alpha: float, m: str = m, key: str = key, lo_i: int = lo_i, hi_i: int = hi_i) -> Any:
                mod = week_models[m][block_of[i]]
                q = qs[m][i]
                w = max(q[hi_i] - q[lo_i], 1e-12)
                Q = conformal_rank_quantile(np.asarray(mod.scores[key]), 1.0 - alpha)
                return q[lo_i] - Q * w, q[hi_i] + Q * w

            gamma = aci_step(cfg.aci_gamma, horizon)
            lo, hi, _, _ = aci_path(lo_of, y, hours[rows_all], horizon, level, gamma)
            intervals[f"model_{m}_aci"][level] = (lo, hi)
        nest_intervals(intervals[f"model_{m}_aci"])
    return WalkForwardIntervals(
        rows=rows_all,
        y=y,
        q={k: np.concatenate(v) for k, v in out_q.items()},
        sigma={k: np.concatenate(v) for k, v in out_s.items()},
        intervals=intervals,
        wall_s=wall,
        fits=len(boundaries),
        info={"probs": probs, "levels": list(cfg.levels), "horizon": horizon},
        oof_q=oof_q,
    )


def _pair(probs: list[float], level: float) -> tuple[int, int]:
    p = np.asarray(probs)
    return int(np.argmin(np.abs(p - (1 - level) / 2))), int(np.argmin(np.abs(p - (1 + level) / 2)))
