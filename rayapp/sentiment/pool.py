"""Ray Data wiring: size the actor pool from the cluster and score a dataset of texts with it.

Shared by `rayapp score` and `benchmarks/sentiment_throughput.py`, so the benchmark measures the
job's own pipeline. Rows are ordered by text length before they are cut into blocks: with padding
to the longest text of each batch, neighbours of similar length waste little compute on padding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from rayapp.sentiment.model import ModelSpec
from rayapp.sentiment.scorer import DEFAULT_BATCH, SentimentScorer, TextTokenizer

BATCHES_PER_BLOCK = 4  # at most: one block = one actor call
BLOCKS_PER_ACTOR = 4  # at least, where there are enough batches: the pool balances to the end


@dataclass(frozen=True)
class PoolPlan:
    device: str  # cpu | cuda
    actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    batch_size: int
    tokenizer_actors: int = 0  # >0: a CPU tokenization stage feeds the model actors

    def as_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "actors": self.actors,
            "cpus_per_actor": self.cpus_per_actor,
            "gpus_per_actor": self.gpus_per_actor,
            "batch_size": self.batch_size,
            "tokenizer_actors": self.tokenizer_actors,
        }


def plan_pool(
    resources: dict[str, float], batch_size: int | None = None, rows: int | None = None, vader: bool = False
) -> PoolPlan:
    """One actor per GPU when the cluster has GPUs; CPU actors otherwise.

    CPU actors take 1 CPU each up to 4 CPUs, then CPUs // 4 each (capped at 8): on small machines
    separate single-threaded processes scale better than intra-op threads on short sequences, on
    big ones fewer, wider actors keep the model copies in memory down. The pool never has more
    actors than there are batches to score.

    With GPUs, tokenization (BERTweet's tokenizer is pure Python, a few thousand texts a second
    per core) would leave the GPU waiting, so a separate stage of CPU actors tokenizes: the CPUs
    the GPU actors do not hold, less one for the driver, at most 8.
    """
    cpus = max(1, int(resources.get("CPU", 1)))
    gpus = int(resources.get("GPU", 0))
    tokenizers = 0
    if gpus > 0 and not vader:
        device, actors, per_cpu, per_gpu = "cuda", gpus, 1.0, 1.0
        tokenizers = max(1, min(8, cpus - gpus - 1))
    else:
        per = 1 if cpus <= 4 else min(8, cpus // 4)
        device, actors, per_cpu, per_gpu = "cpu", max(1, cpus // per), float(per), 0.0
    bs = batch_size or DEFAULT_BATCH[device]
    if rows is not None:
        actors = max(1, min(actors, math.ceil(rows / bs)))
    return PoolPlan(device, actors, per_cpu, per_gpu, bs, tokenizers)


def order_for_scoring(df: pd.DataFrame, text_column: str = "text") -> pd.DataFrame:
    """Rows sorted by text length (stable), so each batch pads little."""
    lengths = df[text_column].fillna("").astype(str).str.len()
    return df.assign(_len=lengths.to_numpy()).sort_values("_len", kind="stable").drop(columns="_len")


def rows_per_block(rows: int, plan: PoolPlan) -> int:
    """Blocks of whole batches (no ragged half-batches), up to BATCHES_PER_BLOCK, small enough that
    each actor gets several where there are enough batches.

    The pool hands blocks to whichever actor is free, so the actors finish at most one block apart
    instead of one actor scoring a big last block alone (rows are sorted by length, so the last
    blocks are also the slowest). Never fewer blocks than actors.
    """
    batches = math.ceil(rows / plan.batch_size)
    per_block = max(1, min(BATCHES_PER_BLOCK, batches // (plan.actors * BLOCKS_PER_ACTOR)))
    return max(1, min(plan.batch_size * per_block, math.ceil(rows / plan.actors)))


def to_dataset(df: pd.DataFrame, plan: PoolPlan) -> Any:
    """A Ray Dataset of the frame in blocks of whole batches (one block = one actor call)."""
    import ray.data

    size = rows_per_block(len(df), plan)
    parts = [df.iloc[i : i + size].reset_index(drop=True) for i in range(0, len(df), size)] or [df]
    return ray.data.from_pandas(parts)


def score_dataset(
    ds: Any, spec: ModelSpec, plan: PoolPlan, text_column: str = "text", scorer: type[SentimentScorer] = SentimentScorer
) -> Any:
    """The dataset with sentiment columns added by a fixed-size actor pool (lazy)."""
    import ray.data

    if plan.tokenizer_actors and not spec.is_vader:
        ds = ds.map_batches(
            TextTokenizer,
            fn_constructor_kwargs={"spec": spec, "text_column": text_column},
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=plan.tokenizer_actors),
            num_cpus=1,
        )
    return ds.map_batches(
        scorer,
        fn_constructor_kwargs={
            "spec": spec,
            "text_column": text_column,
            "device": plan.device if plan.device == "cpu" else None,
            "num_threads": int(plan.cpus_per_actor) if plan.device == "cpu" else None,
            "batch_size": plan.batch_size,
        },
        batch_size=plan.batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=plan.actors),
        num_cpus=plan.cpus_per_actor,
        num_gpus=plan.gpus_per_actor or None,
    )
