"""One training run end to end, as named steps inside one MLflow run.

`train_model()` = record provenance → `search` (Ray Tune on the short `tune.cv` walk-forward, or
the configured parameters) → `evaluate_out_of_fold` (the LONG walk-forward of `lifecycle.gate`,
26 weekly folds by default, of the best configuration beside every naive baseline on the same test
hours) → `calibrate` (climatology / identity / Platt / isotonic chosen by cross-validated log loss, bounded, +
conformal interval, from out-of-fold predictions only) → `intervals_step` (the interval model out
of fold on the same folds, CQR on held-out folds, docs/INTERVALS.md) → `decide_gate` (against the
best baseline and the current champion on those folds, climatology's Brier score out of sample,
and the champion's interval score on the same hours) →
`fit_and_explain` (final booster on all rows, SHAP importance) → `log_model` (model, serving
bundle, configs) → `publish_report` → `register_and_gate` (challenger always, champion only
through the gate). No number it reports is in-sample.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.registry import BUNDLE_ARTIFACT, ModelBundle, git_commit, promote, register, setup_mlflow
from rayapp.training.calibration import calibrate_oof
from rayapp.training.cv import Fold, WalkForwardSplit
from rayapp.training.data import TrainingFrame
from rayapp.training.gate import GateDecision, champion_bundle, champion_scores, interval_check, quality_gate
from rayapp.training.metrics import baseline_predictions, best_baseline, evaluate, evaluate_baselines
from rayapp.training.model import CVResult, cv_evaluate, fit_final
from rayapp.training.significance import block_bootstrap_pvalue
from rayapp.training.tune import cluster_device, fold_metric_name, log_trials, run_search

log = get_logger(__name__)


@dataclass
class TrainOutcome:
    run_id: str
    version: str
    promoted: bool
    gate: dict[str, Any]
    cv_mean: float
    best_params: dict[str, Any]
    baselines: dict[str, Any] = field(default_factory=dict)
    bundle: ModelBundle | None = None
    report_dir: Path | None = None
    gate_passed: bool = False  # the gate's verdict (promoted only when the caller let it promote)


def fold_baselines(frame: TrainingFrame, folds: list[Fold], fee_bps: float) -> dict[str, list[dict[str, float]]]:
    """Each baseline's metrics per fold (same test hours as the model)."""
    out: dict[str, list[dict[str, float]]] = {}
    for f in folds:
        t = f.test
        b = evaluate_baselines(frame.y[t], frame.ret[t], frame.last_ret[t], frame.horizon, fee_bps, frame.next_ret[t])
        for name, m in b.items():
            out.setdefault(name, []).append(m)
    return out


def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in rows[0] if k not in ("fold", "n")]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


def _input_example(frame: TrainingFrame, n: int = 5) -> Any:
    # Rows with the fewest missing values make the clearest example for a reader of the model.
    nan_count = frame.X.isna().sum(axis=1).to_numpy()
    rows = np.argsort(nan_count, kind="stable")[:n]
    return frame.X.iloc[np.sort(rows)].reset_index(drop=True)


@dataclass
class RunContext:
    """What every step of one run shares: the frame, its folds and the knobs from the settings."""

    settings: Any
    frame: TrainingFrame
    full_frame: TrainingFrame  # the champion is re-evaluated on its own columns of this
    splitter: WalkForwardSplit  # the search's folds (tune.cv)
    folds: list[Fold]
    gate_splitter: WalkForwardSplit  # the evaluation's and the gate's long walk-forward (lifecycle.gate)
    gate_folds: list[Fold]
    device: str
    nthread: int | None
    num_samples: int

    @property
    def ts(self) -> Any:
        return self.settings.tune

    @property
    def seed(self) -> int:
        return int(self.settings.model.seed)

    @property
    def fold_metric(self) -> str:
        return fold_metric_name(self.ts.metric)

    @property
    def name(self) -> str:
        return str(self.settings.mlflow.registered_model)

    @property
    def gate(self) -> Any:
        return self.settings.lifecycle.gate

    @property
    def block_h(self) -> int:
        """Bootstrap blocks at least the horizon long: h-hour targets of consecutive hours overlap."""
        return max(int(self.gate.block_h), int(self.frame.horizon))


@dataclass
class Evaluation:
    """The best configuration's walk-forward result beside the baselines on the same test hours."""

    cv: CVResult
    cv_mean: dict[str, float]
    baseline_folds: dict[str, list[dict[str, float]]]
    baseline_means: dict[str, dict[str, float]]
    best_baseline: str
    p_vs_baseline: float
    pooled: dict[str, dict[str, float]]


