"""The interval model replayed over history beside its baselines (docs/INTERVALS.md).

Weekly refits over a walk-forward (`rayapp backtest --intervals`, benchmarks/intervals.py): at each
boundary the interval model (both XGBoost constructions) and the baselines (constant band, EWMA,
GARCH(1,1)-t, HAR-RV) are fitted on the same training window, whose labels all end before the
week; the model's conformal correction comes from the earlier weeks' out-of-fold predictions, and
ACI runs online over the evaluated hours with the feedback delayed by the horizon. Every figure is
out of sample; the report splits them per calendar year and per volatility regime (the
`volatility_regime` feature: the trailing 24 h volatility's tercile over the last 30 days).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from rayapp.training import IntervalConfig, TrainingFrame, WalkForwardIntervals

REGIME_NAMES = {0.0: "low", 1.0: "mid", 2.0: "high"}


def weekly_boundaries(
    n_rows: int, horizon: int, first_eval: int, *, test_h: int = 168, warmup: int = 26, train_h: int | None = 8760
) -> list[Any]:
    """Blocks of `test_h` rows from `warmup` blocks before row `first_eval` to the end; each trains
    on the rows before it whose h-hour label ends before it (purge = horizon), over the last
    `train_h` of them (None = expanding)."""
    from rayapp.training import Boundary

    start0 = first_eval - warmup * test_h
    out = []
    s = start0
    while s + test_h <= n_rows - horizon:
        hi = s - horizon
        lo = 0 if train_h is None else max(0, hi - train_h)
        if hi - lo < 24 * 7 * 4:
            raise ValueError(f"block at row {s}: only {hi - lo} training rows")
        out.append(Boundary(s, s + test_h, lo, hi))
        s += test_h
    if len(out) <= warmup:
        raise ValueError(f"only {len(out)} weekly blocks for {warmup} warm-up weeks")
    return out


def _group_metrics(wf: WalkForwardIntervals, mask: np.ndarray, methods: list[str]) -> dict[str, Any]:
    from rayapp.training import interval_summary

    out: dict[str, Any] = {"n": int(mask.sum())}
    for m in methods:
        lo, hi = wf.intervals[m][0.9]
        out[m] = interval_summary(lo[mask], hi[mask], wf.y[mask], 0.9)
    return out


def evaluate_intervals(
    wf: WalkForwardIntervals, times: pd.DatetimeIndex, regime: np.ndarray, headline: str
) -> dict[str, Any]:
    """Coverage and width per level, Winkler, pinball per quantile, QLIKE and MSE of sigma^2, and
    Diebold-Mariano tests (90 % Winkler, HAC lag h-1 and a Newey-West rule-of-thumb lag) of the
    `headline` model against each baseline; per year and per volatility regime for 90 %."""
    from rayapp.training import auto_lag, diebold_mariano, interval_summary, mse_var, pinball, qlike, winkler

    h = int(wf.info["horizon"])
    y = wf.y
    r2 = y * y
    methods = sorted(wf.intervals)
    levels = sorted(wf.info["levels"])
    probs = wf.info["probs"]
    per: dict[str, Any] = {}
    for m in methods:
        d: dict[str, Any] = {}
        for lv in levels:
            lo, hi = wf.intervals[m][lv]
            d[f"{round(lv * 100)}"] = interval_summary(lo, hi, y, lv)
        base = m.replace("model_", "").replace("_aci", "")
        qkey = base if base in wf.q else m
        if qkey in wf.q:
            d["pinball"] = {f"{p:.3g}": float(pinball(wf.q[qkey][:, i], y, p).mean()) for i, p in enumerate(probs)}
            s2 = wf.sigma[qkey] ** 2
            d["qlike"] = float(qlike(s2, r2).mean())
            d["mse_var"] = float(mse_var(s2, r2).mean())
        per[m] = d
    lo, hi = wf.intervals[headline][0.9]
    w_model = winkler(lo, hi, y, 0.9)
    dm: dict[str, Any] = {}
    for m in methods:
        if m == headline:
            continue
        blo, bhi = wf.intervals[m][0.9]
        wb = winkler(blo, bhi, y, 0.9)
        dm[m] = {
            "hac_h_minus_1": diebold_mariano(wb, w_model, h).as_dict(),
            "hac_auto": diebold_mariano(wb, w_model, h, lag=max(h - 1, auto_lag(len(y)))).as_dict(),
        }
    t = pd.DatetimeIndex(times)[wf.rows]
    years = {str(yv): _group_metrics(wf, np.asarray(t.year == yv), methods) for yv in sorted(set(t.year))}
    reg = np.asarray(regime, float)[wf.rows]
    regimes = {
        name: _group_metrics(wf, reg == code, methods) for code, name in REGIME_NAMES.items() if (reg == code).any()
    }
    return {
        "horizon_h": h,
        "n": len(y),
        "start": t[0].isoformat(),
        "end": t[-1].isoformat(),
        "headline": headline,
        "methods": per,
        "dm_winkler90": dm,
        "per_year": years,
        "per_regime": regimes,
        "wall_s": {k: round(v, 3) for k, v in wf.wall_s.items()},
        "refits": wf.fits,
    }


def run_interval_backtest(
    frame: TrainingFrame,
    cfg: IntervalConfig,
    *,
    eval_h: int | None = None,
    test_h: int = 168,
    warmup: int = 26,
    train_h: int | None = 8760,
    calibration_weeks: int = 26,
    seed: int = 0,
    nthread: int | None = None,
    headline: str | None = None,
    end_row: int | None = None,
    methods: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The walk-forward over the last `eval_h` rows (None: every block after `train_h` + warm-up)
    of `frame` (up to `end_row`), evaluated."""
    from rayapp.training import interval_features, interval_walk_forward

    n = len(frame) if end_row is None else int(end_row)
    Xi = interval_features(frame.X, frame.last_ret).iloc[:n]
    first = n - frame.horizon - eval_h if eval_h else (train_h or 4380) + warmup * test_h + frame.horizon
    bounds = weekly_boundaries(n, frame.horizon, first, test_h=test_h, warmup=warmup, train_h=train_h)
    wf = interval_walk_forward(
        Xi,
        frame.ret[:n],
        frame.last_ret[:n],
        frame.horizon,
        bounds,
        cfg,
        calibration_weeks=calibration_weeks,
        warmup=warmup,
        seed=seed,
        nthread=nthread,
        methods=methods or (cfg.method,),
    )
    regime = Xi["volatility_regime"].to_numpy() if "volatility_regime" in Xi else np.full(n, np.nan)
    return evaluate_intervals(wf, pd.DatetimeIndex(Xi.index), regime, headline or f"model_{cfg.method}_aci")


