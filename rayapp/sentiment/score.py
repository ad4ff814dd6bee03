"""`rayapp score`: score every unscored article and social post, upsert article_sentiment.

1. Choose the model: resolve `model.sentiment.name` (hub id or directory) to a model_id and load
   it once on the driver as a preflight, so that a bad model fails (or falls back) before any
   actor starts. A hub model that cannot be had (offline, not cached) falls back to the VADER
   lexicon with one warning when `model.sentiment.fallback=vader`; a local directory the user
   named is never replaced silently: missing or corrupt, it is an error.
2. Read the articles (kind news and social) that have no row for that model_id. The text scored
   is the title: the headline carries the claim, and CryptoBERT was trained on posts of at most
   128 tokens, which a title fits and a body does not.
3. Score them on a Ray Data actor pool sized from `ray.cluster_resources()`.
4. Upsert article_sentiment as results stream back, so a crash keeps what was scored; a re-run
   finds nothing left and scores nothing.
"""

from __future__ import annotations

import gc
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from rayapp.config import SentimentModelSettings, Settings
from rayapp.log import get_logger
from rayapp.runtime import ensure_ray
from rayapp.sentiment.model import VADER_MODEL_ID, HubUnavailable, ModelSpec, load, resolve, vader_spec
from rayapp.sentiment.pool import order_for_scoring, plan_pool, score_dataset, to_dataset

log = get_logger(__name__)

KINDS = ("news", "social")
WRITE_CHUNK = 2000
SENTIMENT_COLUMNS = [
    "article_id",
    "model_id",
    "model_revision",
    "p_bearish",
    "p_neutral",
    "p_bullish",
    "score",
    "scored_at",
]


@dataclass
class ScoreSummary:
    model_id: str
    backend: str
    read: int = 0  # articles of the scored kinds in silver
    skipped: int = 0  # already scored by this model_id
    scored: int = 0  # rows written this run
    remaining: int = 0  # unscored, left for a later run by --limit
    actors: int = 0
    device: str = "cpu"
    batch_size: int = 0
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return round(self.scored / self.seconds, 1) if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": self.rows_per_s}


def choose_model(cfg: SentimentModelSettings, preflight: bool = True) -> ModelSpec:
    """The spec to score with, after a preflight load; VADER when a hub model is unavailable."""
    try:
        spec, directory = resolve(cfg.name, cfg.revision, cfg.max_length)
        if preflight:
            loaded = load(spec, directory, device="cpu")
            del loaded
            gc.collect()
        return spec
    except HubUnavailable as exc:
        if cfg.fallback != "vader":
            raise
        # One warning per job, here on the driver; the actors are simply given the VADER spec.
        log.warning(
            "sentiment model unavailable: scoring with the VADER lexicon fallback",
            model=cfg.name,
            revision=cfg.revision,
            reason=str(exc),
            model_id=VADER_MODEL_ID,
        )
        return vader_spec(cfg.max_length)


_UNSCORED = """
SELECT a.article_id, a.title AS text
FROM articles a
WHERE a.kind = ANY(%(kinds)s)
  AND NOT EXISTS (SELECT 1 FROM article_sentiment s
                  WHERE s.article_id = a.article_id AND s.model_id = %(model_id)s)
ORDER BY a.published_at, a.article_id
"""


_COUNTS = """
SELECT count(*), count(*) FILTER (WHERE EXISTS (
    SELECT 1 FROM article_sentiment s WHERE s.article_id = a.article_id AND s.model_id = %(model_id)s))
FROM articles a WHERE a.kind = ANY(%(kinds)s)
"""


def unscored_articles(conn: Any, model_id: str, limit: int | None = None) -> tuple[pd.DataFrame, int, int]:
    """(article_id, text) of the articles without a score for model_id; total read; already scored."""
    params = {"kinds": list(KINDS), "model_id": model_id, "limit": limit}
    total, done = conn.execute(_COUNTS, params).fetchone()
    rows = conn.execute(_UNSCORED + (" LIMIT %(limit)s" if limit else ""), params).fetchall()
    return pd.DataFrame(rows, columns=["article_id", "text"], dtype=object), int(total), int(done)


def write_scores(conn: Any, frame: pd.DataFrame) -> int:
    from rayapp.warehouse import upsert_frame

    # Batches that went through Arrow (the GPU layout's tensor column) come back Arrow-backed.
    probs = {c: frame[c].to_numpy(dtype="float64") for c in ("p_bearish", "p_neutral", "p_bullish", "score")}
    frame = frame.assign(scored_at=pd.Timestamp(datetime.now(UTC)), **probs)[SENTIMENT_COLUMNS]
    # A score for (article, model_id) is final: the same model gives the same score, so a row that
    # is already there (a concurrent run wrote it) is left alone rather than re-stamped.
    result = upsert_frame(conn, "article_sentiment", frame, key=["article_id", "model_id"], update=[])
    conn.commit()
    return result.inserted


def run_score(settings: Settings, limit: int | None = None, pool: Any = None) -> ScoreSummary:
    """Score what is unscored for the current model; returns the counts that the job logs."""
    import ray

    from rayapp.warehouse import get_pool

    cfg = settings.model.sentiment
    pool = pool or get_pool(settings)
    spec = choose_model(cfg)
    summary = ScoreSummary(model_id=spec.model_id, backend=spec.backend)
    with pool.connection() as conn:
        todo, summary.read, summary.skipped = unscored_articles(conn, spec.model_id, limit)
    summary.remaining = summary.read - summary.skipped - len(todo)
    if todo.empty:
        log.info("sentiment scored", **summary.as_dict())
        return summary

    ensure_ray(settings)
    plan = plan_pool(ray.cluster_resources(), cfg.batch_size, rows=len(todo), vader=spec.is_vader)
    summary.actors, summary.device, summary.batch_size = plan.actors, plan.device, plan.batch_size
    log.info("sentiment scoring", model_id=spec.model_id, backend=spec.backend, rows=len(todo), **plan.as_dict())
    started = time.perf_counter()
    scored = score_dataset(to_dataset(order_for_scoring(todo), plan), spec, plan)
    with pool.connection() as conn:
        for batch in scored.iter_batches(batch_size=WRITE_CHUNK, batch_format="pandas"):
            summary.scored += write_scores(conn, batch)
    summary.seconds = round(time.perf_counter() - started, 2)
    unwritten = len(todo) - summary.scored
    if unwritten:
        # Rows that came back unchanged (a concurrent run wrote them first) are not errors, but say so.
        log.warning("sentiment rows already present", rows=unwritten, model_id=spec.model_id)
    log.info("sentiment scored", **summary.as_dict())
    return summary
