"""`rayapp sentiment-eval`: metrics against hand-computed values, bad files, the command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rayapp.cli import main
from rayapp.sentiment.evaluate import EvalDataError, evaluate, metrics, read_labelled

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
    assert vader["model_id"] == "vader-lexicon"

    assert main(["sentiment-eval", str(path), f"model.sentiment.name={tiny_model_dir}"]) == 0
    text = capsys.readouterr().out
    assert "majority baseline" in text and "accuracy" in text and "macro_f1" in text

    bad = _write(tmp_path / "bad.csv", [("Bitcoin up", 5)])
    assert main(["sentiment-eval", str(bad)]) == 2
    assert "label '5' is not -1, 0 or 1" in capsys.readouterr().err
