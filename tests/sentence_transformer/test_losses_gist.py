"""GISTEmbedLoss and CachedGISTEmbedLoss against the reference's: same value, same gradients (through the replay hook
for the cached one), same config (the guide itself aside) and citation.

Guides: a second model on the same tokenizer, the same with a shorter ``max_seq_length`` (the texts are decoded and
tokenized again, truncated), and a model with a vocabulary of its own.

Tolerances: the value to 1e-5 as in ``test_losses``; the gradients to 1e-4 absolute (1e-4 relative). The temperature
of 0.01 multiplies the similarities by 100, five times the scale of 20 the other losses' tolerances were set for, and
the similarities themselves are rounded differently (a matrix product of normalized rows here, a broadcast
``cosine_similarity`` in the reference), so a few gradient entries differ by up to ~7e-5.
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from tests.sentence_transformer.test_losses import _models, _our_losses, _ref_losses
from tests.sentence_transformer.test_losses_cached import COLUMNS, assert_same, run_loss

GIST_LOSSES = ["GISTEmbedLoss", "CachedGISTEmbedLoss"]
GIST_GRAD_ATOL = 1e-4


@pytest.fixture(scope="module")
def folder(make_tiny_st: Callable[..., str]) -> str:
    return make_tiny_st()


@pytest.fixture(scope="module")
def guide_folder(make_tiny_st: Callable[..., str]) -> str:
    """Another model on the same tokenizer: the tiny BERT with a Dense layer after the pooling."""
    return make_tiny_st(dense=True)


@pytest.fixture(scope="module")
def other_vocab_folder(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny SentenceTransformer whose WordPiece vocabulary (words of the test texts, letters) is its own."""
    import sentence_transformers
    from sentence_transformers.sentence_transformer import modules
    from transformers import BertConfig, BertModel, BertTokenizerFast

    words = sorted({w for column in COLUMNS for text in column for w in re.findall(r"[a-z]+", text.lower())})
    letters = list("abcdefghijklmnopqrstuvwxyz")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *letters, *[f"##{c}" for c in letters], ".", ","]
    ids = {token: index for index, token in enumerate(dict.fromkeys(vocab))}
    hf = tmp_path_factory.mktemp("other_vocab_hf")
    tokenizer = BertTokenizerFast(vocab=ids, do_lower_case=True)
    assert len(tokenizer) == len(ids)
    tokenizer.save_pretrained(hf)
    torch.manual_seed(2)
    config = BertConfig(
        vocab_size=len(ids),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(hf)
    transformer = modules.Transformer(str(hf))
    model = sentence_transformers.SentenceTransformer(modules=[transformer, modules.Pooling(16)], device="cpu")
    out = tmp_path_factory.mktemp("other_vocab_st")
    model.save(str(out))
    return str(out)


def _guides(guide_folder: str, max_seq_length: int | None = None) -> tuple[Any, Any]:
    ref_guide, our_guide = _models(guide_folder)
    if max_seq_length is not None:
        ref_guide.max_seq_length = our_guide.max_seq_length = max_seq_length
    return ref_guide, our_guide


def compare_gist(
    folder: str,
    guides: tuple[Any, Any],
    name: str,
    columns: list[list[str]],
    *,
    train: bool = False,
    matryoshka: dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[nn.Module, nn.Module]:
    ref_model, our_model = _models(folder)
    ref_model.train(train)
    our_model.train(train)
    ref_guide, our_guide = guides
    ref_loss = getattr(_ref_losses(), name)(ref_model, ref_guide, **kwargs)
    our_loss = getattr(_our_losses(), name)(our_model, our_guide, **kwargs)
    assert our_loss.must_retokenize == ref_loss.must_retokenize
    ref_config, our_config = ref_loss.get_config_dict(), our_loss.get_config_dict()
    assert ref_config.pop("guide") is ref_guide and our_config.pop("guide") is our_guide
    assert our_config == ref_config
    assert getattr(our_loss, "citation", None) == getattr(ref_loss, "citation", None)
    if matryoshka is not None:
        ref_loss = _ref_losses().MatryoshkaLoss(ref_model, ref_loss, **matryoshka)
        our_loss = _our_losses().MatryoshkaLoss(our_model, our_loss, **matryoshka)
    ref = run_loss(ref_loss, ref_model, columns, None, 0)
    ours = run_loss(our_loss, our_model, columns, None, 0)
    # The guide is not trained: its gradients stay None in both (it runs under no_grad).
    assert_same(ref, ours, grad_atol=GIST_GRAD_ATOL)
    return ref_loss, our_loss


GIST_CASES = [
    ({}, 3),
    ({"temperature": 0.05, "contrast_anchors": False}, 2),
    # gather_across_devices outside a distributed job: this process's batch
    ({"margin": 0.1, "contrast_positives": False, "gather_across_devices": True}, 3),
    ({"margin_strategy": "relative", "margin": 0.05}, 3),
]


@pytest.mark.parametrize("name", GIST_LOSSES)
@pytest.mark.parametrize(("kwargs", "n_columns"), GIST_CASES, ids=[str(i) for i in range(len(GIST_CASES))])
def test_gist_matches_the_reference(
    folder: str, guide_folder: str, name: str, kwargs: dict[str, Any], n_columns: int
) -> None:
    if name == "CachedGISTEmbedLoss":
        kwargs = {"mini_batch_size": 4, **kwargs}
    compare_gist(folder, _guides(guide_folder), name, COLUMNS[:n_columns], **kwargs)


@pytest.mark.parametrize("name", GIST_LOSSES)
def test_gist_retokenizes_for_a_shorter_guide(folder: str, guide_folder: str, name: str) -> None:
    kwargs = {"mini_batch_size": 4} if name == "CachedGISTEmbedLoss" else {}
    _, ours = compare_gist(folder, _guides(guide_folder, max_seq_length=6), name, COLUMNS, **kwargs)
    assert ours.must_retokenize


@pytest.mark.parametrize("name", GIST_LOSSES)
def test_gist_retokenizes_for_a_guide_with_another_vocabulary(folder: str, other_vocab_folder: str, name: str) -> None:
    kwargs = {"mini_batch_size": 4} if name == "CachedGISTEmbedLoss" else {}
    _, ours = compare_gist(folder, _guides(other_vocab_folder), name, COLUMNS, **kwargs)
    assert ours.must_retokenize


def test_cached_gist_in_train_mode(folder: str, guide_folder: str) -> None:
    """Dropout in the model (and in the guide, which runs in the first pass only): the replay must use the first
    pass's masks."""
    ref_guide, our_guide = _guides(guide_folder)
    ref_guide.train()
    our_guide.train()
    compare_gist(folder, (ref_guide, our_guide), "CachedGISTEmbedLoss", COLUMNS, train=True, mini_batch_size=4)


def test_cached_gist_mini_batched_by_tokens(folder: str, guide_folder: str) -> None:
    compare_gist(folder, _guides(guide_folder), "CachedGISTEmbedLoss", COLUMNS, mini_batch_num_tokens=14)


@pytest.mark.parametrize("name", GIST_LOSSES)
def test_matryoshka_around_gist_matches_the_reference(folder: str, guide_folder: str, name: str) -> None:
    kwargs = {"mini_batch_size": 4} if name == "CachedGISTEmbedLoss" else {}
    compare_gist(folder, _guides(guide_folder), name, COLUMNS, matryoshka={"matryoshka_dims": [32, 16, 8]}, **kwargs)


def test_cached_gist_equals_gist(folder: str, guide_folder: str) -> None:
    """The caching changes the memory, not the math."""
    losses = _our_losses()
    _, model = _models(folder)
    _, guide = _guides(guide_folder)
    plain = run_loss(losses.GISTEmbedLoss(model, guide), model, COLUMNS, None, 0)
    model.zero_grad()
    cached = run_loss(losses.CachedGISTEmbedLoss(model, guide, mini_batch_size=2), model, COLUMNS, None, 0)
    assert_same(plain, cached, grad_atol=GIST_GRAD_ATOL)


@pytest.mark.parametrize("name", GIST_LOSSES)
def test_gist_bad_guides_and_inputs_fail_clearly(folder: str, guide_folder: str, name: str) -> None:
    from sentrs.sentence_transformer.losses.gist_embed import guide_features

    cls = getattr(_our_losses(), name)
    _, model = _models(folder)
    _, guide = _guides(guide_folder)
    with pytest.raises(ValueError, match=rf"{name} needs a transformers tokenizer .* the guide \(SimpleNamespace\)"):
        cls(model, types.SimpleNamespace(tokenizer=None, max_seq_length=8))
    with pytest.raises(ValueError, match="margin_strategy must be 'absolute' or 'relative', got 'squared'"):
        cls(model, guide, margin_strategy="squared")
    loss = cls(model, guide)
    with pytest.raises(ValueError, match=rf"{name} expects at least 2 input columns .*, got 1"):
        loss([model.preprocess(COLUMNS[0])], None)
    guide.max_seq_length = 4
    shorter = cls(model, guide)
    assert shorter.must_retokenize
    mask = model.preprocess(["a b"])["attention_mask"]
    with pytest.raises(ValueError, match=r"must tokenize the texts again .* input column 2 have no 'input_ids'"):
        guide_features(shorter, {"attention_mask": mask}, 2)


def test_gist_decodes_flattened_inputs(folder: str, guide_folder: str, tmp_path: Path) -> None:
    """Flattened (padding-free) inputs are split at ``cu_seq_lens_q`` before decoding for the guide."""
    from sentrs.sentence_transformer.losses.gist_embed import guide_features

    _, model = _models(folder)
    _, guide = _guides(guide_folder, max_seq_length=64)
    guide.max_seq_length = 4
    loss = _our_losses().GISTEmbedLoss(model, guide)
    padded = model.preprocess(["a horse", "hello there friend"])
    ids = [row[mask.bool()] for row, mask in zip(padded["input_ids"], padded["attention_mask"])]
    flat = {
        "input_ids": torch.cat(ids)[None],
        "cu_seq_lens_q": torch.tensor([0, len(ids[0]), len(ids[0]) + len(ids[1])]),
    }
    torch.testing.assert_close(guide_features(loss, flat)["input_ids"], guide_features(loss, padded)["input_ids"])
