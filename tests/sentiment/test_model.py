"""Model resolution, loading, provenance and the errors for bad model directories."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rayapp.sentiment.model import (
    HubUnavailable,
    ModelLoadError,
    fingerprint,
    label_order,
    load,
    resolve,
)


def test_auto_tokenizer_picks_bertweet_and_covers_real_headlines(tiny_model_dir: Path, headlines):
    from transformers import AutoTokenizer, BertweetTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert isinstance(tok, BertweetTokenizer)
    ids = tok(headlines[:200])["input_ids"]
    assert all(seq[0] == tok.cls_token_id and seq[-1] == tok.sep_token_id for seq in ids)
    # BPE learned from the same headlines: nothing maps to <unk>, and words are split into pieces.
    assert sum(seq.count(tok.unk_token_id) for seq in ids) == 0
    assert tok.mask_token_id == len(tok) - 1
    assert tok.convert_tokens_to_string(tok.tokenize(headlines[0])) == headlines[0]


def test_local_model_id_is_a_hash_of_the_files_loaded(tiny_model_dir: Path, tmp_path: Path, headlines):
    from rayapp.sentiment.localmodel import build_classifier

    spec, directory = resolve(str(tiny_model_dir))
    digest = fingerprint(tiny_model_dir)
    assert spec.local and directory == tiny_model_dir.resolve()
    assert spec.model_id == f"model@sha256:{digest[:16]}" and spec.revision == f"sha256:{digest}"
    same = shutil.copytree(tiny_model_dir, tmp_path / "model")
    assert resolve(str(same))[0].model_id == spec.model_id
    other = build_classifier(tmp_path / "other" / "model", headlines, seed=1, initializer_range=0.3)
    assert resolve(str(other))[0].model_id != spec.model_id


def test_load_reads_labels_and_limits(tiny_model_dir: Path):
    spec, directory = resolve(str(tiny_model_dir), max_length=128)
    loaded = load(spec, directory)
    assert loaded.label_index == (0, 1, 2)
    assert loaded.model.config.id2label == {0: "Bearish", 1: "Neutral", 2: "Bullish"}
    assert type(loaded.model).__name__ == "RobertaForSequenceClassification"
    too_long, _ = resolve(str(tiny_model_dir), max_length=256)
    with pytest.raises(ModelLoadError, match=r"max_length=256 exceeds the 128 tokens"):
        load(too_long, directory)


def test_missing_directory_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        resolve(str(tmp_path / "no-such-model"))


@pytest.mark.parametrize(
    "remove, message",
    [
        ("config.json", "has no config.json"),
        ("model.safetensors", "has no weights"),
        ("bpe.codes", None),
    ],
)
def test_incomplete_directory_is_a_clear_error(model_copy: Path, remove: str, message: str | None):
    (model_copy / remove).unlink()
    if message:
        with pytest.raises(ModelLoadError, match=message):
            resolve(str(model_copy))
    else:  # vocab.txt is still there, so resolution passes; loading the tokenizer must fail clearly
        spec, directory = resolve(str(model_copy))
        with pytest.raises(ModelLoadError, match=f"cannot load sentiment model from {directory}"):
            load(spec, directory)


def test_corrupt_weights_are_a_clear_error(model_copy: Path):
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    spec, directory = resolve(str(model_copy))
    with pytest.raises(ModelLoadError, match=f"cannot load sentiment model from {directory}"):
        load(spec, directory)


def test_corrupt_config_is_a_clear_error(model_copy: Path):
    (model_copy / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match=r"config\.json is corrupt"):
        resolve(str(model_copy))


def test_checkpoint_without_classifier_weights_is_refused(model_copy: Path):
    """transformers would fill the missing head with random numbers; we refuse instead."""
    from safetensors.torch import load_file, save_file

    weights = model_copy / "model.safetensors"
    tensors = {k: v for k, v in load_file(weights).items() if not k.startswith("classifier.")}
    save_file(tensors, weights, metadata={"format": "pt"})
    spec, directory = resolve(str(model_copy))
    with pytest.raises(ModelLoadError, match=r"lacks weights .* initialise them randomly"):
        load(spec, directory)


def test_wrong_label_set_is_refused(model_copy: Path):
    cfg = json.loads((model_copy / "config.json").read_text())
    cfg["id2label"] = {"0": "Sports", "1": "Politics", "2": "Tech"}
    cfg["label2id"] = {v: int(k) for k, v in cfg["id2label"].items()}
    (model_copy / "config.json").write_text(json.dumps(cfg))
    spec, directory = resolve(str(model_copy))
    with pytest.raises(ModelLoadError, match="do not map one to one"):
        load(spec, directory)


def test_label_order_follows_id2label():
    assert label_order({0: "Bearish", 1: "Neutral", 2: "Bullish"}) == (0, 1, 2)
    assert label_order({"0": "bullish", "1": "bearish", "2": "neutral"}) == (1, 2, 0)
    assert label_order({0: "negative", 1: "neutral", 2: "positive"}) == (0, 1, 2)
    assert label_order({0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}) == (0, 1, 2)
    assert label_order(None) == (0, 1, 2)
    with pytest.raises(ModelLoadError, match="2 labels"):
        label_order({0: "Bearish", 1: "Bullish"})
    with pytest.raises(ModelLoadError, match="one to one"):
        label_order({0: "Bearish", 1: "Bearish", 2: "Bullish"})


def _hub_cache(root: Path, repo: str, commit: str, files_from: Path) -> Path:
    """The on-disk layout huggingface_hub uses: refs/main -> snapshots/<commit>/files."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(commit)
    shutil.copytree(files_from, repo_dir / "snapshots" / commit)
    return root


def test_hub_id_resolves_to_the_cached_commit(tmp_path: Path, tiny_model_dir: Path, monkeypatch):
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("HF_HUB_CACHE", str(_hub_cache(tmp_path / "hub", "ElKulako/cryptobert", commit, tiny_model_dir)))
    spec, directory = resolve("ElKulako/cryptobert")
    assert not spec.local
    assert spec.model_id == f"ElKulako/cryptobert@{commit}" and spec.revision == commit
    assert directory.name == commit
    assert load(spec, directory).label_index == (0, 1, 2)


def test_hub_id_offline_and_not_cached_is_unavailable(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(HubUnavailable, match=r"ElKulako/cryptobert@main is not available .*HF_HUB_OFFLINE"):
        resolve("ElKulako/cryptobert")
