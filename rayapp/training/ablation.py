"""Feature-group ablation on identical walk-forward folds, with significance and effect sizes.

Configurations: price_only, sentiment_only, social_only, price_sentiment, all_features, and
all-but-one-group for every group with data. Each configuration is compared with a reference on
the same folds and hours: the single-group and combined configurations with the best naive
baseline, the leave-one-group-out ones with all_features. Reported per comparison: the mean
accuracy difference, a paired t-test over fold scores, a moving-block bootstrap p-value on
per-hour correctness (Holm-adjusted over the table, so a table of many comparisons does not
find "significance" in noise), Cohen's d over folds, and whether the difference clears the
practical threshold (2 accuracy points by default).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.training.cv import Fold
from rayapp.training.data import TrainingFrame
from rayapp.training.metrics import baseline_predictions
from rayapp.training.model import CVResult, cv_evaluate
from rayapp.training.significance import block_bootstrap_pvalue, holm, paired_ttest

log = get_logger(__name__)

BASE_CONFIGS: dict[str, list[str]] = {
    "price_only": ["price"],
    "sentiment_only": ["sentiment"],
    "social_only": ["social"],
    "price_sentiment": ["price", "sentiment"],
}


@dataclass
class AblationResult:
    period: str
    data_range: list[str]
    groups: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    baseline: str = ""
    significant_groups: list[str] = field(default_factory=list)
    test_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # coverage in the test hours

    def groups_line(self) -> str:
        have = [g for g, v in self.groups.items() if v["has_data"]]
        none = [g for g, v in self.groups.items() if not v["has_data"]]
        cov = ", ".join(f"{g} {self.groups[g]['coverage']:.0%}" for g in have)
        return (
            f"period {self.period} ({' to '.join(self.data_range)}): groups with data: {cov or 'none'}; "
            f"without data: {', '.join(none) or 'none'}"
            + (
                "; in the test hours: " + ", ".join(f"{g} {v['coverage']:.0%}" for g, v in self.test_groups.items())
                if self.test_groups
                else ""
            )
        )


def configurations(frame: TrainingFrame) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Column lists per configuration, and the configurations skipped (with why)."""
    info = frame.groups_with_data()
    have = [g for g in frame.groups if info[g]["has_data"]]
    configs: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    wanted = {**BASE_CONFIGS, "all_features": list(frame.groups)}
    wanted.update({f"all_minus_{g}": [h for h in frame.groups if h != g] for g in have})
    for name, groups in wanted.items():
        cols = [c for g in groups if g in have for c in frame.group_columns(g)]
        if not cols:
            skipped[name] = f"no data for {'/'.join(groups)} in this period"
        else:
            configs[name] = cols
    return configs, skipped


def _run_all(
    frame: TrainingFrame,
    folds: list[Fold],
    configs: dict[str, list[str]],
    params: dict[str, Any],
    seed: int,
    fee_bps: float,
) -> dict[str, CVResult]:
    import ray

    if not ray.is_initialized():
        return {n: cv_evaluate(frame, folds, params, seed, "cpu", None, fee_bps, columns=c) for n, c in configs.items()}
    # One task per configuration; the frame and folds go to the object store once.
    task = ray.remote(num_cpus=1)(cv_evaluate)
    fref, foref = ray.put(frame), ray.put(folds)
    refs = {n: task.remote(fref, foref, params, seed, "cpu", 1, fee_bps, columns=c) for n, c in configs.items()}
    return {n: ray.get(r) for n, r in refs.items()}


def _compare(
    a: CVResult,
    a_correct: np.ndarray,
    b_scores: np.ndarray,
    b_correct: np.ndarray,
    block: int,
    n_boot: int,
    seed: int,
) -> dict[str, float]:
    t = paired_ttest(a.fold_scores("accuracy"), b_scores)
    p_boot = block_bootstrap_pvalue(a_correct - b_correct, block, n_boot, seed)
    return {"delta": t["mean_diff"], "p_ttest": t["p_ttest"], "p_boot": p_boot, "cohens_d": t["cohens_d"]}


