"""The prediction pipeline the ingress runs: look up → predict → explain → log → push.

Deployments are reached through handle-like objects (`await handle.method.remote(...)`): Ray Serve
`DeploymentHandle`s in the Serve app, `LocalHandle`s around the same classes in the plain-uvicorn
baseline, so both run exactly this code. A call that hits a replica that just died is retried on
another one, which is what keeps a replica loss from failing requests.

The hot path is short because features change hourly while requests come many times a second:
- the ingress reads a fresh online vector itself (one async Redis read on its event loop); the
  FeatureLookup deployment is called only when that vector is missing, stale or Redis is down
  (it then decides between online and offline and flags the fallback);
- a prediction and its explanation are a pure function of (model version, feature vector), so
  they are kept in a small LRU: the Predictor and Explainer deployments are called once per new
  vector or model version, not once per request;
- a forecast already written to `predictions` (same id) is not written again.
On this 2-core machine each handle hop costs about as much as all the model work together
(benchmarks/serve_latency.py), which is why the common case avoids them.

Shadow scoring: when a version carries the `shadow` alias, each champion forecast logged to
`predictions` is scored again by the ShadowPredictor deployment on the same vector and written
with role `shadow`, in a background task after the response is built: the client never waits for
it, never sees it, and a shadow failure only counts in `rayapp_shadow_predictions_total`. At most
`SHADOW_MAX_PENDING` such tasks run at once; beyond that a forecast's shadow is dropped (counted).
Once per (hour, shadow version): the same hour served again is not rescored.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rayapp.log import get_logger
from rayapp.serving import prediction_log
from rayapp.serving.explainer import with_probability
from rayapp.serving.predictor import FeatureSetMismatch
from rayapp.serving.staleness import as_utc, staleness

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

    from rayapp.config import Settings
    from rayapp.serving.metrics import ServingMetrics
    from rayapp.serving.ws import Hub

log = get_logger(__name__)

SHADOW_MAX_PENDING = 32  # shadow scorings in flight; more are dropped (and counted), never queued
SHADOW_TIMEOUT_S = 30.0  # a shadow scoring still running after this is abandoned (outcome error)
INPUTS_RETRY_S = 10.0  # interval inputs that could not be read are read again after this


class NotFound(LookupError):
    pass


class FeatureValidation(ValueError):
    """An explicit feature vector does not match the model; `errors` are FastAPI-style items."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__("invalid feature vector")
        self.errors = errors


class LocalHandle:
    """`handle.method.remote(*args)` for a plain object: runs the method in a worker thread."""

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self._obj, name)

        class _Method:
            @staticmethod
            def remote(*args: Any, **kwargs: Any) -> Any:
                return asyncio.to_thread(fn, *args, **kwargs)

        return _Method


def _retryable() -> tuple[type[BaseException], ...]:
    try:
        from ray.exceptions import ActorUnavailableError, RayActorError
        from ray.serve.exceptions import DeploymentUnavailableError
    except ImportError:  # pragma: no cover - ray is a dependency; the baseline may run without it
        return ()
    return (RayActorError, ActorUnavailableError, DeploymentUnavailableError)


class _LRU:
    def __init__(self, size: int) -> None:
        self.size = size
        self._d: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any:
        v = self._d.get(key)
        if v is not None:
            self._d.move_to_end(key)
        return v

    def put(self, key: Hashable, value: Any) -> None:
        if self.size <= 0:
            return
        self._d[key] = value
        self._d.move_to_end(key)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)


