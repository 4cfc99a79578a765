"""The gradient-cached losses (CachedMultipleNegativesRankingLoss, its symmetric form, MegaBatchMarginLoss, and
MatryoshkaLoss around them) against the reference's: same value, same gradient on every parameter after
``loss.backward()`` (the gradients arrive through the replay hook), same config and citation.

Tolerances are those of ``test_losses``: 1e-5 absolute on the value, 1e-5 absolute + 1e-4 relative on each gradient
(same float32 math, summed in a different order). Mini-batches are smaller than the batch everywhere, so the
chunking and the replay are exercised; train-mode cases check that the replay draws the dropout masks of the first
pass (a wrong mask would move the gradients by far more than the tolerance).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from tests.sentence_transformer.test_losses import (
    ANCHORS,
    GRAD_ATOL,
    GRAD_RTOL,
    LOSS_ATOL,
    NEGATIVES,
    POSITIVES,
    _models,
    _our_losses,
    _ref_losses,
)

# Six rows, so that mini-batches of 4 leave a ragged last one.
COLUMNS = [
    [*ANCHORS, "x y z", "more text here please"],
    [*POSITIVES, "abc", "the end"],
    [*NEGATIVES, "q", "zz top of the hill"],
]


@pytest.fixture(scope="module")
def folder(make_tiny_st: Callable[..., str]) -> str:
    return make_tiny_st()


def run_loss(loss: nn.Module, model: Any, columns: list[list[str]], labels: Any, seed: int) -> tuple[dict, dict]:
    """The loss's value(s) and the gradient of every parameter after ``backward``, from a fixed random state."""
    features = [model.preprocess(texts) for texts in columns]
    random.seed(seed)
    torch.manual_seed(seed)
    value = loss(features, labels)
    values = value if isinstance(value, dict) else {"loss": value}
    total = sum(values.values())
    assert isinstance(total, torch.Tensor)
    total.backward()
    return {k: v.item() for k, v in values.items()}, {name: p.grad for name, p in loss.named_parameters()}


def assert_same(
    ref: tuple[dict, dict], ours: tuple[dict, dict], loss_atol: float = LOSS_ATOL, grad_atol: float = GRAD_ATOL
) -> None:
    (ref_values, ref_grads), (our_values, our_grads) = ref, ours
    assert our_values.keys() == ref_values.keys()
    for key, value in ref_values.items():
        assert our_values[key] == pytest.approx(value, abs=loss_atol), key
    assert our_grads.keys() == ref_grads.keys()
    with_grad = 0
    for name, ref_grad in ref_grads.items():
        our_grad = our_grads[name]
        if ref_grad is None:
            assert our_grad is None, name
            continue
        assert our_grad is not None, name
        torch.testing.assert_close(
            our_grad, ref_grad, atol=grad_atol, rtol=GRAD_RTOL, msg=lambda m, name=name: f"{name}: {m}"
        )
        with_grad += 1
    assert with_grad > 0


def compare(
    models: tuple[Any, Any],
    make_ref: Callable[[Any], nn.Module],
    make_ours: Callable[[Any], nn.Module],
    columns: list[list[str]],
    labels: Any = None,
    *,
    train: bool = False,
    seed: int = 0,
    same_config: bool = True,
) -> tuple[nn.Module, nn.Module]:
    """Runs the reference's loss on the reference model and ours on ours (same weights) and compares values,
    gradients, config and citation. Parameters of the loss itself start as the reference's."""
    ref_model, our_model = models
    ref_model.train(train)
    our_model.train(train)
    ref_loss, our_loss = make_ref(ref_model), make_ours(our_model)
    own = {k: v for k, v in ref_loss.state_dict().items() if not k.startswith("model.")}
    if own:
        our_loss.load_state_dict(own, strict=False)
    if same_config:
        assert our_loss.get_config_dict() == ref_loss.get_config_dict()
    assert getattr(our_loss, "citation", None) == getattr(ref_loss, "citation", None)
    assert_same(
        run_loss(ref_loss, ref_model, columns, labels, seed), run_loss(our_loss, our_model, columns, labels, seed)
    )
    return ref_loss, our_loss


def both(name: str, **kwargs: Any) -> tuple[Callable[[Any], nn.Module], Callable[[Any], nn.Module]]:
    return (lambda m: getattr(_ref_losses(), name)(m, **kwargs)), (lambda m: getattr(_our_losses(), name)(m, **kwargs))


