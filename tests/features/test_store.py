"""Offline store (PostgreSQL) and online store (Redis) on real services: build, load, agree."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.config import load_settings
from rayapp.features.build import run_build, update_after_ingest, validate_features
from rayapp.features.definitions import feature_set_from_settings
from rayapp.features.frame import compute_features
from rayapp.features.inputs import FeatureInputError
from rayapp.features.offline_store import load_features
from rayapp.features.online import online_check, online_store
from rayapp.warehouse import upsert_frame
from tests.features import factories as F
from tests.features.helpers import frames_identical, load_silver, to_inputs

SYMBOL = "BTCUSDT"


@pytest.fixture
def cfg(state_dir, services):
    return load_settings([f"state_dir={state_dir}", "features.chunk_h=700"])


def test_build_store_load_and_online_consistency(db, cfg, ray_cluster, silver):
    load_silver(db, silver)
    [summary] = run_build(cfg)
    fs = feature_set_from_settings(cfg, db)
    assert fs.params.sentiment_model_id == F.MODEL_ID  # the newest model present
    assert summary.feature_set_version == fs.version and summary.chunks == 3
    assert summary.rows == summary.inserted == len(silver.candles) and summary.quarantined == 0
    assert summary.online_ts == silver.candles["open_time"].max().isoformat()

    names, params = db.execute(
        "SELECT feature_names, params FROM feature_sets WHERE feature_set_version = %s", (fs.version,)
    ).fetchone()
    assert names == fs.names and params["sentiment_model_id"] == F.MODEL_ID

    stored = load_features(db, SYMBOL, fs.version)
    single = compute_features(to_inputs(silver, fs), fs)
    assert frames_identical(single, stored)  # NaN kept as NaN, every bit the same
    assert stored["sentiment_mean"].isna().any() and (
        stored.loc[stored["sentiment_count"] == 0, "sentiment_mean"].isna().all()
    )
    via_settings = load_features(cfg, SYMBOL, start=stored.index[10], end=stored.index[20])
    assert via_settings.attrs["feature_set_version"] == fs.version and len(via_settings) == 10

    again = run_build(cfg)[0]
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(silver.candles))

    report = online_check(cfg, hours=48)
    assert report.mismatches == [] and report.checked_online == 15 and report.checked_offline == 48 * 15
    assert main(["features", "online-check", "--hours", "6", f"state_dir={cfg.state_dir}"]) == 0

    # Tampering on either side is reported.
    store = online_store(cfg)
    vec = store.read(SYMBOL, fs.version)
    assert vec is not None
    store.write(SYMBOL, fs.version, vec.ts, {**vec.values, "rsi": vec.values["rsi"] + 1e-9})
    bad = online_check(cfg, hours=0)
    assert [(m.where, m.feature) for m in bad.mismatches] == [("online", "rsi")]
    db.execute(
        "UPDATE features SET vals[1] = 0.5 WHERE symbol = %s AND feature_set_version = %s AND ts = %s",
        (SYMBOL, fs.version, stored.index[-3].to_pydatetime()),
    )
    db.commit()
    bad = online_check(cfg, hours=24)
    assert {(m.where, m.feature, m.ts) for m in bad.mismatches} == {
        ("online", "rsi", stored.index[-1].isoformat()),
        ("offline", "sma_20", stored.index[-3].isoformat()),
    }
    assert main(["features", "online-check", "--hours", "24", f"state_dir={cfg.state_dir}"]) == 1
    run_build(cfg, parallel=False)  # the job repairs both
    assert online_check(cfg, hours=24).mismatches == []

    # The training frame reads the stored rows back with their targets (rayapp.training.data).
    from rayapp.training.data import load_training_frame

    c = silver.candles.set_index("open_time")["close"].to_numpy()
    frames = {}
    for h in (1, 24):
        s = cfg.model_copy(deep=True)
        s.features.horizon_h = h
        frames[h] = load_training_frame(s, symbol=SYMBOL, feature_set_version=fs.version)
    t100 = stored.index[100]
    row = {h: list(f.times).index(t100) for h, f in frames.items()}
    assert frames[1].ret[row[1]] == pytest.approx(math.log(c[101] / c[100]), rel=1e-12)
    assert frames[24].y[row[24]] == int(c[124] > c[100])
    # the newest 24 hours have no close 24 h later: no target, so no training row (never filled)
    assert frames[24].times[-1] < stored.index[-1] and len(frames[24]) < len(frames[1])
    assert frames[1].feature_names == fs.names


def test_incremental_refresh_after_ingest(db, cfg, silver):
    load_silver(db, silver)
    run_build(cfg, parallel=False)
    more = F.candles(30, start=silver.candles["open_time"].max() + pd.Timedelta(hours=1), seed=5)
    upsert_frame(db, "candles", more, key=["source", "symbol", "open_time"])
    db.commit()
    [s] = update_after_ingest(cfg, hours=48)
    assert s.rows == 48 and s.inserted == 30 and s.online_ts == more["open_time"].max().isoformat()
    assert online_check(cfg, hours=72).mismatches == []
    assert main(["features", "build", "--serial", "--last-hours", "5", "--json", f"state_dir={cfg.state_dir}"]) == 0
    fs = feature_set_from_settings(cfg, db)
    stored = load_features(db, SYMBOL, fs.version)
    full = F.Silver(
        pd.concat([silver.candles, more], ignore_index=True),
        silver.articles,
        silver.sentiment,
        silver.social_counts,
        silver.market,
    )
    assert frames_identical(compute_features(to_inputs(full, fs), fs), stored)


def test_bad_requests_fail_clearly(db, cfg, capsys):
    with pytest.raises(FeatureInputError, match="no candles for symbol 'ETHUSDT'"):
        run_build(cfg, symbols=["ETHUSDT"], online=False, parallel=False)
    assert main(["features", "build", "--symbols", "ETHUSDT", "--no-online", f"state_dir={cfg.state_dir}"]) == 1
    assert "no candles" in capsys.readouterr().err
    assert update_after_ingest(cfg, symbols=["ETHUSDT"]) == []  # ingest's hook skips, logs
    with pytest.raises(KeyError, match="not registered"):
        load_features(db, SYMBOL, "core-doesnotexist")
    with pytest.raises(KeyError, match="no stored features"):
        load_features(db, SYMBOL)
    assert main(["features", "build", "features.set=nope", f"state_dir={cfg.state_dir}"]) == 2


def test_schema_failures_are_quarantined_not_written(core, silver):
    frame = compute_features(to_inputs(silver, core), core).iloc[:50].copy()
    frame.attrs["symbol"] = SYMBOL
    frame.iloc[30, frame.columns.get_loc("rsi")] = 101.0
    frame.iloc[31, frame.columns.get_loc("atr")] = np.inf
    frame.iloc[32, frame.columns.get_loc("hour_of_day")] = np.nan
    valid, bad = validate_features(frame, core)
    assert len(valid) == 47 and set(frame.index[30:33]).isdisjoint(valid.index)
    assert {r.row_key for r in bad} == {f"{SYMBOL}|{t.isoformat()}" for t in frame.index[30:33]}
    assert any("rsi" in r.reason for r in bad)


def test_version_hash_tracks_definitions(cfg):
    a = feature_set_from_settings(cfg, sentiment_model_id="m1")
    assert a.version == feature_set_from_settings(cfg, sentiment_model_id="m1").version
    assert a.version != feature_set_from_settings(cfg, sentiment_model_id="m2").version
    ext = load_settings([f"state_dir={cfg.state_dir}", "features.set=extended"])
    e = feature_set_from_settings(ext, sentiment_model_id="m1")
    assert e.version.startswith("extended-") and len(e.names) > 28
    lag = load_settings([f"state_dir={cfg.state_dir}", "ingest.backfill_lag_min.default=60"])
    assert feature_set_from_settings(lag, sentiment_model_id="m1").version != a.version
    chunk = load_settings([f"state_dir={cfg.state_dir}", "features.chunk_h=100"])
    assert feature_set_from_settings(chunk, sentiment_model_id="m1").version == a.version
