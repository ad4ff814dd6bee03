"""`rayapp train` end to end: search, honest out-of-fold evaluation, calibration, registry, gate."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.training.bundle import BUNDLE_ARTIFACT, ModelBundle
from rayapp.training.calibration import calibrate_oof
from rayapp.training.cv import Fold, WalkForwardSplit
from rayapp.training.data import TrainingFrame
from rayapp.training.metrics import baseline_predictions, best_baseline, evaluate, evaluate_baselines
from rayapp.training.model import cv_evaluate, fit_final
from rayapp.training.registry import (
    champion_config,
    current_champion,
    git_commit,
    log_trials,
    promote,
    quality_gate,
    register,
    setup_mlflow,
)
from rayapp.training.significance import block_bootstrap_pvalue
from rayapp.training.tune import cluster_device, fold_metric_name, run_search

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


def fold_baselines(frame: TrainingFrame, folds: list[Fold], fee_bps: float) -> dict[str, list[dict[str, float]]]:
    """Each baseline's metrics per fold (same test hours as the model)."""
    out: dict[str, list[dict[str, float]]] = {}
    for f in folds:
        b = evaluate_baselines(frame.y[f.test], frame.ret[f.test], frame.last_ret[f.test], frame.horizon, fee_bps)
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


def _champion_scores(
    frame: TrainingFrame,
    folds: list[Fold],
    name: str,
    seed: int,
    device: str,
    nthread: int,
    fee_bps: float,
    metric: str,
) -> tuple[np.ndarray | None, str]:
    import mlflow

    client = mlflow.MlflowClient()
    champ = current_champion(client, name)
    if champ is None:
        return None, "no current champion: the first model that passes the baseline check becomes champion"
    cfg = champion_config(client, champ)
    if cfg is None:
        return np.array([np.inf]), f"champion v{champ.version} has no training config: not replaced automatically"
    if int(cfg.get("horizon_h", frame.horizon)) != frame.horizon:
        return np.array([np.inf]), (
            f"champion v{champ.version} predicts a {cfg.get('horizon_h')}h horizon, this run "
            f"{frame.horizon}h: not comparable, not replaced automatically"
        )
    cols = cfg["feature_names"]
    missing = [c for c in cols if c not in frame.X.columns]
    if missing:
        return np.array([np.inf]), (
            f"champion v{champ.version} uses features not in this frame {missing}: "
            "cannot compare on the same folds, not replaced automatically"
        )
    # The champion's configuration, refitted on exactly the challenger's training windows.
    res = cv_evaluate(frame, folds, cfg["params"], seed, device, nthread, fee_bps, columns=cols)
    return res.fold_scores(metric), f"champion v{champ.version} re-evaluated on the same folds"


