"""`rayapp sentiment-eval`: metrics against hand-computed values, bad files, the command.

Two references: a `text,label` file (human labels: accuracy) and the news file, whose TextBlob
column is another model's output (agreement, never accuracy).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.sentiment.evaluate import (
    EvalDataError,
    agreement,
    evaluate,
    metrics,
    read_labelled,
    read_reference,
    read_textblob,
)
from rayapp.sentiment.model import VADER_MODEL_ID

# Real headlines from the news file, labelled by hand for this test (-1 bearish, 0 neutral, 1 bullish).
LABELLED = [
    ("IOST, SKALE Network and CELR gain 30% as traders call for an altseason", 1),
    ("Bitcoin price taps 5-day highs as Shiba Inu leads altcoin gains", 1),
    ("Pixar NFT drop sells out on VeVe shortly after launch", 1),
    ("GameFi continues to grow despite crypto winter: DappRadar report", 1),
    ("Bitcoin, Ethereum Slide, Liquidations Soar as Market Awaits US Inflation Numbers", -1),
    ("Ethereum risks 'bull trap' after 25% ETH price rebound", -1),
    ("Weiss Ratings issues warning over crypto mortgage risks", -1),
    ("Analyst suggests swing trading Bitcoin is the best move as BTC price dips below $40K", -1),
    ("Litecoin Activates MimbleWimble Extension Blocks (MWEB)", 0),
    ("Crypto donation startup launches IRS form as US tax season loom", 0),
    ("Chainlink brings Keepers and VRF to the Avalanche blockchain", 0),
    ("Fed Raises Interest Rate by 25 Basis Points in First Rate Hike Since 2018", 0),
    ("Circle Integrates Polygon USDC for Faster, Cheaper Transactions", 0),
]


def _write(path: Path, rows: list[tuple[str, object]]) -> Path:
    import csv

    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "label"])
        w.writerows(rows)
    return path


def test_metrics_match_hand_computation():
    y = np.array([-1, -1, 0, 0, 0, 1])
    p = np.array([-1, 0, 0, 0, 1, 1])
    m = metrics(y, p)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]]
    assert m["accuracy"] == pytest.approx(4 / 6)
    # F1 per class: bearish 2*1*0.5/1.5, neutral 2*(2/3)*(2/3)/(4/3), bullish 2*0.5*1/1.5
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 2 / 3) / 3)
    never = metrics(np.array([0, 0, 1]), np.array([0, 0, 0]))
    assert never["f1"]["bullish"] == 0.0 and never["f1"]["bearish"] == 0.0  # no division by zero


def test_evaluate_reports_the_majority_baseline():
    frame = pd.DataFrame({"text": list("abcde"), "label": [0, 0, 0, 1, -1]})
    probs = np.array([[0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    report = evaluate(frame, probs, "m")
    assert report.majority_label == 0
    assert report.baseline["accuracy"] == pytest.approx(0.6)
    assert report.baseline["confusion"] == [[0, 1, 0], [0, 3, 0], [0, 1, 0]]
    assert report.model["accuracy"] == pytest.approx(0.8)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([("Bitcoin up", 2)], r"line 2: label '2' is not -1, 0 or 1"),
        ([("Bitcoin up", 1), ("", 0)], "line 3: empty text"),
        ([("Bitcoin up", "bullish")], "label 'bullish'"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, rows, message):
    with pytest.raises(EvalDataError, match=message):
        read_labelled(_write(tmp_path / "eval.csv", rows))


def test_missing_column_and_file(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("headline,label\nBitcoin up,1\n")
    with pytest.raises(EvalDataError, match=r"missing column\(s\) \['text'\]"):
        read_labelled(bad)
    with pytest.raises(EvalDataError, match="no such file"):
        read_labelled(tmp_path / "absent.csv")


def test_sentiment_eval_command(tmp_path: Path, tiny_model_dir: Path, monkeypatch, capsys):
    path = _write(tmp_path / "labelled.csv", LABELLED)
    assert main(["sentiment-eval", "--json", str(path), f"model.sentiment.name={tiny_model_dir}"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["rows"] == 13 and report["model_id"].startswith("model@sha256:")
    conf = np.array(report["model"]["confusion"])
    assert conf.sum() == 13 and conf.sum(axis=1).tolist() == [4, 5, 4]
    assert report["model"]["accuracy"] == pytest.approx(np.trace(conf) / 13)
    assert report["majority_label"] == 0 and report["majority_baseline"]["accuracy"] == pytest.approx(5 / 13)

    # Offline with no cached CryptoBERT: the lexicon scores it, and the report says so.
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    assert main(["sentiment-eval", str(path), "--json"]) == 0
    vader = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert vader["model_id"] == VADER_MODEL_ID and vader["reference"] == "labels"

    assert main(["sentiment-eval", str(path), f"model.sentiment.name={tiny_model_dir}"]) == 0
    text = capsys.readouterr().out
    assert "majority baseline" in text and "accuracy" in text and "macro_f1" in text

    bad = _write(tmp_path / "bad.csv", [("Bitcoin up", 5)])
    assert main(["sentiment-eval", str(bad)]) == 2
    assert "label '5' is not -1, 0 or 1" in capsys.readouterr().err


NEWS_HEADER = "date;sentiment;source;subject;text;title;url"


def _write_news(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """The news file's layout: (TextBlob sentiment cell, text, title) per row."""
    lines = [NEWS_HEADER]
    for i, (sentiment, text, title) in enumerate(rows):
        lines.append(f"5-7-2022 04:{i:02d};{sentiment};CryptoNews;bitcoin;{text};{title};https://x.test/{i}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _tb(cls: str, polarity: float = 0.0) -> str:
    return f"{{'class': '{cls}', 'polarity': {polarity}, 'subjectivity': 0.5}}"


NEWS_ROWS = [
    (_tb("positive", 0.4), "Bitcoin hits a record high as investors celebrate strong gains", "Neutral title"),
    (_tb("negative", -0.3), "Bitcoin crashes as panic selling wipes out traders", "Another title"),
    (_tb("neutral"), "Kraken opens an office in Dublin", "Great fantastic title"),
    (_tb("positive", 0.2), "Kraken opens an office in Dublin", "x"),
]


def test_agreement_and_kappa_match_hand_computation():
    ref = np.array([-1, -1, 0, 0, 0, 1])
    pred = np.array([-1, 0, 0, 0, 1, 1])
    a = agreement(ref, pred)
    # p_o = 4/6; marginals ref (2,3,1)/6, pred (1,3,2)/6: p_e = (2 + 9 + 2)/36 = 13/36
    assert a["agreement"] == pytest.approx(4 / 6)
    assert a["kappa"] == pytest.approx((4 / 6 - 13 / 36) / (1 - 13 / 36))
    assert a["confusion"] == [[1, 1, 0], [0, 2, 1], [0, 0, 1]] and "accuracy" not in a
    assert agreement(np.array([0, 0]), np.array([0, 0]))["kappa"] is None  # chance explains everything


def test_news_file_is_a_textblob_reference_scored_on_its_text(tmp_path: Path):
    path = _write_news(tmp_path / "news.csv", NEWS_ROWS)
    frame, kind = read_reference(path)
    assert kind == "textblob"
    assert frame["label"].tolist() == [1, -1, 0, 1]
    assert frame["text"].tolist() == [r[1] for r in NEWS_ROWS]  # the column TextBlob scored, not the title
    probs = np.array([[0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.8, 0.1]])
    d = evaluate(frame, probs, "m", kind).as_dict()
    assert d["reference"] == "textblob" and "not human labels" in d["reference_note"]
    assert d["model"]["agreement"] == pytest.approx(0.75) and d["majority_label"] == 1
    assert d["majority_baseline"]["agreement"] == pytest.approx(0.5) and d["majority_baseline"]["kappa"] == 0.0
    assert "accuracy" not in json.dumps({k: v for k, v in d.items() if k != "reference_note"})
    _, labels_kind = read_reference(_write(tmp_path / "labelled.csv", LABELLED))
    assert labels_kind == "labels"


@pytest.mark.parametrize(
    "cell, message",
    [
        ("{'class': 'bullish', 'polarity': 0.1}", "line 2: sentiment \"{'class': 'bullish'"),
        ("not a dict", "line 2: sentiment 'not a dict' is not a TextBlob result"),
        ("[1, 2]", "is not a TextBlob result with class negative, neutral or positive"),
        ("", "line 2: sentiment '<NA>'"),
        ("{'class': '" + "x" * 500 + "'}", r"x\.\.\. is not"),  # a long cell is cut, not echoed
    ],
)
def test_bad_textblob_rows_are_named(tmp_path: Path, cell: str, message: str):
    path = _write_news(tmp_path / "news.csv", [(cell, "Bitcoin up", "t"), *NEWS_ROWS])
    with pytest.raises(EvalDataError, match=message) as err:
        read_textblob(path)
    assert "1 bad row(s)" in str(err.value) and len(str(err.value)) < 400


def test_news_file_with_an_empty_text_or_no_text_column(tmp_path: Path):
    path = _write_news(tmp_path / "news.csv", [*NEWS_ROWS, (_tb("neutral"), "", "t")])
    with pytest.raises(EvalDataError, match="line 6: empty text"):
        read_reference(path)
    cut = tmp_path / "cut.csv"
    cut.write_text("date;sentiment\n5-7-2022 04:24;{'class': 'neutral'}\n", encoding="utf-8")
    with pytest.raises(EvalDataError, match=r"missing column\(s\) \['text'\]"):
        read_textblob(cut)


def test_sentiment_eval_on_textblob_labels_reports_agreement(tmp_path: Path, monkeypatch, capsys):
    """The command on the news layout, with the VADER fallback (offline, nothing cached)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    path = _write_news(tmp_path / "news.csv", NEWS_ROWS)
    assert main(["sentiment-eval", "--json", str(path)]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["model_id"] == VADER_MODEL_ID and report["reference"] == "textblob"
    assert set(report["model"]) == {"agreement", "kappa", "confusion"}
    assert report["model"]["confusion"] == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    assert report["model"]["agreement"] == pytest.approx(0.75)

    assert main(["sentiment-eval", str(path)]) == 0
    text = capsys.readouterr().out
    assert "agreement" in text and "kappa" in text and "vs TextBlob" in text and "not human labels" in text
    assert "accuracy" not in text.replace("not accuracy", "")


@pytest.mark.realdata
def test_the_real_news_file_reads_as_a_textblob_reference(shared_data: Path):
    frame, kind = read_reference(shared_data / "cryptonews_2021-10_2022-07.csv")
    assert kind == "textblob" and len(frame) == 7524  # every row, the 28 without a title too
    assert frame["label"].value_counts().to_dict() == {1: 3431, 0: 2741, -1: 1352}