class PredictionService:
    def __init__(
        self,
        settings: Settings,
        lookup: Any,
        predictor: Any,
        explainer: Any,
        metrics: ServingMetrics,
        pool: ConnectionPool | None,
        online_url: str | None = None,
        shadow: Any = None,
    ) -> None:
        self.settings = settings
        self.lookup, self.predictor, self.explainer = lookup, predictor, explainer
        self.shadow = shadow  # the ShadowPredictor handle; None: no shadow scoring at all
        self.metrics = metrics
        self.pool = pool
        self.meta: dict[str, Any] = {"loaded": False}
        self.shadow_meta: dict[str, Any] = {"loaded": False}
        # Strong references to the shadow tasks in flight (the event loop keeps only weak ones),
        # keyed by the shadow forecast's id: one task per forecast.
        self._shadow_tasks: dict[str, asyncio.Task[None]] = {}
        # Shadow rows are written by threads of their own: a slow or unreachable database then
        # holds up shadow writes only, never the default executor the champion's log write uses.
        self._shadow_writer = (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="shadow-log") if shadow is not None else None
        )
        self._clock: Any = None
        from rayapp.clock import is_wall_clock

        self._wall_clock = is_wall_clock(settings)  # live: no clock to ask, now is datetime.now
        self.hub: Hub | None = None
        self._seen_ts: dict[str, str | None] = {}
        self._retry_on = _retryable()
        self._methods: dict[tuple[str, str], Any] = {}
        size = settings.serving.prediction_cache_size
        self._results = _LRU(size)  # (version, fsv, explain, vector) -> (pred, explanation)
        self._logged = _LRU(max(size, 1024))  # prediction ids known to be in `predictions`
        self._shadow_logged = _LRU(1024)  # shadow forecast ids already scored (written or duplicate)
        # The interval model's inputs per (symbol, feature set, hour): closes read once an hour.
        # A failed read is kept for INPUTS_RETRY_S only (value: (retry-after monotonic | None, inputs)).
        self._interval_inputs = _LRU(256)
        # ACI states per (model, version, horizon): (monotonic read time, states), re-read in the
        # background after serving.intervals.aci_refresh_s; the request never waits for it then.
        self._aci: dict[tuple[str, str, int], tuple[float, dict[str, Any]]] = {}
        self._aci_reads: dict[tuple[str, str, int], asyncio.Task[None]] = {}
        self.online = None
        if online_url:
            from rayapp.features import AsyncOnlineReader

            self.online = AsyncOnlineReader(online_url, socket_timeout=settings.redis.socket_timeout_s)
        self._online_retry_at = 0.0  # after a Redis error, leave it to FeatureLookup for a while

    async def call(self, name: str, handle: Any, method: str, *args: Any) -> Any:
        key = (name, method)
        bound = self._methods.get(key)
        if bound is None:  # `handle.method` builds a new handle each time: build it once
            bound = self._methods[key] = getattr(handle, method)
        delay = 0.05
        for attempt in range(5):
            try:
                return await bound.remote(*args)
            except self._retry_on as exc:
                if attempt == 4:
                    raise
                self.metrics.upstream_retries.labels(name).inc()
                log.warning(
                    "deployment call retried",
                    deployment=name,
                    method=method,
                    error=type(exc).__name__,
                    attempt=attempt + 1,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        raise AssertionError("unreachable")

    # ---- model metadata ------------------------------------------------------------------------
    async def refresh_model(self) -> dict[str, Any]:
        info = await self.call("Predictor", self.predictor, "info")
        self.meta = info
        self.metrics.set_model(info)
        return info

    async def refresh_shadow(self) -> dict[str, Any]:
        """The ShadowPredictor's state ({"loaded": False} when idle or when there is none)."""
        if self.shadow is None:
            return self.shadow_meta
        try:
            info = await self.call("ShadowPredictor", self.shadow, "info")
        except Exception as exc:  # the shadow is never worth failing a caller for
            info = {"loaded": False, "last_error": f"shadow unreachable: {type(exc).__name__}"}
        self.shadow_meta = info
        self.metrics.set_shadow(info)
        return info

    async def model_info(self) -> dict[str, Any]:
        info = await self.refresh_model()
        if info.get("loaded"):
            try:
                info = {**info, "explainer": await self.call("Explainer", self.explainer, "info", info["version"])}
            except Exception as exc:
                info = {**info, "explainer": {"error": type(exc).__name__}}
        return info

    # ---- the pipeline --------------------------------------------------------------------------
    async def now(self) -> Any:
        """Now on the system clock: wall time, or the replay server's market clock (asked in a
        thread, as it reads its server now and then)."""
        from datetime import UTC, datetime

        if self._wall_clock:
            return datetime.now(UTC)
        now, _ = await asyncio.to_thread(self.clock_now)
        return now

    async def _lookup(self, symbol: str, fsv: str, now: Any) -> dict[str, Any]:
        """A fresh online vector read here, else the FeatureLookup deployment's decision."""
        import pandas as pd

        from rayapp.serving.feature_lookup import fresh_online

        if self.online is not None and time.monotonic() >= self._online_retry_at:
            try:
                vec = await self.online.read(symbol, fsv)
            except Exception as exc:  # redis errors and timeouts: FeatureLookup handles it
                self._online_retry_at = time.monotonic() + 5.0
                log.warning("online store read failed; using FeatureLookup", error=type(exc).__name__)
                vec = None
            fresh = (
                None if vec is None else fresh_online(vec, self.settings.serving.feature_staleness_s, pd.Timestamp(now))
            )
            if fresh is not None:
                return fresh
        return await self.call("FeatureLookup", self.lookup, "lookup", symbol, fsv, now.isoformat())

    async def data_freshness(self, fsv: str) -> list[dict[str, Any]]:
        """{symbol, as_of, data_age_s, stale} of the newest feature vector per served symbol."""
        now = await self.now()
        max_age = self.settings.serving.feature_staleness_s
        rows = []
        for symbol in self.settings.symbols:
            ts = await self.call("FeatureLookup", self.lookup, "latest_ts", symbol, fsv)
            row = {"symbol": symbol, **staleness(ts, now, max_age)}
            if ts is None:
                row["stale"] = True  # no vector at all: nothing is being fed
            rows.append(row)
        return rows

    # ---- the served distribution's inputs ---------------------------------------------------------
    async def interval_inputs(self, symbol: str, fsv: str, ts: str | None) -> dict[str, Any]:
        """The interval model's inputs for a feature hour (rayapp.serving.intervals): cached per
        (symbol, feature set, hour); a what-if vector (no hour) or no database: all missing."""
        from rayapp.serving.intervals import interval_inputs, no_inputs

        if ts is None:
            return no_inputs("no feature hour (a what-if vector)")
        if self.pool is None:
            return no_inputs("no database")
        key = (symbol, fsv, ts)
        hit = self._interval_inputs.get(key)
        if hit is not None and (hit[0] is None or time.monotonic() < hit[0]):
            return hit[1]  # type: ignore[no-any-return]
        try:
            got = await self.db(interval_inputs, symbol, fsv, ts)
            self._interval_inputs.put(key, (None, got))
        except Exception as exc:  # the warehouse is away: the volatility features are missing
            log.warning("interval inputs not read", symbol=symbol, ts=ts, error=type(exc).__name__)
            got = no_inputs(f"closes not read: {type(exc).__name__}")
            self._interval_inputs.put(key, (time.monotonic() + INPUTS_RETRY_S, got))
        return got

    async def aci_states(self, name: str, version: str, horizon_h: int) -> dict[str, Any]:
        """The shared ACI states of one version (rayapp/serving/aci.py), level key -> state dict.
        Read once, then reused and re-read in the background every serving.intervals.aci_refresh_s."""
        if self.pool is None:
            return {}
        key = (str(name), str(version), int(horizon_h))
        cached = self._aci.get(key)
        if cached is None:
            await self._read_aci(key)
            cached = self._aci.get(key)
            return {} if cached is None else cached[1]
        if time.monotonic() - cached[0] >= self.settings.serving.intervals.aci_refresh_s and key not in self._aci_reads:
            task = asyncio.get_running_loop().create_task(self._read_aci(key))
            self._aci_reads[key] = task
            task.add_done_callback(lambda _t: self._aci_reads.pop(key, None))
        return cached[1]

    async def _read_aci(self, key: tuple[str, str, int]) -> None:
        from rayapp.serving.aci import read_states

        try:
            states = await self.db(read_states, *key)
        except Exception as exc:  # keep what was read before; nothing read yet: nominal intervals
            log.warning("aci states not read", model_version=key[1], error=type(exc).__name__)
            old = self._aci.get(key)
            self._aci[key] = (time.monotonic(), old[1] if old else {})
            return
        self._aci[key] = (time.monotonic(), states)
        if len(self._aci) > 64:  # versions long gone
            for k in list(self._aci)[: len(self._aci) - 64]:
                self._aci.pop(k, None)

    async def _interval(self, meta: dict[str, Any], symbol: str, fsv: str, ts: str | None) -> dict[str, Any]:
        """What the Predictor needs for the served distribution of `meta`'s version (Predictor.predict)."""
        inputs = await self.interval_inputs(symbol, fsv, ts)
        states = await self.aci_states(meta["name"], meta["version"], meta["horizon_h"])
        return {"inputs": inputs, "version": str(meta["version"]), "states": states}

    async def _model_outputs(
        self,
        meta: dict[str, Any],
        values: dict[str, Any],
        fsv: str,
        explain: bool,
        interval: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """(prediction, explanation) from the Predictor and Explainer, or from the LRU."""
        key = (
            meta["version"],
            fsv,
            explain,
            tuple(values.get(n) for n in meta["feature_names"]),
            _interval_key(interval),
        )
        hit = self._results.get(key)
        if hit is not None:
            self.metrics.cache.labels("hit").inc()
            return hit
        self.metrics.cache.labels("miss").inc()
        # The explanation does not depend on the prediction, only on the model version: ask for
        # both at once (one round trip of latency instead of two) and redo the explanation in
        # the rare case a hot swap made the Predictor answer with another version.
        expl_call = (
            asyncio.ensure_future(self.call("Explainer", self.explainer, "explain", meta["version"], values))
            if explain
            else None
        )
        try:
            pred = await self.call("Predictor", self.predictor, "predict", values, fsv, interval)
        except BaseException:
            if expl_call is not None:
                expl_call.cancel()
            raise
        explanation = None
        if expl_call is not None:
            explanation = await expl_call
            if explanation["model_version"] != pred["model_version"] or not _explains(explanation, pred):
                explanation = await self.call("Explainer", self.explainer, "explain", pred["model_version"], values)
                if not _explains(explanation, pred):  # served, but said out loud and not cached
                    log.error(
                        "explanation does not add up to the prediction",
                        model_version=pred["model_version"],
                        margin=explanation["margin"],
                        raw_p_up=pred["raw_p_up"],
                    )
                    return pred, with_probability(explanation, pred["p_up"])
            explanation = with_probability(explanation, pred["p_up"])
        if pred["model_version"] == meta["version"]:
            self._results.put(key, (pred, explanation))
        return pred, explanation

    async def predict(
        self, symbol: str, features: dict[str, float | None] | None = None, explain: bool = True
    ) -> dict[str, Any]:
        if not self.meta.get("loaded"):
            await self.refresh_model()
        for attempt in range(2):
            meta = self.meta
            if not meta.get("loaded"):
                from rayapp.serving.predictor import ModelNotLoaded

                raise ModelNotLoaded(meta.get("last_error") or "no champion model loaded")
            fsv = meta["feature_set_version"]
            now = await self.now()
            if features is not None:
                _check_vector(features, meta["feature_names"])
                found: dict[str, Any] = {
                    "values": features,
                    "ts": None,
                    "source": "request",
                    "fallback": False,
                    "reason": None,
                    "stale": False,
                    "age_s": None,
                }
            else:
                found = await self._lookup(symbol, fsv, now)
                if not found["found"]:
                    raise NotFound(f"no features for {symbol} (feature set {fsv}): {found['reason']}")
            try:
                interval = await self._interval(meta, symbol, fsv, found["ts"])
                pred, explanation = await self._model_outputs(meta, found["values"], fsv, explain, interval)
                break
            except FeatureSetMismatch:
                # The champion was swapped between our metadata read and the call: re-read, retry.
                await self.refresh_model()
                if attempt == 1:
                    raise
        if found["fallback"]:
            self.metrics.fallbacks.labels(found["reason"] or "unknown").inc()
        self.metrics.observe_prediction(symbol, pred, found["source"], found.get("age_s"))
        out = _response(symbol, found, pred, explanation)
        age = staleness(found["ts"], now, self.settings.serving.feature_staleness_s)
        out.update(age, data_age_now_s=age["data_age_s"], stale_now=age["stale"])
        out["degraded"] = bool(out["degraded"] or age["stale"])
        if found["ts"] is not None:
            pid = prediction_log.prediction_id(
                symbol, found["ts"], pred["horizon_h"], pred["model_name"], pred["model_version"]
            )
            out["prediction_id"] = pid
            new = False
            if self._logged.get(pid):  # written before (the insert would be a no-op conflict)
                out["logged"] = True
            else:
                out["logged"] = new = await self._log(out, pred)
                if out["logged"]:
                    self._logged.put(pid, True)
            if out["logged"] and self.shadow is not None:
                self.start_shadow(symbol, found["ts"], found["values"], fsv, out["model_version"], new=new)
        return out

    async def _log(self, out: dict[str, Any], pred: dict[str, Any]) -> bool:
        if self.pool is None:
            return False
        row = {
            "prediction_id": out["prediction_id"],
            "symbol": out["symbol"],
            "ts": out["ts"],
            "horizon_h": out["horizon_h"],
            "model_name": out["model_name"],
            "model_version": out["model_version"],
            "feature_set_version": out["feature_set_version"],
            "expected_return": out["expected_return"],
            "p_up": out["p_up"],
            "direction": out["direction"],
            "interval_low": out["interval"]["low"],
            "interval_high": out["interval"]["high"],
            "features": out["features"],
            "explanation": out["explanation"],
            "role": "champion",
            "data_age_s": out["data_age_s"],
            "stale": out["stale"],
            **log_fields(pred),
        }
        pool = self.pool
        try:

            def write() -> None:
                with pool.connection() as conn:
                    prediction_log.insert(conn, row)

            await asyncio.to_thread(write)
            return True
        except Exception as exc:  # still answer, but say it was not logged and count it
            self.metrics.log_failures.inc()
            log.error("prediction not logged", prediction_id=out["prediction_id"], error=type(exc).__name__)
            return False

    # ---- shadow scoring ------------------------------------------------------------------------
    def start_shadow(
        self, symbol: str, ts: str, values: dict[str, Any], fsv: str, champion_version: str, *, new: bool = True
    ) -> None:
        """Score this logged forecast's vector with the shadow in the background (never awaited:
        returns at once). `new`: the champion row was just written (counts `no_shadow` when idle)."""
        meta = self.shadow_meta
        if not meta.get("loaded"):
            if new:
                self.metrics.shadow.labels("no_shadow").inc()
            return
        if str(meta["version"]) == str(champion_version):  # the champion itself: its row is there
            return
        spid = prediction_log.prediction_id(symbol, ts, meta["horizon_h"], meta["name"], meta["version"])
        if self._shadow_logged.get(spid) or spid in self._shadow_tasks:
            return
        if len(self._shadow_tasks) >= SHADOW_MAX_PENDING:
            self.metrics.shadow.labels("dropped").inc()
            return
        task = asyncio.get_running_loop().create_task(self._score_shadow(spid, symbol, ts, values, fsv, meta))
        self._shadow_tasks[spid] = task
        self.metrics.shadow_pending.set(len(self._shadow_tasks))
        task.add_done_callback(lambda _t: self._shadow_done(spid))

    def _shadow_done(self, spid: str) -> None:
        self._shadow_tasks.pop(spid, None)
        self.metrics.shadow_pending.set(len(self._shadow_tasks))

    async def _score_shadow(
        self, spid: str, symbol: str, ts: str, values: dict[str, Any], fsv: str, meta: dict[str, Any]
    ) -> None:
        from rayapp.serving.predictor import ModelNotLoaded

        outcome = "error"
        try:
            outcome = await asyncio.wait_for(self._shadow_forecast(symbol, ts, values, fsv, meta), SHADOW_TIMEOUT_S)
        except (ModelNotLoaded, FeatureSetMismatch):  # the alias moved or left since `meta` was read
            outcome = "no_shadow"
        except Exception as exc:
            log.warning(
                "shadow prediction failed",
                symbol=symbol,
                ts=ts,
                shadow_version=meta.get("version"),
                error=type(exc).__name__,
            )
        finally:
            if outcome in ("logged", "duplicate"):
                self._shadow_logged.put(spid, True)
            self.metrics.shadow.labels(outcome).inc()

    async def _shadow_forecast(
        self, symbol: str, ts: str, values: dict[str, Any], fsv: str, meta: dict[str, Any]
    ) -> str:
        shadow_fsv = meta["feature_set_version"]
        if shadow_fsv != fsv:  # a challenger on another feature set: its own vector, same hour
            found = await self._lookup(symbol, shadow_fsv, await self.now())
            if not found["found"] or found["ts"] != ts:
                return "no_features"
            values, fsv = found["values"], shadow_fsv
        if self.pool is None:
            return "error"
        interval = await self._interval(meta, symbol, fsv, ts)
        pred = await self.call("ShadowPredictor", self.shadow, "predict", values, fsv, interval)
        clean = {
            k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)) for k, v in values.items()
        }
        row = {
            "prediction_id": prediction_log.prediction_id(
                symbol, ts, pred["horizon_h"], pred["model_name"], pred["model_version"]
            ),
            "symbol": symbol,
            "ts": ts,
            "horizon_h": pred["horizon_h"],
            "model_name": pred["model_name"],
            "model_version": pred["model_version"],
            "feature_set_version": pred["feature_set_version"],
            "expected_return": pred["expected_return"],
            "p_up": pred["p_up"],
            "direction": pred["direction"],
            "interval_low": pred["interval_low"],
            "interval_high": pred["interval_high"],
            "features": clean,
            "explanation": None,
            "role": "shadow",
            **log_fields(pred),
        }
        pool = self.pool

        def write() -> bool:
            with pool.connection() as conn:
                return prediction_log.insert(conn, row)

        written = await asyncio.get_running_loop().run_in_executor(self._shadow_writer, write)
        return "logged" if written else "duplicate"

    async def db(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.pool is None:
            raise RuntimeError("no database configured")
        pool = self.pool

        def run() -> Any:
            with pool.connection() as conn:
                return fn(conn, *args)

        return await asyncio.to_thread(run)

    def clock_now(self) -> tuple[Any, dict[str, Any]]:
        """Now on the system clock (market time during a replay) and the clock's description.
        Blocking (a replay clock reads its server now and then): call it in a thread."""
        from datetime import UTC, datetime

        from rayapp.clock import clock_or_wall

        clock = self._clock
        if clock is None:
            clock, why = clock_or_wall(self.settings)
            if why:  # the replay server is away: wall time until it is back
                log.warning("system clock unavailable: wall time", error=why[:200])
            else:
                self._clock = clock
        try:
            now = clock.now()
        except Exception:
            now = datetime.now(UTC)
        return now, {"id": clock.id, "kind": clock.kind, "speed": clock.speed}

    # ---- background loops (started by the app's lifespan) --------------------------------------
    async def watch_features(self) -> None:
        """Predict and push whenever a newer feature vector lands for a configured symbol."""
        while True:
            try:
                await self.check_new_features()
            except Exception as exc:
                log.warning("feature watch failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.serving.watch_interval_s)

    async def check_new_features(self) -> int:
        if not self.meta.get("loaded"):
            await self.refresh_model()
            if not self.meta.get("loaded"):
                return 0
        pushed = 0
        for symbol in self.settings.symbols:
            ts = await self.call("FeatureLookup", self.lookup, "latest_ts", symbol, self.meta["feature_set_version"])
            if ts is None or ts == self._seen_ts.get(symbol):
                continue
            pred = await self.predict(symbol)
            self._seen_ts[symbol] = ts
            if self.hub is not None:
                await self.hub.broadcast_prediction(pred)
            pushed += 1
        return pushed

    async def resolve_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.serving.resolve_interval_s)
            try:
                await self.resolve()
            except Exception as exc:
                log.warning("outcome resolution failed", error=type(exc).__name__)

    async def resolve(self) -> int:
        n = await self.db(prediction_log.resolve_outcomes, self.settings.serving.price_sources)
        self.metrics.outcomes.inc(n)
        if n:
            log.info("outcomes resolved", written=n)
        return int(n)

    async def model_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.serving.champion_poll_s)
            try:
                await self.refresh_model()
            except Exception as exc:
                log.warning("model info refresh failed", error=type(exc).__name__)
            await self.refresh_shadow()  # never raises


