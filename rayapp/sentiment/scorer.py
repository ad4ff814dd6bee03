"""The scorer: a callable class for `Dataset.map_batches` (one instance per Ray actor).

The constructor loads tokenizer and model once per actor; each call scores one batch. On a GPU
actor the model runs in bf16 (fp16 where the GPU lacks bf16); on CPU in fp32 with as many torch
threads as CPUs the actor holds. Texts are truncated to `max_length` tokens and padded only to the
longest text in the batch. Softmax is taken in fp32 whatever the compute dtype.

Output columns: every input column except the text, plus p_bearish, p_neutral, p_bullish,
score = p_bullish - p_bearish (in [-1, 1]), model_id and model_revision.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rayapp.sentiment.model import LoadedModel, ModelLoadError, ModelSpec, load, resolve
from rayapp.sentiment.vader import VaderBackend

PROB_COLUMNS = ("p_bearish", "p_neutral", "p_bullish")
DEFAULT_BATCH = {"cpu": 32, "cuda": 512}  # rows per model call; 512 measured faster than 256 on an H100
OUTPUT_COLUMNS = (*PROB_COLUMNS, "score", "model_id", "model_revision")


def _actor_cpus() -> int | None:
    """CPUs Ray assigned to the current actor, or None outside a Ray worker."""
    try:
        import ray

        if not ray.is_initialized():
            return None
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
    except Exception:  # not in a worker / no runtime context: leave torch's default
        return None
    return max(1, int(cpus)) if cpus else None


def _verified_directory(spec: ModelSpec) -> Any:
    """Re-resolve the model in this process and check it is the one the driver chose.

    Not trusting a path from the driver: on a cluster the actor may run on another node, and a
    local directory is re-hashed so that the id stored with every score is the hash of the files
    this process actually loads.
    """
    actual, directory = resolve(spec.name, spec.revision if not spec.local else None, spec.max_length)
    if actual.model_id != spec.model_id:
        raise ModelLoadError(
            f"sentiment model changed while scoring: expected {spec.model_id}, found {actual.model_id} in {directory}"
        )
    return directory


class TransformersBackend:
    """Tokenizer + classifier on one device. On a GPU the constructor also runs warm-up batches.

    A fresh CUDA context creates its cuBLAS handles and loads each kernel on first use (lazy module
    loading), and picks GEMM kernels per shape, so a new actor's first batches are slow. The
    warm-up pays that while the model loads, at the batch size the pool sends and at a short and a
    full width, so the actor is at speed from its first real batch. `warmup_s` says what it cost.
    """

    def __init__(
        self,
        spec: ModelSpec,
        device: str | None = None,
        num_threads: int | None = None,
        warmup_batch: int | None = None,
    ) -> None:
        import torch

        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
            threads = num_threads or _actor_cpus()
            if threads:
                torch.set_num_threads(threads)
        self.loaded: LoadedModel = load(spec, _verified_directory(spec), device=device, dtype=dtype)
        self._torch = torch
        self.warmup_s = self.warmup(warmup_batch or DEFAULT_BATCH["cuda"]) if device.startswith("cuda") else 0.0

    def warmup(self, batch: int) -> float:
        """Run throwaway batches of `batch` rows at a short and the full width; return the seconds."""
        import time

        torch = self._torch
        started = time.perf_counter()
        vocab = int(self.loaded.model.config.vocab_size)
        for width in sorted({min(16, self.loaded.max_length), self.loaded.max_length}):
            ids = torch.randint(4, vocab, (batch, width), generator=torch.Generator().manual_seed(width))
            ids[:, 0] = 0  # <s>: the shape of a real row; the values do not matter for speed
            self._forward(ids, torch.ones_like(ids))
        return time.perf_counter() - started

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        lm = self.loaded
        enc = lm.tokenizer(
            list(texts), truncation=True, max_length=lm.max_length, padding="longest", return_tensors="pt"
        )
        return self._forward(enc["input_ids"], enc["attention_mask"])

    def predict_ids(self, input_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Score rows tokenized upstream (right-padded to max_length): trim to the batch's longest."""
        torch = self._torch
        width = max(int(lengths.max()), 1) if len(lengths) else 1
        ids = torch.from_numpy(np.ascontiguousarray(input_ids[:, :width], dtype=np.int64))
        mask = (torch.arange(width)[None, :] < torch.from_numpy(lengths.astype(np.int64))[:, None]).long()
        return self._forward(ids, mask)

    def _forward(self, input_ids: Any, attention_mask: Any) -> np.ndarray:
        torch = self._torch
        lm = self.loaded
        with torch.inference_mode():
            logits = lm.model(input_ids=input_ids.to(lm.device), attention_mask=attention_mask.to(lm.device)).logits
            probs = torch.softmax(logits.float(), dim=-1)[:, list(lm.label_index)]
        return probs.cpu().numpy().astype(np.float64)


