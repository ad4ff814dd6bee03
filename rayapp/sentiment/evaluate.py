"""`rayapp sentiment-eval PATH`: score a labelled file and compare with the majority-class baseline.

Two kinds of reference, told apart by the file's header:

- `text,label` (comma-separated; label -1 bearish, 0 neutral, 1 bullish): labels a person gave.
  Reported as accuracy, macro-F1 (the unweighted mean of the three per-class F1 scores; a class
  never predicted and never present scores 0) and the confusion matrix (rows = true label,
  columns = predicted).
- the news file (`;`-separated, `date;sentiment;source;subject;text;title;url`, as in
  ../shared/data): its `sentiment` column is TextBlob's output (`{'class': 'positive', ...}`),
  another model's opinion, not a human label. It is reported only as **agreement** with TextBlob
  (the share of rows where the two classes match), Cohen's kappa (that agreement corrected for
  chance) and the confusion matrix (rows = TextBlob, columns = model); never as accuracy. The
  text scored is the `text` column, the one TextBlob scored (its polarity reproduces the stored
  one on the `text`, not on the `title`), so both models read the same words.

The model's prediction is the most probable class. The baseline always predicts the most
frequent label of the same file. It sees the labels it is scored on, so it is an optimistic bar:
a model that does not clear it has learned nothing usable here.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from rayapp.errors import InputError

CLASSES = (-1, 0, 1)
CLASS_NAMES = ("bearish", "neutral", "bullish")
Reference = Literal["labels", "textblob"]
TEXTBLOB_CLASSES = {"negative": -1, "neutral": 0, "positive": 1}
TEXTBLOB_NOTE = "TextBlob's labels are another model's output, not human labels: agreement, not accuracy"


class EvalDataError(InputError):
    """The labelled file is unusable; the message names the rows and the problem."""


def _raise_problems(p: Path, problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise EvalDataError(f"{p}: {len(problems)} bad row(s): " + "; ".join(problems[:10]) + more)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    bad = ~labels.isin(CLASSES)
    return _checked(p, df, labels, bad, lambda i: f"label {str(df.at[i, 'label'])!r} is not -1, 0 or 1")


def _checked(
    p: Path, df: pd.DataFrame, labels: pd.Series, bad_label: pd.Series, why: Callable[[Any], str]
) -> pd.DataFrame:
    """`text,label` from a read file, or an EvalDataError naming every bad row (line numbers
    of the file, header = line 1): a bad label (`why` says how) or an empty text."""
    bad_text = df["text"].isna() | (df["text"].fillna("").str.strip() == "")
    problems = [f"line {idx + 2}: {why(idx)}" for idx in df.index[bad_label]]
    problems += [f"line {idx + 2}: empty text" for idx in df.index[bad_text & ~bad_label]]
    _raise_problems(p, problems)
    if df.empty:
        raise EvalDataError(f"{p}: no rows")
    return pd.DataFrame({"text": df["text"].astype(str).to_numpy(dtype=object), "label": labels.astype(int).to_numpy()})


def reference_kind(path: str | Path) -> Reference:
    """`textblob` for the news file's layout (`;`-separated with text and sentiment), else `labels`."""
    p = Path(path)
    if not p.is_file():
        raise EvalDataError(f"{p}: no such file")
    with p.open(encoding="utf-8", errors="replace") as fh:
        header = fh.readline().strip().lstrip("\ufeff")
    return "textblob" if {"text", "sentiment"} <= set(header.split(";")) else "labels"


def _textblob_label(cell: Any) -> int | None:
    try:
        value = ast.literal_eval(str(cell))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    return TEXTBLOB_CLASSES.get(str(value.get("class", "")).strip().lower())


def read_textblob(path: str | Path) -> pd.DataFrame:
    """The news file as `text,label`: `text` and TextBlob's class; every bad row named, none dropped."""
    p = Path(path)
    try:
        df = pd.read_csv(p, sep=";", dtype="string", keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise EvalDataError(f"{p}: cannot parse as the ;-separated news file: {exc}") from None
    missing = {"text", "sentiment"} - set(df.columns)
    if missing:
        raise EvalDataError(f"{p}: missing column(s) {sorted(missing)}; expected the news file's text and sentiment")
    labels = pd.Series([_textblob_label(c) for c in df["sentiment"]], index=df.index, dtype="object")
    return _checked(
        p,
        df,
        labels,
        labels.isna(),
        lambda i: (
            f"sentiment {_short(df.at[i, 'sentiment'])} is not a TextBlob result"
            " with class negative, neutral or positive"
        ),
    )


def read_reference(path: str | Path) -> tuple[pd.DataFrame, Reference]:
    """(text,label frame, kind of reference) for either layout."""
    kind = reference_kind(path)
    return (read_textblob(path) if kind == "textblob" else read_labelled(path)), kind


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


def agreement(y_ref: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Agreement with another classifier: share of equal classes, Cohen's kappa, confusion.

    kappa = (p_o - p_e) / (1 - p_e), p_e = sum over classes of the two marginal shares' product;
    null when p_e = 1 (both always say the same single class: chance explains everything).
    """
    m = confusion(y_ref, y_pred)
    n = m.sum()
    p_o = float(np.trace(m) / n)
    p_e = float((m.sum(axis=1) / n) @ (m.sum(axis=0) / n))
    kappa = None if p_e >= 1.0 else (p_o - p_e) / (1.0 - p_e)
    return {"agreement": p_o, "kappa": kappa, "confusion": m.tolist()}


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
    reference: Reference = "labels"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model_id": self.model_id, "rows": self.rows, "reference": self.reference}
        if self.reference == "textblob":
            out.update(reference_note=TEXTBLOB_NOTE, text_column="text")
        return {**out, "majority_label": self.majority_label, "model": self.model, "majority_baseline": self.baseline}


def evaluate(df: pd.DataFrame, probs: np.ndarray, model_id: str, reference: Reference = "labels") -> EvalReport:
    y = df["label"].to_numpy()
    counts = pd.Series(y).value_counts()
    # Ties between equally frequent labels go to neutral, then the lower label: deterministic.
    majority = min(counts[counts == counts.max()].index, key=lambda c: (c != 0, c))
    measure = agreement if reference == "textblob" else metrics
    return EvalReport(
        model_id,
        len(df),
        measure(y, predictions(probs)),
        measure(y, np.full(len(y), majority)),
        int(majority),
        reference,
    )


def run_eval(path: str | Path, scorer: Any, batch_size: int = 64) -> EvalReport:
    """Score the file with `scorer` (a SentimentScorer: the same code path as the job) in batches."""
    df, reference = read_reference(path)
    texts = df["text"].tolist()
    probs = np.concatenate([scorer.predict(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
    return evaluate(df, probs, scorer.spec.model_id, reference)
