"""``SparseAnglELoss``: :class:`SparseCoSENTLoss` scored with the angle similarity of AnglE."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.base.similarity import pairwise_angle_sim
from sentrs.sparse_encoder.losses.sparse_cosent import SparseCoSENTLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseAnglELoss"]


class SparseAnglELoss(SparseCoSENTLoss):
    """:class:`SparseCoSENTLoss` with :func:`~sentrs.util.pairwise_angle_sim`, which keeps a useful gradient where
    the cosine saturates near 1 or -1.

    As in the reference, this is the CoSENT objective on pairs only (two columns and a score per pair); building it
    sets the model's ``similarity_fn_name`` to ``"cosine"``. A base loss: wrap it in :class:`SpladeLoss` or
    :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        scale: multiplies the scores (an inverse temperature).

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. Pairs with a similarity score.

    Inputs:
        +--------------------------------+------------------------+
        | Texts                          | Labels                 |
        +================================+========================+
        | (sentence_A, sentence_B) pairs | float similarity score |
        +--------------------------------+------------------------+

    Relations:
        - :class:`SparseCoSENTLoss` is the same loss with the cosine similarity.
    """

    def __init__(self, model: SparseEncoder, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseAnglELoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
