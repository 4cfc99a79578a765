"""``BatchAllTripletLoss``: every valid (anchor, positive, negative) triplet among the rows of a labelled batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row
from sentrs.sentence_transformer.losses.batch_hard_triplet import (
    CITATION,
    BatchHardTripletLoss,
    BatchHardTripletLossDistanceFunction,
    BatchTripletLossBase,
    metric_name,
)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["BatchAllTripletLoss"]


class BatchAllTripletLoss(BatchTripletLossBase):
    """Batch-all triplet loss: ``max(d(a, p) - d(a, n) + margin, 0)`` over every valid triplet of rows, summed and
    divided by the number of triplets that still count (loss above zero).

    Args:
        model: the SentenceTransformer to train.
        distance_metric: all-pairs distance of a ``(batch_size, dim)`` tensor, see
            :class:`BatchHardTripletLossDistanceFunction` (euclidean by default).
        margin: how much closer the positive must be than the negative before a triplet stops counting.

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
        - :class:`BatchHardTripletLoss` uses only the hardest positive and negative of each anchor.
        - :class:`BatchSemiHardTripletLoss` uses only semi-hard negatives.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import BatchAllTripletLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = BatchAllTripletLoss(model)
            texts = ["A man eats.", "Someone is eating.", "A plane takes off.", "A jet departs."]
            loss([model.preprocess(texts)], torch.tensor([0, 0, 1, 1])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: Callable[[Tensor], Tensor] = BatchHardTripletLossDistanceFunction.euclidean_distance,
        margin: float = 5,
    ) -> None:
        super().__init__(model, distance_metric)
        self.triplet_margin = margin

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the first column's embeddings, ``(batch_size, dim)`` (used by cached wrappers)."""
        return self.batch_all_triplet_loss(labels, embeddings[0])

    def batch_all_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """The loss of ``embeddings`` ``(batch_size, dim)`` with one label per row.

        Raises:
            ValueError: there is not exactly one label per row.
        """
        labels = check_one_label_per_row(self, labels, embeddings.shape[0])
        distances = self.distance_metric(embeddings)
        # One row per (anchor, positive) pair, one column per candidate negative: (n_pairs, batch_size).
        anchors, positives = BatchHardTripletLoss.get_anchor_positive_triplet_mask(labels).nonzero(as_tuple=True)
        margins = distances[anchors, positives].unsqueeze(1) - distances[anchors] + self.triplet_margin
        is_negative = labels[anchors].unsqueeze(1) != labels.unsqueeze(0)
        losses = torch.relu(margins) * is_negative.float()
        counting = int((losses > 1e-16).sum())
        return losses.sum() / (counting + 1e-16)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": metric_name(self.distance_metric), "margin": self.triplet_margin}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION
