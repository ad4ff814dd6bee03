"""Predictor: the champion model, hot-swapped when the alias moves.

The loaded model lives in one attribute that is replaced whole, never mutated: a request reads the
reference once and finishes on that model even if a swap lands mid-request, so a swap drops
nothing. A new version is fully loaded and checked before it is swapped in; if it fails to load
the old one keeps serving and the failure is logged and reported by `info()`.
"""

from __future__ import annotations

import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from rayapp.log import configure, get_logger
from rayapp.registry import (
    CHAMPION,
    LoadedModel,
    ModelNotFound,
    alias_version,
    last_known_alias,
    load_version,
    remember_alias,
)

if TYPE_CHECKING:
    from rayapp.config import Settings

log = get_logger(__name__)


class ModelNotLoaded(RuntimeError):
    """No champion is loaded yet; the API answers 503."""


class FeatureSetMismatch(ValueError):
    """The caller looked features up for another feature-set version than the model uses."""


class Predictor:
    def __init__(self, settings: Settings, *, poll: bool = True) -> None:
        configure(settings.log.level, settings.log.format)  # replicas start unconfigured
        self.settings = settings
        self._model: LoadedModel | None = None
        self._swap_lock = threading.Lock()
        self.last_error: str | None = None
        self.swaps = 0
        # Warm start: the champion's last known version from the local cache serves at once (a
        # replacement replica is back in seconds); the registry is asked right after, in the
        # background, and a moved alias is swapped in like any other.
        known = last_known_alias(settings, CHAMPION)
        if known is not None:
            try:
                self._model = load_version(settings, known)
            except Exception as exc:
                log.warning("warm start failed", version=known, error=type(exc).__name__)
        if self._model is None:
            self.check_champion()
        if poll:
            threading.Thread(target=self._poll_loop, name="champion-poll", daemon=True).start()

    # ---- model lifecycle -----------------------------------------------------------------------
    def check_champion(self) -> dict[str, Any]:
        """Load the champion if the alias moved; returns the version info afterwards."""
        with self._swap_lock:  # one load at a time; requests never take this lock
            try:
                version = alias_version(self.settings, CHAMPION)
            except ModelNotFound as exc:
                self.last_error = str(exc)
                return self.info()
            except Exception as exc:  # registry unreachable: keep serving what we have
                self.last_error = f"registry check failed: {type(exc).__name__}"
                log.warning("champion check failed", error=type(exc).__name__)
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
                log.error("champion load failed", version=version, error=type(exc).__name__)
                return self.info()
            self._model = model  # the swap: one reference assignment
            self.last_error = None
            remember_alias(self.settings, CHAMPION, model.version)
            if current is not None:
                self.swaps += 1
                log.info("champion swapped", old=current.version, new=model.version)
            return self.info()

    def _poll_loop(self) -> None:
        if self._model is None or self._model.source == "cache":
            self.check_champion()  # at once after a warm start
        while True:
            time.sleep(self.settings.serving.champion_poll_s)
            self.check_champion()

    def model(self) -> LoadedModel:
        m = self._model
        if m is None:
            raise ModelNotLoaded(self.last_error or "no champion model loaded")
        return m

    def info(self) -> dict[str, Any]:
        m = self._model
        out: dict[str, Any] = {"loaded": m is not None, "last_error": self.last_error, "swaps": self.swaps}
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
    def predict(self, values: dict[str, float], feature_set_version: str) -> dict[str, Any]:
        """Calibrated prediction for one vector given by feature name (missing names = NaN)."""
        m = self.model()
        if feature_set_version != m.feature_set_version:
            raise FeatureSetMismatch(
                f"features are version {feature_set_version}, model {m.version} needs {m.feature_set_version}"
            )
        row = np.array([[_num(values.get(n)) for n in m.feature_names]], dtype=np.float32)
        raw = m.booster.inplace_predict(row)
        raw_p = float(np.asarray(raw).reshape(-1)[0])
        out = m.bundle.predict(np.array([raw_p]))
        return {
            "model_name": m.name,
            "model_version": m.version,
            "feature_set_version": m.feature_set_version,
            "horizon_h": m.bundle.horizon_h,
            "raw_p_up": raw_p,
            "p_up": float(out["p_up"][0]),
            "direction": int(out["direction"][0]),
            "expected_return": float(out["expected_return"][0]),
            "interval_low": float(out["interval_low"][0]),
            "interval_high": float(out["interval_high"][0]),
            "interval_coverage": 1.0 - m.bundle.conformal.alpha,
        }


def _num(v: float | None) -> float:
    if v is None:
        return math.nan
    return float(v)
