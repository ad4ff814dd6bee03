"""Sentiment model resolution, loading and provenance.

A model is named by a Hugging Face hub id (`ElKulako/cryptobert`, optionally pinned with a
revision) or by a local directory. Resolution turns the name into a `ModelSpec`: the directory the
files are loaded from and the `model_id` every score is stored under:

- hub id: `<name>@<commit>` where commit is the snapshot actually resolved (a branch name such as
  `main` is resolved to its commit, so the id changes when the weights do);
- local directory: `<dirname>@sha256:<16 hex>`, a hash of the files that determine the scores
  (the weights actually loaded, config, tokenizer files);
- the VADER fallback: `vader-lexicon@<mapping>`, naming how its output becomes class
  probabilities (`vader.py`); the revision records the vaderSentiment version.

Loading refuses anything that would quietly score with random numbers: a checkpoint that lacks
weights the architecture needs (transformers would initialise them randomly with a warning), a
label set that is not Bearish/Neutral/Bullish, or a model that is not a 3-way classifier.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rayapp.errors import InputError

LABELS = ("Bearish", "Neutral", "Bullish")
# The revision after the @ is the mapping from VADER's output to probabilities. `vader-lexicon`
# alone was the token-share mapping (neg/neu/pos taken as probabilities), replaced in issue 19:
# a new id, so that `rayapp score` re-scores every text and no feature set mixes the two.
VADER_MODEL_ID = "vader-lexicon@compound-0.05"
_ALIASES = {"bearish": 0, "negative": 0, "neutral": 1, "bullish": 2, "positive": 2}
_WEIGHT_GLOBS = ("*.safetensors", "pytorch_model*.bin")
_TOKENIZER_FILES = (
    "vocab.txt",
    "bpe.codes",
    "tokenizer.json",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)
_HUB_PATTERNS = ["*.json", "*.txt", "bpe.codes", "*.model", "*.safetensors", "pytorch_model*.bin"]


class ModelLoadError(InputError):
    """The sentiment model cannot be resolved or loaded; the message says which file and why."""


class HubUnavailable(ModelLoadError):
    """A hub model is neither reachable nor in the local cache (the offline case)."""


@dataclass(frozen=True)
class ModelSpec:
    """What to score with, and the provenance it resolved to. Picklable: shipped to every actor."""

    backend: Literal["transformers", "vader"]
    name: str  # as configured: hub id or directory
    model_id: str  # stored with every score
    revision: str | None  # hub commit, or sha256:<hex> of a local directory's files
    max_length: int = 128
    local: bool = False  # True: `name` is a directory that every node must see

    @property
    def is_vader(self) -> bool:
        return self.backend == "vader"


def vader_spec(max_length: int = 128) -> ModelSpec:
    from importlib.metadata import PackageNotFoundError, version

    try:
        rev = f"vaderSentiment=={version('vaderSentiment')}"
    except PackageNotFoundError:  # pragma: no cover - it is a hard dependency
        rev = None
    return ModelSpec("vader", "vaderSentiment", VADER_MODEL_ID, rev, max_length)


def is_local_reference(name: str) -> bool:
    """A directory reference (absolute, relative with ./ or ../, ~, or an existing path), not a hub id."""
    return (
        name.startswith(("/", "./", "../", "~", ".\\"))
        or os.path.isabs(name)
        or Path(name).expanduser().exists()
        or name.count("/") > 1
    )


def weight_files(directory: Path) -> list[Path]:
    """The weight files from_pretrained loads: safetensors when present, else PyTorch .bin."""
    for pattern in _WEIGHT_GLOBS:
        found = sorted(p for p in directory.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def fingerprint(directory: Path) -> str:
    """sha256 over the names and bytes of the weights loaded, config and tokenizer files."""
    files = weight_files(directory) + sorted(
        p for p in directory.iterdir() if p.is_file() and (p.suffix == ".json" or p.name in _TOKENIZER_FILES)
    )
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def check_directory(directory: Path) -> None:
    """Fail with the missing piece named, before transformers fails with something vaguer."""
    if not directory.exists():
        raise ModelLoadError(f"model directory {directory} does not exist")
    if not directory.is_dir():
        raise ModelLoadError(f"model path {directory} is not a directory")
    if not (directory / "config.json").is_file():
        raise ModelLoadError(f"model directory {directory} has no config.json")
    if not weight_files(directory):
        raise ModelLoadError(f"model directory {directory} has no weights (model.safetensors or pytorch_model.bin)")
    if not any((directory / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelLoadError(
            f"model directory {directory} has no tokenizer files (one of {', '.join(_TOKENIZER_FILES)})"
        )
    try:
        json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"model directory {directory}: config.json is corrupt: {exc}") from None


def _hub_snapshot(name: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        # HF_HUB_CACHE is read per call (huggingface_hub reads it once, at import).
        path = snapshot_download(
            name,
            revision=revision,
            allow_patterns=_HUB_PATTERNS,
            local_files_only=offline,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
        )
    except Exception as exc:  # network errors, offline mode, unknown repo: all mean "not available"
        where = "the local cache (HF_HUB_OFFLINE is set)" if offline else "the hub or the local cache"
        raise HubUnavailable(
            f"model {name}@{revision or 'main'} is not available from {where}: {type(exc).__name__}: {exc}"
        ) from None
    return Path(path)


def resolve(name: str, revision: str | None = None, max_length: int = 128) -> tuple[ModelSpec, Path]:
    """The spec (with model_id) and the local directory to load from. Cheap: no weights loaded."""
    if is_local_reference(name):
        directory = Path(name).expanduser().resolve()
        check_directory(directory)
        digest = fingerprint(directory)
        spec = ModelSpec(
            "transformers",
            str(directory),
            f"{directory.name}@sha256:{digest[:16]}",
            f"sha256:{digest}",
            max_length,
            local=True,
        )
        return spec, directory
    directory = _hub_snapshot(name, revision)
    check_directory(directory)
    # The snapshot folder is named by the commit it holds: the revision actually loaded.
    commit = directory.name
    return ModelSpec("transformers", name, f"{name}@{commit}", commit, max_length), directory


def label_order(id2label: dict[Any, Any] | None) -> tuple[int, int, int]:
    """Output indices of (bearish, neutral, bullish), checked against config.id2label."""
    if not id2label:
        return (0, 1, 2)
    names = {int(k): str(v).strip().lower() for k, v in id2label.items()}
    if len(names) != 3:
        raise ModelLoadError(
            f"sentiment model has {len(names)} labels {sorted(names.values())}; expected 3: {', '.join(LABELS)}"
        )
    if all(v == f"label_{k}" for k, v in names.items()):
        return (0, 1, 2)  # generic names: CryptoBERT's documented order Bearish=0 Neutral=1 Bullish=2
    index: dict[int, int] = {}
    for k, v in names.items():
        if v not in _ALIASES or _ALIASES[v] in index:
            raise ModelLoadError(f"sentiment model labels {id2label} do not map one to one onto {', '.join(LABELS)}")
        index[_ALIASES[v]] = k
    return (index[0], index[1], index[2])


@dataclass
class LoadedModel:
    spec: ModelSpec
    tokenizer: Any
    model: Any
    label_index: tuple[int, int, int]
    max_length: int
    device: str


def load(spec: ModelSpec, directory: Path, device: str = "cpu", dtype: Any = None) -> LoadedModel:
    """Load tokenizer and classifier with the Auto classes; any failure becomes ModelLoadError."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(directory)
        order = label_order(getattr(config, "id2label", None))
        tokenizer = AutoTokenizer.from_pretrained(directory)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, dtype=dtype or torch.float32, output_loading_info=True
        )
    except ModelLoadError:
        raise
    except Exception as exc:  # corrupt safetensors, bad JSON, shape mismatch, unknown class ...
        raise ModelLoadError(f"cannot load sentiment model from {directory}: {type(exc).__name__}: {exc}") from None
    missing = list(info.get("missing_keys") or []) + [str(m) for m in info.get("mismatched_keys") or []]
    if missing:
        raise ModelLoadError(
            f"model in {directory} lacks weights for {len(missing)} parameters "
            f"(e.g. {missing[:3]}): transformers would initialise them randomly"
        )
    if model.config.num_labels != 3:
        raise ModelLoadError(f"model in {directory} has {model.config.num_labels} outputs, expected 3")
    limit = _position_limit(model.config)
    if limit is not None and spec.max_length > limit:
        raise ModelLoadError(
            f"model.sentiment.max_length={spec.max_length} exceeds the {limit} "
            f"tokens the model {spec.name} has position embeddings for"
        )
    model.eval().to(device)
    return LoadedModel(spec, tokenizer, model, order, spec.max_length, device)


def _position_limit(config: Any) -> int | None:
    n = getattr(config, "max_position_embeddings", None)
    if n is None:
        return None
    # RoBERTa/BERTweet positions start after the padding index: 130 embeddings hold 128 tokens.
    offset = (config.pad_token_id + 1) if config.model_type in ("roberta", "bertweet", "xlm-roberta") else 0
    return int(n) - int(offset)
