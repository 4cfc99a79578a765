"""``BatchHardSoftMarginTripletLoss``: the batch-hard triplet loss with a softplus in place of the margin."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor

from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row
from sentrs.sentence_transformer.losses.batch_hard_triplet import (
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    hardest_distances,
    metric_name,
)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["BatchHardSoftMarginTripletLoss"]


class BatchHardSoftMarginTripletLoss(BatchHardTripletLoss):
    """Batch-hard triplet loss without a margin: ``softplus(hardest_positive - hardest_negative)`` per anchor,
    averaged (see :class:`BatchHardTripletLoss` for the hardest positive and negative).

    Args:
        model: the SentenceTransformer to train.
        distance_metric: all-pairs distance of a ``(batch_size, dim)`` tensor, see
            :class:`BatchHardTripletLossDistanceFunction` (euclidean by default).

    Requirements:
        1. Each text has a class label (an integer).
        2. Batches with at least 2 labels, each on at least 2 rows (group the batches by label).

    Inputs:
        +---------------+--------+
        | Texts         | Labels |
        +===============+========+
        | single inputs | class  |
        +---------------+--------+

    Relations:
        - :class:`BatchHardTripletLoss` uses a hinge with a margin instead.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import BatchHardSoftMarginTripletLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = BatchHardSoftMarginTripletLoss(model)
            texts = ["A man eats.", "Someone is eating.", "A plane takes off.", "A jet departs."]
            loss([model.preprocess(texts)], torch.tensor([0, 0, 1, 1])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: Callable[[Tensor], Tensor] = BatchHardTripletLossDistanceFunction.euclidean_distance,
    ) -> None:
        super().__init__(model, distance_metric=distance_metric)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the first column's embeddings, ``(batch_size, dim)`` (used by cached wrappers)."""
        return self.batch_hard_triplet_soft_margin_loss(labels, embeddings[0])

    def batch_hard_triplet_soft_margin_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """The loss of ``embeddings`` ``(batch_size, dim)`` with one label per row.

        Raises:
            ValueError: there is not exactly one label per row.
        """
        labels = check_one_label_per_row(self, labels, embeddings.shape[0])
        hardest_positive, hardest_negative = hardest_distances(self.distance_metric(embeddings), labels)
        return F.softplus(hardest_positive - hardest_negative).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": metric_name(self.distance_metric)}
