"""Hyperparameter search: Ray Tune + OptunaSearch (TPE) + ASHA over the XGBoost space.

Each trial is a walk-forward CV: it reports after every fold (training_iteration = folds done),
so ASHA can stop a poor configuration after its first folds. The training frame and the folds
go into the object store once through `tune.with_parameters`; trial actors are reused.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rayapp.log import get_logger
from rayapp.training.cv import Fold
from rayapp.training.data import TrainingFrame
from rayapp.training.model import cv_evaluate

log = get_logger(__name__)


def fold_metric_name(metric: str) -> str:
    """`mean_accuracy` -> `accuracy`: the objective is the mean of a per-fold metric."""
    return metric[5:] if metric.startswith("mean_") else metric


def search_space(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind, lo, hi = spec.get("type"), spec.get("low"), spec.get("high")
        if lo is None or hi is None or lo > hi:
            raise ValueError(f"tune.space.{name}: needs low <= high, got {spec}")
        if kind == "int":
            out[name] = tune.randint(int(lo), int(hi) + 1)  # randint's upper bound is exclusive
        elif kind == "uniform":
            out[name] = tune.uniform(float(lo), float(hi))
        elif kind == "loguniform":
            out[name] = tune.loguniform(float(lo), float(hi))
        elif kind == "choice":
            out[name] = tune.choice(list(spec["values"]))
        else:
            raise ValueError(f"tune.space.{name}: unknown type {kind!r} (int | uniform | loguniform | choice)")
    return out


def optuna_distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The same space as Optuna distributions (for the plain-Optuna benchmark baseline)."""
    import optuna.distributions as od

    out: dict[str, Any] = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "int":
            out[name] = od.IntDistribution(int(spec["low"]), int(spec["high"]))
        elif kind == "uniform":
            out[name] = od.FloatDistribution(float(spec["low"]), float(spec["high"]))
        elif kind == "loguniform":
            out[name] = od.FloatDistribution(float(spec["low"]), float(spec["high"]), log=True)
        else:
            out[name] = od.CategoricalDistribution(list(spec["values"]))
    return out


