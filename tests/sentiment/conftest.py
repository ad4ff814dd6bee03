"""Sentiment fixtures: a tiny CryptoBERT-architecture classifier built from real headlines.

The model is `RobertaForSequenceClassification` with a `BertweetTokenizer` whose BPE codes are
learned from the real news titles, random (seeded) weights, labels Bearish/Neutral/Bullish. It is
saved to a temp directory and loaded through the same `AutoTokenizer`/`AutoModel...` path as the
real model. The hub is never contacted: HF_HUB_OFFLINE=1 for the whole session.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

NEWS_FILE = "cryptonews_2021-10_2022-07.csv"


@pytest.fixture(scope="session", autouse=True)
def hf_offline() -> Iterator[None]:
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield
    if old is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = old


@pytest.fixture(scope="session")
def news(shared_data: Path) -> pd.DataFrame:
    """The real news file: rows with a title (28 have none), one per (source, url), oldest first."""
    df = pd.read_csv(shared_data / NEWS_FILE, sep=";", dtype=str, keep_default_na=False)
    df = df[df["title"].str.strip() != ""].drop_duplicates(["source", "url"])
    df = df.iloc[::-1].reset_index(drop=True)
    return df


@pytest.fixture(scope="session")
def headlines(news: pd.DataFrame) -> list[str]:
    return news["title"].tolist()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, headlines: list[str]) -> Path:
    from rayapp.sentiment.localmodel import build_classifier

    # A wide initialiser so that random logits spread the probabilities visibly across headlines.
    return build_classifier(
        tmp_path_factory.mktemp("cryptobert-tiny") / "model", headlines, seed=0, initializer_range=0.3
    )


@pytest.fixture
def model_copy(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A private copy of the tiny model that a test may damage."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def _article_id(source: str, url: str) -> str:
    try:
        from rayapp.ingest.ids import article_id
    except ImportError:  # the ingest stage may not be there yet
        return hashlib.sha1(f"{source}|{url}".encode()).hexdigest()
    return article_id(source, url)


def article_rows(news: pd.DataFrame, start: int, stop: int, kind: str = "news") -> pd.DataFrame:
    """Silver `articles` rows built from real news rows [start, stop)."""
    part = news.iloc[start:stop]
    published = pd.to_datetime(part["date"], format="%d-%m-%Y %H:%M", utc=True)
    source = part["source"] if kind == "news" else pd.Series("reddit", index=part.index)
    return pd.DataFrame(
        {
            "article_id": [_article_id(s, u) for s, u in zip(source, part["url"], strict=True)],
            "kind": kind,
            "source": source.to_numpy(),
            "url": part["url"].to_numpy(),
            "title": part["title"].to_numpy(),
            "body": part["text"].to_numpy(),
            "published_at": published.to_numpy(),
            "first_seen_at": pd.Timestamp(datetime(2026, 1, 1, tzinfo=UTC)),
            "backfilled": True,
        }
    )


@pytest.fixture
def load_articles(db, news: pd.DataFrame):
    """`load_articles(start, stop, kind)` upserts real rows into `articles`; returns their ids."""
    from rayapp.warehouse import upsert_frame

    def _load(start: int, stop: int, kind: str = "news") -> list[str]:
        rows = article_rows(news, start, stop, kind)
        upsert_frame(db, "articles", rows, key=["article_id"])
        db.commit()
        return rows["article_id"].tolist()

    return _load


@pytest.fixture
def sentiment_settings(settings):
    """Settings whose sentiment model is the tiny local classifier (a fresh, mutable copy)."""

    def _make(name: str | Path, **fields: object):
        s = settings.model_copy(deep=True)
        s.model.sentiment.name = str(name)
        for key, value in fields.items():
            setattr(s.model.sentiment, key, value)
        return s

    return _make