def run_ablation(
    frame: TrainingFrame,
    folds: list[Fold],
    params: dict[str, Any],
    *,
    seed: int = 42,
    fee_bps: float = 10.0,
    block: int = 24,
    n_boot: int = 1000,
    alpha: float = 0.05,
    threshold: float = 0.02,
    period: str = "all",
) -> AblationResult:
    configs, skipped = configurations(frame)
    results = _run_all(frame, folds, configs, params, seed, fee_bps)
    ti = np.concatenate([f.test for f in folds])
    y = frame.y[ti]
    preds = baseline_predictions(frame.last_ret[ti], len(ti))
    fold_of = np.concatenate([np.full(len(f.test), k) for k, f in enumerate(folds)])
    base_folds = {b: np.array([np.mean((p == y)[fold_of == k]) for k in range(len(folds))]) for b, p in preds.items()}
    bname = max(base_folds, key=lambda b: base_folds[b].mean())
    base_correct = (preds[bname] == y.astype(bool)).astype(float)
    correct = {n: r.correct(frame.y) for n, r in results.items()}

    rows: list[dict[str, Any]] = []
    for name, res in results.items():
        row: dict[str, Any] = {
            "config": name,
            "n_features": len(configs[name]),
            "accuracy": res.mean("accuracy"),
            "sharpe_net": res.mean("sharpe_net"),
        }
        if name.startswith("all_minus_"):
            ref = "all_features"
            cmp = _compare(res, correct[name], results[ref].fold_scores("accuracy"), correct[ref], block, n_boot, seed)
        else:
            ref = bname
            cmp = _compare(res, correct[name], base_folds[bname], base_correct, block, n_boot, seed)
        rows.append({**row, "vs": ref, **cmp})
    for name, why in skipped.items():
        rows.append({"config": name, "skipped": why})
    tested = [r for r in rows if "p_boot" in r]
    for r, adj in zip(tested, holm([r["p_boot"] for r in tested]), strict=True):
        r["p_boot_holm"] = adj
        r["significant"] = bool(adj < alpha)
        r["practical"] = bool(r["significant"] and abs(r["delta"]) >= threshold)
    sig_groups = []
    for g in frame.groups:
        loo = next((r for r in tested if r["config"] == f"all_minus_{g}"), None)
        only = next((r for r in tested if r["config"] == f"{g}_only"), None)
        # A group matters when dropping it hurts significantly, or it alone beats the baselines.
        if (loo and loo["significant"] and loo["delta"] < 0) or (only and only["significant"] and only["delta"] > 0):
            sig_groups.append(g)
    # Coverage over the whole period can hide that the test folds (the period's end) have none.
    test_cov = frame.between(frame.times[ti[0]], None).groups_with_data()
    result = AblationResult(period, frame.data_range(), frame.groups_with_data(), rows, bname, sig_groups, test_cov)
    log.info(
        "ablation done",
        period=period,
        configs=len(results),
        skipped=len(skipped),
        significant=len([r for r in tested if r["significant"]]),
        groups=",".join(sig_groups) or "none",
    )
    return result


def render_table(res: AblationResult) -> str:
    """A plain-text (markdown) table: printed by the CLI and logged to MLflow."""
    cols = [
        "config",
        "n_features",
        "accuracy",
        "vs",
        "delta",
        "p_ttest",
        "p_boot",
        "p_boot_holm",
        "cohens_d",
        "significant",
        "practical",
    ]
    lines = [
        res.groups_line(),
        f"naive reference: {res.baseline}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in res.rows:
        if "skipped" in r:
            lines.append(f"| {r['config']} | skipped: {r['skipped']} |")
            continue
        cells = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"groups with a significant contribution: {', '.join(res.significant_groups) or 'none'}")
    return "\n".join(lines)


def log_ablation(results: list[AblationResult], settings: Any) -> str:
    import mlflow
    import pandas as pd

    from rayapp.registry import git_commit, setup_mlflow

    setup_mlflow(settings)
    with mlflow.start_run(run_name="ablation") as run:
        mlflow.set_tags({"stage": "ablation", "git_commit": git_commit()})
        for res in results:
            mlflow.log_text(render_table(res), f"ablation/{res.period}.md")
            mlflow.log_table(pd.DataFrame(res.rows), f"ablation/{res.period}.json")
            mlflow.log_dict(res.groups, f"ablation/{res.period}_groups.json")
            for r in res.rows:
                if "accuracy" in r:
                    mlflow.log_metric(f"{res.period}_{r['config']}_accuracy", r["accuracy"])
        return str(run.info.run_id)
