"""The real files of ../shared/data loaded into silver (ingest's backfill), and the news scored.

Shared by tests/features/test_realdata.py and benchmarks/features.py. Both score with the VADER
lexicon (the sentiment stage's fallback backend) by passing its `predict` to `score_titles`:
this package uses the stages' public APIs only, as every other package outside a stage does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

# the id `rayapp score` records for the fallback's scores (the mapping's revision after the @)
from rayapp.sentiment import VADER_MODEL_ID

if TYPE_CHECKING:
    import numpy as np
    import psycopg

PRICES = "btc_usd_1h_2019-11_2025-05.csv"
NEWS = "cryptonews_2021-10_2022-07.csv"
FEAR_GREED = "fear_greed_index_2018-02_2024-11.csv"
VADER_REVISION = "3.3.2"  # the vaderSentiment version, as `rayapp score` records it


def load_real_silver(
    conn: psycopg.Connection, data: Path, lags: dict[str, float], symbol: str = "BTCUSDT", fear_greed: bool = True
) -> dict[str, int]:
    """Backfill the prices, the news and (optionally) the Fear & Greed index; rows per kind."""
    from rayapp.ingest import backfill_file

    files = [("prices", PRICES), ("news", NEWS)] + ([("fear-greed", FEAR_GREED)] if fear_greed else [])
    out = {}
    for kind, name in files:
        s = backfill_file(conn, kind, data / name, symbol=symbol, lags=lags)
        out[kind] = s.written + s.unchanged
    conn.commit()
    return out


def score_titles(
    conn: psycopg.Connection,
    predict: Callable[[Sequence[str]], np.ndarray],
    model_id: str = VADER_MODEL_ID,
    model_revision: str = VADER_REVISION,
) -> int:
    """Score every article's title with `predict` ((n, 3) probabilities: bearish, neutral,
    bullish) and upsert the scores into `article_sentiment` under `model_id`; the row count."""
    import pandas as pd

    from rayapp.warehouse import upsert_frame

    rows = conn.execute("SELECT article_id, title FROM articles ORDER BY article_id").fetchall()
    p = predict([r[1] for r in rows])
    df = pd.DataFrame(
        {
            "article_id": [r[0] for r in rows],
            "model_id": model_id,
            "model_revision": model_revision,
            "p_bearish": p[:, 0],
            "p_neutral": p[:, 1],
            "p_bullish": p[:, 2],
            "score": (p[:, 2] - p[:, 0]).clip(-1, 1),
        }
    )
    upsert_frame(conn, "article_sentiment", df, key=["article_id", "model_id"])
    conn.commit()
    return len(df)
