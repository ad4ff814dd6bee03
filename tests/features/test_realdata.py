"""A build on the real files: 48k hours of BTC/USD, the news file scored with VADER."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayapp.config import load_settings
from rayapp.features.build import run_build
from rayapp.features.definitions import feature_set_from_settings
from rayapp.features.offline_store import load_features
from rayapp.features.online import online_check
from rayapp.sentiment.vader import VaderBackend
from rayapp.testing.realdata import VADER_MODEL_ID, load_real_silver, score_titles

NEWS_START, NEWS_END = pd.Timestamp("2021-10-12", tz="UTC"), pd.Timestamp("2022-07-06", tz="UTC")


@pytest.mark.realdata
@pytest.mark.slow
def test_real_data_build(db, state_dir, services, ray_cluster, shared_data):
    cfg = load_settings([f"state_dir={state_dir}", "features.set=extended"])
    loaded = load_real_silver(db, shared_data, dict(cfg.ingest.backfill_lag_min))
    scored = score_titles(db, VaderBackend().predict)  # the VADER lexicon
    assert loaded["prices"] == 48023 and scored == loaded["news"] > 7000

    [s] = run_build(cfg)
    fs = feature_set_from_settings(cfg, db)
    assert fs.params.sentiment_model_id == VADER_MODEL_ID and s.candle_source == "cryptocompare"
    assert s.rows == 48023 and s.quarantined == 0 and s.chunks >= 2
    fr = load_features(db, "BTCUSDT", fs.version)
    assert len(fr) == 48023

    news = fr.loc[NEWS_START:NEWS_END]
    outside = fr.loc[(fr.index < NEWS_START - pd.Timedelta(days=1)) | (fr.index > NEWS_END)]
    assert news["sentiment_count"].sum() > 0.95 * scored  # nearly every article lands in an hour
    assert (news["sentiment_count"] > 0).mean() > 0.3
    assert (outside["sentiment_count"] == 0).all() and outside["sentiment_mean"].isna().all()
    assert news["sentiment_mean"].dropna().between(-1, 1).all()
    assert fr["rsi"].dropna().between(0, 100).all() and fr["rsi"].notna().mean() > 0.99
    assert set(fr["volatility_regime"].dropna().unique()) == {0.0, 1.0, 2.0}
    assert fr["fear_greed"].notna().mean() > 0.8  # the index ends 2024-11, prices 2025-05
    # The inconsistent 2021-01-04 05:00 bar is quarantined by ingest; the hour is a filled gap.
    gap = pd.Timestamp("2021-01-04 05:00", tz="UTC")
    assert gap not in fr.index and np.isfinite(fr.loc[gap + pd.Timedelta(hours=1), "returns_1h"])

    report = online_check(cfg, hours=48)
    assert report.mismatches == [] and report.checked_online == len(fs.names)
