"""The unsupervised and regularizing losses (ContrastiveTension and its in-batch form, DenoisingAutoEncoderLoss,
GlobalOrthogonalRegularizationLoss) and their data helpers against the reference's: same value(s), same gradient on
every parameter (the loss's own copies and decoder included), same config and citation. Tolerances of
``test_losses``. Also: every new loss has the reference's signature.
"""

from __future__ import annotations

import inspect
import random
import sys
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tests.sentence_transformer.test_losses import _models, _our_losses, _ref_losses
from tests.sentence_transformer.test_losses_cached import COLUMNS, both, compare

# Pairs for ContrastiveTensionLoss: rows 0 and 3 hold the same text twice.
CT_PAIRS = [
    ["A man is eating food.", "A horse", "Someone rides a horse.", "hi there", "cold"],
    ["A man is eating food.", "cars on a road", "A plane takes off.", "hi there", "warm weather today"],
]


@pytest.fixture(scope="module")
def folder(make_tiny_st: Callable[..., str]) -> str:
    return make_tiny_st()


@pytest.mark.parametrize(
    ("labels", "train"),
    [(None, False), (torch.tensor([1, 0, 0, 1, 0]), False), (None, True)],
    ids=["labels-from-tokens", "labels", "train"],
)
def test_contrastive_tension_matches_the_reference(folder: str, labels: torch.Tensor | None, train: bool) -> None:
    _, ours = compare(_models(folder), *both("ContrastiveTensionLoss"), CT_PAIRS, labels, train=train)
    assert ours.model2 is not ours.model1
    assert {name.split(".")[0] for name, _ in ours.named_parameters()} == {"model1", "model2"}


def test_contrastive_tension_compares_tokens_without_masks(folder: str) -> None:
    from sentrs.sentence_transformer.losses.contrastive_tension import _same_tokens

    _, model = _models(folder)
    first, second = (model.preprocess(texts) for texts in CT_PAIRS)
    with_masks = _same_tokens(first, second)
    assert with_masks.tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]
    same_width = model.preprocess(CT_PAIRS[0])
    without = _same_tokens({"input_ids": same_width["input_ids"]}, {"input_ids": same_width["input_ids"].clone()})
    assert without.tolist() == [1.0] * 5


@pytest.mark.parametrize("kwargs", [{}, {"scale": 5.0}], ids=["default", "scale"])
def test_contrastive_tension_in_batch_negatives_matches_the_reference(folder: str, kwargs: dict[str, Any]) -> None:
    _, ours = compare(_models(folder), *both("ContrastiveTensionLossInBatchNegatives", **kwargs), COLUMNS[:1])
    assert ours.logit_scale.grad is not None


