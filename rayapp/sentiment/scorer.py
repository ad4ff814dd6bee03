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


class TransformersBackend:
    def __init__(self, spec: ModelSpec, device: str | None = None, num_threads: int | None = None) -> None:
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
        # Re-resolve here rather than trusting a path from the driver: on a cluster the actor may
        # run on another node, and a local directory is re-hashed so that the id stored with every
        # score is the hash of the weights this process actually loaded.
        pinned = spec.revision if not spec.local else None
        actual, directory = resolve(spec.name, pinned, spec.max_length)
        if actual.model_id != spec.model_id:
            raise ModelLoadError(f"sentiment model changed while scoring: expected {spec.model_id}, "
                                 f"found {actual.model_id} in {directory}")
        self.loaded: LoadedModel = load(spec, directory, device=device, dtype=dtype)
        self._torch = torch

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        lm = self.loaded
        enc = lm.tokenizer(list(texts), truncation=True, max_length=lm.max_length, padding="longest",
                           return_tensors="pt")
        with torch.inference_mode():
            logits = lm.model(input_ids=enc["input_ids"].to(lm.device),
                              attention_mask=enc["attention_mask"].to(lm.device)).logits
            probs = torch.softmax(logits.float(), dim=-1)[:, list(lm.label_index)]
        return probs.cpu().numpy().astype(np.float64)


class SentimentScorer:
    """`ds.map_batches(SentimentScorer, fn_constructor_kwargs={"spec": spec}, batch_format="numpy")`."""

    def __init__(self, spec: ModelSpec, text_column: str = "text", device: str | None = None,
                 num_threads: int | None = None) -> None:
        self.spec = spec
        self.text_column = text_column
        self.backend: VaderBackend | TransformersBackend
        if spec.is_vader:
            self.backend = VaderBackend()
        else:
            self.backend = TransformersBackend(spec, device=device, num_threads=num_threads)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities (bearish, neutral, bullish); each row sums to 1."""
        if len(texts) == 0:
            return np.zeros((0, 3), dtype=np.float64)
        return self.backend.predict(texts)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = ["" if t is None else str(t) for t in batch[self.text_column]]
        probs = self.predict(texts)
        n = len(texts)
        out: dict[str, Any] = {k: v for k, v in batch.items() if k != self.text_column}
        for j, col in enumerate(PROB_COLUMNS):
            out[col] = probs[:, j]
        out["score"] = np.clip(probs[:, 2] - probs[:, 0], -1.0, 1.0)
        out["model_id"] = np.full(n, self.spec.model_id, dtype=object)
        out["model_revision"] = np.full(n, self.spec.revision, dtype=object)
        return out
