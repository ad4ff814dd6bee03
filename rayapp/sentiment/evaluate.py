"""`rayapp sentiment-eval PATH`: score a labelled CSV and compare with the majority-class baseline.

The CSV has columns `text,label` with label -1 (bearish), 0 (neutral) or 1 (bullish). The model's
prediction is the most probable class. Reported: accuracy, macro-F1 (the unweighted mean of the
three per-class F1 scores; a class never predicted and never present scores 0) and the confusion
matrix (rows = true label, columns = predicted), for the model and for always predicting the
most frequent label of the same file. That baseline sees the labels it is scored on, so it is an
optimistic bar: a model that does not clear it has learned nothing usable here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rayapp.errors import InputError

CLASSES = (-1, 0, 1)
CLASS_NAMES = ("bearish", "neutral", "bullish")


class EvalDataError(InputError):
    """The labelled file is unusable; the message names the rows and the problem."""


def read_labelled(path: str | Path) -> pd.DataFrame:
    """Read and check `text,label`; every bad row is reported (by CSV line), none is dropped."""
    p = Path(path)
    if not p.is_file():
        raise EvalDataError(f"{p}: no such file")
    try:
        df = pd.read_csv(p, dtype="string", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise EvalDataError(f"{p}: cannot parse as CSV: {exc}") from None
    missing = {"text", "label"} - set(df.columns)
    if missing:
        raise EvalDataError(f"{p}: missing column(s) {sorted(missing)}; expected header text,label")
    labels = pd.to_numeric(df["label"], errors="coerce")
    bad_label = ~labels.isin(CLASSES)
    bad_text = df["text"].isna() | (df["text"].fillna("").str.strip() == "")
    problems = []
    for idx in df.index[bad_label]:
        problems.append(f"line {idx + 2}: label {str(df.at[idx, 'label'])!r} is not -1, 0 or 1")
    for idx in df.index[bad_text & ~bad_label]:
        problems.append(f"line {idx + 2}: empty text")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise EvalDataError(f"{p}: {len(problems)} bad row(s): " + "; ".join(problems[:10]) + more)
    if df.empty:
        raise EvalDataError(f"{p}: no rows")
    return pd.DataFrame({"text": df["text"].astype(str).to_numpy(dtype=object), "label": labels.astype(int).to_numpy()})


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    idx = {c: i for i, c in enumerate(CLASSES)}
    m = np.zeros((3, 3), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        m[idx[int(t)], idx[int(p)]] += 1
    return m


def metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    m = confusion(y_true, y_pred)
    tp = np.diag(m).astype(float)
    pred_n, true_n = m.sum(axis=0), m.sum(axis=1)
    precision = np.divide(tp, pred_n, out=np.zeros(3), where=pred_n > 0)
    recall = np.divide(tp, true_n, out=np.zeros(3), where=true_n > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(3), where=denom > 0)
    return {
        "accuracy": float(tp.sum() / m.sum()),
        "macro_f1": float(f1.mean()),
        "f1": dict(zip(CLASS_NAMES, map(float, f1), strict=True)),
        "confusion": m.tolist(),
    }


def predictions(probs: np.ndarray) -> np.ndarray:
    """Most probable class as -1/0/1 (probabilities ordered bearish, neutral, bullish)."""
    return np.asarray(CLASSES)[np.argmax(probs, axis=1)]


@dataclass
class EvalReport:
    model_id: str
    rows: int
    model: dict[str, Any]
    baseline: dict[str, Any]
    majority_label: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "rows": self.rows,
            "majority_label": self.majority_label,
            "model": self.model,
            "majority_baseline": self.baseline,
        }


def evaluate(df: pd.DataFrame, probs: np.ndarray, model_id: str) -> EvalReport:
    y = df["label"].to_numpy()
    counts = pd.Series(y).value_counts()
    # Ties between equally frequent labels go to neutral, then the lower label: deterministic.
    majority = min(counts[counts == counts.max()].index, key=lambda c: (c != 0, c))
    return EvalReport(
        model_id, len(df), metrics(y, predictions(probs)), metrics(y, np.full(len(y), majority)), int(majority)
    )


def run_eval(path: str | Path, scorer: Any, batch_size: int = 64) -> EvalReport:
    """Score the file with `scorer` (a SentimentScorer: the same code path as the job) in batches."""
    df = read_labelled(path)
    texts = df["text"].tolist()
    probs = np.concatenate([scorer.predict(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
    return evaluate(df, probs, scorer.spec.model_id)
