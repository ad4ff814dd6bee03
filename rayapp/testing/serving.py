"""Generated feature rows, candles and a real XGBoost model logged per the serving contract.

Used by tests/serving, tests/e2e, tests/monitoring, benchmarks/serve_latency.py and
benchmarks/frontend.py. The model is trained on the generated rows (a real booster, not a stub),
its bundle is fitted from the same rows, and it is logged exactly as training does: xgboost
flavour `model`, `serving/bundle.json`, registered, tags, alias.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rayapp.testing.wait import wait_until

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

FEATURE_NAMES = [
    "sma_20",
    "rsi",
    "atr",
    "returns_1h",
    "returns_4h",
    "returns_24h",
    "volume_ratio",
    "volatility_regime",
    "sentiment_mean",
    "sentiment_count",
    "sentiment_change_1h",
    "sentiment_extreme",
    "social_volume",
    "social_sentiment",
    "hour_of_day",
]
FSV = "serving-test-core-v1"
SYMBOL = "BTCUSDT"


@dataclass
class Market:
    features: pd.DataFrame  # index ts (UTC hours), FEATURE_NAMES columns
    close: pd.Series  # hourly close, one hour longer than the features
    ret_next: np.ndarray  # log return close(t) -> close(t+1) per feature row


def make_market(n: int, end: pd.Timestamp, seed: int = 0) -> Market:
    """`n` hourly feature rows ending at `end`, with a price path whose next return depends on them."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    hours = pd.date_range(end=end, periods=n, freq="h", tz="UTC")
    rsi = rng.uniform(20, 80, n)
    sent = np.clip(rng.normal(0, 0.3, n), -1, 1)  # a mean of scores in [-1, 1]
    # the signal the model can learn: oversold + positive news -> up
    ret_next = 0.004 * (50 - rsi) / 30 + 0.003 * sent + rng.normal(0, 0.004, n)
    close = 40_000 * np.exp(np.concatenate([[0.0], np.cumsum(ret_next)]))
    r1 = np.concatenate([[np.nan], np.diff(np.log(close[:-1]))])
    feats = pd.DataFrame(
        {
            # as docs/FEATURES.md defines them (ratios to the close), within their serving ranges
            "sma_20": pd.Series(close[:-1]).rolling(20, min_periods=1).mean().to_numpy() / close[:-1] - 1,
            "rsi": rsi,
            "atr": rng.uniform(50, 400, n) / close[:-1],
            "returns_1h": r1,
            "returns_4h": rng.normal(0, 0.01, n),
            "returns_24h": rng.normal(0, 0.03, n),
            "volume_ratio": rng.uniform(0.5, 2.0, n),
            "volatility_regime": rng.integers(0, 3, n).astype(float),
            "sentiment_mean": sent,
            "sentiment_count": rng.integers(0, 20, n).astype(float),
            "sentiment_change_1h": rng.normal(0, 0.2, n),
            "sentiment_extreme": rng.integers(0, 2, n).astype(float),
            "social_volume": rng.uniform(0, 500, n),
            "social_sentiment": np.where(rng.random(n) < 0.2, np.nan, np.clip(rng.normal(0, 0.3, n), -1, 1)),
            "hour_of_day": hours.hour.to_numpy().astype(float),
        },
        index=hours,
    )
    close_s = pd.Series(close, index=pd.date_range(hours[0], periods=n + 1, freq="h", tz="UTC"))
    return Market(feats, close_s, ret_next)


def random_vector(rng: Any, names: list[str] | None = None) -> dict[str, float]:
    """A random feature vector the API accepts: each value uniform within its feature's documented
    range (rayapp.features.FEATURE_RANGES; counts up to 1,000). `rng`: a `random.Random` or a
    numpy Generator (anything with `uniform(low, high)`)."""
    from rayapp.features import FEATURE_RANGES

    out = {}
    for n in names or FEATURE_NAMES:
        r = FEATURE_RANGES[n]
        out[n] = float(rng.uniform(r.low, min(r.high, 1000.0)))
    return out


