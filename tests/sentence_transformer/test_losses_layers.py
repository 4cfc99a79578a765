"""AdaptiveLayerLoss and Matryoshka2dLoss against the reference's: same value, same gradient on every parameter, same
config and citation (tolerances of ``test_losses``).

The tiny BERT has 2 layers, so the earlier "layers" are the embedding output and the first layer. Layers (and
Matryoshka dimensions) are drawn with ``random``; both libraries draw from the same seed in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from tests.sentence_transformer.test_losses import SCORES, _models, _our_losses, _ref_losses
from tests.sentence_transformer.test_losses_cached import COLUMNS, compare


@pytest.fixture(scope="module")
def folder(make_tiny_st: Callable[..., str]) -> str:
    return make_tiny_st()


def inverse_square(layer: int) -> float:
    return 1.0 / (1 + layer) ** 2


def wrapped(
    outer: str, inner: str, inner_kwargs: dict[str, Any], **kwargs: Any
) -> tuple[Callable[[Any], nn.Module], Callable[[Any], nn.Module]]:
    ref, ours = _ref_losses(), _our_losses()
    return (
        lambda m: getattr(ref, outer)(m, getattr(ref, inner)(m, **inner_kwargs), **kwargs),
        lambda m: getattr(ours, outer)(m, getattr(ours, inner)(m, **inner_kwargs), **kwargs),
    )


ADAPTIVE_CASES = [
    ("MultipleNegativesRankingLoss", 3, None, {}),
    ("MultipleNegativesRankingLoss", 2, None, {"n_layers_per_step": -1, "layer_weighting": "log"}),
    (
        "MultipleNegativesRankingLoss",
        3,
        None,
        {"n_layers_per_step": 2, "layer_weighting": "linear", "kl_temperature": 0},
    ),
    (
        "CoSENTLoss",
        2,
        SCORES,
        {"n_layers_per_step": 0, "last_layer_weight": 2.0, "prior_layers_weight": 0.5, "kl_div_weight": 3.0},
    ),
    ("MultipleNegativesRankingLoss", 3, None, {"n_layers_per_step": -1, "layer_weighting": inverse_square}),
]


@pytest.mark.parametrize(("inner", "n_columns", "labels", "kwargs"), ADAPTIVE_CASES)
def test_adaptive_layer_matches_the_reference(
    folder: str, inner: str, n_columns: int, labels: torch.Tensor | None, kwargs: dict[str, Any]
) -> None:
    columns = [texts[:4] for texts in COLUMNS[:n_columns]]
    compare(_models(folder), *wrapped("AdaptiveLayerLoss", inner, {}, **kwargs), columns, labels)


def test_adaptive_layer_in_train_mode(folder: str) -> None:
    """Dropout runs in the one full forward pass; the earlier layers reuse its hidden states. Two columns: with more,
    sentrs embeds the candidate columns in one pass where the reference embeds each in its own, which draws other
    (equally valid) dropout masks."""
    compare(
        _models(folder),
        *wrapped("AdaptiveLayerLoss", "MultipleNegativesRankingLoss", {}, n_layers_per_step=-1),
        COLUMNS[:2],
        train=True,
    )


MATRYOSHKA_2D_CASES = [
    ("MultipleNegativesRankingLoss", 3, None, {"matryoshka_dims": [32, 16, 8]}),
    (
        "MultipleNegativesRankingLoss",
        2,
        None,
        {"matryoshka_dims": [32, 8], "matryoshka_weights": [1.0, 2.0], "n_dims_per_step": -1, "n_layers_per_step": -1},
    ),
    ("CoSENTLoss", 2, SCORES, {"matryoshka_dims": [32, 16], "n_dims_per_step": 2, "kl_temperature": 0.0}),
]


@pytest.mark.parametrize(("inner", "n_columns", "labels", "kwargs"), MATRYOSHKA_2D_CASES)
def test_matryoshka_2d_matches_the_reference(
    folder: str, inner: str, n_columns: int, labels: torch.Tensor | None, kwargs: dict[str, Any]
) -> None:
    columns = [texts[:4] for texts in COLUMNS[:n_columns]]
    for seed in (0, 1):  # other draws of layers and dimensions
        compare(_models(folder), *wrapped("Matryoshka2dLoss", inner, {}, **kwargs), columns, labels, seed=seed)


def test_adaptive_layer_puts_the_forwards_back(folder: str) -> None:
    _, model = _models(folder)
    losses = _our_losses()
    loss = losses.Matryoshka2dLoss(model, losses.MultipleNegativesRankingLoss(model), [32, 16])
    loss([model.preprocess(texts) for texts in COLUMNS[:2]], None).backward()
    assert "forward" not in model.__dict__
    assert "forward" not in model[0].__dict__
    assert model[0].auto_model.config.output_hidden_states is False


def test_adaptive_layer_bad_arguments_fail_clearly(folder: str) -> None:
    _, model = _models(folder)
    losses = _our_losses()
    inner = losses.MultipleNegativesRankingLoss(model)
    with pytest.raises(ValueError, match="layer_weighting must be .* but got 'cubic'"):
        losses.AdaptiveLayerLoss(model, inner, layer_weighting="cubic")
    with pytest.raises(TypeError, match="AdaptiveLayerLoss could not unwrap Linear to a sentrs model"):
        losses.AdaptiveLayerLoss(nn.Linear(2, 2), inner)
    with pytest.raises(ValueError, match=r"Dimensions in matryoshka_dims cannot exceed .* dimension of 32"):
        losses.Matryoshka2dLoss(model, inner, [64, 32])
    with pytest.warns(
        UserWarning, match="AdaptiveLayerLoss is not compatible with CachedMultipleNegativesRankingLoss"
    ):
        losses.AdaptiveLayerLoss(model, losses.CachedMultipleNegativesRankingLoss(model))