ALL_DIRECTIONS = ("query_to_doc", "query_to_query", "doc_to_query", "doc_to_doc")
CMNRL_CASES = [
    ({}, 2, False),
    ({"mini_batch_size": 1, "directions": ALL_DIRECTIONS}, 3, False),
    ({"mini_batch_num_tokens": 12}, 3, False),  # packed by token count
    ({"directions": ("query_to_doc", "doc_to_query"), "partition_mode": "per_direction"}, 3, False),
    ({"hardness_mode": "in_batch_negatives", "hardness_strength": 9.0}, 3, False),
    ({"hardness_mode": "hard_negatives", "hardness_strength": 5.0}, 3, False),
    # gather_across_devices outside a distributed job: this process's batch
    (
        {"hardness_mode": "all_negatives", "hardness_strength": 5.0, "scale": 7.0, "gather_across_devices": True},
        3,
        False,
    ),
    ({}, 3, True),  # dropout: the replay must draw the masks of the first pass
    ({"mini_batch_num_tokens": 12, "directions": ALL_DIRECTIONS}, 3, True),
]


@pytest.mark.parametrize(("kwargs", "n_columns", "train"), CMNRL_CASES, ids=[str(i) for i in range(len(CMNRL_CASES))])
def test_cached_mnrl_matches_the_reference(folder: str, kwargs: dict[str, Any], n_columns: int, train: bool) -> None:
    kwargs = {"mini_batch_size": 4, **kwargs}
    compare(_models(folder), *both("CachedMultipleNegativesRankingLoss", **kwargs), COLUMNS[:n_columns], train=train)


def test_cached_mnrl_with_dot_product(folder: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    ref_fct, our_fct = ref_util.dot_score, our_util.dot_score
    compare(
        _models(folder),
        lambda m: _ref_losses().CachedMultipleNegativesRankingLoss(m, scale=1.0, similarity_fct=ref_fct),
        lambda m: _our_losses().CachedMultipleNegativesRankingLoss(m, scale=1.0, similarity_fct=our_fct),
        COLUMNS,
    )


def test_cached_mnrl_equals_the_uncached_loss(folder: str) -> None:
    """The caching changes the memory, not the math: value and gradients of MultipleNegativesRankingLoss."""
    losses = _our_losses()
    _, model = _models(folder)
    plain = run_loss(losses.MultipleNegativesRankingLoss(model), model, COLUMNS, None, 0)
    model.zero_grad()
    cached_loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=2)
    cached = run_loss(cached_loss, model, COLUMNS, None, 0)
    plain_grads = {k.removeprefix("model."): v for k, v in plain[1].items()}
    cached_grads = {k.removeprefix("model."): v for k, v in cached[1].items()}
    assert_same((plain[0], plain_grads), (cached[0], cached_grads))


def test_cached_mnrl_without_gradients_returns_the_value(folder: str) -> None:
    ref_model, our_model = _models(folder)
    ref_loss = _ref_losses().CachedMultipleNegativesRankingLoss(ref_model, mini_batch_size=4)
    our_loss = _our_losses().CachedMultipleNegativesRankingLoss(our_model, mini_batch_size=4)
    with torch.no_grad():
        ref_value = ref_loss([ref_model.preprocess(t) for t in COLUMNS], None)
        our_value = our_loss([our_model.preprocess(t) for t in COLUMNS], None)
    assert not our_value.requires_grad
    assert our_value.item() == pytest.approx(ref_value.item(), abs=LOSS_ATOL)


def test_cached_mnrl_attributes_live_on_the_wrapped_loss(folder: str) -> None:
    _, model = _models(folder)
    loss = _our_losses().CachedMultipleNegativesRankingLoss(model, scale=10.0)
    assert isinstance(loss.loss, _our_losses().MultipleNegativesRankingLoss)
    assert loss.scale == 10.0 and loss.temperature == pytest.approx(0.1)
    loss.scale = 5.0
    assert loss.loss.scale == 5.0 and loss.scale == 5.0
    assert "scale" not in loss.__dict__


