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


def _eval_table(report: Any) -> None:
    d = report.as_dict()
    t = Table("metric", "model", "majority baseline", title=f"{d['model_id']} on {d['rows']} rows")
    for key in ("accuracy", "macro_f1"):
        t.add_row(key, f"{d['model'][key]:.3f}", f"{d['majority_baseline'][key]:.3f}")
    out.print(t)
    majority = f"majority ({d['majority_label']:+d})"
    for title, block in (("model", d["model"]), (majority, d["majority_baseline"])):
        c = Table("true \\ predicted", "-1 bearish", "0 neutral", "+1 bullish", title=f"confusion: {title}")
        for name, row in zip(("-1 bearish", "0 neutral", "+1 bullish"), block["confusion"], strict=True):
            c.add_row(name, *map(str, row))
        out.print(c)


def _sentiment_eval(args: argparse.Namespace, settings: Settings) -> int:
    from rayapp.sentiment.evaluate import read_labelled, run_eval
    from rayapp.sentiment.score import choose_model
    from rayapp.sentiment.scorer import SentimentScorer

    read_labelled(args.path)  # fail on bad data (EvalDataError) before spending time on the model
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
        help="accuracy, macro-F1 and confusion matrix on a labelled CSV",
        description="Score a CSV with columns text,label (label -1 bearish, 0 neutral, 1 bullish) "
        "with the configured sentiment model and report accuracy, macro-F1 and the "
        "confusion matrix beside the majority-class baseline.",
    )
    p.add_argument("path", help="labelled CSV file (text,label)")
    p.add_argument("--batch-size", type=_positive, default=64, help="texts per forward pass (default 64)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    add_overrides(p)
    p.set_defaults(handler=_sentiment_eval)
