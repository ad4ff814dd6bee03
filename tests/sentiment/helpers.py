"""Plain helpers for the sentiment tests (importable; conftest.py holds only fixtures)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

# Hand-written headlines (text,label: -1 bearish, 0 neutral, 1 bullish), 12 of each class, written
# to be unambiguous to a reader, in crypto-news phrasing. Written before they were scored; the
# two the fallback gets wrong ("block height reaches", "difficulty adjustment": VADER reads
# "height"/"difficulty" as negative) are kept, so the figure is what it is.
UNAMBIGUOUS_HEADLINES = Path(__file__).with_name("unambiguous_headlines.csv")

# The model id the fallback's scores were stored under before issue 19 (the token-share mapping).
OLD_VADER_MODEL_ID = "vader-lexicon"


def token_share_probs(texts: Sequence[str]) -> np.ndarray:
    """The fallback's mapping before issue 19: VADER's neg/neu/pos token shares as probabilities.

    Kept here only to show the tests would fail under it and to seed the warehouse with the
    scores an old `rayapp score` wrote.
    """
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    out = np.array([[s["neg"], s["neu"], s["pos"]] for s in map(analyzer.polarity_scores, texts)], dtype=float)
    total = out.sum(axis=1, keepdims=True)
    empty = total[:, 0] <= 0
    out[empty], total[empty] = (0.0, 1.0, 0.0), 1.0
    return out / total
