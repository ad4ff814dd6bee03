"""The lifecycle policy live, against the real stores: PostgreSQL (predictions, model_events,
model_lifecycle) and the MLflow registry (aliases, version tags), through `Policy.run_step`, the
function the scheduler's `retrain` job calls.

Planted situations: a degraded champion triggers a retrain whose challenger passes the gate and
goes to shadow; the same on data with nothing to learn is refused by the gate; a challenger worse
in shadow is refused, a better one promoted, and a promoted model that goes bad live is rolled
back; drifted served vectors fire the drift trigger, which the cooldown records as suppressed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.config import load_settings
from rayapp.flows.lifecycle import Policy
from rayapp.registry import CHAMPION, SHADOW, set_alias
from rayapp.testing.serving import (
    Market,
    fit_bundle,
    insert_forecasts,
    log_and_promote,
    make_market,
    train_booster,
    write_offline,
)
from rayapp.warehouse import model_events

pytestmark = pytest.mark.slow

NOW = datetime(2024, 3, 1, tzinfo=UTC)


def _settings(settings: Any, pg_url: str, tmp_path: Path, *extra: str) -> Any:
    name = f"lifecycle_{uuid.uuid4().hex[:8]}"
    s = load_settings(
        [
            f"state_dir={settings.state_dir}",
            f"mlflow.registered_model={name}",
            f"mlflow.experiment={name}",
            f"tune.report_dir={tmp_path / 'reports'}",
            "lifecycle.schedule_h=null",
            "lifecycle.max_age_h=null",
            "lifecycle.drift.enabled=false",
            "lifecycle.degradation.enabled=false",
            "lifecycle.degradation.window=200",
            "lifecycle.degradation.min_resolved=100",
            "lifecycle.retrain.trials=0",
            "lifecycle.gate.n_splits=4",
            "lifecycle.gate.n_boot=300",
            "lifecycle.shadow.min_resolved=150",
            "lifecycle.shadow.n_boot=400",
            "lifecycle.watch.min_resolved=72",
            "lifecycle.watch.n_boot=400",
            "lifecycle.drift.n_boot=300",
            "tune.cv.n_splits=3",
            "model.params.n_estimators=60",
            "model.params.max_depth=3",
            "model.device=cpu",
            *extra,
        ]
    )
    s.database.url = pg_url
    return s


def _register(s: Any, market: Market, *, alias: str = CHAMPION, seed: int = 0, oof: float = 0.7) -> str:
    booster = train_booster(market, seed=seed)
    bundle = fit_bundle(booster, market)
    # The out-of-fold figures of a model that hits at `oof` with P(its side) = 0.6 (as _forecasts).
    bundle.cv_metrics["pooled"] = {"accuracy": oof, "logloss": float(-(oof * np.log(0.6) + (1 - oof) * np.log(0.4)))}
    return log_and_promote(s, booster, bundle, alias=alias)


def _alias(s: Any, alias: str) -> str | None:
    mlflow.set_tracking_uri(s.mlflow_tracking_uri)
    try:
        return str(mlflow.MlflowClient().get_model_version_by_alias(s.mlflow.registered_model, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def _kinds(conn: Any, s: Any) -> list[tuple[str, str | None]]:
    return [(e["kind"], e["decision"]) for e in model_events.events(conn, s.mlflow.registered_model)]


def _hours_before(end: datetime, n: int) -> pd.DatetimeIndex:
    return pd.date_range(end=pd.Timestamp(end) - pd.Timedelta(hours=1), periods=n, freq="h")


def test_a_degraded_champion_triggers_a_retrain_whose_challenger_goes_to_shadow(settings, pg_url, db, tmp_path):
    s = _settings(settings, pg_url, tmp_path, "lifecycle.degradation.enabled=true")
    market = make_market(1500, pd.Timestamp(NOW) - pd.Timedelta(hours=2), seed=1)
    pool = Policy(s, NOW).pool
    write_offline(pool, market)
    v1 = _register(s, market.__class__(market.features.iloc[:-300], market.close.iloc[:-300], market.ret_next[:-300]))
    hours = market.features.index[-200:]
    y = (market.ret_next[-200:] > 0).astype(int)
    insert_forecasts(db, s, v1, hours, y, 0.35, seed=2)  # the champion hits 35% live: planted degradation

    step = Policy(s, NOW, pipeline_run=None).run_step()
    assert step.as_dict()["fired"] == ["degradation"], step.triggers
    assert step.retrain and step.trained is not None and step.trained["gate_passed"], step.trained
    v2 = step.trained["version"]
    assert not step.trained["promoted"]  # a challenger goes to shadow first
    assert _alias(s, CHAMPION) == v1 and _alias(s, SHADOW) == v2
    assert _kinds(db, s) == [
        ("trigger", "fired"),
        ("retrain", "trained"),
        ("gate", "passed"),
        ("shadow_start", "shadowing"),
    ]
    trig = model_events.events(db, s.mlflow.registered_model, kinds=("trigger",))[0]
    assert trig["trigger"] == "degradation" and trig["p_value"] < 0.05
    assert trig["evidence"]["tests"]["accuracy_vs_oof"]["live"] < 0.45
    gate = model_events.events(db, s.mlflow.registered_model, kinds=("gate",))[0]
    assert gate["evidence"]["checks"]["folds"] == 4 and gate["evidence"]["checks"]["test_hours"] == 4 * 168
    st = model_events.state(db, s.mlflow.registered_model)
    assert (st.shadow_version, st.shadow_role, st.retrain_running) == (v2, "challenger", False)
    assert st.last_retrain_at == NOW
    tags = mlflow.MlflowClient().get_model_version(s.mlflow.registered_model, v2).tags
    assert tags["lifecycle_trigger"] == "degradation" and tags["gate"] == "passed"

    # The next slot: the trigger still fires, but a challenger is in shadow: recorded, not queued.
    again = Policy(s, NOW + timedelta(hours=1)).run_step()
    assert not again.retrain and again.suppressed == "a challenger is in shadow"
    assert _kinds(db, s)[-1] == ("suppressed", "suppressed")
    Policy(s, NOW + timedelta(hours=2)).run_step()  # the same reason again: not written twice
    assert [k for k, _ in _kinds(db, s)].count("suppressed") == 1


def test_a_challenger_trained_on_noise_is_refused_by_the_gate(settings, pg_url, db, tmp_path):
    s = _settings(settings, pg_url, tmp_path, "lifecycle.degradation.enabled=true", "symbols=[NOISEUSDT]")
    signal = make_market(1500, pd.Timestamp(NOW) - pd.Timedelta(hours=2), seed=3)
    rng = np.random.default_rng(4)
    ret = rng.normal(0, 0.004, len(signal.features))  # the price ignores the features: nothing to learn
    close = pd.Series(40_000 * np.exp(np.concatenate([[0.0], np.cumsum(ret)])), index=signal.close.index)
    noise = Market(signal.features, close, ret)
    pool = Policy(s, NOW).pool
    write_offline(pool, noise, symbol="NOISEUSDT")
    v1 = _register(s, signal)
    hours = noise.features.index[-200:]
    insert_forecasts(db, s, v1, hours, (ret[-200:] > 0).astype(int), 0.35, seed=5, symbol="NOISEUSDT")

    step = Policy(s, NOW).run_step()
    assert step.as_dict()["fired"] == ["degradation"]
    assert step.trained is not None and not step.trained["gate_passed"], step.trained
    assert _alias(s, SHADOW) is None and _alias(s, CHAMPION) == v1
    assert _kinds(db, s) == [("trigger", "fired"), ("retrain", "trained"), ("gate", "refused")]
    gate = model_events.events(db, s.mlflow.registered_model, kinds=("gate",))[0]
    reasons = gate["evidence"]["reasons"]
    assert any("not significantly" in r or "does not beat the best baseline" in r for r in reasons), reasons
    assert model_events.state(db, s.mlflow.registered_model).shadow_version is None


def test_shadow_refusal_promotion_watch_and_rollback(settings, pg_url, db, tmp_path, capsys):
    s = _settings(settings, pg_url, tmp_path)
    name = s.mlflow.registered_model
    market = make_market(400, pd.Timestamp(NOW), seed=6)
    v1 = _register(s, market, seed=1)
    v2 = _register(s, market, alias="challenger", seed=2)
    v3 = _register(s, market, alias="challenger", seed=3)
    rng = np.random.default_rng(7)

    # 1. v2 shadows v1 and is worse: refused, the shadow alias is removed, v1 stays champion.
    t1 = NOW
    hours = _hours_before(t1, 336)
    y = (rng.uniform(size=336) < 0.5).astype(int)
    insert_forecasts(db, s, v1, hours, y, 0.62, seed=8)
    insert_forecasts(db, s, v2, hours, y, 0.42, seed=9, role="shadow")
    set_alias(name, SHADOW, v2)
    model_events.save_state(db, model_events.LifecycleState(name, v2, "challenger", t1 - timedelta(hours=340)))
    step = Policy(s, t1).run_step()
    assert step.verdict["kind"] == "shadow" and step.verdict["decision"] == "refuse", step.verdict
    assert _alias(s, CHAMPION) == v1 and _alias(s, SHADOW) is None
    assert _kinds(db, s) == [("shadow_verdict", "refused")]

    # 2. v3 shadows v1 and is better: promoted; v1 takes the shadow alias for the watch.
    t2 = t1 + timedelta(hours=400)
    hours2 = _hours_before(t2, 336)
    y2 = (rng.uniform(size=336) < 0.5).astype(int)
    insert_forecasts(db, s, v1, hours2, y2, 0.52, seed=10)
    insert_forecasts(db, s, v3, hours2, y2, 0.72, seed=11, role="shadow")
    set_alias(name, SHADOW, v3)
    model_events.save_state(db, model_events.LifecycleState(name, v3, "challenger", t2 - timedelta(hours=340)))
    step = Policy(s, t2).run_step()
    assert step.verdict["decision"] == "promote", step.verdict
    assert _alias(s, CHAMPION) == v3 and _alias(s, SHADOW) == v1
    st = model_events.state(db, name)
    assert (st.shadow_version, st.shadow_role, st.shadow_since) == (v1, "watch", t2)
    assert _kinds(db, s)[1:] == [("shadow_verdict", "promoted"), ("promotion", "promoted"), ("watch_start", "watching")]
    promo = model_events.events(db, name, kinds=("shadow_verdict",))[-1]
    assert (
        promo["p_value"] < s.lifecycle.shadow.alpha
        and promo["evidence"]["accuracy_b"] > promo["evidence"]["accuracy_a"]
    )

    # 3. Live, v3 goes bad while v1 (in shadow) keeps hitting: rolled back automatically.
    t3 = t2 + timedelta(hours=121)
    hours3 = pd.date_range(pd.Timestamp(t2), periods=120, freq="h")
    y3 = (rng.uniform(size=120) < 0.5).astype(int)
    insert_forecasts(db, s, v3, hours3, y3, 0.33, seed=12)
    insert_forecasts(db, s, v1, hours3, y3, 0.66, seed=13, role="shadow")
    step = Policy(s, t3).run_step()
    assert step.verdict["kind"] == "watch" and step.verdict["decision"] == "rollback", step.verdict
    assert _alias(s, CHAMPION) == v1 and _alias(s, SHADOW) is None
    assert _kinds(db, s)[-2:] == [("watch_verdict", "rolled_back"), ("rollback", "rolled_back")]
    client = mlflow.MlflowClient()
    assert client.get_model_version(name, v3).tags["watch_verdict"] == "rolled_back"
    assert client.get_model_version(name, v2).tags["shadow_verdict"] == "refuse"
    assert client.get_model_version(name, v3).tags["shadow_verdict"] == "promote"

    # `rayapp models history` shows every one of them, in order, with the p-values.
    overrides = [f"state_dir={s.state_dir}", f"database.url='{pg_url}'", f"mlflow.registered_model={name}"]
    capsys.readouterr()
    assert main(["models", "history", *overrides]) == 0
    text = capsys.readouterr().out
    for word in ("shadow_verdict", "promotion", "watch_start", "watch_verdict", "rollback", "refused", "rolled_back"):
        assert word in text, text
    assert main(["models", "history", "--json", *overrides]) == 0
    import json

    hist = json.loads(capsys.readouterr().out)
    assert [e["kind"] for e in hist["events"]][-2:] == ["watch_verdict", "rollback"]
    assert hist["aliases"]["champion"] == v1
    live = {(r["version"], r["role"]): r for r in hist["live"]}
    assert live[(v3, "champion")]["resolved"] == 120
    assert live[(v3, "champion")]["accuracy"] < 0.45


def test_drifted_served_vectors_fire_the_drift_trigger_and_the_cooldown_records_it(settings, pg_url, db, tmp_path):
    s = _settings(
        settings,
        pg_url,
        tmp_path,
        "lifecycle.drift.enabled=true",
        "lifecycle.degradation.enabled=true",
        "lifecycle.cooldown_h=24",
    )
    name = s.mlflow.registered_model
    market = make_market(1500, pd.Timestamp(NOW) - pd.Timedelta(hours=200), seed=14)
    pool = Policy(s, NOW).pool
    write_offline(pool, market)
    later = make_market(168, pd.Timestamp(NOW) - pd.Timedelta(hours=1), seed=15)
    y = (later.ret_next > 0).astype(int)
    booster = train_booster(market, seed=0)  # the champion's booster (_register fits the same)
    hit_rate = float(((booster.inplace_predict(later.features.to_numpy(np.float32)) >= 0.5) == (y == 1)).mean())
    v1 = _register(s, market, oof=hit_rate)
    model_events.save_state(db, model_events.LifecycleState(name, last_retrain_at=NOW - timedelta(hours=2)))

    def serve(features: pd.DataFrame) -> None:
        insert_forecasts(db, s, v1, later.features.index, y, hit_rate, seed=16, features=features.to_numpy())

    serve(later.features)  # an ordinary week
    quiet = Policy(s, NOW).run_step()
    assert quiet.as_dict()["fired"] == [], quiet.triggers
    db.execute("DELETE FROM predictions")
    db.commit()

    shifted = later.features.copy()
    for col in ("rsi", "atr", "volume_ratio", "social_volume", "sentiment_count", "returns_24h"):
        shifted[col] = shifted[col] * 3 + shifted[col].std() * 4  # six of fifteen features move
    serve(shifted)
    step = Policy(s, NOW).run_step()
    assert step.as_dict()["fired"] == ["drift"], step.triggers
    assert not step.retrain and step.suppressed and step.suppressed.startswith("cooldown")
    ev = model_events.events(db, name)
    assert [(e["kind"], e["trigger"]) for e in ev] == [("suppressed", "drift")]
    assert {"rsi", "atr", "volume_ratio"} <= set(ev[0]["evidence"]["drifted"])
    assert ev[0]["evidence"]["reason"].startswith("cooldown")
