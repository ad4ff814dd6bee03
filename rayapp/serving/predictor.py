"""Predictor: the model an alias names (the champion, or the shadow), hot-swapped when it moves.

The loaded model lives in one attribute that is replaced whole, never mutated: a request reads the
reference once and finishes on that model even if a swap lands mid-request, so a swap drops
nothing. A new version is fully loaded and checked before it is swapped in; if it fails to load
the old one keeps serving and the failure is logged and reported by `info()`.

The same class serves the `shadow` alias (`ShadowPredictor`): there a missing alias is the normal
idle state (nothing logged, `info()` says loaded=False with no error) and a model is unloaded as
soon as the alias leaves it, or moves to a version that cannot be loaded, because a shadow forecast
must always be the version the alias names.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from rayapp.log import configure, get_logger
from rayapp.registry import (
    CHAMPION,
    SHADOW,
    LoadedModel,
    ModelNotFound,
    alias_version,
    forget_alias,
    last_known_alias,
    load_version,
    remember_alias,
)

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


class ModelNotLoaded(RuntimeError):
    """No model is loaded for the alias (no champion yet: the API answers 503)."""


class FeatureSetMismatch(ValueError):
    """The caller looked features up for another feature-set version than the model uses."""


class Predictor:
    def __init__(self, settings: Settings, *, alias: str = CHAMPION, poll: bool = True) -> None:
        configure(settings.log.level, settings.log.format)  # replicas start unconfigured
        self.settings = settings
        self.alias = alias
        # Serving cannot do without a champion; a shadow is there only while the lifecycle wants one.
        self.required = alias == CHAMPION
        self._model: LoadedModel | None = None
        self._swap_lock = threading.Lock()
        self.last_error: str | None = None
        self._failed_version: str | None = None  # logged once per version that fails to load
        self.swaps = 0
        # Warm start: the alias's last known version from the local cache serves at once (a
        # replacement replica is back in seconds); the registry is asked right after, in the
        # background, and a moved alias is swapped in like any other. Per alias: the champion's
        # and the shadow's are two files.
        known = last_known_alias(settings, alias)
        if known:
            try:
                self._model = load_version(settings, known)
            except Exception as exc:
                log.warning("warm start failed", alias=alias, version=known, error=type(exc).__name__)
        if self._model is None:
            self.check()
        if poll:
            threading.Thread(target=self._poll_loop, name=f"{alias}-poll", daemon=True).start()

    # ---- model lifecycle -----------------------------------------------------------------------
    def check(self) -> dict[str, Any]:
        """Load the alias's version if the alias moved; returns the version info afterwards."""
        with self._swap_lock:  # one load at a time; requests never take this lock
            try:
                version = alias_version(self.settings, self.alias)
            except ModelNotFound as exc:
                if self.required:
                    self.last_error = str(exc)
                else:  # no shadow wanted now: the normal idle state
                    self._unload("alias removed")
                return self.info()
            except Exception as exc:  # registry unreachable: keep serving what we have
                self.last_error = f"registry check failed: {type(exc).__name__}"
                log.warning("alias check failed", alias=self.alias, error=type(exc).__name__)
                return self.info()
            current = self._model
            if current is not None and current.version == version:
                if current.source == "cache":  # confirmed by the registry: no longer provisional
                    current.source = "registry"
                self.last_error = None
                return self.info()
            try:
                model = load_version(self.settings, version)
            except Exception as exc:
                self.last_error = f"loading version {version} failed: {type(exc).__name__}: {exc}"
                if version != self._failed_version:  # once per version, not once per poll
                    log.error("model load failed", alias=self.alias, version=version, error=type(exc).__name__)
                    self._failed_version = version
                if not self.required:  # never score a shadow under a version the alias left
                    self._unload(f"version {version} failed to load", keep_error=True)
                return self.info()
            self._model = model  # the swap: one reference assignment
            self.last_error = None
            self._failed_version = None
            remember_alias(self.settings, self.alias, model.version)
            if current is not None:
                self.swaps += 1
                log.info("model swapped", alias=self.alias, old=current.version, new=model.version)
            elif not self.required:
                log.info("shadow model loaded", alias=self.alias, version=model.version)
            return self.info()

    # the champion's name for it (POST /admin/reload-model, older callers)
    check_champion = check

    def _unload(self, why: str, *, keep_error: bool = False) -> None:
        """Drop the model and the warm-start record (a restarted replica must not warm-start a
        version the alias no longer names). Only for a non-required alias. Holds `_swap_lock`."""
        if not keep_error:
            self.last_error = None
        if last_known_alias(self.settings, self.alias) is not None:
            forget_alias(self.settings, self.alias)
        old, self._model = self._model, None
        if old is not None:
            log.info("model unloaded", alias=self.alias, version=old.version, reason=why)

    def _poll_loop(self) -> None:
        if self._model is None or self._model.source == "cache":
            self.check()  # at once after a warm start
        while True:
            time.sleep(self.settings.serving.champion_poll_s)
            try:
                self.check()
            except Exception as exc:  # never let the poller die
                log.warning("alias poll failed", alias=self.alias, error=type(exc).__name__)

    def model(self) -> LoadedModel:
        m = self._model
        if m is None:
            raise ModelNotLoaded(self.last_error or f"no {self.alias} model loaded")
        return m

    def info(self) -> dict[str, Any]:
        out = describe(self._model)
        out.update({"alias": self.alias, "last_error": self.last_error, "swaps": self.swaps})
        return out

    def report(self) -> dict[str, Any]:
        """The training/ablation reports logged with the served version's run."""
        from rayapp.registry import load_report

        return load_report(self.settings, self.model().run_id)

    def ping(self) -> dict[str, Any]:
        """Cheap liveness/identity probe (the pid lets a test kill exactly this replica)."""
        import os

        m = self._model
        return {"pid": os.getpid(), "version": m.version if m else None}

    # ---- inference -----------------------------------------------------------------------------
    def predict(
        self, values: dict[str, float], feature_set_version: str, interval: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Calibrated prediction for one vector given by feature name (missing names = NaN), with
        its served distribution. `interval`: {"inputs": the feature hour's interval inputs
        (rayapp.serving.intervals.interval_inputs), "version": the version `states` belong to,
        "states": level key -> ACI state} as the ingress read them; states of another version (a
        swap landed in between) are not used."""
        return score(
            self.model(),
            values,
            feature_set_version,
            interval,
            level=self.settings.lifecycle.coverage.level,
            aci_gamma=self.settings.serving.intervals.aci_gamma,
        )


class ShadowPredictor(Predictor):
    """The version carrying the `shadow` alias (a gated challenger, or the previous champion during
    a promotion's watch period), as its own Serve deployment beside the champion's `Predictor`.

    The ingress scores a logged champion forecast's vector here in a background task and writes
    the result with role `shadow`; nothing from here ever reaches a client. Idle (no alias) it
    holds no model and costs one registry query per `serving.champion_poll_s`.

    Why a second deployment rather than `@serve.multiplexed` model ids on the Predictor:
    benchmarks/shadow.py measures both on the same app and load (2 CPUs, concurrency 8). Where the
    app shadows (one logged forecast per hour) neither costs anything measurable: the
    latest-vector path ran 28.4 ms p50 / 255 req/s (deployment) vs 28.2 ms / 246 req/s
    (multiplexed). With every request also scored in shadow (the worst case) multiplexing was not
    clearly better: 110 vs 126 ms p50, 399 vs 510 ms p99, 65 vs 45 req/s, but it dropped 29% of
    the shadow scorings against 16% here, and the machine was shared, so the spread is within
    noise. The design decides it then: a deployment of its own follows the alias like the
    champion (a multiplexed model id is cached per replica and never notices the alias move),
    never takes the champion's replicas or its `max_ongoing_requests` slots, loads and fails on
    its own (a shadow that cannot load costs the champion nothing), and is idle when there is no
    shadow, holding no model in the champion's replicas.
    """

    def __init__(self, settings: Settings, *, poll: bool = True) -> None:
        super().__init__(settings, alias=SHADOW, poll=poll)


def describe(m: LoadedModel | None) -> dict[str, Any]:
    """What `info()` says of a loaded model (None: not loaded)."""
    out: dict[str, Any] = {"loaded": m is not None}
    if m is not None:
        b = m.bundle
        out.update(
            {
                "name": m.name,
                "version": m.version,
                "run_id": m.run_id,
                "feature_set_version": b.feature_set_version,
                "feature_names": list(b.feature_names),
                "horizon_h": b.horizon_h,
                "cv_metrics": b.cv_metrics,
                "baselines": b.baselines,
                "gate": b.gate,
                "data_range": b.data_range,
                "calibration": b.calibration.method,
                "conformal_alpha": b.conformal.alpha,
                "tags": m.tags,
                "loaded_at": m.loaded_at,
                "source": m.source,
            }
        )
    return out


def score(
    m: LoadedModel,
    values: dict[str, float],
    feature_set_version: str,
    interval: dict[str, Any] | None = None,
    *,
    level: float = 0.9,
    aci_gamma: float | None = None,
) -> dict[str, Any]:
    """One model's calibrated prediction for one vector given by feature name (missing = NaN), and
    its quantiles, volatility and intervals (rayapp.serving.intervals.served_fields; `interval`
    as `Predictor.predict` takes it). `interval_low/high` are the interval at the nominal `level`
    (lifecycle.coverage.level), `interval_coverage` its live running coverage (None: nothing
    resolved yet)."""
    from rayapp.serving.intervals import served_fields

    if feature_set_version != m.feature_set_version:
        raise FeatureSetMismatch(
            f"features are version {feature_set_version}, model {m.version} needs {m.feature_set_version}"
        )
    row = feature_row(values, m.feature_names)
    raw = m.booster.inplace_predict(row)
    raw_p = float(np.asarray(raw).reshape(-1)[0])
    out = m.bundle.predict(np.array([raw_p]))
    er = float(out["expected_return"][0])
    interval = interval or {}
    states = interval.get("states") if str(interval.get("version")) == str(m.version) else None
    return {
        "model_name": m.name,
        "model_version": m.version,
        "feature_set_version": m.feature_set_version,
        "horizon_h": m.bundle.horizon_h,
        "raw_p_up": raw_p,
        "p_up": float(out["p_up"][0]),
        "direction": int(out["direction"][0]),
        "expected_return": er,
        **served_fields(m, values, er, interval.get("inputs"), states, level=level, aci_gamma=aci_gamma),
    }


_F32_MAX = float(np.finfo(np.float32).max)


def feature_row(values: Mapping[str, float | None], names: list[str]) -> np.ndarray:
    """The (1, n) float32 row the booster and its explanation read: missing (None, NaN) is NaN;
    a finite value beyond float32's range is clamped to float32's largest finite value of the same
    sign instead of becoming inf (the SHAP call rejects inf). For a tree model the two are the
    same input: every split threshold is a finite float32, below the clamped value. Serving never
    lets such a value in (features.FEATURE_RANGES); stored vectors are not checked, so this keeps
    the prediction and its explanation defined for any finite input."""
    out = np.empty((1, len(names)), dtype=np.float32)
    for i, n in enumerate(names):
        v = values.get(n)
        if v is None:
            out[0, i] = math.nan
            continue
        x = float(v)
        out[0, i] = x if math.isnan(x) else min(max(x, -_F32_MAX), _F32_MAX)
    return out