def flat_metrics(reports: dict[int, dict[str, Any]]) -> dict[str, float]:
    """MLflow metrics: per horizon and method, 90 % coverage, width and Winkler score, and the DM
    p-values of the headline model against each baseline."""
    out: dict[str, float] = {}
    for h, rep in reports.items():
        for m, d in rep["methods"].items():
            for k in ("coverage", "width", "winkler"):
                out[f"intervals_h{h}_{m}_{k}_90"] = float(d["90"][k])
        for m, d in rep["dm_winkler90"].items():
            out[f"intervals_h{h}_dm_p_vs_{m}"] = float(d["hac_h_minus_1"]["p_value"])
    return out


def render_markdown(reports: dict[int, dict[str, Any]]) -> str:
    """A table per horizon: coverage / width / Winkler of every method's 90 % interval, QLIKE,
    and the headline model's DM p-value against each method."""
    md = ["# Intervals: walk-forward with weekly refits (out of sample)", ""]
    for h, rep in sorted(reports.items()):
        md += [
            f"## {h} h ({rep['n']} hours, {rep['start'][:10]} to {rep['end'][:10]}; headline {rep['headline']})",
            "",
            "| method | coverage 90 | width 90 | Winkler 90 | coverage 50 | coverage 80 | QLIKE | DM p (lag h-1) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m, d in rep["methods"].items():
            dm = rep["dm_winkler90"].get(m, {}).get("hac_h_minus_1", {}).get("p_value")
            q = d.get("qlike")
            md.append(
                f"| {m} | {d['90']['coverage']:.3f} | {d['90']['width']:.5f} | {d['90']['winkler']:.5f} | "
                f"{d['50']['coverage']:.3f} | {d['80']['coverage']:.3f} | "
                f"{'' if q is None else f'{q:.3f}'} | {'' if dm is None else f'{dm:.4f}'} |"
            )
        md += ["", "Per volatility regime (90 % coverage / Winkler):", ""]
        for name, g in rep["per_regime"].items():
            cells = ", ".join(f"{m} {g[m]['coverage']:.3f}/{g[m]['winkler']:.5f}" for m in rep["methods"] if m in g)
            md.append(f"- {name} ({g['n']} h): {cells}")
        md += [""]
    return "\n".join(md)


def write_interval_report(reports: dict[int, dict[str, Any]], out_dir: Any) -> None:
    """intervals.json and intervals.md in the backtest's report folder (logged with it to MLflow)."""
    import json
    from pathlib import Path

    from rayapp.warehouse import json_safe

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / "intervals.json").write_text(json.dumps(json_safe({f"h{h}": r for h, r in reports.items()}), indent=1))
    (d / "intervals.md").write_text(render_markdown(reports))
