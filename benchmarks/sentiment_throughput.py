"""Sentiment scoring throughput: the Ray Data pipeline against a plain transformers loop.

Builds a classifier the size of CryptoBERT locally (RoBERTa, 12 layers, hidden 768, 12 heads,
BERTweet vocabulary of 64,001, random weights: the same speed as trained ones) with a
BertweetTokenizer whose BPE codes are learned from the news file, then scores the real news titles
(../shared/data/cryptonews_2021-10_2022-07.csv, 7,524 rows; the 28 without a title are scored as
empty text) twice on the same device:

- ray: the job's own pipeline (`rayapp.sentiment.pool`: actor pool sized from the cluster, the
  `SentimentScorer` map_batches class), results consumed on the driver;
- plain: one process, AutoTokenizer + AutoModelForSequenceClassification, the same batch size,
  order (by length), truncation, padding to the longest text of the batch, dtype and inference mode.

Both must agree on every probability. Throughput is counted from the moment a model is loaded
(plain: after from_pretrained; ray: when the first actor finished loading) to the last result in
the driver's hands, so process start-up and model loading, which a long job pays once, are
excluded; the end-to-end seconds including them are reported beside it. On a shared machine the
load changes under a run: `--repeats R` alternates the two paths R times and keeps each one's best.

    python benchmarks/sentiment_throughput.py --rows 600        # quick
    python benchmarks/sentiment_throughput.py --max-len 64      # all 7,524 titles

Last line: {"device", "rows", "max_len", "ray_rows_per_s", "plain_rows_per_s", "ratio", ...};
`ray_window` says where the Ray window went (waiting for the first batch, inside the scorer, the
actors' warm-up paid at load, how much later the last actor was ready than the first).

On a GPU machine (PyTorch preinstalled, no network) carry Ray's wheel and its missing needs
(jsonschema, referencing, rpds-py, jsonschema-specifications) and the news CSV, then:

    PYTHONPATH=/tmp/site:$PWD python3 benchmarks/sentiment_throughput.py --max-len 64 \
        --data .gpu/cryptonews_2021-10_2022-07.csv --model-dir /tmp/cb --repeats 2

Imports only what the pipeline needs (torch, transformers, tokenizers, ray[data], pandas), no
database: it runs unchanged on a GPU machine without network.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cryptonews_2021-10_2022-07.csv"


def read_titles(path: Path, rows: int | None) -> tuple[list[str], list[str]]:
    if not path.is_file():
        sys.exit(f"news file {path} not found (pass --data)")
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    titles = df["title"].tolist()
    return titles[:rows] if rows else titles, titles + df["text"].tolist()


def build_model(model_dir: Path | None, corpus: list[str], bpe_vocab: int) -> Path:
    from rayapp.sentiment.localmodel import CRYPTOBERT_VOCAB_SIZE, build_classifier

    if model_dir is not None and (model_dir / "config.json").is_file():
        return model_dir  # reuse a model built by an earlier run
    target = model_dir or Path(tempfile.mkdtemp(prefix="cryptobert-size-")) / "model"
    return build_classifier(
        target,
        corpus,
        num_layers=12,
        hidden_size=768,
        num_heads=12,
        intermediate_size=3072,
        vocab_size=CRYPTOBERT_VOCAB_SIZE,
        bpe_vocab_size=bpe_vocab,
        seed=0,
    )


def device_name() -> tuple[str, str]:
    import torch

    if torch.cuda.is_available():
        return "cuda", f"cuda:{torch.cuda.get_device_name(0)}"
    return "cpu", "cpu"


def library_versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("torch", "transformers", "tokenizers", "ray", "pandas")}


def torch_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def run_plain(model_dir: Path, frame: pd.DataFrame, batch_size: int, max_len: int, device: str) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    started = time.time()
    # The scorer's choice: bf16 (fp16 without bf16 support) on a GPU, fp32 on CPU.
    half = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
    dtype = half if device == "cuda" else torch.float32
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype).eval().to(device)
    if device == "cuda":  # the same warm-up batches the pipeline's GPU actors run when they load
        with torch.inference_mode():
            for width in sorted({min(16, max_len), max_len}):
                ids = torch.zeros((batch_size, width), dtype=torch.long, device=device)
                model(input_ids=ids, attention_mask=torch.ones_like(ids))
        torch.cuda.synchronize()
    ready = time.time()
    texts = frame["text"].tolist()
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(
            texts[i : i + batch_size], truncation=True, max_length=max_len, padding="longest", return_tensors="pt"
        )
        with torch.inference_mode():
            logits = model(
                input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device)
            ).logits
            out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    ended = time.time()
    del model
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()  # the driver's cached blocks are not the Ray actor's to compete with
    return {"probs": np.concatenate(out), "e2e_s": ended - started, "rows_per_s": len(texts) / (ended - ready)}


def timed_scorer() -> type:
    """The pipeline's scorer, stamping when its model was loaded (the actor became ready)."""
    from rayapp.sentiment.scorer import SentimentScorer

    class TimedScorer(SentimentScorer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.ready_at = time.time()

        def __call__(self, batch):
            started = time.time()
            out = super().__call__(batch)
            n = len(out["score"])
            out["ready_at"] = np.full(n, self.ready_at)
            out["call_at"] = np.full(n, started)
            out["call_s"] = np.full(n, time.time() - started)
            out["warmup_s"] = np.full(n, getattr(self.backend, "warmup_s", 0.0))
            return out

    return TimedScorer


def run_ray(model_dir: Path, frame: pd.DataFrame, batch_size: int | None, max_len: int) -> dict:
    import ray

    from rayapp.sentiment.model import resolve
    from rayapp.sentiment.pool import plan_pool, score_dataset, to_dataset

    spec, _ = resolve(str(model_dir), max_length=max_len)
    plan = plan_pool(ray.cluster_resources(), batch_size, rows=len(frame))
    started = time.time()
    ds = score_dataset(to_dataset(frame, plan), spec, plan, scorer=timed_scorer())
    parts = list(ds.iter_batches(batch_size=None, batch_format="pandas"))
    ended = time.time()
    got = pd.concat(parts).set_index("row").loc[frame["row"]]
    # From the moment the first actor had its model loaded to the last row back on the driver:
    # scheduling, serialisation and any actor that was still starting count against Ray.
    ready = float(got["ready_at"].min())
    probs = got[["p_bearish", "p_neutral", "p_bullish"]].to_numpy(dtype=float)
    calls = got.drop_duplicates(["call_at", "call_s"])
    return {
        "probs": probs,
        "plan": plan.as_dict(),
        "e2e_s": ended - started,
        "rows_per_s": len(frame) / (ended - ready),
        # where the window went: waiting for the first batch, inside the scorer, the rest
        "first_batch_wait_s": float(calls["call_at"].min() - ready),
        "scorer_busy_s": float(calls["call_s"].sum()),
        "window_s": ended - ready,
        "warmup_s": float(got["warmup_s"].max()),
        # the last actor became ready this long after the first (the window counts from the first)
        "ready_spread_s": float(got["ready_at"].max() - ready),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=None, help="score only the first N titles (default: all)")
    p.add_argument("--max-len", type=int, default=128, help="truncation length in tokens (default 128)")
    p.add_argument("--batch-size", type=int, default=None, help="default: the pipeline's per-device default")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the news CSV (';'-separated)")
    p.add_argument("--model-dir", type=Path, default=None, help="build the model here, or reuse it")
    p.add_argument(
        "--bpe-vocab",
        type=int,
        default=8000,
        help="BPE vocabulary learned from the news file (8000: ~18 tokens a title)",
    )
    p.add_argument("--repeats", type=int, default=1, help="alternate plain/ray R times, keep the best")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import ray

    from rayapp.sentiment.pool import order_for_scoring
    from rayapp.sentiment.scorer import DEFAULT_BATCH

    titles, corpus = read_titles(args.data, args.rows)
    t0 = time.perf_counter()
    model_dir = build_model(args.model_dir, corpus, args.bpe_vocab)
    build_s = time.perf_counter() - t0
    device, label = device_name()
    batch_size = args.batch_size or DEFAULT_BATCH[device]
    frame = order_for_scoring(pd.DataFrame({"row": np.arange(len(titles)), "text": titles}))

    plains, rays = [], []
    # GPUs as torch sees them: the pool's layout (GPU actors + CPU tokenizer actors) must match the
    # device the plain loop runs on, whatever Ray's own detection makes of the machine.
    gpus = torch_gpus() if device == "cuda" else 0
    ray.init(num_cpus=os.cpu_count(), num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    try:
        for _ in range(max(1, args.repeats)):
            plains.append(run_plain(model_dir, frame, batch_size, args.max_len, device))
            rays.append(run_ray(model_dir, frame, batch_size, args.max_len))
    finally:
        ray.shutdown()
    plain = max(plains, key=lambda r: r["rows_per_s"])
    rayed = max(rays, key=lambda r: r["rows_per_s"])
    diff = float(np.abs(rayed["probs"] - plain["probs"]).max())
    tolerance = 1e-4 if device == "cpu" else 2e-2  # bf16/fp16 batches may differ in the last bits
    if diff > tolerance:
        sys.exit(f"ray and plain disagree: max |dp| = {diff:.2e} > {tolerance}")
    ray_rps, plain_rps = rayed["rows_per_s"], plain["rows_per_s"]
    print(
        json.dumps(
            {
                "device": label,
                "rows": len(titles),
                "max_len": args.max_len,
                "ray_rows_per_s": round(ray_rps, 1),
                "plain_rows_per_s": round(plain_rps, 1),
                "ratio": round(ray_rps / plain_rps, 3),
                "batch_size": batch_size,
                "plan": rayed["plan"],
                "cpus": os.cpu_count(),
                "ray_e2e_s": round(rayed["e2e_s"], 2),
                "plain_e2e_s": round(plain["e2e_s"], 2),
                "e2e_ratio": round(plain["e2e_s"] / rayed["e2e_s"], 3),
                "max_abs_prob_diff": diff,
                "model_build_s": round(build_s, 1),
                "repeats": len(rays),
                "all_ray_rows_per_s": [round(r["rows_per_s"], 1) for r in rays],
                "all_plain_rows_per_s": [round(r["rows_per_s"], 1) for r in plains],
                "ray_window": {
                    k: round(rayed[k], 3)
                    for k in ("window_s", "first_batch_wait_s", "scorer_busy_s", "warmup_s", "ready_spread_s")
                },
                "load_avg_1m": round(os.getloadavg()[0], 2),
                "versions": library_versions(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