def train(
    settings: Any,
    full_frame: TrainingFrame,
    *,
    features: list[str] | None = None,
    num_samples: int | None = None,
    report_dir: str | Path | None = None,
    data_source: str = "",
) -> TrainOutcome:
    import mlflow
    import ray
    from mlflow.models import infer_signature

    from rayapp.config import masked
    from rayapp.explain import global_importance

    # The model may use a subset of the columns; the champion is re-evaluated on its own columns.
    frame = full_frame.select(features) if features else full_frame
    ts = settings.tune
    metric = ts.metric
    fm = fold_metric_name(metric)
    seed = settings.model.seed
    splitter = WalkForwardSplit.from_settings(ts.cv, frame.horizon)
    folds = splitter.folds(frame.times)
    device = cluster_device(settings.model.device)
    nthread = max(1, int(ray.cluster_resources().get("CPU", 1))) if ray.is_initialized() else None
    setup_mlflow(settings)
    name = settings.mlflow.registered_model
    n_samples = ts.num_samples if num_samples is None else num_samples
    with mlflow.start_run(run_name="train") as run:
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
                "device": device,
                **{f"cv_{k}": v for k, v in splitter.params().items()},
                "num_samples": n_samples,
                "metric": metric,
                "fee_bps": ts.fee_bps,
            }
        )
        mlflow.log_dict(masked(settings.model_dump()), "training/settings.json")
        mlflow.log_dict(
            {
                "folds": [f.describe(frame.times.to_numpy()) for f in folds],
                "groups": frame.groups_with_data(),
            },
            "training/folds.json",
        )
        if n_samples > 0:
            sr = run_search(
                frame,
                folds,
                ts.space,
                num_samples=n_samples,
                max_concurrent=ts.max_concurrent,
                metric=metric,
                mode=ts.mode,
                seed=ts.seed,
                fee_bps=ts.fee_bps,
                device=device,
                base_params=settings.model.params,
                storage_path=settings.state_path / "tune",
                name=f"tune_{run.info.run_id}",
            )
            log_trials(sr.trials, metric)
            best = sr.best_params
        else:
            best = dict(settings.model.params)
        mlflow.log_params({f"best_{k}": v for k, v in best.items()})
        cv = cv_evaluate(frame, folds, best, seed, device, nthread, ts.fee_bps, metric=fm)
        cv_mean = _mean_metrics(cv.fold_metrics)
        for f in cv.fold_metrics:
            mlflow.log_metrics({f"fold_{k}": float(v) for k, v in f.items() if k != "fold"}, step=int(f["fold"]))
        mlflow.log_metrics({f"cv_{k}": v for k, v in cv_mean.items()})

        bfolds = fold_baselines(frame, folds, ts.fee_bps)
        bmeans = {b: _mean_metrics(rows) for b, rows in bfolds.items()}
        # The gate judges directional accuracy whatever the search objective is: it is the one
        # metric every baseline and every past champion has on the same folds.
        bname, _ = best_baseline(bmeans, "accuracy")
        for b, m in bmeans.items():
            mlflow.log_metrics({f"baseline_{b}_{k}": v for k, v in m.items()})
        ti = cv.test_idx
        bpred = baseline_predictions(frame.last_ret[ti], len(ti))[bname]
        diff = cv.correct(frame.y) - (bpred.astype(int) == frame.y[ti]).astype(float)
        p_base = block_bootstrap_pvalue(diff, ts.ablation.block_h, ts.ablation.n_boot, seed, "greater")
        champ, note = _champion_scores(full_frame, folds, name, seed, device, nthread or 1, ts.fee_bps, "accuracy")
        gate = quality_gate(
            cv.fold_scores("accuracy"),
            bname,
            np.array([m["accuracy"] for m in bfolds[bname]]),
            p_base,
            champ if champ is None or np.all(np.isfinite(champ)) else None,
            ts.gate_alpha,
            note,
        )
        if champ is not None and not np.all(np.isfinite(champ)):
            gate.promote = False
            gate.reasons.append(note)

        calib = calibrate_oof(cv.oof_p, frame.y, frame.ret, ti, ts.calibration, ts.conformal_alpha)
        mlflow.log_metrics(
            {"brier_raw": calib.report["brier_raw"], "brier_calibrated": calib.report["brier_calibrated"]}
        )
        booster = fit_final(
            frame, best, seed, device, settings.model.num_workers, nthread, str(settings.state_path / "train")
        )
        tail = frame.X.to_numpy(dtype=np.float64)[-min(len(frame), 2000) :]
        importance = global_importance(booster, tail, frame.feature_names)
        pooled = {
            "model": evaluate(cv.oof_p[ti] >= 0.5, frame.y[ti], frame.ret[ti], frame.horizon, ts.fee_bps, cv.oof_p[ti])
        }
        pooled.update(evaluate_baselines(frame.y[ti], frame.ret[ti], frame.last_ret[ti], frame.horizon, ts.fee_bps))
        bundle = ModelBundle(
            feature_set_version=frame.feature_set_version,
            feature_names=frame.feature_names,
            horizon_h=frame.horizon,
            calibration=calib.calibration,
            conformal=calib.conformal,
            expected_return=calib.expected_return,
            cv_metrics={"mean": cv_mean, "folds": cv.fold_metrics, "pooled": pooled["model"]},
            baselines={
                "mean": bmeans,
                "pooled": {k: v for k, v in pooled.items() if k != "model"},
                "best": bname,
            },
            gate=gate.as_dict(),
            data_range=frame.data_range(),
        )

        example = _input_example(frame)
        import xgboost as xgb

        sig = infer_signature(
            example,
            booster.predict(
                xgb.DMatrix(example.to_numpy(np.float64), missing=np.nan, feature_names=frame.feature_names)
            ),
        )
        # Explicit requirements: MLflow's inference imports the model in a subprocess (seconds).
        reqs = mlflow.xgboost.get_default_pip_requirements()
        info = mlflow.xgboost.log_model(
            booster, name="model", signature=sig, input_example=example, pip_requirements=reqs
        )
        mlflow.log_text(bundle.to_json(), BUNDLE_ARTIFACT)
        mlflow.log_dict(
            {
                "params": best,
                "feature_names": frame.feature_names,
                "metric": fm,
                "fold_scores": cv.fold_scores("accuracy").tolist(),
                "horizon_h": frame.horizon,
                "cv": splitter.params(),
            },
            "training/config.json",
        )
        mlflow.log_dict(importance, "explain/shap_importance.json")
        mlflow.log_dict(calib.report, "training/calibration.json")
        mlflow.log_dict(gate.as_dict(), "training/gate.json")

        with tempfile.TemporaryDirectory() as tmp:
            from rayapp.training.report import publish, write_report

            rdir = write_report(
                Path(tmp) / "report",
                summary={
                    "run_id": run.info.run_id,
                    "feature_set_version": frame.feature_set_version,
                    "data_range": " to ".join(frame.data_range()),
                    "rows": len(frame),
                    "horizon_h": frame.horizon,
                    "trials": n_samples,
                    "objective": metric,
                    "cv_mean_" + fm: cv_mean.get(fm),
                    "best_baseline": bname,
                    "p_vs_best_baseline": p_base,
                    "best_params": json.dumps(best, default=float),
                },
                folds=cv.fold_metrics,
                pooled=pooled,
                baseline_folds={b: [m["accuracy"] for m in rows] for b, rows in bfolds.items() if b != "buy_and_hold"},
                importance=importance,
                calibration=calib.report,
                gate=gate.as_dict(),
                times=frame.times[ti],
                position=np.where(cv.oof_p[ti] >= 0.5, 1.0, -1.0),
                ret=frame.ret[ti],
                horizon=frame.horizon,
                fee_bps=ts.fee_bps,
            )
            mlflow.log_artifacts(str(rdir), "report")
            mlflow.log_artifact(str(rdir / "feature_importance.png"), "explain")
            latest = publish(rdir, report_dir or ts.report_dir)

        mv = register(
            run.info.run_id,
            info.model_uri,
            name,
            {
                "feature_set_version": frame.feature_set_version,
                "horizon_h": str(frame.horizon),
                "run_id": run.info.run_id,
                "cv_mean_" + fm: f"{cv_mean.get(fm, float('nan')):.5f}",
            },
        )
        if gate.promote:
            promote(name, mv.version)
        mlflow.set_tags(
            {
                "gate_decision": "promoted" if gate.promote else "refused",
                "gate_reasons": " | ".join(gate.reasons)[:4900],
                "model_version": str(mv.version),
            }
        )
        log.info(
            "training done",
            run_id=run.info.run_id,
            version=mv.version,
            promoted=gate.promote,
            cv_mean=round(cv_mean.get(fm, float("nan")), 4),
            best_baseline=bname,
            reasons=" | ".join(gate.reasons),
        )
    return TrainOutcome(
        run.info.run_id,
        str(mv.version),
        gate.promote,
        gate.as_dict(),
        cv_mean.get(fm, np.nan),
        best,
        bmeans,
        bundle,
        latest,
    )
