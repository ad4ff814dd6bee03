"""Build a classifier of CryptoBERT's architecture locally, with random weights.

CryptoBERT (`ElKulako/cryptobert`) is a BERTweet model: `RobertaForSequenceClassification` with
a `BertweetTokenizer` (fastBPE files `vocab.txt` + `bpe.codes`), 3 labels Bearish/Neutral/Bullish,
130 position embeddings (128 tokens + RoBERTa's offset of 2). Its weights cannot be downloaded on
machines without internet, so tests and benchmarks build a model of the same architecture here and
load it through exactly the code path the real model takes (`AutoTokenizer` picks the tokenizer
from `tokenizer_config.json`'s `tokenizer_class`). Random weights run at the speed of trained ones.

The BPE codes are learned from the texts given (real headlines), so token counts per headline are
realistic. The tokenizer files are written here rather than with `save_pretrained`: transformers
5.24's `BertweetTokenizer.save_vocabulary` writes `bpe.codes` lines without the count column that
its own reader strips, so a saved-and-reloaded tokenizer would lose the second half of every merge.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

LABELS = ("Bearish", "Neutral", "Bullish")
SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")  # BertweetTokenizer's fixed ids 0..3
CRYPTOBERT_VOCAB_SIZE = 64001  # BERTweet: 4 specials + 63,996 BPE tokens + <mask>


def learn_bpe(texts: Iterable[str], vocab_size: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Learn fastBPE-style merges (end-of-word marker `</w>`) and the matching BERTweet vocabulary.

    Returns (merges in rank order, tokens): a token ending in `@@` is a word-internal piece, one
    without it ends a word; every learned symbol is listed in both forms so that any segmentation
    the merges produce maps to an id.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    # BertweetTokenizer splits on whitespace only (re.findall(r"\S+\n?")), so learn on the same units.
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()  # type: ignore[assignment]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, end_of_word_suffix="</w>", min_frequency=2, show_progress=False
    )
    tok.train_from_iterator([t for t in texts if t and t.strip()], trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokens: list[str] = []
    seen: set[str] = set(SPECIAL_TOKENS)
    for sym, _ in sorted(model["vocab"].items(), key=lambda kv: kv[1]):
        forms = [sym[: -len("</w>")]] if sym.endswith("</w>") else [sym + "@@", sym]
        for t in forms:
            if t and t not in seen and " " not in t:
                seen.add(t)
                tokens.append(t)
    return [(a, b) for a, b in merges], tokens


def write_bertweet_tokenizer(
    out_dir: Path, texts: Iterable[str], *, bpe_vocab_size: int = 2000, model_max_length: int = 128
) -> int:
    """Write vocab.txt, bpe.codes and tokenizer_config.json; return the tokenizer's length."""
    merges, tokens = learn_bpe(texts, bpe_vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    # fastBPE formats: "<token> <count>" and "<left> <right> <count>"; the readers drop the count.
    (out_dir / "vocab.txt").write_text(
        "".join(f"{t} {len(tokens) - i}\n" for i, t in enumerate(tokens)), encoding="utf-8"
    )
    (out_dir / "bpe.codes").write_text(
        "".join(f"{a} {b} {len(merges) - i}\n" for i, (a, b) in enumerate(merges)), encoding="utf-8"
    )
    mask_id = len(SPECIAL_TOKENS) + len(tokens)
    (out_dir / "added_tokens.json").write_text(json.dumps({"<mask>": mask_id}), encoding="utf-8")
    (out_dir / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "BertweetTokenizer",
                "model_max_length": model_max_length,
                "normalization": False,
                "bos_token": "<s>",
                "eos_token": "</s>",
                "sep_token": "</s>",
                "cls_token": "<s>",
                "unk_token": "<unk>",
                "pad_token": "<pad>",
                "mask_token": "<mask>",
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return mask_id + 1


def build_classifier(
    out_dir: str | Path,
    texts: Iterable[str],
    *,
    num_layers: int = 2,
    hidden_size: int = 32,
    num_heads: int = 2,
    intermediate_size: int | None = None,
    vocab_size: int | None = None,
    bpe_vocab_size: int = 2000,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """Save a randomly initialised CryptoBERT-architecture classifier (model + tokenizer) to out_dir.

    `vocab_size` sets the embedding matrix (CryptoBERT: 64,001); it is raised to the tokenizer's
    length when that is larger. The same `seed` and texts give the same weights, byte for byte.
    """
    import torch
    from transformers import RobertaConfig, RobertaForSequenceClassification

    out = Path(out_dir)
    n_tokens = write_bertweet_tokenizer(out, texts, bpe_vocab_size=bpe_vocab_size)
    config = RobertaConfig(  # type: ignore[call-arg]  # tokenizer_class goes through **kwargs
        vocab_size=max(vocab_size or 0, n_tokens),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size or 4 * hidden_size,
        max_position_embeddings=130,
        type_vocab_size=1,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=initializer_range,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
        problem_type="single_label_classification",
        tokenizer_class="BertweetTokenizer",
        architectures=["RobertaForSequenceClassification"],
    )
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = RobertaForSequenceClassification(config).eval()
    finally:
        torch.random.set_rng_state(gen_state)
    model.save_pretrained(out)
    return out
