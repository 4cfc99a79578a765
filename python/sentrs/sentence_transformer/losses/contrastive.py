"""``ContrastiveLoss`` and ``SiameseDistanceMetric``: pull similar pairs together, push dissimilar ones apart."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row, embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["ContrastiveLoss", "SiameseDistanceMetric"]


def _euclidean(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=2)


def _manhattan(x: Tensor, y: Tensor) -> Tensor:
    return F.pairwise_distance(x, y, p=1)


def _cosine_distance(x: Tensor, y: Tensor) -> Tensor:
    return 1 - F.cosine_similarity(x, y)


class SiameseDistanceMetric:
    """Row-wise distances of two ``(batch_size, dim)`` tensors, ``(batch_size,)`` out, for the contrastive losses.

    ``EUCLIDEAN`` and ``MANHATTAN`` are ``torch.nn.functional.pairwise_distance`` with p=2 and p=1 (which adds
    1e-6 to the difference), ``COSINE_DISTANCE`` is ``1 - cos``. The attributes are plain functions, as in the
    reference: pass one as ``distance_metric``.
    """

    EUCLIDEAN = _euclidean
    MANHATTAN = _manhattan
    COSINE_DISTANCE = _cosine_distance


def metric_config_name(metric: Callable[..., Any], namespace: type) -> str:
    """``"<Namespace>.<NAME>"`` for one of ``namespace``'s metrics, else the callable's own name (model cards)."""
    for name, value in vars(namespace).items():
        if value is metric:
            return f"{namespace.__name__}.{name}"
    return str(getattr(metric, "__name__", metric))


class ContrastiveLoss(nn.Module):
    """The contrastive loss of Hadsell et al.: small distances for positive pairs, at least ``margin`` for negatives.

    With ``d`` the distance of a pair and ``y`` its label, each pair contributes
    ``0.5 * (y * d^2 + (1 - y) * max(margin - d, 0)^2)``; the loss is their mean (or sum).

    Args:
        model: the SentenceTransformer to train.
        distance_metric: a row-wise distance, see :class:`SiameseDistanceMetric` (cosine distance by default).
        margin: negative pairs farther apart than this add nothing.
        size_average: average over the pairs (True) or sum.

    Requirements:
        1. Sentence pairs with a binary label (1: similar, 0: dissimilar). Other values weigh the two terms, with a
           ``UserWarning`` on the first batch that has them.

    Inputs:
        +--------------------------------+--------+
        | Texts                          | Labels |
        +================================+========+
        | (sentence_A, sentence_B) pairs | 1 or 0 |
        +--------------------------------+--------+

    Relations:
        - :class:`OnlineContrastiveLoss` only uses the hard pairs of a batch, and often trains better.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import ContrastiveLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = ContrastiveLoss(model)
            features = [model.preprocess(["A man eats.", "A cat."]), model.preprocess(["He eats.", "A plane."])]
            loss(features, torch.tensor([1, 0])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        distance_metric: Callable[[Tensor, Tensor], Tensor] = SiameseDistanceMetric.COSINE_DISTANCE,
        margin: float = 0.5,
        size_average: bool = True,
    ) -> None:
        super().__init__()
        self.distance_metric = distance_metric
        self.margin = margin
        self.model = model
        self.size_average = size_average
        self._checked_labels = False

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "distance_metric": metric_config_name(self.distance_metric, SiameseDistanceMetric),
            "margin": self.margin,
            "size_average": self.size_average,
        }

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column, ``labels`` ``(batch_size,)``."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the two columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        labels = check_one_label_per_row(self, labels, embeddings[0].shape[0])
        if not self._checked_labels:
            self._checked_labels = True
            if labels.ne(0).logical_and(labels.ne(1)).any().item():
                warnings.warn(
                    "ContrastiveLoss expects binary labels (0 or 1). Non-binary labels are accepted but are "
                    "used directly to weight the positive term, with 1 - label weighting the negative term.",
                    UserWarning,
                    stacklevel=4,
                )
        if len(embeddings) != 2:
            raise ValueError(f"ContrastiveLoss expects 2 input columns (pairs), got {len(embeddings)}")
        distances = self.distance_metric(embeddings[0], embeddings[1])
        positive = labels.float() * distances.pow(2)
        negative = (1 - labels).float() * F.relu(self.margin - distances).pow(2)
        losses = 0.5 * (positive + negative)
        return losses.mean() if self.size_average else losses.sum()

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{hadsell2006dimensionality,
    author={Hadsell, R. and Chopra, S. and LeCun, Y.},
    booktitle={2006 IEEE Computer Society Conference on Computer Vision and Pattern Recognition (CVPR'06)},
    title={Dimensionality Reduction by Learning an Invariant Mapping},
    year={2006},
    volume={2},
    number={},
    pages={1735-1742},
    doi={10.1109/CVPR.2006.100}
}
"""
