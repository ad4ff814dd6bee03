"""CLI: `rayapp score` and `rayapp sentiment-eval PATH`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from rayapp.config import Settings
from rayapp.terminal import add_overrides, console, out


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {n}")
    return n


def _score(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.sentiment.score import run_score

    summary = run_score(settings, limit=args.limit)  # ModelLoadError: exit 2
    data = summary.as_dict()
    if args.json:
        print(json.dumps(data))
    else:
        console.print(
            f"[bold]sentiment[/bold] model_id={summary.model_id}: read {summary.read}, "
            f"scored {summary.scored}, skipped {summary.skipped} (already scored), "
            f"remaining {summary.remaining}; {summary.actors} {summary.device} actor(s), "
            f"{summary.seconds}s",
            highlight=False,
        )
    return 0


def _confusion_table(title: str, rows_name: str, confusion: list[list[int]]) -> Table:
    c = Table(f"{rows_name} \\ predicted", "-1 bearish", "0 neutral", "+1 bullish", title=f"confusion: {title}")
    for name, row in zip(("-1 bearish", "0 neutral", "+1 bullish"), confusion, strict=True):
        c.add_row(name, *map(str, row))
    return c


def _eval_table(report: Any) -> None:
    d = report.as_dict()
    majority = f"majority ({d['majority_label']:+d})"
    if d["reference"] == "textblob":
        # TextBlob's classes are another model's output: agreement with it, never accuracy.
        title = f"{d['model_id']} vs TextBlob on {d['rows']} rows ({d['text_column']} column)"
        keys, rows_name = ("agreement", "kappa"), "TextBlob"
    else:
        title, keys, rows_name = f"{d['model_id']} on {d['rows']} rows", ("accuracy", "macro_f1"), "true"
    t = Table("metric", "model", "majority baseline", title=title)
    for key in keys:
        t.add_row(key, *(_fmt(d[block][key]) for block in ("model", "majority_baseline")))
    out.print(t)
    if d["reference"] == "textblob":
        out.print(d["reference_note"], highlight=False)
    for name, block in (("model", d["model"]), (majority, d["majority_baseline"])):
        out.print(_confusion_table(name, rows_name, block["confusion"]))


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _sentiment_eval(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.sentiment.evaluate import read_reference, run_eval
    from rayapp.sentiment.score import choose_model
    from rayapp.sentiment.scorer import SentimentScorer

    read_reference(args.path)  # fail on bad data (EvalDataError) before spending time on the model
    spec = choose_model(settings.model.sentiment, preflight=False)
    report = run_eval(args.path, SentimentScorer(spec), batch_size=args.batch_size)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _eval_table(report)
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "score",
        help="score unscored articles and social posts with the sentiment model (Ray Data)",
        description="Score every article and social post that has no article_sentiment row for the "
        "current model_id on a Ray Data actor pool (GPU actors when the cluster has GPUs) "
        "and upsert the scores. A second run scores nothing. Model: model.sentiment.name "
        "(hub id or local directory), .revision, .max_length, .batch_size, .fallback.",
    )
    p.add_argument("--limit", type=_positive, default=None, help="score at most N articles this run")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_overrides(p)
    p.set_defaults(handler=_score)

    p = subparsers.add_parser(
        "sentiment-eval",
        help="accuracy on a labelled CSV, or agreement with the news file's TextBlob labels",
        description="Score a file with the configured sentiment model and compare it with the "
        "file's labels, beside the majority-class baseline. A CSV with columns text,label (label -1 "
        "bearish, 0 neutral, 1 bullish; labels a person gave) is reported as accuracy, macro-F1 and "
        "the confusion matrix. The ;-separated news file (columns text and sentiment, as in "
        "shared/data) is scored on its text column and reported as agreement with TextBlob, "
        "Cohen's kappa and the confusion matrix: its labels are TextBlob's output, not human "
        "labels, so they are never reported as accuracy.",
    )
    p.add_argument("path", help="labelled CSV (text,label) or the ;-separated news file")
    p.add_argument("--batch-size", type=_positive, default=64, help="texts per forward pass (default 64)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_overrides(p)
    p.set_defaults(handler=_sentiment_eval)