def test_cached_symmetric_ranking_loss_is_deprecated_and_matches(folder: str) -> None:
    ref_cls = _ref_losses().CachedMultipleNegativesSymmetricRankingLoss
    our_cls = _our_losses().CachedMultipleNegativesSymmetricRankingLoss

    def make_ref(model: Any) -> nn.Module:
        with pytest.warns(DeprecationWarning):
            return ref_cls(model, mini_batch_size=4)

    def make_ours(model: Any) -> nn.Module:
        with pytest.warns(DeprecationWarning, match="CachedMultipleNegativesSymmetricRankingLoss is deprecated"):
            return our_cls(model, mini_batch_size=4)

    _, ours = compare(_models(folder), make_ref, make_ours, COLUMNS[:2])
    assert ours.directions == ("query_to_doc", "doc_to_query") and ours.partition_mode == "per_direction"


MEGA_CASES = [
    {"mini_batch_size": 4},
    {"mini_batch_size": 4, "positive_margin": 0.95, "negative_margin": -0.5},
    {"mini_batch_num_tokens": 10},
    {"use_mini_batched_version": False},
]


@pytest.mark.parametrize("kwargs", MEGA_CASES)
def test_mega_batch_margin_matches_the_reference(folder: str, kwargs: dict[str, Any]) -> None:
    _, ours = compare(_models(folder), *both("MegaBatchMarginLoss", **kwargs), COLUMNS[:2])
    assert ours.uses_gradient_cache == kwargs.get("use_mini_batched_version", True)


def test_mega_batch_margin_in_train_mode(folder: str) -> None:
    compare(_models(folder), *both("MegaBatchMarginLoss", mini_batch_size=4), COLUMNS[:2], train=True)


MATRYOSHKA_CACHED_CASES = [
    ("CachedMultipleNegativesRankingLoss", {"mini_batch_size": 4}, {"matryoshka_dims": [32, 16, 8]}),
    (
        "CachedMultipleNegativesRankingLoss",
        {"mini_batch_size": 4, "directions": ALL_DIRECTIONS},
        {"matryoshka_dims": [8, 32], "matryoshka_weights": [2.0, 0.5]},
    ),
    (
        "CachedMultipleNegativesRankingLoss",
        {"mini_batch_size": 4},
        {"matryoshka_dims": [32, 16, 8], "n_dims_per_step": 2},
    ),
    ("MegaBatchMarginLoss", {"mini_batch_size": 4}, {"matryoshka_dims": [32, 12]}),
    ("MegaBatchMarginLoss", {"use_mini_batched_version": False}, {"matryoshka_dims": [32, 12]}),
]


@pytest.mark.parametrize(("inner", "inner_kwargs", "kwargs"), MATRYOSHKA_CACHED_CASES)
def test_matryoshka_around_a_cached_loss_matches_the_reference(
    folder: str, inner: str, inner_kwargs: dict[str, Any], kwargs: dict[str, Any]
) -> None:
    ref, ours = _ref_losses(), _our_losses()
    n_columns = 2 if inner == "MegaBatchMarginLoss" else 3
    compare(
        _models(folder),
        lambda m: ref.MatryoshkaLoss(m, getattr(ref, inner)(m, **inner_kwargs), **kwargs),
        lambda m: ours.MatryoshkaLoss(m, getattr(ours, inner)(m, **inner_kwargs), **kwargs),
        COLUMNS[:n_columns],
    )


def test_matryoshka_around_a_cached_loss_equals_the_uncached_path(folder: str) -> None:
    """Around a cached loss, MatryoshkaLoss truncates inside the loss computation instead of replacing the model's
    forward; the value and gradients are those of the forward-replacing path around the uncached loss."""
    losses = _our_losses()
    _, model = _models(folder)
    plain = run_loss(
        losses.MatryoshkaLoss(model, losses.MultipleNegativesRankingLoss(model), [32, 8], [1.0, 3.0]),
        model,
        COLUMNS,
        None,
        0,
    )
    model.zero_grad()
    inner = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=4)
    loss = losses.MatryoshkaLoss(model, inner, [32, 8], [1.0, 3.0])
    assert loss.uses_gradient_cache
    cached = run_loss(loss, model, COLUMNS, None, 0)
    assert "forward" not in model.__dict__
    strip = {"model.": "", "loss.": ""}
    plain_grads = {_strip(k, strip): v for k, v in plain[1].items()}
    cached_grads = {_strip(k, strip): v for k, v in cached[1].items()}
    assert_same((plain[0], plain_grads), (cached[0], cached_grads))


