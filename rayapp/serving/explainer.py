"""Explainer: per-prediction SHAP values, by whichever method is faster on this machine.

XGBoost's own `pred_contribs` and `shap.TreeExplainer` compute the same exact TreeSHAP values
(both in log-odds space), but their per-call overheads differ by an order of magnitude depending
on versions and hardware, so each loaded model times both on a few rows once and keeps the faster.
The explanation is in log-odds units: contributions plus the base value sum to the booster margin.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from rayapp.log import configure, get_logger
from rayapp.registry import LoadedModel, load_version
from rayapp.serving.predictor import feature_row

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)

ContribFn = Callable[[np.ndarray], np.ndarray]  # (1, n) -> (n + 1,) incl. bias last


def _pred_contribs(model: LoadedModel) -> ContribFn:
    import xgboost as xgb

    names = model.feature_names

    def fn(row: np.ndarray) -> np.ndarray:
        return np.asarray(
            model.booster.predict(xgb.DMatrix(row, feature_names=names), pred_contribs=True, validate_features=False)
        )[0]

    return fn


def _tree_explainer(model: LoadedModel) -> ContribFn:
    import shap

    explainer = shap.TreeExplainer(model.booster)
    base = float(np.asarray(explainer.expected_value).reshape(-1)[0])

    def fn(row: np.ndarray) -> np.ndarray:
        values = np.asarray(explainer.shap_values(row)).reshape(-1)
        return np.append(values, base)

    return fn


def _margins(model: LoadedModel, rows: np.ndarray) -> np.ndarray:
    import xgboost as xgb

    d = xgb.DMatrix(rows, feature_names=model.feature_names)
    return np.asarray(model.booster.predict(d, output_margin=True, validate_features=False)).reshape(-1)


def _time_per_row(fn: ContribFn, rows: np.ndarray, repeats: int = 5) -> float:
    fn(rows[:1])  # warm-up: first calls build caches
    t0 = time.perf_counter()
    for _ in range(repeats):
        for i in range(len(rows)):
            fn(rows[i : i + 1])
    return (time.perf_counter() - t0) / (repeats * len(rows))


class _Entry:
    def __init__(self, model: LoadedModel, method: str, fn: ContribFn, timings_ms: dict[str, float]):
        self.model, self.method, self.fn, self.timings_ms = model, method, fn, timings_ms


class Explainer:
    def __init__(
        self, settings: Settings, *, cache_size: int = 2, methods: tuple[str, ...] = ("pred_contribs", "tree_explainer")
    ) -> None:
        configure(settings.log.level, settings.log.format)  # replicas start unconfigured
        self.settings = settings
        self.cache_size = cache_size
        self.methods = methods
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def _entry(self, version: str) -> _Entry:
        with self._lock:
            entry = self._cache.get(version)
            if entry is not None:
                self._cache.move_to_end(version)
                return entry
            entry = self._build(load_version(self.settings, version))
            self._cache[version] = entry
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return entry

    def _build(self, model: LoadedModel) -> _Entry:
        builders = {"pred_contribs": _pred_contribs, "tree_explainer": _tree_explainer}
        rng = np.random.default_rng(0)
        n = len(model.feature_names)
        # Timing rows: random with a share of NaN so both missing-value paths are exercised.
        rows = rng.normal(size=(8, n)).astype(np.float32)
        rows[rng.random(rows.shape) < 0.1] = np.nan
        timings: dict[str, float] = {}
        fns: dict[str, ContribFn] = {}
        margins = _margins(model, rows)
        for name in self.methods:
            try:
                fn = builders[name](model)
                # Additivity check: base + contributions must give the booster's own margin. A
                # method that reads the model differently (e.g. shap parsing a loaded booster's
                # base_score) would explain every prediction with a shifted base: not used.
                err = max(abs(float(np.sum(fn(rows[i : i + 1]))) - float(margins[i])) for i in range(len(rows)))
                if err > 1e-3:
                    log.warning("explainer method not additive: skipped", method=name, max_error=round(err, 6))
                    continue
                fns[name] = fn
                timings[name] = _time_per_row(fn, rows) * 1e3
            except Exception as exc:  # e.g. a shap/xgboost version pair that disagrees
                log.warning("explainer method unavailable", method=name, error=type(exc).__name__)
        if not timings:
            raise RuntimeError(f"no SHAP method works for model version {model.version}")
        method = min(timings, key=lambda k: timings[k])
        log.info(
            "explainer method chosen",
            version=model.version,
            method=method,
            **{f"{k}_ms_per_row": round(v, 4) for k, v in timings.items()},
        )
        return _Entry(model, method, fns[method], timings)

    def info(self, version: str) -> dict[str, Any]:
        e = self._entry(version)
        return {"version": version, "method": e.method, "ms_per_row": e.timings_ms}

    def explain(self, model_version: str, values: dict[str, float], p_up: float | None = None) -> dict[str, Any]:
        e = self._entry(model_version)
        names = e.model.feature_names
        contrib = e.fn(feature_row(values, names))
        contributions = {n: float(c) for n, c in zip(names, contrib[:-1], strict=True)}
        return summarise(
            contributions,
            float(contrib[-1]),
            e.method,
            model_version,
            values,
            self.settings.serving.explain_top_k,
            p_up,
        )


def summarise(
    contributions: dict[str, float],
    base_value: float,
    method: str,
    model_version: str,
    values: dict[str, float],
    top_k: int,
    p_up: float | None,
) -> dict[str, Any]:
    """Top factors each way and a one-line explanation from SHAP contributions."""
    ordered = sorted(contributions.items(), key=lambda kv: kv[1], reverse=True)

    def factor(name: str, c: float) -> dict[str, Any]:
        v = values.get(name)
        return {
            "feature": name,
            "contribution": c,
            "value": None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v),
        }

    pos = [factor(n, c) for n, c in ordered if c > 0][:top_k]
    neg = [factor(n, c) for n, c in reversed(ordered) if c < 0][:top_k]
    margin = base_value + sum(contributions.values())

    out = {
        "method": method,
        "model_version": model_version,
        "base_value": base_value,
        "margin": margin,
        "contributions": contributions,
        "top_positive": pos,
        "top_negative": neg,
        "units": "log-odds",
    }
    return with_probability(out, p_up)


def with_probability(explanation: dict[str, Any], p_up: float | None) -> dict[str, Any]:
    """The explanation with its one-line text led by the served (calibrated) P(up)."""

    def fmt(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{f['feature']} ({f['contribution']:+.3f})" for f in items) or "nothing"

    lead = f"P(up) {p_up:.2f}" if p_up is not None else f"log-odds {explanation['margin']:+.3f}"
    text = (
        f"{lead}: pushed up most by {fmt(explanation['top_positive'])}; "
        f"pushed down most by {fmt(explanation['top_negative'])}."
    )
    return {**explanation, "text": text}