def record_run(ctx: RunContext, data_source: str) -> None:
    """Provenance (feature-set version, data range, git commit) and the run's setup."""
    import mlflow

    from rayapp.config import masked

    frame = ctx.frame
    mlflow.set_tags(
        {
            "feature_set_version": frame.feature_set_version,
            "git_commit": git_commit(),
            "horizon_h": str(frame.horizon),
            "data_start": frame.data_range()[0],
            "data_end": frame.data_range()[1],
            "data_source": data_source,
            "stage": "train",
        }
    )
    mlflow.log_params(
        {
            "n_rows": len(frame),
            "n_features": len(frame.feature_names),
            "device": ctx.device,
            **{f"cv_{k}": v for k, v in ctx.splitter.params().items()},
            **{f"gate_cv_{k}": v for k, v in ctx.gate_splitter.params().items()},
            "num_samples": ctx.num_samples,
            "metric": ctx.ts.metric,
            "fee_bps": ctx.ts.fee_bps,
        }
    )
    mlflow.log_dict(masked(ctx.settings.model_dump()), "training/settings.json")
    mlflow.log_dict(
        {
            "folds": [f.describe(frame.times.to_numpy()) for f in ctx.folds],
            "gate_folds": [f.describe(frame.times.to_numpy()) for f in ctx.gate_folds],
            "groups": frame.groups_with_data(),
        },
        "training/folds.json",
    )


def search(ctx: RunContext, run_id: str) -> dict[str, Any]:
    """The best hyperparameters: a Ray Tune search, or the configured ones with no trials."""
    import mlflow

    ts = ctx.ts
    if ctx.num_samples > 0:
        sr = run_search(
            ctx.frame,
            ctx.folds,
            ts.space,
            num_samples=ctx.num_samples,
            max_concurrent=ts.max_concurrent,
            metric=ts.metric,
            mode=ts.mode,
            seed=ts.seed,
            fee_bps=ts.fee_bps,
            device=ctx.device,
            base_params=ctx.settings.model.params,
            storage_path=ctx.settings.state_path / "tune",
            name=f"tune_{run_id}",
            max_failures=ts.max_failures,
        )
        log_trials(sr.trials, ts.metric)
        best = sr.best_params
    else:
        best = dict(ctx.settings.model.params)
    mlflow.log_params({f"best_{k}": v for k, v in best.items()})
    return best


def evaluate_out_of_fold(ctx: RunContext, best: dict[str, Any]) -> Evaluation:
    """The long walk-forward of `best` (lifecycle.gate: thousands of test hours, not the search's
    few folds), every baseline on the same folds, and the paired p-value of the model's per-hour
    correctness against the best baseline (moving blocks at least the horizon long)."""
    import mlflow

    frame, ts = ctx.frame, ctx.ts
    cv = cv_evaluate(frame, ctx.gate_folds, best, ctx.seed, ctx.device, ctx.nthread, ts.fee_bps, metric=ctx.fold_metric)
    cv_mean = _mean_metrics(cv.fold_metrics)
    for f in cv.fold_metrics:
        mlflow.log_metrics({f"fold_{k}": float(v) for k, v in f.items() if k != "fold"}, step=int(f["fold"]))
    mlflow.log_metrics({f"cv_{k}": v for k, v in cv_mean.items()})

    bfolds = fold_baselines(frame, ctx.gate_folds, ts.fee_bps)
    bmeans = {b: _mean_metrics(rows) for b, rows in bfolds.items()}
    # The gate judges directional accuracy whatever the search objective is: it is the one
    # metric every baseline and every past champion has on the same folds.
    bname, _ = best_baseline(bmeans, "accuracy")
    for b, m in bmeans.items():
        mlflow.log_metrics({f"baseline_{b}_{k}": v for k, v in m.items()})
    ti = cv.test_idx
    bpred = baseline_predictions(frame.last_ret[ti], len(ti))[bname]
    diff = cv.correct(frame.y) - (bpred.astype(int) == frame.y[ti]).astype(float)
    p_base = block_bootstrap_pvalue(diff, ctx.block_h, ctx.gate.n_boot, ctx.seed, "greater")
    pooled = {
        "model": evaluate(
            cv.oof_p[ti] >= 0.5, frame.y[ti], frame.ret[ti], frame.horizon, ts.fee_bps, cv.oof_p[ti], frame.next_ret[ti]
        )
    }
    pooled.update(
        evaluate_baselines(
            frame.y[ti], frame.ret[ti], frame.last_ret[ti], frame.horizon, ts.fee_bps, frame.next_ret[ti]
        )
    )
    return Evaluation(cv, cv_mean, bfolds, bmeans, bname, p_base, pooled)


