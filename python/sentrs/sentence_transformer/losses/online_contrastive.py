"""``OnlineContrastiveLoss``: the contrastive loss on the hard pairs of each batch only."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row, embed_columns
from sentrs.sentence_transformer.losses.contrastive import SiameseDistanceMetric, metric_config_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["OnlineContrastiveLoss"]


class OnlineContrastiveLoss(nn.Module):
    """:class:`ContrastiveLoss` restricted to hard pairs: positives farther apart than the closest negative, and
    negatives closer than the farthest positive.

    The loss is ``sum(d^2)`` over the hard positive pairs plus ``sum(max(margin - d, 0)^2)`` over the hard negative
    pairs (a sum, not a mean). A batch without positives compares the negatives with their mean distance, and the
    other way round.

    Args:
        model: the SentenceTransformer to train.
        distance_metric: a row-wise distance, see :class:`SiameseDistanceMetric` (cosine distance by default).
        margin: negative pairs farther apart than this add nothing.

    Requirements:
        1. Sentence pairs with a binary label (1: similar, 0: dissimilar); pairs with other labels are ignored (with
           a ``UserWarning`` on the first batch that has them).

    Inputs:
        +--------------------------------+--------+
        | Texts                          | Labels |
        +================================+========+
        | (sentence_A, sentence_B) pairs | 1 or 0 |
        +--------------------------------+--------+

    Relations:
        - :class:`ContrastiveLoss` uses every pair of the batch.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import OnlineContrastiveLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = OnlineContrastiveLoss(model)
            features = [model.preprocess(["A man eats.", "A cat."]), model.preprocess(["He eats.", "A plane."])]
            loss(features, torch.tensor([1, 0])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
    ) -> None:
        super().__init__()
        self.model = model
        self.margin = margin
        self.distance_metric = distance_metric
        self._checked_labels = False

    def forward(
        self, sentence_features: Iterable[dict[str, Any]], labels: Tensor, size_average: bool = False
    ) -> Tensor:
        """The loss of a batch: one features dict per column, ``labels`` ``(batch_size,)``.

        ``size_average`` is accepted for compatibility and has no effect (the loss is always a sum), as in the
        reference.
        """
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the two columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        labels = check_one_label_per_row(self, labels, embeddings[0].shape[0])
        if not self._checked_labels:
            self._checked_labels = True
            if labels.ne(0).logical_and(labels.ne(1)).any().item():
                warnings.warn(
                    "OnlineContrastiveLoss expects binary labels (0 or 1). Pairs with any other label are ignored, "
                    "since they match neither the positive nor the negative set.",
                    UserWarning,
                    stacklevel=4,
                )
        distances = self.distance_metric(embeddings[0], embeddings[1])
        negatives = distances[labels == 0]
        positives = distances[labels == 1]
        # A negative is hard when it is closer than some positive; a positive when it is farther than some negative.
        negative_bound = positives.max() if len(positives) else negatives.mean()
        positive_bound = negatives.min() if len(negatives) else positives.mean()
        hard_negatives = negatives[negatives < negative_bound]
        hard_positives = positives[positives > positive_bound]
        return hard_positives.pow(2).sum() + F.relu(self.margin - hard_negatives).pow(2).sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "distance_metric": metric_config_name(self.distance_metric, SiameseDistanceMetric),
            "margin": self.margin,
        }
