"""VADER lexicon fallback: scores with the same three probabilities when the model cannot be loaded.

Mapping. VADER's `neg`, `neu` and `pos` are the shares of a text's sentiment intensity that are
negative, neutral and positive (after its negation, booster and contrast rules), so they already
form a distribution over the same three classes: p_bearish = neg, p_neutral = neu,
p_bullish = pos. VADER rounds each to 3 decimals, so they are renormalised to sum to 1. A text
with no tokens gets all-zero shares from VADER and is mapped to certainly neutral (0, 1, 0).
The score is p_bullish - p_bearish, as for the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class VaderBackend:
    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in the order bearish, neutral, bullish."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        for i, text in enumerate(texts):
            s = self._analyzer.polarity_scores(text or "")
            out[i] = (s["neg"], s["neu"], s["pos"])
        total = out.sum(axis=1, keepdims=True)
        empty = total[:, 0] <= 0
        out[empty] = (0.0, 1.0, 0.0)
        total[empty] = 1.0
        return out / total
