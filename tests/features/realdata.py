"""Load the real files of ../shared/data into silver (ingest's backfill) and score the news with
the VADER lexicon (the sentiment stage's fallback backend). Shared by the real-data test and
benchmarks/features.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import psycopg

from rayapp.warehouse import upsert_frame

PRICES = "btc_usd_1h_2019-11_2025-05.csv"
NEWS = "cryptonews_2021-10_2022-07.csv"
FEAR_GREED = "fear_greed_index_2018-02_2024-11.csv"
VADER_MODEL_ID = "vaderSentiment/lexicon"


def load_real_silver(
    conn: psycopg.Connection, data: Path, lags: dict[str, float], symbol: str = "BTCUSDT", fear_greed: bool = True
) -> dict[str, int]:
    from rayapp.ingest.backfill import backfill_file

    files = [("prices", PRICES), ("news", NEWS)] + ([("fear-greed", FEAR_GREED)] if fear_greed else [])
    out = {}
    for kind, name in files:
        s = backfill_file(conn, kind, data / name, symbol=symbol, lags=lags)
        out[kind] = s.written + s.unchanged
    conn.commit()
    return out


def score_with_vader(conn: psycopg.Connection, model_id: str = VADER_MODEL_ID) -> int:
    from rayapp.sentiment.vader import VaderBackend

    rows = conn.execute("SELECT article_id, title FROM articles ORDER BY article_id").fetchall()
    p = VaderBackend().predict([r[1] for r in rows])
    df = pd.DataFrame(
        {
            "article_id": [r[0] for r in rows],
            "model_id": model_id,
            "model_revision": "3.3.2",
            "p_bearish": p[:, 0],
            "p_neutral": p[:, 1],
            "p_bullish": p[:, 2],
            "score": (p[:, 2] - p[:, 0]).clip(-1, 1),
        }
    )
    upsert_frame(conn, "article_sentiment", df, key=["article_id", "model_id"])
    conn.commit()
    return len(df)