def _explains(explanation: dict[str, Any], pred: dict[str, Any], tol: float = 1e-3) -> bool:
    """SHAP additivity against the served model: base + contributions is the margin whose
    sigmoid is the Predictor's raw (uncalibrated) P(up)."""
    raw = pred.get("raw_p_up")
    if raw is None:
        return True
    return abs(1.0 / (1.0 + math.exp(-float(explanation["margin"]))) - float(raw)) <= tol


def _check_vector(features: dict[str, float | None], names: list[str]) -> None:
    errors = [
        {
            "type": "extra_forbidden",
            "loc": ["body", "features", k],
            "msg": "not a feature of the served model",
            "input": v,
        }
        for k, v in features.items()
        if k not in names
    ]
    errors += [
        {
            "type": "missing",
            "loc": ["body", "features", n],
            "msg": "feature required by the served model (send null for a missing value)",
            "input": None,
        }
        for n in names
        if n not in features
    ]
    if errors:
        raise FeatureValidation(errors)


def _response(
    symbol: str, found: dict[str, Any], pred: dict[str, Any], explanation: dict[str, Any] | None
) -> dict[str, Any]:
    values = {
        k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v))
        for k, v in found["values"].items()
    }
    return {
        "prediction_id": None,
        "symbol": symbol,
        "ts": found["ts"],
        "horizon_h": pred["horizon_h"],
        "expected_return": pred["expected_return"],
        "direction": pred["direction"],
        "direction_label": "up" if pred["direction"] == 1 else "down",
        "p_up": pred["p_up"],
        **served_distribution(pred),
        "model_name": pred["model_name"],
        "model_version": pred["model_version"],
        "feature_set_version": pred["feature_set_version"],
        "features": values,
        "explanation": explanation,
        "created_at": _now_iso(),
        "feature_source": {k: found[k] for k in ("source", "fallback", "reason", "stale", "age_s")},
        "degraded": bool(found["fallback"] or found["stale"]),
        "logged": False,
    }


