"""The backtest report: `backtest.json` (every figure and event), `backtest.md` (tables) and PNGs
(equity per policy vs buy-and-hold, reliability, accuracy per year), written to a folder, copied to
`<folder>/latest/` (what `/report` serves) and logged to MLflow as the artifacts of a run named
`backtest`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rayapp.lifecycle.backtest import BacktestResult, HorizonBacktest

REPORT_JSON = "backtest.json"
REPORT_MD = "backtest.md"


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_equity(hb: HorizonBacktest, path: Path) -> None:
    """Net equity (log scale) of each policy's no-trade-band and long/short strategies vs buy-and-hold."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.5))
    times = None
    for pol, s in hb.series.items():
        times = s.times
        r = hb.returns[pol]
        ax.plot(s.times, np.exp(np.cumsum(r["band"])), label=f"{pol}: no-trade band")
        ax.plot(s.times, np.exp(np.cumsum(r["long_short"])), label=f"{pol}: long/short", lw=0.8, alpha=0.7)
    if times is not None:
        first = next(iter(hb.returns.values()))
        ax.plot(times, np.exp(np.cumsum(first["buy_and_hold"])), label="buy and hold", color="black", lw=1.2)
    fee = next(iter(hb.report["policies"].values()))["fee_bps"]
    ax.set_yscale("log")
    ax.set_ylabel("equity (start = 1, log scale)")
    ax.set_title(f"{hb.horizon} h horizon: after {fee:g} bps costs, replayed weeks only")
    ax.legend(fontsize=7, ncol=2)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(hb: HorizonBacktest, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, label="perfect")
    lo, hi = 0.5, 0.5
    for i, (pol, f) in enumerate(hb.report["policies"].items()):
        for kind, style in (("calibrated", "-o"), ("raw", ":x")):
            curve = [c for c in f["reliability"][kind] if c["count"] >= 20]
            if not curve:
                continue
            xs = [c["mean_pred"] for c in curve]
            ax.plot(xs, [c["observed"] for c in curve], style, color=f"C{i}", label=f"{pol} {kind}", ms=4)
            lo, hi = min(lo, *xs), max(hi, *xs)
    pad = max(0.05, (hi - lo) * 0.1)
    ax.set_xlim(max(0, lo - pad), min(1, hi + pad))
    ax.set_ylim(max(0, lo - pad), min(1, hi + pad))
    ax.set_xlabel("predicted P(up)")
    ax.set_ylabel("observed frequency of up")
    ax.set_title(f"{hb.horizon} h: reliability (bins with >= 20 hours)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_years(hb: HorizonBacktest, path: Path) -> None:
    plt = _plt()
    pols = hb.report["policies"]
    years = sorted({y for f in pols.values() for y in f["per_year"]})
    x = np.arange(len(years))
    width = 0.8 / (len(pols) + 1)
    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (pol, f) in enumerate(pols.items()):
        acc = np.array([f["per_year"].get(y, {}).get("accuracy") or np.nan for y in years])
        lo = acc - np.array([f["per_year"].get(y, {}).get("acc_low", np.nan) for y in years])
        hi = np.array([f["per_year"].get(y, {}).get("acc_high", np.nan) for y in years]) - acc
        ax.bar(x + i * width, acc, width, yerr=[lo, hi], capsize=3, label=pol)
    f0 = next(iter(pols.values()))
    base = [f0["per_year"].get(y, {}).get("best_baseline_accuracy", np.nan) for y in years]
    ax.bar(x + len(pols) * width, base, width, label=f"{f0['best_baseline']} (best baseline)", color="grey")
    ax.axhline(0.5, color="black", lw=0.8)
    ax.set_xticks(x + 0.4 - width / 2)
    ax.set_xticklabels(years)
    ax.set_ylim(0.4, 0.65)
    ax.set_ylabel("directional accuracy (95% Wilson)")
    ax.set_title(f"{hb.horizon} h: accuracy per calendar year")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _f(v: Any, nd: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _ci(d: dict[str, Any]) -> str:
    return f"{_f(d['accuracy'])} [{_f(d['acc_low'])}, {_f(d['acc_high'])}]"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]


def _split_row(pols: dict[str, Any], key: str, name: str) -> list[str]:
    """One row of a per-year / per-regime table: each policy's accuracy, then the best baseline's."""
    cells = [_ci(f[key][name]) if name in f[key] else "" for f in pols.values()]
    base = next(iter(pols.values()))[key].get(name, {}).get("best_baseline_accuracy")
    return [name, *cells, _f(base)]


def render_markdown(report: dict[str, Any]) -> str:
    st = report.get("settings", {})
    md = ["# Backtest: the lifecycle policy replayed over history", ""]
    md += [
        f"- data: {st.get('source', 'n/a')}; horizons {st.get('horizons')}; policies {st.get('policies')}",
        f"- folds: a model per {st.get('test_h')} h test block after {st.get('min_train_h')} training rows "
        f"({st.get('window')} window), fixed hyperparameters {st.get('params')}; replay after "
        f"{st.get('warmup_weeks')} warm-up weeks",
        f"- costs {st.get('fee_bps')} bps per unit of position change; every p-value is a one-sided "
        f"moving-block bootstrap with blocks >= max(24 h, horizon); Holm over every horizon x policy",
        f"- fits: {report.get('fit', {})}",
        "",
        "A label of hour t is used only once t + h has passed; calibration, the conformal interval, "
        "the no-trade band and the regime terciles of each model come from the weeks before it "
        "was trained. " + st.get("note_gate", ""),
        "",
    ]
    for h, hr in report["horizons"].items():
        pols = hr["policies"]
        md += [
            f"## {h} h horizon",
            "",
            f"{hr['rows']} rows, {hr['folds']} folds, {hr['replayed_weeks']} replayed weeks "
            f"({hr['replay_from'][:10]} to {hr['replay_to'][:10]}), bootstrap block {hr['block_h']} h.",
            "",
            "### Direction",
            "",
        ]
        md += _table(
            ["policy", "accuracy [95% CI]", "raw accuracy", "best baseline", "p vs baseline", "p (Holm)"],
            [
                [
                    p,
                    _ci(f),
                    _ci(f["raw"]),
                    f"{f['best_baseline']} {_f(f['best_baseline_accuracy'])}",
                    _f(f["p_value"]),
                    _f(f.get("p_value_holm")),
                ]
                for p, f in pols.items()
            ],
        )
        md += ["### Trading (after costs)", ""]
        rows = []
        for p, f in pols.items():
            t = f["trading"]
            for name in ("long_short", "band"):
                x = t[name]
                rows.append(
                    [
                        f"{p} {name.replace('_', '/')}",
                        _f(x["sharpe_net"], 2),
                        _f(x["total_return_net"], 3),
                        _f(x["max_drawdown_net"], 3),
                        _f(x.get("exposure", 1.0), 3),
                        _f(x.get("dsr"), 3),
                    ]
                )
        bh = next(iter(pols.values()))["trading"]["buy_and_hold"]
        rows.append(
            [
                "buy and hold",
                _f(bh["sharpe_net"], 2),
                _f(bh["total_return_net"], 3),
                _f(bh["max_drawdown_net"], 3),
                "1.000",
                "",
            ]
        )
        md += _table(["strategy", "Sharpe (net, ann.)", "total return", "max drawdown", "exposure", "DSR"], rows)
        d = hr["dsr"]
        md += [
            f"Deflated Sharpe ratio: N = {d['n_trials']} configurations ({d['trials']}); expected maximum "
            f"Sharpe of N zero-skill trials {_f(d['sr0_annual'], 2)} (annualised); best trial {d['best_trial']} "
            f"(DSR {_f(d['best_trial_dsr']['dsr'], 3)}).",
            "",
            "### Probabilities",
            "",
        ]
        md += _table(
            [
                "policy",
                "log loss cal / raw / clim",
                "Brier cal / raw / clim",
                "ECE cal / raw / clim",
                "interval coverage (nominal)",
            ],
            [
                [
                    p,
                    " / ".join(_f(f["probabilistic"][k]["logloss"], 5) for k in ("calibrated", "raw", "climatology")),
                    " / ".join(_f(f["probabilistic"][k]["brier"], 5) for k in ("calibrated", "raw", "climatology")),
                    " / ".join(_f(f["probabilistic"][k]["ece"], 4) for k in ("calibrated", "raw", "climatology")),
                    f"{_f(f['conformal']['coverage'], 3)} ({_f(f['conformal']['nominal'], 2)})",
                ]
                for p, f in pols.items()
            ],
        )
        md += ["Calibration (issue 15 item 6):", ""]
        md += _table(
            ["policy", "ECE <= 0.02", "ECE not worse than raw", "Brier <= climatology"],
            [
                [p, _f(c["ece_le_max"]), _f(c["ece_not_worse_than_raw"]), _f(c["brier_le_climatology"])]
                for p, c in hr["checks"].items()
            ],
        )
        cal = hr["calibration"]
        md += [f"Maps chosen: {cal['methods']}; bands chosen: {cal['bands']}.", ""]
        md += ["### Per year", ""]
        years = sorted({y for f in pols.values() for y in f["per_year"]})
        md += _table(
            ["year", *pols, "best baseline"],
            [_split_row(pols, "per_year", y) for y in years],
        )
        md += ["### Per volatility regime (terciles of trailing 24 h volatility, from earlier hours)", ""]
        regs = [r for r in ("low", "mid", "high") if any(r in f["per_regime"] for f in pols.values())]
        md += _table(
            ["regime", *pols, "best baseline"],
            [_split_row(pols, "per_regime", r) for r in regs],
        )
        ec = hr["event_counts"]
        if hr["events"]:
            md += [
                "### Triggered policy: events",
                "",
                f"- triggers fired: {ec.get('triggers', {})}",
                f"- retrains {ec.get('retrain', 0)}, suppressed {ec.get('suppressed', 0)}; gate passed "
                f"{ec.get('gate_passed', 0)}, failed {ec.get('gate_failed', 0)}",
                f"- shadow verdicts {ec.get('shadow', 0)}: promotions {ec.get('promotion', 0)}, rollbacks "
                f"{ec.get('rollback', 0)}, watches ended {ec.get('watch_end', 0)}",
                f"- models served: {pols.get('triggered', {}).get('models_used')}, mean model age "
                f"{_f(pols.get('triggered', {}).get('model_age_h', {}).get('mean'), 0)} h "
                f"(weekly: {_f(pols.get('weekly', {}).get('model_age_h', {}).get('mean'), 0)} h)",
                "",
            ]
            key = [e for e in hr["events"] if e["kind"] in ("promotion", "rollback")]
            if key:
                md += _table(
                    ["time", "event", "model", "from"],
                    [
                        [e["time"][:16], e["kind"], str(e["model"]), str(e.get("previous", e.get("restored", "")))]
                        for e in key
                    ],
                )
        md += [f"![equity](equity_h{h}.png)", f"![reliability](reliability_h{h}.png)", f"![years](years_h{h}.png)", ""]
    return "\n".join(md)


def write_report(result: BacktestResult, out_dir: str | Path) -> Path:
    """JSON, markdown and PNGs into `out_dir`, and a copy of them in `out_dir/latest/`."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    (d / REPORT_JSON).write_text(json.dumps(result.report, indent=1, allow_nan=False))
    (d / SUMMARY_JSON).write_text(json.dumps(summary(result.report), indent=1, allow_nan=False))
    for h, hb in result.horizons.items():
        plot_equity(hb, d / f"equity_h{h}.png")
        plot_reliability(hb, d / f"reliability_h{h}.png")
        plot_years(hb, d / f"years_h{h}.png")
    (d / REPORT_MD).write_text(render_markdown(result.report))
    latest = d / "latest"
    if latest.exists():
        shutil.rmtree(latest)
    latest.mkdir()
    for f in d.iterdir():
        if f.is_file():
            shutil.copy2(f, latest / f.name)
    return d


SUMMARY_JSON = "summary.json"
_HEAVY = ("served_models", "equity", "reliability")


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its per-hour and per-model detail (tens of kB, not MB): what `/report`
    serves to the Analytics page. backtest.json keeps everything."""
    horizons = {}
    for h, hz in report["horizons"].items():
        pols = {p: {k: v for k, v in f.items() if k not in _HEAVY} for p, f in hz["policies"].items()}
        lean = {k: v for k, v in hz.items() if k not in ("policies", "fits", "calibration", "events", "dsr")}
        lean["policies"] = pols
        lean["calibration"] = {k: v for k, v in hz["calibration"].items() if k != "models"}
        lean["dsr"] = {k: v for k, v in hz["dsr"].items() if k != "trial_sharpe_annual"}
        lean["events"] = [e for e in hz["events"] if e.get("kind") in ("promotion", "rollback")]
        horizons[h] = lean
    settings = {k: v for k, v in report.get("settings", {}).items() if k != "lifecycle"}
    return {
        **{k: v for k, v in report.items() if k not in ("horizons", "settings")},
        "settings": settings,
        "horizons": horizons,
    }


def headline_metrics(report: dict[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for h, pols in report["headline"].items():
        for p, m in pols.items():
            for k, v in m.items():
                if isinstance(v, int | float) and not isinstance(v, bool) and v is not None:
                    out[f"h{h}_{p}_{k}"] = float(v)
        ec = report["horizons"][h]["event_counts"]
        for k, name in (("promotion", "promotions"), ("rollback", "rollbacks"), ("gate_passed", "gate_passed")):
            out[f"h{h}_{name}"] = float(ec.get(k, 0))
    return out


def log_report(result: BacktestResult, out_dir: str | Path, settings: Any) -> str:
    """An MLflow run named `backtest`: the settings as params, headline metrics, the report files."""
    import mlflow

    from rayapp.registry import git_commit, setup_mlflow

    setup_mlflow(settings)
    st = result.report.get("settings", {})
    with mlflow.start_run(run_name="backtest") as run:
        mlflow.set_tags({"stage": "backtest", "git_commit": git_commit()})
        mlflow.log_params(
            {
                k: str(v)[:500]
                for k, v in st.items()
                if k in ("horizons", "policies", "test_h", "min_train_h", "window", "fee_bps", "warmup_weeks", "source")
            }
        )
        mlflow.log_metrics(headline_metrics(result.report))
        d = Path(out_dir)
        for f in sorted(d.iterdir()):
            if f.is_file():
                mlflow.log_artifact(str(f), artifact_path="backtest")
        return str(run.info.run_id)
