"""`rayapp score` end to end: real PostgreSQL, real Ray Data actor pool, real headlines."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.sentiment.model import VADER_MODEL_ID, HubUnavailable, ModelLoadError, resolve
from rayapp.sentiment.pool import PoolPlan, order_for_scoring, plan_pool, rows_per_block, score_dataset, to_dataset
from rayapp.sentiment.score import run_score
from rayapp.sentiment.scorer import SentimentScorer
from rayapp.sentiment.vader import VaderBackend
from tests.sentiment.helpers import OLD_VADER_MODEL_ID, token_share_probs


def _stored(db) -> pd.DataFrame:
    rows = db.execute(
        "SELECT article_id, model_id, model_revision, p_bearish, p_neutral, p_bullish, "
        "score, scored_at FROM article_sentiment ORDER BY article_id"
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "article_id",
            "model_id",
            "model_revision",
            "p_bearish",
            "p_neutral",
            "p_bullish",
            "score",
            "scored_at",
        ],
    )


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def pipeline_log():
    logger = logging.getLogger("rayapp.sentiment.score")
    handler, old_level = _Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.records
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_plan_pool_sizes_from_resources():
    assert plan_pool({"CPU": 2.0}).as_dict() == {
        "device": "cpu",
        "actors": 2,
        "cpus_per_actor": 1.0,
        "gpus_per_actor": 0.0,
        "batch_size": 32,
        "tokenizer_actors": 0,
    }
    assert plan_pool({"CPU": 16.0}, batch_size=64).actors == 4
    gpu = plan_pool({"CPU": 16.0, "GPU": 2.0})
    assert (gpu.device, gpu.actors, gpu.gpus_per_actor, gpu.batch_size) == ("cuda", 2, 1.0, 512)
    assert gpu.tokenizer_actors == 8 and plan_pool({"CPU": 2.0, "GPU": 1.0}).tokenizer_actors == 1
    assert plan_pool({"CPU": 16.0, "GPU": 2.0}, vader=True).device == "cpu"  # a lexicon needs no GPU
    assert plan_pool({"CPU": 2.0}, rows=10).actors == 1  # never more actors than batches


def test_blocks_are_whole_batches_spread_over_the_actors():
    cpu = plan_pool({"CPU": 2.0})  # 2 actors, batches of 32
    assert rows_per_block(400, cpu) == 32  # 13 batches: one per block, so the actors end together
    assert rows_per_block(10_000, cpu) == 4 * 32  # plenty of batches: 4 per block, 79 blocks
    assert rows_per_block(20, cpu) == 10  # fewer rows than a batch: still one block per actor
    gpu = plan_pool({"CPU": 16.0, "GPU": 1.0})  # 1 actor, batches of 512
    assert rows_per_block(7524, gpu) == 3 * 512 and rows_per_block(100_000, gpu) == 4 * 512
    for rows in (1, 31, 33, 400, 7524):
        assert rows_per_block(rows, cpu) % 32 == 0 or rows_per_block(rows, cpu) * 2 >= rows


def test_tokenizer_stage_gives_the_same_scores(ray_cluster, tiny_model_dir: Path, headlines):
    """The GPU layout (CPU tokenizer actors feeding the model actors), run on CPU here."""
    spec = resolve(str(tiny_model_dir))[0]
    frame = order_for_scoring(pd.DataFrame({"row": np.arange(200), "text": headlines[:200]}))
    split = PoolPlan("cpu", actors=1, cpus_per_actor=1.0, gpus_per_actor=0.0, batch_size=32, tokenizer_actors=1)
    got = score_dataset(to_dataset(frame, split), spec, split).to_pandas().set_index("row").sort_index()
    assert len(got) == 200 and "input_ids" not in got and "n_tokens" not in got
    direct = SentimentScorer(spec, device="cpu").predict(headlines[:200])
    cols = ["p_bearish", "p_neutral", "p_bullish"]
    np.testing.assert_allclose(got[cols].to_numpy(dtype=float), direct, atol=1e-5)
    assert set(got["model_id"]) == {spec.model_id}


def test_score_is_idempotent_and_matches_the_scorer(
    ray_cluster, db, load_articles, sentiment_settings, tiny_model_dir: Path, pipeline_log
):
    news_ids = load_articles(0, 300)
    social_ids = load_articles(300, 320, kind="social")
    settings = sentiment_settings(tiny_model_dir)
    spec = resolve(str(tiny_model_dir))[0]

    first = run_score(settings)
    assert (first.read, first.scored, first.skipped, first.remaining) == (320, 320, 0, 0)
    assert first.model_id == spec.model_id and first.backend == "transformers" and first.actors == 2
    stored = _stored(db)
    assert sorted(stored["article_id"]) == sorted(news_ids + social_ids)
    assert set(stored["model_id"]) == {spec.model_id} and set(stored["model_revision"]) == {spec.revision}
    probs = stored[["p_bearish", "p_neutral", "p_bullish"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(stored["score"], stored["p_bullish"] - stored["p_bearish"], atol=1e-12)
    assert stored["scored_at"].notna().all()

    # Through Ray or in this process, a headline gets the same probabilities.
    titles = dict(db.execute("SELECT article_id, title FROM articles").fetchall())
    direct = SentimentScorer(spec, device="cpu").predict([titles[a] for a in stored["article_id"]])
    np.testing.assert_allclose(probs, direct, atol=1e-5)

    second = run_score(settings)
    assert (second.read, second.scored, second.skipped) == (320, 0, 320)
    pd.testing.assert_frame_equal(_stored(db), stored)  # nothing rewritten

    load_articles(320, 325)
    third = run_score(settings, limit=3)
    assert (third.scored, third.skipped, third.remaining) == (3, 320, 2)
    done = [r for r in pipeline_log if r.getMessage() == "sentiment scored"]
    assert [r.fields["scored"] for r in done] == [320, 0, 3]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.INFO for r in pipeline_log)


def _old_fallback_scores(db, titles: dict[str, str]) -> pd.DataFrame:
    """What `rayapp score` stored before issue 19: token-share probabilities under the old id."""
    from rayapp.warehouse import upsert_frame

    ids = sorted(titles)
    p = token_share_probs([titles[a] for a in ids])
    rows = pd.DataFrame(
        {
            "article_id": ids,
            "model_id": OLD_VADER_MODEL_ID,
            "model_revision": "vaderSentiment==3.3.2",
            "p_bearish": p[:, 0],
            "p_neutral": p[:, 1],
            "p_bullish": p[:, 2],
            "score": p[:, 2] - p[:, 0],
            "scored_at": pd.Timestamp("2026-01-02", tz="UTC"),
        }
    )
    upsert_frame(db, "article_sentiment", rows, key=["article_id", "model_id"])
    db.commit()
    return _stored(db)


def test_offline_hub_model_falls_back_to_vader_and_rescores_the_old_mapping(
    ray_cluster, db, load_articles, sentiment_settings, tmp_path: Path, monkeypatch, pipeline_log
):
    from rayapp.features.definitions import feature_set_from_settings
    from rayapp.features.offline_store import read_inputs
    from rayapp.warehouse import upsert_frame
    from tests.features import factories as F

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    ids = load_articles(1000, 1100)
    titles = dict(db.execute("SELECT article_id, title FROM articles").fetchall())
    old = _old_fallback_scores(db, titles)  # an earlier `rayapp score` with the fallback
    assert (old[["p_bearish", "p_neutral", "p_bullish"]].to_numpy().argmax(axis=1) == 1).mean() > 0.9

    settings = sentiment_settings("ElKulako/cryptobert")
    summary = run_score(settings)
    # The new mapping has a new id: every text is scored again, none counts as already done.
    assert (summary.model_id, summary.backend, summary.scored, summary.skipped) == (VADER_MODEL_ID, "vader", 100, 0)
    stored = _stored(db)
    new = stored[stored["model_id"] == VADER_MODEL_ID].reset_index(drop=True)
    assert sorted(new["article_id"]) == sorted(ids)
    assert set(stored["model_id"]) == {VADER_MODEL_ID, OLD_VADER_MODEL_ID}  # every row says what scored it
    pd.testing.assert_frame_equal(stored[stored["model_id"] == OLD_VADER_MODEL_ID].reset_index(drop=True), old)
    probs = new[["p_bearish", "p_neutral", "p_bullish"]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    compound = VaderBackend().compound([titles[a] for a in new["article_id"]])
    documented = np.where(compound >= 0.05, 2, np.where(compound <= -0.05, 0, 1))
    np.testing.assert_array_equal(probs.argmax(axis=1), documented)  # stored classes are VADER's
    warnings = [r for r in pipeline_log if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "VADER" in warnings[0].getMessage()
    assert "ElKulako/cryptobert" in warnings[0].fields["reason"]  # type: ignore[attr-defined]
    assert run_score(settings).scored == 0

    # The feature build reads the new id's scores only: one model per feature set, in its version.
    fs = feature_set_from_settings(settings, db)
    assert fs.params.sentiment_model_id == VADER_MODEL_ID
    assert feature_set_from_settings(settings, db, sentiment_model_id=OLD_VADER_MODEL_ID).version != fs.version
    upsert_frame(db, "candles", F.candles(24), key=["source", "symbol", "open_time"])
    db.commit()
    inputs = read_inputs(db, "BTCUSDT", fs.params)
    assert len(inputs.news) == 100
    np.testing.assert_allclose(np.sort(inputs.news["score"].to_numpy()), np.sort(new["score"].to_numpy()))


def test_fallback_off_or_local_directory_fails_clearly(
    db, load_articles, sentiment_settings, tmp_path: Path, monkeypatch, capsys
):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    load_articles(0, 5)
    with pytest.raises(HubUnavailable):
        run_score(sentiment_settings("ElKulako/cryptobert", fallback="none"))
    # A directory the user named is never silently replaced by the lexicon, fallback or not.
    missing = tmp_path / "models" / "cryptobert"
    with pytest.raises(ModelLoadError, match="does not exist"):
        run_score(sentiment_settings(missing))
    assert db.execute("SELECT count(*) FROM article_sentiment").fetchone()[0] == 0

    code = main(["score", f"model.sentiment.name={missing}"])
    assert code == 2
    assert f"model directory {missing} does not exist" in capsys.readouterr().err.replace("\n", "")


def test_cli_score_json(ray_cluster, db, load_articles, tiny_model_dir: Path, capsys):
    import json

    load_articles(2000, 2040)
    assert main(["score", "--json", f"model.sentiment.name={tiny_model_dir}", "model.sentiment.batch_size=16"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["scored"] == 40 and summary["batch_size"] == 16 and summary["model_id"].startswith("model@sha256:")
    assert main(["score", "--json", f"model.sentiment.name={tiny_model_dir}"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scored"] == 0
