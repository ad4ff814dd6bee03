"""Fit and evaluate the XGBoost direction model on walk-forward folds.

One function (`cv_evaluate`) is shared by Tune trials, the final out-of-fold pass, the ablation
and the benchmark, so every number in a report comes from the same code path and the same folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xgboost as xgb

from rayapp.log import get_logger
from rayapp.training.cv import Fold
from rayapp.training.data import TrainingFrame
from rayapp.training.metrics import evaluate

log = get_logger(__name__)

# Hyperparameters that are not booster params.
_ROUNDS_KEY = "n_estimators"
_INT_PARAMS = ("max_depth", "n_estimators")


def booster_params(
    params: dict[str, Any], seed: int, device: str = "cpu", nthread: int | None = None
) -> tuple[dict[str, Any], int]:
    p = {k: v for k, v in params.items() if k != _ROUNDS_KEY}
    for k in _INT_PARAMS:
        if k in p:
            p[k] = int(p[k])
    p.setdefault("objective", "binary:logistic")
    p.update({"eval_metric": "logloss", "seed": int(seed), "tree_method": "hist", "device": device, "verbosity": 0})
    if nthread:
        p["nthread"] = int(nthread)
    return p, int(params.get(_ROUNDS_KEY, 100))


def fit_booster(
    X: np.ndarray,
    y: np.ndarray,
    params: dict[str, Any],
    seed: int,
    device: str = "cpu",
    nthread: int | None = None,
    feature_names: Sequence[str] | None = None,
) -> xgb.Booster:
    bp, rounds = booster_params(params, seed, device, nthread)
    # The DMatrix gets the same thread budget as the booster: by default it would use every core,
    # and two concurrent 1-CPU Tune trials would then run four threads on two cores.
    dtrain = xgb.DMatrix(
        X,
        label=y,
        missing=np.nan,
        feature_names=list(feature_names) if feature_names is not None else None,
        nthread=nthread,
    )
    return xgb.train(bp, dtrain, num_boost_round=rounds)


def predict_proba(
    booster: xgb.Booster, X: np.ndarray, feature_names: Sequence[str] | None = None, nthread: int | None = None
) -> np.ndarray:
    d = xgb.DMatrix(
        X, missing=np.nan, feature_names=list(feature_names) if feature_names is not None else None, nthread=nthread
    )
    return np.asarray(booster.predict(d), dtype=float)


@dataclass
class CVResult:
    fold_metrics: list[dict[str, float]] = field(default_factory=list)
    oof_p: np.ndarray = field(default_factory=lambda: np.array([]))  # raw P(up), NaN outside test blocks
    test_idx: np.ndarray = field(default_factory=lambda: np.array([], dtype=int))
    stopped_early: bool = False

    def fold_scores(self, metric: str = "accuracy") -> np.ndarray:
        return np.array([m[metric] for m in self.fold_metrics], dtype=float)

    def mean(self, metric: str = "accuracy") -> float:
        return float(np.mean(self.fold_scores(metric))) if self.fold_metrics else float("nan")

    def correct(self, y: np.ndarray) -> np.ndarray:
        """Per-hour correctness (1/0) over the concatenated test blocks, in time order."""
        p = self.oof_p[self.test_idx]
        return ((p >= 0.5).astype(int) == np.asarray(y)[self.test_idx]).astype(float)


FoldCallback = Callable[[int, dict[str, float], float], bool]


def cv_evaluate(
    frame: TrainingFrame,
    folds: Sequence[Fold],
    params: dict[str, Any],
    seed: int,
    device: str = "cpu",
    nthread: int | None = None,
    fee_bps: float = 10.0,
    metric: str = "accuracy",
    on_fold: FoldCallback | None = None,
    columns: Sequence[str] | None = None,
) -> CVResult:
    """Walk-forward fit/predict; `on_fold(k, metrics, running_mean)` may return False to stop."""
    cols = list(columns) if columns is not None else frame.feature_names
    X = frame.X[cols].to_numpy(dtype=np.float64)
    r1 = frame.next_ret
    res = CVResult(oof_p=np.full(len(frame), np.nan))
    tests: list[np.ndarray] = []
    for fold in folds:
        bst = fit_booster(X[fold.train], frame.y[fold.train], params, seed, device, nthread, cols)
        p = predict_proba(bst, X[fold.test], cols, nthread)
        res.oof_p[fold.test] = p
        tests.append(fold.test)
        m = evaluate(p >= 0.5, frame.y[fold.test], frame.ret[fold.test], frame.horizon, fee_bps, p, r1[fold.test])
        m["fold"] = fold.index
        res.fold_metrics.append(m)
        if on_fold is not None and on_fold(fold.index, m, res.mean(metric)) is False:
            res.stopped_early = True
            break
    res.test_idx = np.concatenate(tests) if tests else np.array([], dtype=int)
    return res


def fit_final(
    frame: TrainingFrame,
    params: dict[str, Any],
    seed: int,
    device: str = "cpu",
    num_workers: int = 1,
    nthread: int | None = None,
    storage_path: str | None = None,
) -> xgb.Booster:
    """The model to register: fit on every labelled row (through Ray Train when num_workers > 1)."""
    if num_workers > 1:
        return fit_distributed(frame, params, seed, num_workers, device, storage_path)
    return fit_booster(frame.X.to_numpy(dtype=np.float64), frame.y, params, seed, device, nthread, frame.feature_names)


def fit_distributed(
    frame: TrainingFrame,
    params: dict[str, Any],
    seed: int,
    num_workers: int,
    device: str = "cpu",
    storage_path: str | None = None,
) -> xgb.Booster:
    """Data-parallel XGBoost over `num_workers` Ray Train workers (XGBoost's collective backend).

    The training matrix goes into the object store once; each worker takes its row shard
    (rank::world_size) from there. No Ray Data pipeline: its read tasks would compete with the
    training workers for the CPUs of a small cluster.
    """
    import ray
    import ray.train
    from ray.train import RunConfig, ScalingConfig
    from ray.train.xgboost import RayTrainReportCallback, XGBoostTrainer

    names = frame.feature_names
    bp, rounds = booster_params(params, seed, device)
    data_ref = ray.put((frame.X.to_numpy(dtype=np.float64), frame.y.astype(np.float64)))

    def train_fn(config: dict[str, Any]) -> None:
        import tempfile

        from ray.train import Checkpoint

        ctx = ray.train.get_context()
        X, y = ray.get(config["data"][0])
        rank, size = ctx.get_world_rank(), ctx.get_world_size()
        d = xgb.DMatrix(X[rank::size], label=y[rank::size], missing=np.nan, feature_names=config["names"])
        # No per-round report callback: a report is a barrier across workers, once per round.
        bst = xgb.train(config["params"], d, num_boost_round=config["rounds"])
        with tempfile.TemporaryDirectory() as tmp:
            ckpt = None
            if rank == 0:
                bst.save_model(f"{tmp}/{RayTrainReportCallback.CHECKPOINT_NAME}")
                ckpt = Checkpoint.from_directory(tmp)
            ray.train.report({"rounds": bst.num_boosted_rounds()}, checkpoint=ckpt)

    trainer = XGBoostTrainer(
        train_fn,
        # The ref is wrapped in a list so it travels as a reference, not as the data.
        train_loop_config={"params": bp, "rounds": rounds, "names": names, "data": [data_ref]},
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=device == "cuda", resources_per_worker={"CPU": 1}
        ),
        run_config=RunConfig(storage_path=str(storage_path)) if storage_path else None,
    )
    result = trainer.fit()
    if result.checkpoint is None:
        raise RuntimeError("distributed XGBoost training returned no checkpoint")
    booster = RayTrainReportCallback.get_model(result.checkpoint)
    log.info("distributed fit done", workers=num_workers, rows=len(frame), rounds=rounds)
    return booster
