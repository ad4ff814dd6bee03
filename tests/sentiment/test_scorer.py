"""The map_batches scorer in-process: probabilities, determinism, truncation, the VADER mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rayapp.sentiment.model import VADER_MODEL_ID, resolve, vader_spec
from rayapp.sentiment.scorer import OUTPUT_COLUMNS, SentimentScorer


@pytest.fixture(scope="module")
def scorer(tiny_model_dir: Path) -> SentimentScorer:
    return SentimentScorer(resolve(str(tiny_model_dir))[0], device="cpu", num_threads=1)


def _batch(texts: list[str]) -> dict[str, np.ndarray]:
    return {
        "article_id": np.array([f"a{i}" for i in range(len(texts))], dtype=object),
        "text": np.array(texts, dtype=object),
    }


def test_scores_real_headlines(scorer: SentimentScorer, headlines: list[str]):
    out = scorer(_batch(headlines[:256]))
    assert set(out) == {"article_id", *OUTPUT_COLUMNS}
    probs = np.column_stack([out["p_bearish"], out["p_neutral"], out["p_bullish"]])
    assert probs.shape == (256, 3) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out["score"], out["p_bullish"] - out["p_bearish"])
    assert np.all(np.abs(out["score"]) <= 1)
    assert out["score"].std() > 0.01  # the texts reach the model: scores are not one constant
    assert set(out["model_id"]) == {scorer.spec.model_id}
    assert set(out["model_revision"]) == {scorer.spec.revision}
    assert list(out["article_id"]) == [f"a{i}" for i in range(256)]


def test_scores_are_deterministic_and_do_not_depend_on_the_batch(scorer, tiny_model_dir, headlines):
    texts = headlines[1000:1064]
    again = SentimentScorer(resolve(str(tiny_model_dir))[0], device="cpu", num_threads=1)
    first, second = scorer.predict(texts), again.predict(texts)
    np.testing.assert_array_equal(first, second)
    # Padding to another batch's longest text must not change a text's probabilities.
    alone = np.concatenate([scorer.predict([t]) for t in texts[:16]])
    np.testing.assert_allclose(alone, first[:16], atol=1e-5)


def test_warmup_leaves_the_scores_unchanged(scorer: SentimentScorer, headlines: list[str]):
    """GPU actors run warm-up batches when they load (CPU ones do not); they must leave no trace."""
    backend = scorer.backend
    assert backend.warmup_s == 0.0  # type: ignore[union-attr]  # a CPU scorer skips it
    before = scorer.predict(headlines[:32])
    assert backend.warmup(8) > 0  # type: ignore[union-attr]
    np.testing.assert_array_equal(scorer.predict(headlines[:32]), before)


def test_long_texts_are_truncated_to_max_length(scorer: SentimentScorer, news):
    bodies = news["text"].tolist()[:8]
    long_text = " ".join(bodies * 4)
    tok = scorer.backend.loaded.tokenizer  # type: ignore[union-attr]
    assert len(tok(long_text)["input_ids"]) > 128  # without truncation positions would overflow
    probs = scorer.predict([long_text, "Bitcoin"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # Everything past 128 tokens is cut: appending more text changes nothing.
    np.testing.assert_allclose(scorer.predict([long_text + " crash crash crash"]), probs[:1], atol=1e-6)


def test_empty_batch_and_empty_text(scorer: SentimentScorer):
    out = scorer(_batch([]))
    assert all(len(out[c]) == 0 for c in OUTPUT_COLUMNS)
    probs = scorer.predict(["", "   "])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_vader_fallback_mapping():
    scorer = SentimentScorer(vader_spec())
    out = scorer(
        _batch(
            [
                "Bitcoin surges to record high as investors celebrate huge gains",
                "Crypto market crashes, investors fear massive losses and fraud",
                "Bitcoin price on Tuesday",
                "",
            ]
        )
    )
    assert set(out["model_id"]) == {VADER_MODEL_ID}
    assert out["model_revision"][0].startswith("vaderSentiment==")
    probs = np.column_stack([out["p_bearish"], out["p_neutral"], out["p_bullish"]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert out["score"][0] > 0.2 and out["p_bullish"][0] > out["p_bearish"][0]
    assert out["score"][1] < -0.2 and out["p_bearish"][1] > out["p_bullish"][1]
    np.testing.assert_allclose(probs[2], [0, 1, 0])  # no sentiment words: certainly neutral
    np.testing.assert_allclose(probs[3], [0, 1, 0])  # nothing to read: neutral, not NaN