def write_offline(
    pool: Any, market: Market, fsv: str = FSV, symbol: str = SYMBOL, candle_source: str = "binance"
) -> None:
    """The feature set, its rows in `features`, and matching candles (for realised outcomes)."""
    from psycopg.types.json import Jsonb

    with pool.connection() as conn:
        conn.execute(
            "INSERT INTO feature_sets (feature_set_version, name, feature_names, params) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (feature_set_version) DO NOTHING",
            (fsv, "core", FEATURE_NAMES, Jsonb({"test": True})),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO features (symbol, ts, feature_set_version, vals) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (symbol, ts, feature_set_version) DO UPDATE SET vals = EXCLUDED.vals",
                [
                    (symbol, ts.to_pydatetime(), fsv, [float(v) for v in row])
                    for ts, row in zip(market.features.index, market.features.to_numpy(), strict=True)
                ],
            )
            c = market.close
            cur.executemany(
                "INSERT INTO candles (source, symbol, open_time, open, high, low, close, volume) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [
                    (
                        candle_source,
                        symbol,
                        ts.to_pydatetime(),
                        float(v),
                        float(v) * 1.001,
                        float(v) * 0.999,
                        float(v),
                        10.0,
                    )
                    for ts, v in c.items()
                ],
            )
        conn.commit()


def write_online(redis_url: str, market: Market, fsv: str = FSV, symbol: str = SYMBOL, row: int = -1) -> pd.Timestamp:
    from rayapp.features import RedisOnlineStore

    ts = market.features.index[row]
    RedisOnlineStore(redis_url).write(symbol, fsv, ts, market.features.iloc[row].to_dict())
    return ts


def train_booster(market: Market, *, depth: int = 3, rounds: int = 40, seed: int = 0) -> Any:
    import numpy as np
    import xgboost as xgb

    y = (market.ret_next > 0).astype(int)
    dm = xgb.DMatrix(market.features.to_numpy(np.float32), label=y, feature_names=FEATURE_NAMES)
    return xgb.train(
        {"objective": "binary:logistic", "max_depth": depth, "eta": 0.2, "seed": seed, "nthread": 1}, dm, rounds
    )


def fit_interval_model(market: Market, *, seed: int = 0) -> Any:
    """A real interval model (rayapp.training's `vol` construction) on the rows' core features plus
    the realised volatility of the market's closes, fitted on the first 60 % of the hours and
    conformalized on the rest (held out), the way serving's bundle carries it."""
    import numpy as np
    import pandas as pd

    from rayapp.features import realized_vol_features
    from rayapp.training import IntervalConfig, calibrate, fit_interval_booster, predict_raw

    rv = realized_vol_features(market.close).reindex(market.features.index)
    X = pd.concat([market.features, rv], axis=1)
    names = [str(c) for c in X.columns]
    cut = int(len(X) * 0.6)
    params = {"n_estimators": 30, "max_depth": 3, "learning_rate": 0.1, "min_child_weight": 5.0}
    cfg = IntervalConfig(params={**params, "subsample": 1.0, "colsample_bytree": 1.0, "reg_lambda": 1.0})
    X_np = X.to_numpy(np.float64)
    model = fit_interval_booster(X_np[:cut], market.ret_next[:cut], names, cfg, seed=seed, nthread=1)
    model.horizon_h = 1
    q, _ = predict_raw(model, X_np[cut:])
    calibrate(model, q, market.ret_next[cut:])
    # what it was fitted with, as training records it (the lifecycle's gate refits the champion's
    # interval configuration from this)
    cfg_doc = {"method": cfg.method, "quantiles": cfg.quantiles, "levels": cfg.levels, "params": cfg.params}
    model.report = {"method": cfg.method, "config": cfg_doc, "seed": seed, "aci_gamma": model.aci_gamma}
    return model


def fit_bundle(booster: Any, market: Market, fsv: str = FSV, *, intervals: bool = True) -> Any:
    """Calibration, interval and return model fitted on the rows (a fixture has no CV folds).
    `intervals=False`: a bundle as written before the interval model (the legacy band)."""
    import numpy as np

    from rayapp.registry import Calibration, Conformal, ModelBundle, ReturnModel

    p = booster.inplace_predict(market.features.to_numpy(np.float32))
    r = market.ret_next
    up = r > 0
    rm = ReturnModel(up_mean=float(r[up].mean()), down_mean=float(r[~up].mean()))
    resid = r - rm(p)
    acc = float(((p >= 0.5) == up).mean())
    return ModelBundle(
        feature_set_version=fsv,
        feature_names=list(FEATURE_NAMES),
        horizon_h=1,
        calibration=Calibration("identity"),
        conformal=Conformal(alpha=0.1, q_low=float(np.quantile(resid, 0.05)), q_high=float(np.quantile(resid, 0.95))),
        expected_return=rm,
        cv_metrics={"mean": {"accuracy": acc}, "note": "in-sample (test fixture)"},
        baselines={"best": "always_up", "mean": {"always_up": {"accuracy": float(up.mean())}}},
        gate={"promote": True, "reasons": ["test fixture"]},
        data_range=[market.features.index[0].isoformat(), market.features.index[-1].isoformat()],
        intervals=fit_interval_model(market) if intervals else None,
    )


