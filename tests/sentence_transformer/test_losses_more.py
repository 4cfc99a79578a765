"""The distillation, batch-triplet and Matryoshka losses against the reference's: same value, same gradient on every
parameter, same config and citation (see ``test_losses`` for the setup and the tolerances)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

from tests.sentence_transformer.test_losses import ANCHORS, POSITIVES, SCORES, _compare, _our_losses, _ref_losses

# One column of 8 texts in 4 classes (each anchor with its positive), as the batch triplet losses take.
SINGLE = [ANCHORS + POSITIVES]
CLASSES = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
UNEVEN = torch.tensor([0, 0, 0, 1, 1, 2, 2, 5])  # a class of one row: an anchor without positives
TEACHER_2 = torch.tensor([[9.0, 2.5], [4.0, 4.5], [7.0, 1.0], [3.0, 0.0]])
BATCH_TRIPLETS = ["BatchAllTripletLoss", "BatchHardTripletLoss", "BatchSemiHardTripletLoss"]


@pytest.fixture(scope="module")
def folder(make_tiny_st: Any) -> str:
    return make_tiny_st()


DISTILL_CASES = [
    ("MarginMSELoss", 3, SCORES, {}),
    ("MarginMSELoss", 3, TEACHER_2, {}),
    ("DistillKLDivLoss", 3, TEACHER_2, {}),
    ("DistillKLDivLoss", 3, TEACHER_2, {"temperature": 2.0}),
    ("DistillKLDivLoss", 3, TEACHER_2, {"student_temperature": 0.5, "teacher_temperature": 3.0}),
]


@pytest.mark.parametrize(("name", "n_columns", "labels", "kwargs"), DISTILL_CASES)
def test_distillation_losses_match_the_reference(
    folder: str, name: str, n_columns: int, labels: torch.Tensor, kwargs: dict[str, Any]
) -> None:
    ref_cls, our_cls = getattr(_ref_losses(), name), getattr(_our_losses(), name)
    _compare(folder, lambda m: ref_cls(m, **kwargs), lambda m: our_cls(m, **kwargs), n_columns, labels)


def test_margin_mse_with_cosine(folder: str) -> None:
    import sentence_transformers.util as ref_util

    import sentrs.util as our_util

    ref_cls, our_cls = _ref_losses().MarginMSELoss, _our_losses().MarginMSELoss
    _compare(
        folder,
        lambda m: ref_cls(m, similarity_fct=ref_util.pairwise_cos_sim),
        lambda m: our_cls(m, similarity_fct=our_util.pairwise_cos_sim),
        3,
        SCORES,
    )


@pytest.mark.parametrize("labels", [CLASSES, UNEVEN])
@pytest.mark.parametrize("metric", ["euclidean_distance", "cosine_distance"])
@pytest.mark.parametrize("name", [*BATCH_TRIPLETS, "BatchHardSoftMarginTripletLoss"])
def test_batch_triplet_losses_match_the_reference(folder: str, name: str, metric: str, labels: torch.Tensor) -> None:
    ref, ours = _ref_losses(), _our_losses()
    ref_metric = getattr(ref.BatchHardTripletLossDistanceFunction, metric)
    our_metric = getattr(ours.BatchHardTripletLossDistanceFunction, metric)
    margin = {} if name == "BatchHardSoftMarginTripletLoss" else {"margin": 0.5 if metric == "cosine_distance" else 5}
    _compare(
        folder,
        lambda m: getattr(ref, name)(m, distance_metric=ref_metric, **margin),
        lambda m: getattr(ours, name)(m, distance_metric=our_metric, **margin),
        1,
        labels,
        columns=SINGLE,
    )


def test_squared_euclidean_distance_matches_the_reference() -> None:
    ref, ours = _ref_losses(), _our_losses()
    embeddings = torch.randn(6, 8, generator=torch.Generator().manual_seed(0))
    for squared in (False, True):
        torch.testing.assert_close(
            ours.BatchHardTripletLossDistanceFunction.euclidean_distance(embeddings, squared=squared),
            ref.BatchHardTripletLossDistanceFunction.euclidean_distance(embeddings, squared=squared),
        )


MATRYOSHKA_CASES = [
    ("MultipleNegativesRankingLoss", 3, None, {}, {"matryoshka_dims": [32, 16, 8]}),
    ("MultipleNegativesRankingLoss", 2, None, {}, {"matryoshka_dims": [8, 32], "matryoshka_weights": [2.0, 0.5]}),
    ("CoSENTLoss", 2, SCORES, {}, {"matryoshka_dims": [32, 4]}),
    ("MSELoss", 2, torch.randn(4, 32, generator=torch.Generator().manual_seed(6)), {}, {"matryoshka_dims": [32, 16]}),
    ("MarginMSELoss", 3, SCORES, {}, {"matryoshka_dims": [32, 24, 12]}),
]


@pytest.mark.parametrize(("inner", "n_columns", "labels", "inner_kwargs", "kwargs"), MATRYOSHKA_CASES)
def test_matryoshka_loss_matches_the_reference(
    folder: str,
    inner: str,
    n_columns: int,
    labels: torch.Tensor | None,
    inner_kwargs: dict[str, Any],
    kwargs: dict[str, Any],
) -> None:
    ref, ours = _ref_losses(), _our_losses()
    _compare(
        folder,
        lambda m: ref.MatryoshkaLoss(m, getattr(ref, inner)(m, **inner_kwargs), **kwargs),
        lambda m: ours.MatryoshkaLoss(m, getattr(ours, inner)(m, **inner_kwargs), **kwargs),
        n_columns,
        labels,
    )


def test_matryoshka_loss_restores_the_forward_and_rejects_bad_dims(folder: str) -> None:
    from tests.sentence_transformer.test_losses import COLUMNS, _models

    _, model = _models(folder)
    losses = _our_losses()
    inner = losses.MultipleNegativesRankingLoss(model)
    loss = losses.MatryoshkaLoss(model, inner, [32, 16], n_dims_per_step=1)
    loss([model.preprocess(texts) for texts in COLUMNS[:2]], None).backward()
    assert "forward" not in model.__dict__
    with pytest.raises(ValueError, match="at least one dimension"):
        losses.MatryoshkaLoss(model, inner, [])
    with pytest.raises(ValueError, match="must be > 0"):
        losses.MatryoshkaLoss(model, inner, [32, 0])
    with pytest.raises(ValueError, match="same length as matryoshka_dims"):
        losses.MatryoshkaLoss(model, inner, [32, 16], [1.0])
    with pytest.raises(ValueError, match="cannot exceed the model's embedding dimension of 32"):
        losses.MatryoshkaLoss(model, inner, [64, 32])


def test_bad_inputs_fail_clearly(folder: str) -> None:
    from tests.sentence_transformer.test_losses import COLUMNS, _models

    _, model = _models(folder)
    losses = _our_losses()
    triplets = [model.preprocess(texts) for texts in COLUMNS]
    with pytest.raises(ValueError, match=r"Labels shape torch.Size\(\[4, 3\]\) does not match"):
        losses.MarginMSELoss(model)(triplets, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="DistillKLDivLoss expects at least 3 columns"):
        losses.DistillKLDivLoss(model)(triplets[:2], torch.zeros(4, 1))
    with pytest.raises(ValueError, match=r"expects teacher scores of shape \(batch_size, N\) = \(4, 2\)"):
        losses.DistillKLDivLoss(model)(triplets, torch.zeros(4, 3))
    with pytest.raises(ValueError, match="the teacher scores contain NaN"):
        losses.DistillKLDivLoss(model)(triplets, torch.full((4, 2), float("nan")))
    with pytest.raises(ValueError, match="temperature must be a positive finite number, got 0"):
        losses.DistillKLDivLoss(model, temperature=0)
    for name in BATCH_TRIPLETS:
        with pytest.raises(ValueError, match=rf"{name} expects 4 labels \(one per example\), but got 3"):
            getattr(losses, name)(model)(triplets[:1], torch.tensor([0, 1, 0]))


@pytest.mark.parametrize(
    "name",
    [
        *BATCH_TRIPLETS,
        "BatchHardSoftMarginTripletLoss",
        "DistillKLDivLoss",
        "MarginMSELoss",
        "MatryoshkaLoss",
    ],
)
def test_signatures_match_the_reference(name: str) -> None:
    """Same parameter names, order, kinds and plain defaults (default functions are compared by name)."""
    ref = inspect.signature(getattr(_ref_losses(), name).__init__).parameters
    ours = inspect.signature(getattr(_our_losses(), name).__init__).parameters
    assert list(ours) == list(ref)
    for key, parameter in ours.items():
        assert parameter.kind == ref[key].kind, key
        mine, theirs = parameter.default, ref[key].default
        if isinstance(theirs, (int, float, str, tuple, type(None))):
            assert mine == theirs, key
        elif callable(theirs) and not isinstance(theirs, nn.Module):
            assert mine.__name__ == theirs.__name__, key
        else:
            assert type(mine) is type(theirs), key