class TextTokenizer:
    """CPU stage for GPU pools: tokenizes in parallel so the GPU actor only runs the model.

    Output: the input columns without the text, plus `input_ids` right-padded to max_length (a
    fixed width, so blocks concatenate) and `n_tokens`, from which the scorer trims each batch to
    its longest row: the same dynamic padding as tokenizing inside the scorer.
    """

    def __init__(self, spec: ModelSpec, text_column: str = "text") -> None:
        from transformers import AutoTokenizer

        self.text_column = text_column
        self.max_length = spec.max_length
        self.tokenizer = AutoTokenizer.from_pretrained(_verified_directory(spec))

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = ["" if t is None else str(t) for t in batch[self.text_column]]
        out: dict[str, Any] = {k: v for k, v in batch.items() if k != self.text_column}
        if not texts:
            out["input_ids"] = np.zeros((0, self.max_length), dtype=np.int32)
            out["n_tokens"] = np.zeros(0, dtype=np.int32)
            return out
        enc = self.tokenizer(
            texts, truncation=True, max_length=self.max_length, padding="max_length", return_tensors="np"
        )
        out["input_ids"] = enc["input_ids"].astype(np.int32)
        out["n_tokens"] = enc["attention_mask"].sum(axis=1).astype(np.int32)
        return out


class SentimentScorer:
    """`ds.map_batches(SentimentScorer, fn_constructor_kwargs={"spec": spec}, batch_format="numpy")`."""

    def __init__(
        self,
        spec: ModelSpec,
        text_column: str = "text",
        device: str | None = None,
        num_threads: int | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.spec = spec
        self.text_column = text_column
        self.backend: VaderBackend | TransformersBackend
        if spec.is_vader:
            self.backend = VaderBackend()
        else:
            self.backend = TransformersBackend(spec, device=device, num_threads=num_threads, warmup_batch=batch_size)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities (bearish, neutral, bullish); each row sums to 1."""
        if len(texts) == 0:
            return np.zeros((0, 3), dtype=np.float64)
        return self.backend.predict(texts)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        if "input_ids" in batch and isinstance(self.backend, TransformersBackend):
            lengths = np.asarray(batch["n_tokens"])
            n = len(lengths)
            probs = (
                self.backend.predict_ids(np.asarray(batch["input_ids"]), lengths)
                if n
                else np.zeros((0, 3), dtype=np.float64)
            )
            drop = {"input_ids", "n_tokens"}
        else:
            texts = ["" if t is None else str(t) for t in batch[self.text_column]]
            probs = self.predict(texts)
            n = len(texts)
            drop = {self.text_column}
        out: dict[str, Any] = {k: v for k, v in batch.items() if k not in drop}
        for j, col in enumerate(PROB_COLUMNS):
            out[col] = probs[:, j]
        out["score"] = np.clip(probs[:, 2] - probs[:, 0], -1.0, 1.0)
        out["model_id"] = np.full(n, self.spec.model_id, dtype=object)
        out["model_revision"] = np.full(n, self.spec.revision, dtype=object)
        return out