def log_and_promote(settings: Any, booster: Any, bundle: Any, *, alias: str = "champion") -> str:
    """Log per the contract (like rayapp.training.train) and point `alias` at the new version."""
    import mlflow
    import mlflow.xgboost

    from rayapp.registry import BUNDLE_ARTIFACT, setup_mlflow

    setup_mlflow(settings)
    name = settings.mlflow.registered_model
    with mlflow.start_run(run_name="serving-fixture") as run:
        mlflow.set_tags({"stage": "train"})
        mlflow.log_metric("cv_accuracy", bundle.cv_metrics["mean"]["accuracy"])
        info = mlflow.xgboost.log_model(booster, name="model")
        mlflow.log_text(bundle.to_json(), BUNDLE_ARTIFACT)
        mlflow.log_dict(bundle.gate, "training/gate.json")
        mlflow.log_dict({"feature_names": bundle.feature_names}, "training/config.json")
    registered = mlflow.register_model(
        info.model_uri,
        name,
        tags={
            "feature_set_version": bundle.feature_set_version,
            "horizon_h": str(bundle.horizon_h),
            "run_id": run.info.run_id,
        },
    )
    client = mlflow.MlflowClient()

    # register_model from a logged-model URI may leave the version's run unset on some backends;
    # serving needs it to find the bundle, so wait until the version is READY and check it.
    def ready() -> Any:
        mv = client.get_model_version(name, registered.version)
        return mv if mv.status == "READY" else None

    mv = wait_until(ready, 10, interval_s=0.1, what=f"model version {name} v{registered.version} to be READY")
    assert mv.run_id == run.info.run_id, (mv.run_id, run.info.run_id)
    client.set_registered_model_alias(name, alias, mv.version)
    return str(mv.version)


def seed_champion(
    settings: Any,
    pool: Any,
    redis_url: str,
    end: pd.Timestamp,
    *,
    seed: int,
    hours: int = 300,
    depth: int = 3,
    rounds: int = 40,
) -> tuple[Market, str, pd.Timestamp]:
    """A served world: `hours` of features ending at `end` in the offline and online stores and a
    booster trained on them registered as champion; (market, version, online vector ts)."""
    market = make_market(hours, end, seed=seed)
    write_offline(pool, market)
    ts = write_online(redis_url, market)
    booster = train_booster(market, depth=depth, rounds=rounds)
    return market, log_and_promote(settings, booster, fit_bundle(booster, market)), ts


def insert_forecasts(
    conn: Any,
    s: Any,
    version: str,
    ts: pd.DatetimeIndex,
    y: np.ndarray,
    accuracy: float,
    seed: int,
    *,
    role: str = "champion",
    symbol: str = "BTCUSDT",
    features: np.ndarray | None = None,
) -> None:
    """Resolved forecasts of `version` on hours `ts` with outcomes `y` that hit at `accuracy`
    (P(up) 0.6 or 0.4), written to the prediction log as the app would with `role`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    hit = rng.uniform(size=len(ts)) < accuracy
    up = np.where(hit, y == 1, y == 0)
    p = np.where(up, 0.6, 0.4)
    feats = features if features is not None else np.zeros((len(ts), len(FEATURE_NAMES)))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO predictions (prediction_id, symbol, ts, horizon_h, model_name, model_version,"
            " feature_set_version, expected_return, p_up, direction, features, realized_return,"
            " realized_direction, resolved_at, role)"
            " VALUES (%s, %s, %s, 1, %s, %s, %s, 0, %s, %s, %s, %s, %s, now(), %s)",
            [
                (
                    uuid.uuid4().hex,
                    symbol,
                    t.to_pydatetime(),
                    s.mlflow.registered_model,
                    version,
                    FSV,
                    float(p[i]),
                    1 if up[i] else -1,
                    _features_jsonb(dict(zip(FEATURE_NAMES, map(float, feats[i]), strict=True))),
                    0.01 if y[i] == 1 else -0.01,
                    1 if y[i] == 1 else -1,
                    role,
                )
                for i, t in enumerate(ts)
            ],
        )
    conn.commit()


def _features_jsonb(d: dict[str, float]) -> Any:
    import numpy as np
    from psycopg.types.json import Jsonb

    return Jsonb({k: (None if not np.isfinite(v) else v) for k, v in d.items()})