def cluster_device(requested: str = "auto") -> str:
    """cuda when asked for, or when `auto` and the Ray cluster has a GPU; else cpu."""
    if requested != "auto":
        return requested
    import ray

    return "cuda" if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def _drop_log(logger: str, prefix: str) -> Iterator[None]:
    """Drop one expected warning: the result grid looks for the result files switched off above."""
    import logging

    class _Filter(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not str(record.msg).startswith(prefix)

    f = _Filter()
    target = logging.getLogger(logger)
    target.addFilter(f)
    try:
        yield
    finally:
        target.removeFilter(f)


def _trial(
    config: dict[str, Any],
    frame: TrainingFrame,
    folds: list[Fold],
    seed: int,
    device: str,
    nthread: int,
    fee_bps: float,
    metric: str,
) -> None:
    from ray import tune

    fm = fold_metric_name(metric)
    history: list[dict[str, float]] = []

    def report(k: int, m: dict[str, float], running: float) -> bool:
        row = {"fold": k, **{f"fold_{key}": float(v) for key, v in m.items() if key != "fold"}}
        history.append(row)
        # Each result carries the folds so far: the last one a trial reported (kept in memory by
        # Tune, even for a trial ASHA stopped) is its whole history, with no result files needed.
        tune.report({metric: running, **row, "fold_history": list(history)})
        return True

    cv_evaluate(frame, folds, config, seed, device, nthread, fee_bps, metric=fm, on_fold=report)


@dataclass
class SearchResult:
    best_params: dict[str, Any]
    best_score: float
    trials: list[dict[str, Any]] = field(default_factory=list)  # params, fold rows, final score
    wall_s: float = 0.0


def run_search(
    frame: TrainingFrame,
    folds: list[Fold],
    space: dict[str, dict[str, Any]],
    *,
    num_samples: int,
    max_concurrent: int,
    metric: str = "mean_accuracy",
    mode: str = "max",
    seed: int = 42,
    fee_bps: float = 10.0,
    device: str = "auto",
    base_params: dict | None = None,
    storage_path: str | Path | None = None,
    use_asha: bool = True,
    name: str = "rayapp_tune",
    max_failures: int = 2,
) -> SearchResult:
    import time

    import ray
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    if not ray.is_initialized():
        raise RuntimeError("Ray is not initialised: call ray.init() (or rayapp train does it)")
    dev = cluster_device(device)
    res = ray.cluster_resources()
    cpus = max(1.0, float(res.get("CPU", 1)))
    per_trial_cpu = max(1, int(cpus // max_concurrent))
    resources: dict[str, float] = {"cpu": per_trial_cpu}
    if dev == "cuda":
        resources["gpu"] = min(1.0, float(res.get("GPU", 1)) / max_concurrent)
    trainable = tune.with_resources(
        tune.with_parameters(
            _trial,
            frame=frame,
            folds=folds,
            seed=seed,
            device=dev,
            nthread=per_trial_cpu,
            fee_bps=fee_bps,
            metric=metric,
        ),
        resources,
    )
    param_space = {**(base_params or {}), **search_space(space)}
    searcher = OptunaSearch(metric=metric, mode=mode, sampler=TPESampler(seed=seed))
    scheduler = (
        ASHAScheduler(
            time_attr="training_iteration",
            max_t=len(folds),
            grace_period=max(1, len(folds) // 2),
            reduction_factor=2,
        )
        if use_asha and len(folds) > 1
        else None
    )
    storage = Path(storage_path).resolve() if storage_path else None
    # Fold histories come back in the trials' last results and go to MLflow, so Tune's automatic
    # CSV/JSON/TensorBoard result files are switched off: importing tensorboardX pulls in torch,
    # about 2 s of every search's start-up on a small machine, for files nobody reads.
    tuner = tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric=metric,
            mode=mode,
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,
        ),
        # A trial whose node or worker dies is restarted (from scratch: trials keep no checkpoint)
        # up to max_failures times, on whichever node has room; the search goes on meanwhile.
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(storage) if storage else None,
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=max_failures),
        ),
    )
    t0 = time.perf_counter()
    with (
        _env("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1"),
        _drop_log("ray.tune.analysis.experiment_analysis", "Failed to fetch metrics"),
    ):
        grid = tuner.fit()
    wall = time.perf_counter() - t0
    trials = []
    for i in range(len(grid)):
        r = grid[i]
        cfg, met = r.config or {}, r.metrics or {}
        rows = list(met.get("fold_history") or [])
        error = None if r.error is None else f"{type(r.error).__name__}: {r.error}"[:500]
        if error:
            log.warning("trial failed", error=error[:300])
        trials.append(
            {
                "params": {k: cfg[k] for k in space if k in cfg},
                "score": float(met.get(metric, np.nan)),
                "folds": rows,
                "completed_folds": len(rows),
                "trial_id": met.get("trial_id", ""),
                "node_ip": met.get("node_ip"),  # where its last result came from
                "error": error,
            }
        )
    ok = [t for t in trials if t["error"] is None]
    if not ok:
        raise RuntimeError("every Tune trial failed; see the warnings above")
    # Only trials that ran every fold compete: a stopped trial's score covers fewer folds.
    full = [t for t in ok if t["completed_folds"] == len(folds)] or ok
    pick = max if mode == "max" else min
    best = pick(full, key=lambda t: t["score"])
    log.info(
        "search done",
        trials=len(trials),
        complete=len(full),
        stopped_early=len(ok) - len(full),
        failed=len(trials) - len(ok),
        nodes=len({t["node_ip"] for t in trials if t["node_ip"]}),
        best=round(best["score"], 4),
        wall_s=round(wall, 1),
        device=dev,
    )
    return SearchResult({**(base_params or {}), **best["params"]}, best["score"], trials, wall)


def log_trials(trials: list[dict[str, Any]], metric: str) -> int:
    """One nested run per Tune trial: its params, the node it ran on and its per-fold metrics
    (step = fold). A trial that failed (after its restarts) is a FAILED run with its error, so
    every trial the search started is accounted for."""
    import mlflow

    for i, t in enumerate(trials):
        mlflow.start_run(run_name=f"trial_{i:03d}", nested=True)
        try:
            mlflow.log_params({k: v for k, v in t["params"].items()})
            mlflow.set_tags(
                {
                    "trial_id": t.get("trial_id") or "",
                    "node_ip": t.get("node_ip") or "",
                    "trial_status": "error" if t.get("error") else "ok",
                }
            )
            if t.get("error"):
                mlflow.set_tag("trial_error", t["error"])
                continue
            for row in t["folds"]:
                step = int(row.get("fold", 0))
                mlflow.log_metrics(
                    {
                        k: float(v)
                        for k, v in row.items()
                        if k.startswith("fold_") and isinstance(v, int | float) and np.isfinite(v)
                    },
                    step=step,
                )
            mlflow.log_metrics({metric: t["score"], "completed_folds": t["completed_folds"]})
        finally:
            mlflow.end_run(status="FAILED" if t.get("error") else "FINISHED")
    return len(trials)