def _interval_key(interval: dict[str, Any] | None) -> Hashable:
    """What of the served distribution's inputs a cached prediction depends on."""
    if not interval:
        return None
    inputs = interval.get("inputs") or {}
    rv = tuple(sorted((inputs.get("rv") or {}).items()))
    states = tuple(
        sorted((k, s["alpha_t"], s["resolved"], s["covered"]) for k, s in (interval.get("states") or {}).items())
    )
    return (rv, inputs.get("close"), interval.get("version"), states)


def served_distribution(pred: dict[str, Any]) -> dict[str, Any]:
    """The API's `interval` (the nominal lifecycle.coverage.level one), `intervals`, `quantiles`
    and `volatility` of a Predictor result."""
    head = next((iv for iv in pred["intervals"] if iv["level"] == pred["interval_level"]), None)
    return {
        "interval": {
            "level": pred["interval_level"],
            "method": pred["interval_method"],
            "low": pred["interval_low"],
            "high": pred["interval_high"],
            "price_low": head["price_low"] if head else None,
            "price_high": head["price_high"] if head else None,
            "alpha_t": head["alpha_t"] if head else None,
            "coverage": pred["interval_coverage"],
            "resolved": pred["interval_resolved"],
            "missing": pred.get("interval_missing") or [],
        },
        "intervals": pred["intervals"],
        "quantiles": pred["quantiles"],
        "volatility": pred["volatility"],
    }


