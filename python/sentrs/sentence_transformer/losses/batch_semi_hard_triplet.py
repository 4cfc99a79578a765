"""``BatchSemiHardTripletLoss``: per (anchor, positive) pair, the closest negative that is still farther away than
the positive, among the rows of a labelled batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row
from sentrs.sentence_transformer.losses.batch_hard_triplet import (
    CITATION,
    BatchHardTripletLossDistanceFunction,
    BatchTripletLossBase,
    metric_name,
)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["BatchSemiHardTripletLoss"]


class BatchSemiHardTripletLoss(BatchTripletLossBase):
    """Batch semi-hard triplet loss: for every (anchor, positive) pair of distinct rows with one label,
    ``max(d(a, p) - d(a, n) + margin, 0)`` with ``n`` the closest negative farther than ``d(a, p)`` (or, when there is
    none, the farthest negative), averaged over the pairs.

    Args:
        model: the SentenceTransformer to train.
        distance_metric: all-pairs distance of a ``(batch_size, dim)`` tensor, see
            :class:`BatchHardTripletLossDistanceFunction` (euclidean by default).
        margin: how much closer the positive must be than the negative before a pair stops counting.

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
        - :class:`BatchAllTripletLoss` uses every valid triplet.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import BatchSemiHardTripletLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = BatchSemiHardTripletLoss(model)
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
        self.margin = margin

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the first column's embeddings, ``(batch_size, dim)`` (used by cached wrappers)."""
        return self.batch_semi_hard_triplet_loss(labels, embeddings[0])

    def batch_semi_hard_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """The loss of ``embeddings`` ``(batch_size, dim)`` with one label per row.

        Raises:
            ValueError: there is not exactly one label per row.
        """
        n = embeddings.shape[0]
        labels = check_one_label_per_row(self, labels, n)
        distances = self.distance_metric(embeddings)
        same = labels.unsqueeze(1) == labels.unsqueeze(0)
        # Per anchor row, its negatives' distances in ascending order, then +inf for every same-label row: the first
        # entry above d(a, p) is the semi-hard negative, and +inf means there is none.
        ascending = distances.masked_fill(same, torch.inf).sort(dim=1, stable=True).values
        above = torch.searchsorted(ascending.detach().contiguous(), distances.detach().contiguous(), right=True)
        semi_hard = ascending.gather(1, above.clamp(max=n - 1))
        negative = semi_hard.where(torch.isfinite(semi_hard), _farthest(distances, ~same))
        positives = same.float() - torch.eye(n, device=distances.device)
        losses = torch.relu((distances - negative + self.margin) * positives)
        return losses.sum() / positives.sum().clamp(min=1e-16)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": metric_name(self.distance_metric), "margin": self.margin}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def _farthest(distances: Tensor, negatives: Tensor) -> Tensor:
    """Per row, ``(n, 1)``: the largest distance among its negatives, or the row's smallest distance when it has
    none (the fallback when no negative is farther than the positive)."""
    smallest = distances.min(1, keepdim=True).values
    return ((distances - smallest) * negatives).max(1, keepdim=True).values + smallest
