"""The training report: markdown plus PNG plots, written to a folder (run artifact + reports/latest)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.explain import plot_importance
from rayapp.training.metrics import strategy_returns


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_equity(times: Any, position: np.ndarray, ret: np.ndarray, horizon: int, fee_bps: float, path: Path) -> None:
    plt = _plt()
    model = np.exp(np.cumsum(strategy_returns(position, ret, horizon, fee_bps)))
    bh = np.exp(np.cumsum(strategy_returns(np.ones(len(ret)), ret, horizon, fee_bps)))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.plot(times, model, label=f"model long/short after {fee_bps:g} bps costs")
    ax.plot(times, bh, label="buy and hold", alpha=0.8)
    ax.set_ylabel("equity (start = 1)")
    ax.set_title("Out-of-fold equity curve (walk-forward test hours only)")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_fold_accuracy(folds: list[dict[str, float]], baseline: dict[str, list[float]], path: Path) -> None:
    plt = _plt()
    k = np.arange(len(folds))
    acc = np.array([f["accuracy"] for f in folds])
    lo = acc - np.array([f["acc_low"] for f in folds])
    hi = np.array([f["acc_high"] for f in folds]) - acc
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(k, acc, yerr=[lo, hi], fmt="o", capsize=4, label="model (95% Wilson)")
    for name, vals in baseline.items():
        ax.plot(k, vals, marker="x", linestyle="--", label=name)
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set_xticks(k)
    ax.set_xlabel("fold")
    ax.set_ylabel("directional accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(raw: list[dict[str, float]], cal: list[dict[str, float]], path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, label="perfect")
    for name, curve in (("raw", raw), ("calibrated", cal)):
        if curve:
            ax.plot([c["mean_pred"] for c in curve], [c["observed"] for c in curve], marker="o", label=name)
    ax.set_xlabel("predicted P(up)")
    ax.set_ylabel("observed frequency of up")
    ax.set_title("Reliability (held-out out-of-fold hours)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def _table(rows: dict[str, dict[str, Any]], cols: list[str]) -> str:
    head = "| name | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    return head + "".join(f"| {n} | " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |\n" for n, r in rows.items())


def write_report(
    out_dir: Path,
    *,
    summary: dict[str, Any],
    folds: list[dict[str, float]],
    pooled: dict[str, dict[str, float]],
    baseline_folds: dict[str, list[float]],
    importance: dict[str, float],
    calibration: dict[str, Any],
    gate: dict[str, Any],
    times: Any,
    position: np.ndarray,
    ret: np.ndarray,
    horizon: int,
    fee_bps: float,
    intervals: dict[str, Any] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_equity(times, position, ret, horizon, fee_bps, out_dir / "equity_curve.png")
    plot_fold_accuracy(folds, baseline_folds, out_dir / "fold_accuracy.png")
    plot_importance(importance, out_dir / "feature_importance.png")
    plot_reliability(
        calibration.get("reliability_raw", []),
        calibration.get("reliability_calibrated", []),
        out_dir / "reliability.png",
    )
    cols = [
        "accuracy",
        "acc_low",
        "acc_high",
        "sharpe_net",
        "total_return_net",
        "max_drawdown_net",
        "win_rate",
    ]
    md = ["# Training report", ""]
    md += [f"- **{k}**: {_fmt(v)}" for k, v in summary.items()]
    md += [
        "",
        "Note: the search picked the configuration on these same folds, so its cross-validated "
        "score is optimistic by the selection among trials; the baselines carry no such bias.",
    ]
    md += ["", "## Gate", f"- promote: **{gate.get('promote')}**"] + [f"- {r}" for r in gate.get("reasons", [])]
    md += [
        "",
        "## Out-of-fold results (all test hours pooled) vs baselines",
        f"Costs: {fee_bps:g} bps per unit of position change.",
        "",
        _table(pooled, cols),
    ]
    md += [
        "## Per fold",
        "",
        _table(
            {f"fold {int(f['fold'])}": f for f in folds},
            ["n", "accuracy", "acc_low", "acc_high", "sharpe_net", "brier"],
        ),
    ]
    md += [
        "## Calibration",
        f"- method: {calibration.get('method')}",
        f"- Brier raw {_fmt(calibration.get('brier_raw'))}, calibrated "
        f"{_fmt(calibration.get('brier_calibrated'))}, "
        f"climatology {_fmt(calibration.get('brier_climatology'))}",
        f"- conformal interval: alpha={calibration.get('conformal_alpha')}, expected return "
        f"{_fmt(calibration.get('conformal_q_low'))} / +{_fmt(calibration.get('conformal_q_high'))} "
        f"(log return, fitted on the later half of the out-of-fold hours)",
        "",
    ]
    md += interval_section(intervals)
    md += ["## Feature importance (mean |SHAP|)", ""] + [f"- {k}: {v:.5f}" for k, v in importance.items()]
    md += [
        "",
        "![equity](equity_curve.png)",
        "![folds](fold_accuracy.png)",
        "![importance](feature_importance.png)",
        "![reliability](reliability.png)",
        "",
    ]
    (out_dir / "report.md").write_text("\n".join(md))
    return out_dir


def interval_section(rep: dict[str, Any] | None) -> list[str]:
    """The interval model's out-of-fold coverage, width and Winkler score per level beside the
    constant band and EWMA on the same hours (docs/INTERVALS.md)."""
    if not rep:
        return ["## Intervals", "- no interval model in this run (tune.intervals.enabled=false)", ""]
    levels = sorted({k.rsplit("_", 1)[1] for k in rep if k.startswith("model_coverage_")}, key=int)
    rows = {
        name: {f"{m}_{lv}": rep.get(f"{name}_{m}_{lv}") for lv in levels for m in ("coverage", "width", "winkler")}
        for name in ("model", "model_aci", "constant", "ewma")
    }
    cols = [f"{m}_{lv}" for lv in levels for m in ("coverage", "width", "winkler")]
    return [
        "## Intervals",
        f"- method: {rep.get('method')} (CQR on {rep.get('n_calibration')} held-out out-of-fold hours; "
        f"ACI step {rep.get('aci_gamma')})",
        f"- out of fold, {rep.get('n_evaluated')} hours, each fold calibrated on the earlier folds only",
        "",
        _table(rows, cols),
    ]


def publish(src: Path, dest: str | Path) -> Path:
    """Replace `dest` (e.g. reports/latest) with a copy of the report folder."""
    d = Path(dest)
    if d.exists():
        shutil.rmtree(d)
    shutil.copytree(src, d)
    return d
