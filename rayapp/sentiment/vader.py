"""VADER lexicon fallback: the same three class probabilities as the model, from VADER's `compound`.

Classification. VADER documents one way to classify a text ("About the scoring" in the
vaderSentiment README): by its `compound` score c in [-1, 1] (the rule-adjusted, normalised sum of
the tokens' valences) with the thresholds c >= 0.05 positive, c <= -0.05 negative, otherwise
neutral. Here positive is Bullish and negative Bearish, in CryptoBERT's order Bearish=0,
Neutral=1, Bullish=2.

Why not `neg`/`neu`/`pos`. Those are the shares of the text's tokens that are negative, neutral
and positive, not class probabilities: in a headline most tokens carry no sentiment, so `neu`
nearly always exceeds one half and the argmax says neutral even for "Bitcoin crashes below $20K
as panic selling wipes out traders". Mapping them to (p_bearish, p_neutral, p_bullish) labelled
almost every headline neutral (issue 19).

Mapping (m = |c|; the side is Bullish for c > 0, Bearish for c < 0; the other side gets 0, since
a negative compound is no evidence for Bullish):

- m >= 0.05 (VADER says positive/negative): p_side = (1 + m) / 2, p_neutral = (1 - m) / 2.
  p_side > 1/2, so the argmax is the class VADER names; the stronger the compound, the surer.
- m < 0.05 (VADER says neutral): p_neutral = 1 - m, p_side = m. p_neutral > 0.95.

So the argmax is always VADER's documented class, and the probabilities are monotone in c. They
are not calibrated: they restate VADER's decision and its intensity on the model's scale. The
score is p_bullish - p_bearish, as for the model: sign(c) * (1 + m) / 2 for a polar text (at
least 0.525 in magnitude), c itself for a neutral one (below 0.05). A consequence downstream:
with the default `features.extreme_threshold` of 0.5, every text VADER calls polar counts as
extreme, so under this fallback `sentiment_extreme` is the share of non-neutral items.

A text with no tokens has c = 0: certainly neutral (0, 1, 0).

Scores from the old token-share mapping are stored under the id `vader-lexicon`; this mapping has
its own id (`VADER_MODEL_ID` in `model.py`), so `rayapp score` scores every text again and a
feature set never mixes the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLD = 0.05  # VADER's documented |compound| threshold for a positive/negative text


def compound_probabilities(compound: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """(n, 3) probabilities (bearish, neutral, bullish) from compound scores, as in the docstring."""
    c = np.clip(np.asarray(compound, dtype=np.float64), -1.0, 1.0)
    m = np.abs(c)
    polar = m >= threshold
    side = np.where(polar, (1.0 + m) / 2.0, m)
    out = np.zeros((len(c), 3), dtype=np.float64)
    out[:, 1] = 1.0 - side
    out[:, 2] = np.where(c > 0, side, 0.0)
    out[:, 0] = np.where(c < 0, side, 0.0)
    return out


class VaderBackend:
    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def compound(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self._analyzer.polarity_scores(t or "")["compound"] for t in texts], dtype=np.float64)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities in the order bearish, neutral, bullish; argmax = VADER's class."""
        return compound_probabilities(self.compound(texts))