def intervals_step(ctx: RunContext) -> Any:
    """The interval model out of fold on the gate's folds, and the shipped one (CQR on held-out
    folds); None when `tune.intervals.enabled` is off."""
    import mlflow

    from rayapp.training.interval_train import fit_intervals
    from rayapp.training.intervals import IntervalConfig

    s = ctx.settings.tune.intervals
    if not s.enabled:
        return None
    out = fit_intervals(ctx.frame, ctx.gate_folds, IntervalConfig.from_settings(s), ctx.seed, ctx.nthread)
    mlflow.log_metrics({f"interval_{k}": float(v) for k, v in out.report.items() if isinstance(v, float)})
    mlflow.log_dict(out.report, "training/intervals.json")
    return out


def interval_gate(ctx: RunContext, intervals: Any) -> dict[str, Any] | None:
    """The challenger's 90 % Winkler scores against the champion's intervals on the same folds."""
    from rayapp.training.interval_train import champion_interval_scores

    if intervals is None or not ctx.gate.interval_score:
        return None
    bundle, note = champion_bundle(ctx.name)
    if bundle is None:
        return {"judged": False, "note": note}
    rows, w, note = champion_interval_scores(
        ctx.full_frame, ctx.gate_folds, bundle, ctx.seed, ctx.nthread, challenger=intervals
    )
    return interval_check(intervals.rows, intervals.winkler90, rows, w, ctx.frame.horizon, ctx.gate.alpha, note)


def decide_gate(
    ctx: RunContext, ev: Evaluation, calib: Any, shadow_next: bool = False, intervals: Any = None
) -> GateDecision:
    """Promote only past the best baseline (significantly) and the champion on the same folds, and
    only with a calibrated P(up) whose out-of-sample Brier score does not lose to climatology.

    `shadow_next`: the lifecycle sends a passing challenger to shadow, where it is compared with
    the live champion hour by hour; a champion that cannot be refitted on these folds (another
    horizon, features or no training config) is then left to that comparison instead of blocking."""
    champ, note = champion_scores(
        ctx.full_frame, ctx.gate_folds, ctx.name, ctx.seed, ctx.device, ctx.nthread or 1, ctx.ts.fee_bps, "accuracy"
    )
    comparable = champ is None or bool(np.all(np.isfinite(champ)))
    gate = quality_gate(
        ev.cv.fold_scores("accuracy"),
        ev.best_baseline,
        np.array([m["accuracy"] for m in ev.baseline_folds[ev.best_baseline]]),
        ev.p_vs_baseline,
        champ if comparable else None,
        ctx.gate.alpha,
        note,
        brier=calib.report["brier_calibrated"],
        brier_climatology=calib.report["brier_climatology"],
        interval=interval_gate(ctx, intervals),
    )
    gate.checks.update(
        {
            "folds": len(ctx.gate_folds),
            "test_hours": int(sum(len(f.test) for f in ctx.gate_folds)),
            "block_h": ctx.block_h,
        }
    )
    if not comparable:
        if shadow_next:
            gate.reasons.append(f"{note}: the shadow comparison decides")
        else:
            gate.promote = False
            gate.reasons.append(note)
    return gate


def calibrate(ctx: RunContext, ev: Evaluation) -> Any:
    """Calibration map, conformal interval and expected-return model from out-of-fold rows only."""
    import mlflow

    frame = ctx.frame
    calib = calibrate_oof(
        ev.cv.oof_p,
        frame.y,
        frame.ret,
        ev.cv.test_idx,
        ctx.ts.calibration,
        ctx.ts.conformal_alpha,
        purge=frame.horizon,
    )
    mlflow.log_metrics(
        {
            k: calib.report[k]
            for k in (
                "brier_raw",
                "brier_calibrated",
                "brier_climatology",
                "ece_raw",
                "ece_calibrated",
                "logloss_calibrated",
            )
        }
    )
    return calib


