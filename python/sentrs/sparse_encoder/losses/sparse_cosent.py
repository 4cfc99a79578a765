"""``SparseCoSENTLoss``: learn the order of similarity labels over all pairs of a batch, for sparse models."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.base.similarity import pairwise_cos_sim
from sentrs.sentence_transformer.losses.cosent import CoSENTLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseCoSENTLoss"]


class SparseCoSENTLoss(CoSENTLoss):
    """:class:`~sentrs.sentence_transformer.losses.CoSENTLoss` for sparse models: with ``s_i = scale * sim(u_i,
    v_i)``, ``log(1 + sum over label_i < label_j of exp(s_i - s_j))``.

    Building the loss sets the model's ``similarity_fn_name`` to ``"cosine"``, the similarity it trains. A base
    loss: wrap it in :class:`SpladeLoss` (usually with ``use_document_regularizer_only=True``) or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        scale: multiplies the scores (an inverse temperature).
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors; cosine by default.

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. Pairs with a similarity score (only the order of the scores matters).

    Inputs:
        +--------------------------------+------------------------+
        | Texts                          | Labels                 |
        +================================+========================+
        | (sentence_A, sentence_B) pairs | float similarity score |
        +--------------------------------+------------------------+

    Relations:
        - :class:`SparseAnglELoss` is this loss with the angle similarity.
    """

    def __init__(
        self,
        model: SparseEncoder,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_cos_sim,
    ) -> None:
        model.similarity_fn_name = "cosine"
        super().__init__(model, scale=scale, similarity_fct=similarity_fct)  # type: ignore[arg-type]

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseCoSENTLoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
