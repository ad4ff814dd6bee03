"""Chunked (Ray) build equals the single pass bit for bit; no row looks into the future."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rayapp.features.build import build_frame, chunk_bounds
from rayapp.features.frame import compute_features
from tests.features import factories as F
from tests.features.helpers import frames_identical, to_inputs


@pytest.mark.parametrize("which", ["core", "extended"])
def test_chunked_build_equals_single_pass(ray_cluster, silver, core, extended, which):
    fs = core if which == "core" else extended
    s = F.Silver(
        silver.candles.drop(silver.candles.index[700:702]).drop(silver.candles.index[1300:1320]),
        silver.articles,
        silver.sentiment,
        silver.social_counts,
        silver.market,
    )
    inputs = to_inputs(s, fs)
    single = compute_features(inputs, fs)
    for chunk_h in (97, 450):
        chunked, n = build_frame(inputs, fs, chunk_h=chunk_h)
        assert n == len(chunk_bounds(single.index, chunk_h)) > 1
        assert frames_identical(single, chunked), f"chunk_h={chunk_h}"
    # Bounded builds (the incremental path) give the same rows too.
    lo, hi = single.index[1500], single.index[1800]
    part, _ = build_frame(inputs.window(lo - pd.Timedelta(hours=fs.params.warmup_h), hi), fs, lo, hi, chunk_h=120)
    assert frames_identical(single.loc[lo : hi - pd.Timedelta(hours=1)], part)


def _later_than(s: F.Silver, t: pd.Timestamp, lag_min: float) -> dict[str, np.ndarray]:
    """Which silver rows became available after the close of hour t (t + 1h)."""
    close = t + pd.Timedelta(hours=1)
    a = s.articles
    avail = np.where(a["backfilled"], a["published_at"] + pd.Timedelta(minutes=lag_min), a["first_seen_at"])
    return {
        "candles": (s.candles["open_time"] > t).to_numpy(),
        "articles": (pd.Series(avail) >= close).to_numpy(),
        "social": (s.social_counts["hour"] >= t).to_numpy(),
        "market": (s.market["ts"] > t).to_numpy(),
    }


def _alter_after(s: F.Silver, t: pd.Timestamp, rng: np.random.Generator) -> F.Silver:
    later = _later_than(s, t, 5.0)
    c = s.candles.copy()
    m = later["candles"]
    k = rng.uniform(0.5, 2.0, m.sum())
    for col in ("open", "high", "low", "close"):
        c.loc[m, col] = c.loc[m, col] * k
    c.loc[m, "volume"] = c.loc[m, "volume"] * 3
    more = F.candles(100, start=c["open_time"].max() + pd.Timedelta(hours=1), seed=99)
    c = pd.concat([c, more], ignore_index=True)

    ids = set(s.articles.loc[later["articles"], "article_id"])
    sent = s.sentiment.copy()
    hit = sent["article_id"].isin(ids)
    sent.loc[hit, "score"] = -sent.loc[hit, "score"] + 0.05
    new_art = F.articles(40, start=t, hours=30, seed=123)
    new_art["published_at"] = new_art["published_at"] + pd.Timedelta(hours=1)  # after t's close
    new_art["first_seen_at"] = new_art["published_at"] + pd.Timedelta(minutes=1)
    arts = pd.concat([s.articles, new_art], ignore_index=True)
    sent = pd.concat([sent, F.scores(new_art["article_id"], seed=5)], ignore_index=True)

    sc = s.social_counts.copy()
    sc.loc[later["social"], "mentions"] = sc.loc[later["social"], "mentions"] + 1000
    mk = s.market.copy()
    mk.loc[later["market"], "value"] = 100 - mk.loc[later["market"], "value"]
    return F.Silver(c, arts, sent, sc, mk)


def test_leakage_row_at_t_ignores_everything_later(silver, extended):
    fs = extended  # the superset: every feature of both sets is checked
    base = compute_features(to_inputs(silver, fs), fs)
    rng = np.random.default_rng(2024)
    changed_later = 0
    for t in rng.choice(base.index[800:1950], size=4, replace=False):
        t = pd.Timestamp(t)
        altered = compute_features(to_inputs(_alter_after(silver, t, rng), fs), fs)
        assert frames_identical(base.loc[:t], altered.loc[:t]), f"row at or before {t} changed"
        later = base.index[base.index > t][:50]
        changed_later += int((base.loc[later].to_numpy() != altered.loc[later].to_numpy()).any())
    assert changed_later == 4  # the alteration is real: rows after t do move
