"""Point-in-time sentiment, social and market features against hand-worked values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from rayapp.features.definitions import make_feature_set
from rayapp.features.frame import compute_features
from rayapp.features.inputs import inputs_from_silver
from tests.features import factories as F

T0 = F.START
LAGS = {"default": 5.0, "cointelegraph": 30.0}


def at(hh: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=round(hh * 60))


def _article(aid, published, seen, backfilled, source="cryptonews", kind="news"):
    return {
        "article_id": aid,
        "kind": kind,
        "source": source,
        "guid": aid,
        "url": None,
        "title": aid,
        "body": None,
        "categories": [],
        "published_at": published,
        "first_seen_at": seen,
        "backfilled": backfilled,
    }


def _build(name="core", with_news=True):
    fs = make_feature_set(name, sentiment_model_id=F.MODEL_ID, backfill_lag_min=LAGS)
    arts = (
        pd.DataFrame(
            [
                _article("a1", at(2 + 10 / 60), at(2 + 40 / 60), False),  # live -> 02:40
                _article("a2", at(2 + 58 / 60), at(9999), True, source="cointelegraph"),  # +30 -> 03:28
                _article("a3", at(2 + 50 / 60), at(9999), True, source="other"),  # +5  -> 02:55
                _article("a4", at(3), at(5 + 10 / 60), False),  # live -> 05:10
                _article("a5", at(2.5), at(2.6), False),  # never scored
                _article("a6", at(2.5), at(2.6), False),  # other model
                _article("a7", at(20.2), at(20.3), False),  # 15 h later
                _article("s1", at(4.1), at(4 + 20 / 60), False, source="reddit", kind="social"),
            ]
        )
        if with_news
        else F.articles(0)
    )
    score = {"a1": 0.6, "a2": 0.1, "a3": -0.2, "a4": -0.9, "a7": 0.3, "s1": -0.4}
    sent = F.scores(pd.Series(list(score)))
    sent["score"] = [score[a] for a in sent["article_id"]]
    other = F.scores(pd.Series(["a6"]), model_id="another/model")
    sentiment = pd.concat([sent, other], ignore_index=True) if with_news else sent.iloc[0:0]
    counts = pd.DataFrame(
        {
            "source": ["reddit", "x", "reddit"],
            "symbol": "BTCUSDT",
            "hour": [at(1), at(1), at(5)],
            "mentions": [10, 5, 7],
            "posts": [1, 1, 1],
            "first_seen_at": [at(2 + 3 / 60), at(2 + 1 / 60), at(9999)],
        }
    )
    market = pd.DataFrame(
        {
            "index_name": "fear_greed",
            "ts": [at(0), at(24)],
            "value": [40.0, 60.0],
            "classification": "x",
            "source": "alternative.me",
            "first_seen_at": [at(10 / 60), at(9999)],
        }
    )
    candles = F.candles(48)
    inputs = inputs_from_silver("BTCUSDT", candles, arts, sentiment, counts, market, fs.params)
    return compute_features(inputs, fs)


def test_sentiment_hours_by_hand():
    fr = _build()
    row = lambda h: fr.loc[at(h)]  # noqa: E731
    assert row(2)["sentiment_count"] == 2 and row(2)["sentiment_mean"] == pytest.approx(0.2)
    assert row(2)["sentiment_extreme"] == 0.5
    assert row(3)["sentiment_count"] == 1 and row(3)["sentiment_mean"] == pytest.approx(0.1)
    assert row(3)["sentiment_change_1h"] == pytest.approx(-0.1)
    assert row(3)["sentiment_extreme"] == 0.0
    # Hour 5 compares with the last known mean (hour 3, 2 h back: within the 6 h bound).
    assert row(5)["sentiment_mean"] == pytest.approx(-0.9)
    assert row(5)["sentiment_change_1h"] == pytest.approx(-1.0)
    assert row(5)["sentiment_extreme"] == 1.0
    # 15 h after the last news the bound is exceeded: no change, never a stale difference.
    assert row(20)["sentiment_mean"] == pytest.approx(0.3)
    assert math.isnan(row(20)["sentiment_change_1h"])
    assert row(4)["social_sentiment"] == pytest.approx(-0.4)
    assert math.isnan(row(5)["social_sentiment"])


def test_missing_sentiment_policy():
    fr = _build()
    empty = fr[fr["sentiment_count"] == 0]
    assert len(empty) == 48 - 4
    assert empty["sentiment_mean"].isna().all()  # never an invented 0 score
    assert empty["sentiment_change_1h"].isna().all()
    assert empty["sentiment_extreme"].isna().all()
    assert (fr["sentiment_count"] >= 0).all() and fr["sentiment_count"].notna().all()
    none = _build(with_news=False)
    assert (none["sentiment_count"] == 0).all() and none["sentiment_mean"].isna().all()
    assert none["social_sentiment"].isna().all()


def test_unscored_and_other_model_items_do_not_count():
    fr = _build()
    assert fr["sentiment_count"].sum() == 5  # a1..a4, a7; a5 unscored, a6 another model


def test_social_volume_asof_with_max_age():
    fr = _build()
    vol = fr["social_volume"]
    assert math.isnan(vol[at(1)])  # hour 1 is counted only after it closes
    assert vol[at(2)] == 15 and vol[at(3)] == 15 and vol[at(4)] == 15  # 10 (reddit) + 5 (x)
    assert math.isnan(vol[at(5)])  # 4 h old: beyond social_max_age_h = 3
    # The hour-5 count was loaded long after: available at end of hour + lag (06:05).
    assert vol[at(6)] == 7


def test_fear_greed_asof_extended():
    fr = _build("extended")
    fg = fr["fear_greed"]
    assert fg[at(0)] == 40 and fg[at(23)] == 40 and fg[at(24)] == 60
    assert fr.loc[at(24), "fear_greed_change_24h"] == 20
    assert math.isnan(fr.loc[at(23), "fear_greed_change_24h"])
    assert (fr["day_of_week"] == 0).sum() == 24 and fr["is_weekend"].sum() == 0
    c24 = fr["sentiment_count_24h"]
    assert math.isnan(c24[at(22)]) and c24[at(23)] == 5 and c24[at(43)] == 1 and c24[at(44)] == 0


def test_backfill_lag_is_per_source():
    from rayapp.features.pit import article_available_at

    fs = make_feature_set("core", backfill_lag_min=LAGS)
    df = pd.DataFrame(
        [
            _article("x", at(1), at(100), True, source="cointelegraph"),
            _article("y", at(1), at(100), True, source="unknown"),
            _article("z", at(1), at(1.5), False, source="cointelegraph"),
        ]
    )
    got = article_available_at(df, fs.params)
    assert list(got) == [at(1.5), at(1 + 5 / 60), at(1.5)]
    assert str(got.dtype) == "datetime64[ns, UTC]"
