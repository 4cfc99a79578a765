"""Architectures and tokenizers beyond the BERT fixtures: token ids and embeddings equal to the reference.

No other tokenizer ships offline, so the tests train small ones with the `tokenizers` library (byte-level BPE in
the RoBERTa style, a Unigram model in the SentencePiece/XLM-R style) and build tiny random models around them.
Tolerance 1e-5 as elsewhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs

TEXTS = [
    "Hello world, this is a test.",
    "  leading and trailing spaces  ",
    "",
    "Émoji 🤖 and accents: café, naïve.",
    "A much longer sentence that keeps going and going so that truncation has something to do here. " * 8,
    "short",
]


def _corpus() -> list[str]:
    words = "the quick brown fox jumps over a lazy dog while hello world test emoji café naïve long sentence".split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=12)) for _ in range(400)] + TEXTS


def _roberta_folder(root: Path) -> str:
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaConfig, RobertaModel, RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus(), vocab_size=300, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder = root / "roberta"
    folder.mkdir()
    bpe.save_model(str(folder))
    # transformers 5 ignores vocab_file/merges_file here (a tokenizer of the 5 special tokens only, which sentrs
    # now refuses as a silently wrong model): hand it the vocabulary and merges themselves.
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merge_lines = (folder / "merges.txt").read_text(encoding="utf-8").splitlines()[1:]
    merges = [tuple(line.split()) for line in merge_lines if line.strip()]
    tok = RobertaTokenizerFast(vocab=vocab, merges=merges, model_max_length=40)
    tok.save_pretrained(folder)
    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=tok.vocab_size + 5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
        type_vocab_size=1,
    )
    RobertaModel(config).save_pretrained(folder)
    return str(folder)


def _unigram_folder(root: Path) -> str:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("  ", " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=200, special_tokens=["<pad>", "<s>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tokenizer.token_to_id("<s>")), ("</s>", tokenizer.token_to_id("</s>"))],
    )
    folder = root / "unigram"
    folder.mkdir()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        model_max_length=32,
        padding_side="left",
        model_input_names=["input_ids", "attention_mask"],
    )
    fast.save_pretrained(folder)
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    BertModel(config).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def other_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("other_tok")
    return {"roberta-bpe": _roberta_folder(root), "unigram-left-padding": _unigram_folder(root)}


def _saved_st(base: str, mode: str, out: Path) -> str:
    import sentence_transformers
    from sentence_transformers import models

    transformer = models.Transformer(base)
    pooling = models.Pooling(32, pooling_mode=mode, include_prompt=False)
    ref = sentence_transformers.SentenceTransformer(modules=[transformer, pooling], device="cpu")
    ref.save(str(out))
    return str(out)


@pytest.mark.parametrize("kind", ["roberta-bpe", "unigram-left-padding"])
@pytest.mark.parametrize("mode", ["mean", "cls", "lasttoken", "weightedmean"])
def test_other_tokenizers_match_reference(other_folders: dict[str, str], kind: str, mode: str, tmp_path: Path) -> None:
    import sentence_transformers

    folder = _saved_st(other_folders[kind], mode, tmp_path / "st")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    a: Any = ours.preprocess(TEXTS)
    b: Any = ref.preprocess(TEXTS)
    assert set(k for k in b if k.endswith("_ids") or k == "attention_mask") == set(
        k for k in a if k.endswith("_ids") or k == "attention_mask"
    )
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(a[key], b[key]), key
    # With left padding and absolute positions, a text's embedding depends on how much padding its batch adds,
    # in the reference too; batches of one (or one batch for all) make the comparison well defined.
    batch_sizes = (1, 32) if kind.endswith("left-padding") else (2, 32)
    for batch_size in batch_sizes:
        for kwargs in ({}, {"prompt": "query: "}):
            got = ours.encode(TEXTS, batch_size=batch_size, **kwargs)
            want = ref.encode(TEXTS, batch_size=batch_size, **kwargs)
            np.testing.assert_allclose(got, want, atol=1e-5)