def fit_and_explain(ctx: RunContext, best: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The final booster on every row, and its global SHAP importance over the newest rows."""
    from rayapp.explain import global_importance

    s, frame = ctx.settings, ctx.frame
    booster = fit_final(
        frame, best, ctx.seed, ctx.device, s.model.num_workers, ctx.nthread, str(s.state_path / "train")
    )
    tail = frame.X.to_numpy(dtype=np.float64)[-min(len(frame), 2000) :]
    return booster, global_importance(booster, tail, frame.feature_names)


def make_bundle(ctx: RunContext, ev: Evaluation, calib: Any, gate: GateDecision, intervals: Any = None) -> ModelBundle:
    frame = ctx.frame
    return ModelBundle(
        feature_set_version=frame.feature_set_version,
        feature_names=frame.feature_names,
        horizon_h=frame.horizon,
        calibration=calib.calibration,
        conformal=calib.conformal,
        expected_return=calib.expected_return,
        cv_metrics={"mean": ev.cv_mean, "folds": ev.cv.fold_metrics, "pooled": ev.pooled["model"]},
        baselines={
            "mean": ev.baseline_means,
            "pooled": {k: v for k, v in ev.pooled.items() if k != "model"},
            "best": ev.best_baseline,
        },
        gate=gate.as_dict(),
        data_range=frame.data_range(),
        intervals=None if intervals is None else intervals.model,
    )


def log_model(
    ctx: RunContext,
    booster: Any,
    bundle: ModelBundle,
    best: dict[str, Any],
    ev: Evaluation,
    importance: dict[str, Any],
    calib: Any,
    gate: GateDecision,
) -> Any:
    """The xgboost model with its signature, the serving bundle and the run's JSON artifacts."""
    import mlflow
    import xgboost as xgb
    from mlflow.models import infer_signature

    frame = ctx.frame
    example = _input_example(frame)
    sig = infer_signature(
        example,
        booster.predict(xgb.DMatrix(example.to_numpy(np.float64), missing=np.nan, feature_names=frame.feature_names)),
    )
    # Explicit requirements: MLflow's inference imports the model in a subprocess (seconds).
    reqs = mlflow.xgboost.get_default_pip_requirements()
    info = mlflow.xgboost.log_model(booster, name="model", signature=sig, input_example=example, pip_requirements=reqs)
    mlflow.log_text(bundle.to_json(), BUNDLE_ARTIFACT)
    mlflow.log_dict(
        {
            "params": best,
            "feature_names": frame.feature_names,
            "metric": ctx.fold_metric,
            "fold_scores": ev.cv.fold_scores("accuracy").tolist(),
            "horizon_h": frame.horizon,
            "cv": ctx.splitter.params(),
        },
        "training/config.json",
    )
    mlflow.log_dict(importance, "explain/shap_importance.json")
    mlflow.log_dict(calib.report, "training/calibration.json")
    mlflow.log_dict(gate.as_dict(), "training/gate.json")
    return info


def publish_report(
    ctx: RunContext,
    run_id: str,
    best: dict[str, Any],
    ev: Evaluation,
    importance: dict[str, Any],
    calib: Any,
    gate: GateDecision,
    report_dir: str | Path | None,
    intervals: Any = None,
) -> Path:
    """The Markdown + plots report: logged to the run and published to `report_dir`."""
    import mlflow

    from rayapp.training.report import publish, write_report

    frame, ts, fm = ctx.frame, ctx.ts, ctx.fold_metric
    ti = ev.cv.test_idx
    with tempfile.TemporaryDirectory() as tmp:
        rdir = write_report(
            Path(tmp) / "report",
            summary={
                "run_id": run_id,
                "feature_set_version": frame.feature_set_version,
                "data_range": " to ".join(frame.data_range()),
                "rows": len(frame),
                "horizon_h": frame.horizon,
                "trials": ctx.num_samples,
                "objective": ts.metric,
                "cv_mean_" + fm: ev.cv_mean.get(fm),
                "best_baseline": ev.best_baseline,
                "p_vs_best_baseline": ev.p_vs_baseline,
                "best_params": json.dumps(best, default=float),
            },
            folds=ev.cv.fold_metrics,
            pooled=ev.pooled,
            baseline_folds={
                b: [m["accuracy"] for m in rows] for b, rows in ev.baseline_folds.items() if b != "buy_and_hold"
            },
            importance=importance,
            calibration=calib.report,
            gate=gate.as_dict(),
            times=frame.times[ti],
            position=np.where(ev.cv.oof_p[ti] >= 0.5, 1.0, -1.0),
            ret=frame.ret[ti],
            horizon=frame.horizon,
            fee_bps=ts.fee_bps,
            intervals=None if intervals is None else intervals.report,
        )
        mlflow.log_artifacts(str(rdir), "report")
        mlflow.log_artifact(str(rdir / "feature_importance.png"), "explain")
        return publish(rdir, report_dir or ts.report_dir)


def register_and_gate(
    ctx: RunContext, run_id: str, model_uri: str, ev: Evaluation, gate: GateDecision, promote_on_pass: bool = True
) -> str:
    """Register the model as `challenger`; promote it to `champion` only if the gate says so (and
    the caller lets the gate promote: the lifecycle policy sends a gated challenger to shadow)."""
    import mlflow

    fm = ctx.fold_metric
    mv = register(
        run_id,
        model_uri,
        ctx.name,
        {
            "feature_set_version": ctx.frame.feature_set_version,
            "horizon_h": str(ctx.frame.horizon),
            "run_id": run_id,
            "cv_mean_" + fm: f"{ev.cv_mean.get(fm, float('nan')):.5f}",
        },
    )
    if gate.promote and promote_on_pass:
        promote(ctx.name, mv.version)
    decision = ("promoted" if promote_on_pass else "passed") if gate.promote else "refused"
    mlflow.set_tags(
        {
            "gate_decision": decision,
            "gate_reasons": " | ".join(gate.reasons)[:4900],
            "model_version": str(mv.version),
        }
    )
    return str(mv.version)


def gate_split(settings: Any, horizon: int) -> WalkForwardSplit:
    """The long walk-forward the gate decides on: lifecycle.gate folds, the search's window rule."""
    cv, g = settings.tune.cv, settings.lifecycle.gate
    return WalkForwardSplit(
        n_splits=g.n_splits,
        test_size=g.test_size_h,
        horizon=horizon,
        window=settings.lifecycle.retrain.window,
        train_size=settings.lifecycle.retrain.window_h,
        purge=cv.purge_h,
        embargo=cv.embargo_h,
        min_train=cv.min_train_h,
    )


def train_model(
    settings: Any,
    full_frame: TrainingFrame,
    *,
    features: list[str] | None = None,
    num_samples: int | None = None,
    report_dir: str | Path | None = None,
    data_source: str = "",
    promote_on_pass: bool = True,
) -> TrainOutcome:
    import mlflow
    import ray

    # The model may use a subset of the columns; the champion is re-evaluated on its own columns.
    frame = full_frame.select(features) if features else full_frame
    splitter = WalkForwardSplit.from_settings(settings.tune.cv, frame.horizon)
    gate_splitter = gate_split(settings, frame.horizon)
    ctx = RunContext(
        settings=settings,
        frame=frame,
        full_frame=full_frame,
        splitter=splitter,
        folds=splitter.folds(frame.times),
        gate_splitter=gate_splitter,
        gate_folds=gate_splitter.folds(frame.times),
        device=cluster_device(settings.model.device),
        nthread=max(1, int(ray.cluster_resources().get("CPU", 1))) if ray.is_initialized() else None,
        num_samples=settings.tune.num_samples if num_samples is None else num_samples,
    )
    setup_mlflow(settings)
    with mlflow.start_run(run_name="train") as run:
        run_id = run.info.run_id
        record_run(ctx, data_source)
        best = search(ctx, run_id)
        ev = evaluate_out_of_fold(ctx, best)
        calib = calibrate(ctx, ev)
        intervals = intervals_step(ctx)
        gate = decide_gate(ctx, ev, calib, shadow_next=not promote_on_pass, intervals=intervals)
        booster, importance = fit_and_explain(ctx, best)
        bundle = make_bundle(ctx, ev, calib, gate, intervals)
        info = log_model(ctx, booster, bundle, best, ev, importance, calib, gate)
        latest = publish_report(ctx, run_id, best, ev, importance, calib, gate, report_dir, intervals)
        version = register_and_gate(ctx, run_id, info.model_uri, ev, gate, promote_on_pass)
        cv_mean = ev.cv_mean.get(ctx.fold_metric, float("nan"))
        log.info(
            "training done",
            run_id=run_id,
            version=version,
            promoted=gate.promote,
            cv_mean=round(cv_mean, 4),
            best_baseline=ev.best_baseline,
            reasons=" | ".join(gate.reasons),
        )
    return TrainOutcome(
        run_id,
        version,
        gate.promote and promote_on_pass,
        gate.as_dict(),
        cv_mean,
        best,
        ev.baseline_means,
        bundle,
        latest,
        gate_passed=gate.promote,
    )
