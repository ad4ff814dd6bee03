"""Silver rows -> `FeatureInputs`: one candle source per symbol, scores joined, availability set.

The same function serves the warehouse reader and the tests' factories, so the point-in-time
rules are exercised on exactly the code path the job runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from rayapp.features.definitions import FeatureParams
from rayapp.features.errors import FeatureInputError
from rayapp.features.frame import CANDLE_COLUMNS, FeatureInputs
from rayapp.features.pit import UTC_NS, article_available_at, clamped_available_at, utc_ns
from rayapp.log import get_logger

log = get_logger(__name__)


MIN_SHARE = 0.5  # a preferred source needs at least half the candles of the fullest one


def pick_source(counts: dict[str, int], preference: Sequence[str]) -> str:
    """The first preferred source with at least half as many candles as the fullest source; else
    the fullest (then by name).

    One source per symbol: mixing exchanges would put price jumps at every switch. The share
    rule keeps a short export of a preferred exchange (5 months of Binance) from replacing
    years of history from another source.
    """
    have = {s: n for s, n in counts.items() if n > 0}
    if not have:
        raise FeatureInputError("no candles")
    most = max(have.values())
    for s in preference:
        if have.get(s, 0) >= MIN_SHARE * most:
            return s
    return sorted(have, key=lambda s: (-have[s], s))[0]


def candles_frame(candles: pd.DataFrame) -> pd.DataFrame:
    df = candles.copy()
    df["open_time"] = utc_ns(df["open_time"])
    df = df.sort_values("open_time").set_index("open_time")
    df.index.name = "ts"
    if df.index.has_duplicates:
        raise FeatureInputError("candles repeat an open_time for one source")
    off_hour = df.index != df.index.floor("h")
    if off_hour.any():
        raise FeatureInputError(f"{int(off_hour.sum())} candles do not open on the hour, e.g. {df.index[off_hour][0]}")
    return df[CANDLE_COLUMNS].astype("float64")


def scored_items(
    articles: pd.DataFrame, sentiment: pd.DataFrame, model_id: str, p: FeatureParams
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(news items, social items, unscored count): columns available_at, score."""
    if articles.empty:
        return FeatureInputs.empty_items(), FeatureInputs.empty_items(), 0
    scores = (
        sentiment[sentiment["model_id"] == model_id][["article_id", "score"]]
        if not sentiment.empty
        else pd.DataFrame({"article_id": [], "score": []})
    )
    a = articles.merge(scores, on="article_id", how="left")
    a["available_at"] = article_available_at(a, p)
    unscored = int(a["score"].isna().sum())
    a = a[a["score"].notna()]
    cols = ["available_at", "score"]
    news = a.loc[a["kind"] == "news", cols].astype({"score": "float64"}).reset_index(drop=True)
    social = a.loc[a["kind"] == "social", cols].astype({"score": "float64"}).reset_index(drop=True)
    return news, social, unscored


def counts_frame(counts: pd.DataFrame, symbol: str, p: FeatureParams) -> pd.DataFrame:
    if counts.empty:
        return FeatureInputs.empty_counts()
    c = counts[counts["symbol"] == symbol]
    hour = utc_ns(c["hour"])
    out = pd.DataFrame(
        {
            "source": c["source"].astype(str).to_numpy(),
            "hour": hour.to_numpy(),
            "mentions": c["mentions"].astype("float64").to_numpy(),
            # A count is complete at the end of its hour at the earliest.
            "available_at": clamped_available_at(
                hour + pd.Timedelta(hours=1), c["first_seen_at"], c["source"], p
            ).to_numpy(),
        }
    )
    return out.astype({"hour": UTC_NS, "available_at": UTC_NS})


def market_frame(market: pd.DataFrame, p: FeatureParams) -> pd.DataFrame:
    if market.empty:
        return FeatureInputs.empty_market()
    ts = utc_ns(market["ts"])
    out = pd.DataFrame(
        {
            "index_name": market["index_name"].astype(str).to_numpy(),
            "ts": ts.to_numpy(),
            "value": market["value"].astype("float64").to_numpy(),
            "available_at": clamped_available_at(ts, market["first_seen_at"], market["source"], p).to_numpy(),
        }
    )
    return out.astype({"ts": UTC_NS, "available_at": UTC_NS})


def inputs_from_silver(
    symbol: str,
    candles: pd.DataFrame,
    articles: pd.DataFrame,
    sentiment: pd.DataFrame,
    social_counts: pd.DataFrame,
    market: pd.DataFrame,
    p: FeatureParams,
) -> FeatureInputs:
    """Silver tables (as frames with the warehouse's column names) -> the inputs of one symbol."""
    mine = candles[candles["symbol"] == symbol]
    if mine.empty:
        raise FeatureInputError(f"no candles for symbol {symbol!r}")
    source = pick_source(mine["source"].value_counts().to_dict(), p.candle_sources)
    news, social, unscored = scored_items(articles, sentiment, p.sentiment_model_id, p)
    inputs = FeatureInputs(
        symbol=symbol,
        candle_source=source,
        candles=candles_frame(mine[mine["source"] == source]),
        news=news,
        social=social,
        social_counts=counts_frame(social_counts, symbol, p),
        market=market_frame(market, p),
    )
    log.info(
        "feature inputs read",
        symbol=symbol,
        candle_source=source,
        candles=len(inputs.candles),
        news=len(news),
        social=len(social),
        skipped_unscored=unscored,
        social_counts=len(inputs.social_counts),
        market=len(inputs.market),
        sentiment_model_id=p.sentiment_model_id,
    )
    return inputs