def _strip(name: str, prefixes: dict[str, str]) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if name.startswith(prefix):
                name, changed = name[len(prefix) :], True
    return name


def test_minilm_cached_mnrl_matches_the_reference(minilm_path: str) -> None:
    """One real-model check: MiniLM (6 layers, 384 dims), a ragged last mini-batch."""
    import sentence_transformers

    import sentrs

    models = (
        sentence_transformers.SentenceTransformer(minilm_path, device="cpu").eval(),
        sentrs.SentenceTransformer(minilm_path, device="cpu").eval(),
    )
    compare(models, *both("CachedMultipleNegativesRankingLoss", mini_batch_size=4), COLUMNS[:2])


def test_bad_arguments_and_inputs_fail_clearly(folder: str) -> None:
    losses = _our_losses()
    _, model = _models(folder)
    with pytest.raises(ValueError, match="mini_batch_num_tokens must be a positive integer or None, got 0"):
        losses.CachedMultipleNegativesRankingLoss(model, mini_batch_num_tokens=0)
    with pytest.raises(ValueError, match="mini_batch_size must be a positive integer, got 0"):
        losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=0)
    with pytest.raises(ValueError, match="mini_batch_num_tokens must be a positive integer or None, got -3"):
        losses.MegaBatchMarginLoss(model, mini_batch_num_tokens=-3)
    with pytest.raises(ValueError, match="Scale must be a positive value"):  # validated by the wrapped loss
        losses.CachedMultipleNegativesRankingLoss(model, scale=0.0)
    features = [model.preprocess(texts) for texts in COLUMNS]
    with pytest.raises(ValueError, match="Expected at least 2 inputs, got 1"):
        losses.CachedMultipleNegativesRankingLoss(model)(features[:1], None)
    with pytest.raises(ValueError, match="MegaBatchMarginLoss expects exactly 2 input columns, .* but got 3"):
        losses.MegaBatchMarginLoss(model)(features, None)


def test_a_column_the_loss_ignores_is_reported(folder: str) -> None:
    """A cached loss must use every column it embeds; one it ignores would crash the replay later."""
    from sentrs.sentence_transformer.losses._gradcache import GradCacheMixin

    _, model = _models(folder)

    class FirstColumnOnly(GradCacheMixin, nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.mini_batch_size = 4

        def calculate_loss(self, reps: Any, labels: Any = None, *, with_backward: bool = False) -> torch.Tensor:
            value = torch.cat(reps[0]).pow(2).mean()
            if with_backward:
                value.backward()
            return value.detach()

        def forward(self, features: Any, labels: Any) -> torch.Tensor:
            return self.forward_cached(features, labels)

    with pytest.raises(ValueError, match=r"FirstColumnOnly did not use input column\(s\) 1"):
        FirstColumnOnly()([model.preprocess(texts) for texts in COLUMNS[:2]], None)


def test_mini_batches_trim_padding_and_pack_by_tokens(folder: str) -> None:
    from sentrs.sentence_transformer.losses._gradcache import minibatch_ranges, slice_features

    _, model = _models(folder)
    features = model.preprocess(["a b c d e f g h", "a", "b", "a b c"])
    lengths = features["attention_mask"].sum(dim=1).tolist()  # [10, 3, 3, 5] with [CLS] and [SEP]
    assert minibatch_ranges(features, 3) == [(0, 3), (3, 4)]
    assert minibatch_ranges(features, 3, mini_batch_num_tokens=lengths[0]) == [(0, 1), (1, 3), (3, 4)]
    assert minibatch_ranges(features, 3, mini_batch_num_tokens=1) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    sliced = slice_features(features, 1, 3)
    assert sliced["input_ids"].shape == (2, 3)  # the trailing padding of the long first row is gone
    assert torch.equal(sliced["input_ids"], features["input_ids"][1:3, :3])
    assert sliced["modality"] == features["modality"]


def test_progress_bars(folder: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, model = _models(folder)
    loss = _our_losses().CachedMultipleNegativesRankingLoss(model, mini_batch_size=4, show_progress_bar=True)
    loss([model.preprocess(texts) for texts in COLUMNS[:2]], None).backward()
    err = capsys.readouterr().err
    assert "Embed mini-batches" in err and "Calculating loss" in err
