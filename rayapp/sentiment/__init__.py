"""Sentiment scoring: CryptoBERT (or the VADER lexicon fallback) on Ray Data actor pools.

Modules: `model` (resolution, loading, provenance), `scorer` (the map_batches callable class),
`vader` (fallback), `pool` (actor pool sizing and the Ray Data plan), `score` (`rayapp score`:
everything unscored in silver, scored and upserted), `evaluate` (`rayapp sentiment-eval`),
`localmodel` (a locally built model of the same architecture for tests and benchmarks).

The names below are the stage's public API; they load on first use, so importing the package
does not pull in torch.
"""

from typing import TYPE_CHECKING

from rayapp.exports import lazy_exports

if TYPE_CHECKING:
    from rayapp.sentiment.evaluate import EvalDataError, EvalReport, read_labelled, run_eval
    from rayapp.sentiment.model import VADER_MODEL_ID, ModelLoadError
    from rayapp.sentiment.score import ScoreSummary, choose_model, run_score
    from rayapp.sentiment.scorer import SentimentScorer

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "rayapp.sentiment.evaluate": ("EvalDataError", "EvalReport", "read_labelled", "run_eval"),
        "rayapp.sentiment.model": ("VADER_MODEL_ID", "ModelLoadError"),
        "rayapp.sentiment.score": ("ScoreSummary", "choose_model", "run_score"),
        "rayapp.sentiment.scorer": ("SentimentScorer",),
    },
)

__all__ = [
    "VADER_MODEL_ID",
    "EvalDataError",
    "EvalReport",
    "ModelLoadError",
    "ScoreSummary",
    "SentimentScorer",
    "choose_model",
    "read_labelled",
    "run_eval",
    "run_score",
]
