"""``TripletLoss`` and ``TripletDistanceMetric``: the anchor closer to the positive than to the negative."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.similarity import pairwise_cos_sim, pairwise_euclidean_sim, pairwise_manhattan_sim
from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.sentence_transformer.losses.contrastive import metric_config_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["TripletDistanceMetric", "TripletLoss"]


def _cosine(x: Tensor, y: Tensor) -> Tensor:
    return 1 - pairwise_cos_sim(x, y)


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return -pairwise_euclidean_sim(x, y)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return -pairwise_manhattan_sim(x, y)


class TripletDistanceMetric:
    """Row-wise distances of two ``(batch_size, dim)`` tensors, ``(batch_size,)`` out, for :class:`TripletLoss`:
    ``COSINE`` (``1 - cos``), ``EUCLIDEAN`` and ``MANHATTAN``. The attributes are plain functions, as in the
    reference: pass one as ``distance_metric``."""

    COSINE = _cosine
    EUCLIDEAN = _euclidean
    MANHATTAN = _manhattan


class TripletLoss(nn.Module):
    """The triplet loss: ``max(d(anchor, positive) - d(anchor, negative) + triplet_margin, 0)``, averaged.

    Args:
        model: the SentenceTransformer to train.
        distance_metric: a row-wise distance, see :class:`TripletDistanceMetric` (euclidean by default).
        triplet_margin: how much closer the positive must be than the negative before a triplet stops counting.

    Requirements:
        1. (anchor, positive, negative) triplets.

    Inputs:
        +---------------------------------------+--------+
        | Texts                                 | Labels |
        +=======================================+========+
        | (anchor, positive, negative) triplets | none   |
        +---------------------------------------+--------+

    Relations:
        - :class:`MultipleNegativesRankingLoss` uses the other rows as negatives too, and usually trains better on
          the same triplets.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import TripletLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = TripletLoss(model)
            columns = [["A man eats."], ["Someone is eating."], ["A plane takes off."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = TripletDistanceMetric.EUCLIDEAN,
        triplet_margin: float = 5,
    ) -> None:
        super().__init__()
        self.model = model
        self.distance_metric = distance_metric
        self.triplet_margin = triplet_margin

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` are unused."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the three columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        if len(embeddings) != 3:
            raise ValueError(
                f"TripletLoss expects 3 input columns (anchor, positive, negative), got {len(embeddings)}"
            )
        anchors, positives, negatives = embeddings
        margins = self.distance_metric(anchors, positives) - self.distance_metric(anchors, negatives)
        return F.relu(margins + self.triplet_margin).mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "distance_metric": metric_config_name(self.distance_metric, TripletDistanceMetric),
            "triplet_margin": self.triplet_margin,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@misc{hermans2017defense,
    title={In Defense of the Triplet Loss for Person Re-Identification},
    author={Alexander Hermans and Lucas Beyer and Bastian Leibe},
    year={2017},
    eprint={1703.07737},
    archivePrefix={arXiv},
    primaryClass={cs.CV}
}
"""
