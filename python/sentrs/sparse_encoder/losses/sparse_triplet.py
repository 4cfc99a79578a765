"""``SparseTripletLoss``: the anchor's sparse embedding closer to the positive than to the negative."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.sentence_transformer.losses.triplet import TripletDistanceMetric, TripletLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseTripletLoss"]


class SparseTripletLoss(TripletLoss):
    """:class:`~sentrs.sentence_transformer.losses.TripletLoss` for sparse models:
    ``max(d(anchor, positive) - d(anchor, negative) + triplet_margin, 0)``, averaged.

    A base loss: wrap it in :class:`SpladeLoss` or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        distance_metric: a row-wise distance, see
            :class:`~sentrs.sentence_transformer.losses.TripletDistanceMetric` (euclidean by default).
        triplet_margin: how much closer the positive must be than the negative.

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. (anchor, positive, negative) triplets.

    Inputs:
        +---------------------------------------+--------+
        | Texts                                 | Labels |
        +=======================================+========+
        | (anchor, positive, negative) triplets | none   |
        +---------------------------------------+--------+
    """

    def __init__(
        self,
        model: SparseEncoder,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = TripletDistanceMetric.EUCLIDEAN,
        triplet_margin: float = 5,
    ) -> None:
        super().__init__(model, distance_metric=distance_metric, triplet_margin=triplet_margin)  # type: ignore[arg-type]

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseTripletLoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
