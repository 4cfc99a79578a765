"""``Matryoshka2dLoss``: MatryoshkaLoss inside AdaptiveLayerLoss, embeddings that work cut in both directions (fewer
dimensions and fewer layers)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from sentrs.sentence_transformer.losses.adaptive_layer import AdaptiveLayerLoss, LayerWeighting
from sentrs.sentence_transformer.losses.matryoshka import MatryoshkaLoss

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["Matryoshka2dLoss"]


class Matryoshka2dLoss(AdaptiveLayerLoss):
    """2D Matryoshka: :class:`AdaptiveLayerLoss` around :class:`MatryoshkaLoss` around ``loss``, so that each step
    trains some truncated dimensions (``n_dims_per_step`` of ``matryoshka_dims``) at the last layer and at some
    earlier layers (``n_layers_per_step``), with the KL term between the layers' embeddings.

    Args:
        model: the SentenceTransformer to train; its first module must be a Transformer.
        loss: the loss to apply (built on the same ``model``), e.g. :class:`MultipleNegativesRankingLoss`.
        matryoshka_dims: the dimensions to train; include the model's full dimension.
        matryoshka_weights: one weight per dimension; 1 each by default.
        n_layers_per_step: earlier layers drawn per step; 0 or less for all.
        n_dims_per_step: dimensions drawn per step; -1 for all.
        last_layer_weight: weight of the last layer's loss.
        prior_layers_weight: weight of the earlier layers' losses.
        kl_div_weight: weight of the KL term between the last and the earlier layers' embeddings.
        kl_temperature: temperature of that KL term (0 leaves it out).
        layer_weighting: per-layer weight, as in :class:`AdaptiveLayerLoss`.

    Raises:
        ValueError: a dimension is invalid (see :class:`MatryoshkaLoss`) or an AdaptiveLayerLoss argument is.

    Requirements:
        1. Whatever ``loss`` requires; the model's first module is a Transformer.

    Inputs:
        +-------+--------+
        | Texts | Labels |
        +=======+========+
        | any   | any    |
        +-------+--------+

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import Matryoshka2dLoss, MultipleNegativesRankingLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = Matryoshka2dLoss(model, MultipleNegativesRankingLoss(model), [384, 256, 128, 64])
    """

    def __init__(
        self,
        model: SentenceTransformer,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | Sequence[int] | None = None,
        n_layers_per_step: int = 1,
        n_dims_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: LayerWeighting | Callable[[int], float] = "uniform",
    ) -> None:
        matryoshka = MatryoshkaLoss(
            model, loss, matryoshka_dims, matryoshka_weights=matryoshka_weights, n_dims_per_step=n_dims_per_step
        )
        super().__init__(
            model,
            matryoshka,
            n_layers_per_step=n_layers_per_step,
            last_layer_weight=last_layer_weight,
            prior_layers_weight=prior_layers_weight,
            kl_div_weight=kl_div_weight,
            kl_temperature=kl_temperature,
            layer_weighting=layer_weighting,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The arguments of both halves, for the model card (``loss`` names the innermost loss)."""
        matryoshka: Any = self.loss
        return {**super().get_config_dict(), **matryoshka.get_config_dict()}