def log_fields(pred: dict[str, Any]) -> dict[str, Any]:
    """The served distribution's columns of a `predictions` row (migration 0011)."""
    return {
        "interval_method": pred["interval_method"],
        "interval_level": pred["interval_level"],
        "quantiles": pred["quantiles"],
        "volatility": pred["volatility"],
        "intervals": pred["intervals"],
        "aci_gamma": pred["aci_gamma"],
    }


def logged_distribution(row: dict[str, Any]) -> dict[str, Any]:
    """`served_distribution` of a logged row: coverage and alpha_t as they were when it was
    served. A row logged before 0011 has only interval_low/high: the constant band, the only one
    served then (its level was not recorded)."""
    intervals = row.get("intervals") or []
    level = row.get("interval_level")
    head = next((iv for iv in intervals if iv.get("level") == level), None)
    method = row.get("interval_method") or (
        "constant_conformal_legacy" if row.get("interval_low") is not None else None
    )
    return {
        "interval": {
            "level": level,
            "method": method,
            "low": row["interval_low"],
            "high": row["interval_high"],
            "price_low": head.get("price_low") if head else None,
            "price_high": head.get("price_high") if head else None,
            "alpha_t": head.get("alpha_t") if head else None,
            "coverage": head.get("coverage") if head else None,
            "resolved": head.get("resolved") if head else None,
            "missing": [],
        },
        "intervals": intervals,
        "quantiles": row.get("quantiles"),
        "volatility": row.get("volatility"),
    }


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def row_to_prediction(row: dict[str, Any], now: Any = None, max_age_s: float | None = None) -> dict[str, Any]:
    """A `predictions` row in the API's Prediction shape.

    `data_age_s`/`stale` are as logged when the forecast was served; with `now` (the system
    clock), `data_age_now_s`/`stale_now` say how old its data is at the time of this answer."""
    d = int(row["direction"])
    age, stale = row.get("data_age_s"), row.get("stale")
    written = as_utc(row.get("created_at"))
    if stale is None and max_age_s is not None and written is not None:
        # logged before forecasts carried it: judged by when it was written (wall time)
        at_logging = staleness(row["ts"], written, max_age_s)
        age, stale = at_logging["data_age_s"], at_logging["stale"]
    current = staleness(row["ts"], now, max_age_s) if now is not None and max_age_s is not None else None
    return {
        "prediction_id": row["prediction_id"],
        "symbol": row["symbol"],
        "ts": row["ts"],
        "as_of": row["ts"],
        "data_age_s": age,
        "stale": bool(stale),
        "data_age_now_s": current["data_age_s"] if current else None,
        "stale_now": current["stale"] if current else None,
        "horizon_h": row["horizon_h"],
        "expected_return": row["expected_return"],
        "direction": d,
        "direction_label": "up" if d == 1 else "down",
        "p_up": row["p_up"],
        **logged_distribution(row),
        "model_name": row["model_name"],
        "model_version": row["model_version"],
        "feature_set_version": row["feature_set_version"],
        "features": row["features"],
        "explanation": row["explanation"],
        "created_at": row["created_at"],
        "logged": True,
        "degraded": bool(stale),
        "realized_return": row["realized_return"],
        "realized_direction": row["realized_direction"],
        "resolved_at": row["resolved_at"],
    }