def test_contrastive_tension_in_batch_negatives_with_dot_product(folder: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    compare(
        _models(folder),
        lambda m: _ref_losses().ContrastiveTensionLossInBatchNegatives(m, similarity_fct=ref_util.dot_score),
        lambda m: _our_losses().ContrastiveTensionLossInBatchNegatives(m, similarity_fct=our_util.dot_score),
        COLUMNS[:2],  # the second column is ignored
    )


def test_contrastive_tension_data_loader_matches_the_reference() -> None:
    texts = [f"sentence {i}" for i in range(40)]
    ref_loader = _ref_losses().ContrastiveTensionDataLoader(list(texts), batch_size=6, pos_neg_ratio=3)
    our_loader = _our_losses().ContrastiveTensionDataLoader(list(texts), batch_size=6, pos_neg_ratio=3)
    assert len(our_loader) == len(ref_loader) == 4
    random.seed(0)
    ref_batches = [[(e.texts, e.label) for e in batch] for batch in ref_loader]
    random.seed(0)
    our_batches = [[(e.texts, e.label) for e in batch] for batch in our_loader]
    assert our_batches == ref_batches
    assert [label for _, label in our_batches[0]] == [1, 0, 0, 1, 0, 0]
    our_loader.collate_fn = len
    assert list(our_loader) == [6] * 4
    with pytest.raises(ValueError, match="pos_neg_ratio of 4 and a batch size of 6"):
        _our_losses().ContrastiveTensionDataLoader(texts, batch_size=6, pos_neg_ratio=4)


DAMAGED = [["man eating", "horse", "rides across field", "hi"], COLUMNS[0][:4]]  # (damaged, original)


@pytest.mark.parametrize("tie", [True, False], ids=["tied", "untied"])
def test_denoising_auto_encoder_matches_the_reference(folder: str, tie: bool) -> None:
    ref_model, our_model = _models(folder)
    path = ref_model.transformers_model.config._name_or_path
    kwargs = {} if tie else {"decoder_name_or_path": path, "tie_encoder_decoder": False}
    models = (ref_model, our_model)
    ref_loss, ours = compare(models, *both("DenoisingAutoEncoderLoss", **kwargs), DAMAGED, same_config=False)
    # sentrs' loader records the model folder with a trailing separator (the reference without): the same folder
    ref_config, our_config = ref_loss.get_config_dict(), ours.get_config_dict()
    assert our_config["decoder_name_or_path"].rstrip("/") == ref_config.pop("decoder_name_or_path").rstrip("/")
    assert {k: v for k, v in our_config.items() if k != "decoder_name_or_path"} == ref_config
    shared = our_model.transformers_model.embeddings.word_embeddings.weight
    assert (shared is ours.decoder.bert.embeddings.word_embeddings.weight) == tie
    assert ours.need_retokenization is False


def test_denoising_auto_encoder_bad_arguments_fail_clearly(folder: str) -> None:
    _, model = _models(folder)
    loss_cls = _our_losses().DenoisingAutoEncoderLoss
    with pytest.raises(ValueError, match="needs decoder_name_or_path when tie_encoder_decoder=False, got None"):
        loss_cls(model, tie_encoder_decoder=False)
    loss = loss_cls(model)
    features = [model.preprocess(texts) for texts in DAMAGED]
    with pytest.raises(ValueError, match=r"expects 2 input columns \(damaged, original\), got 1"):
        loss(features[:1], None)


def test_denoising_auto_encoder_rejects_a_decoder_of_another_width(
    folder: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from transformers import BertConfig, BertModel

    _, model = _models(folder)
    other = tmp_path_factory.mktemp("wide_decoder")
    BertModel(BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2)).save_pretrained(
        other
    )
    model.tokenizer.save_pretrained(other)
    with pytest.raises(ValueError, match=r"the encoder has 32, the decoder .* has 16"):
        _our_losses().DenoisingAutoEncoderLoss(model, decoder_name_or_path=str(other), tie_encoder_decoder=False)


def _fake_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stand-in for nltk (not installed here): whitespace tokenization and joining."""
    nltk = types.ModuleType("nltk")
    nltk.word_tokenize = str.split  # type: ignore[attr-defined]
    treebank = types.ModuleType("nltk.tokenize.treebank")

    class Detokenizer:
        def detokenize(self, words: Any) -> str:
            return " ".join(words)

    treebank.TreebankWordDetokenizer = Detokenizer  # type: ignore[attr-defined]
    tokenize = types.ModuleType("nltk.tokenize")
    monkeypatch.setitem(sys.modules, "nltk", nltk)
    monkeypatch.setitem(sys.modules, "nltk.tokenize", tokenize)
    monkeypatch.setitem(sys.modules, "nltk.tokenize.treebank", treebank)


def test_denoising_dataset_deletes_words_like_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentence_transformers.sentence_transformer.datasets import DenoisingAutoEncoderDataset as Ref

    from sentrs.sentence_transformer.datasets import DenoisingAutoEncoderDataset as Ours

    _fake_nltk(monkeypatch)
    for seed, text in enumerate(["one two three four five six seven", "single", "", "a b"]):
        for ratio in (0.6, 0.99):
            np.random.seed(seed)
            expected = Ref.delete(text, del_ratio=ratio)
            np.random.seed(seed)
            assert Ours.delete(text, del_ratio=ratio) == expected
    assert Ours.delete("a b c", del_ratio=1.0) in {"a", "b", "c"}  # at least one word stays


def test_denoising_dataset_items() -> None:
    from torch.utils.data import Dataset

    from sentrs.sentence_transformer.datasets import DenoisingAutoEncoderDataset

    dataset = DenoisingAutoEncoderDataset(["The cat sat.", "Rain today."], noise_fn=lambda s: s[:3])
    assert isinstance(dataset, Dataset)
    assert len(dataset) == 2
    assert dataset[1].texts == ["Rai", "Rain today."]
    assert str(dataset[0]) == "<InputExample> label: 0, texts: The; The cat sat."
    if "nltk" not in sys.modules and __import__("importlib").util.find_spec("nltk") is None:
        with pytest.raises(ImportError, match="needs the nltk package .* or pass your own noise_fn"):
            DenoisingAutoEncoderDataset(["The cat sat."])


GOR_CASES = [
    {},
    {"aggregation": "sum"},
    {"mean_weight": 0.0, "second_moment_weight": 2.0},
    {"mean_weight": 0.5, "second_moment_weight": None},
]


@pytest.mark.parametrize("kwargs", GOR_CASES)
def test_global_orthogonal_regularization_matches_the_reference(folder: str, kwargs: dict[str, Any]) -> None:
    compare(_models(folder), *both("GlobalOrthogonalRegularizationLoss", **kwargs), COLUMNS)


def test_global_orthogonal_regularization_with_dot_product(folder: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    compare(
        _models(folder),
        lambda m: _ref_losses().GlobalOrthogonalRegularizationLoss(m, similarity_fct=ref_util.dot_score),
        lambda m: _our_losses().GlobalOrthogonalRegularizationLoss(m, similarity_fct=our_util.dot_score),
        COLUMNS[:2],
    )


def test_global_orthogonal_regularization_bad_arguments_fail_clearly(folder: str) -> None:
    _, model = _models(folder)
    gor = _our_losses().GlobalOrthogonalRegularizationLoss
    with pytest.raises(ValueError, match="At least one of mean_weight or second_moment_weight must be non-zero"):
        gor(model, mean_weight=0.0, second_moment_weight=None)
    with pytest.raises(ValueError, match="aggregation must be 'mean' or 'sum', got 'max'"):
        gor(model, aggregation="max")


NEW_LOSSES = [
    "AdaptiveLayerLoss",
    "CachedGISTEmbedLoss",
    "CachedMultipleNegativesRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss",
    "ContrastiveTensionDataLoader",
    "ContrastiveTensionLoss",
    "ContrastiveTensionLossInBatchNegatives",
    "DenoisingAutoEncoderLoss",
    "GISTEmbedLoss",
    "GlobalOrthogonalRegularizationLoss",
    "Matryoshka2dLoss",
    "MegaBatchMarginLoss",
]


def assert_same_signature(name: str) -> None:
    """Same parameter names, order, kinds and plain defaults (default functions compared by name)."""
    ref = inspect.signature(getattr(_ref_losses(), name).__init__).parameters
    ours = inspect.signature(getattr(_our_losses(), name).__init__).parameters
    assert list(ours) == list(ref)
    for key, parameter in ours.items():
        assert parameter.kind == ref[key].kind, key
        mine, theirs = parameter.default, ref[key].default
        if isinstance(theirs, (int, float, str, tuple, type(None))) or theirs is inspect.Parameter.empty:
            assert mine == theirs, key
        elif callable(theirs) and not isinstance(theirs, nn.Module):
            assert mine.__name__ == theirs.__name__, key
        else:
            assert type(mine) is type(theirs), key


@pytest.mark.parametrize("name", NEW_LOSSES)
def test_signatures_match_the_reference(name: str) -> None:
    assert_same_signature(name)
