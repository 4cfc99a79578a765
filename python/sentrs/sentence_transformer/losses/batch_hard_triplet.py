"""``BatchHardTripletLoss`` and ``BatchHardTripletLossDistanceFunction``: per anchor, its farthest positive against
its closest negative, among the rows of a batch of labelled single texts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row, embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["BatchHardTripletLoss", "BatchHardTripletLossDistanceFunction"]


class BatchHardTripletLossDistanceFunction:
    """All-pairs distances of one ``(batch_size, dim)`` tensor, ``(batch_size, batch_size)`` out, for the batch
    triplet losses: ``cosine_distance`` (``1 - cos``) and ``euclidean_distance``. Pass one as ``distance_metric``."""

    @staticmethod
    def cosine_distance(embeddings: Tensor) -> Tensor:
        """``1 - cos_sim`` of every pair of rows."""
        return 1 - cos_sim(embeddings, embeddings)

    @staticmethod
    def euclidean_distance(embeddings: Tensor, squared: bool = False) -> Tensor:
        """Euclidean (or squared euclidean) distance of every pair of rows, from the Gram matrix in float32 or
        wider. Distances that rounding makes negative count as 0, and exact zeros pass no gradient (the square root
        has none there)."""
        with torch.autocast(device_type=embeddings.device.type, enabled=False):
            if embeddings.dtype in (torch.float16, torch.bfloat16):
                embeddings = embeddings.float()
            gram = embeddings @ embeddings.t()
        norms = gram.diagonal()
        squares = norms.unsqueeze(0) - 2.0 * gram + norms.unsqueeze(1)
        squares = torch.where(squares < 0, torch.zeros_like(squares), squares)
        if squared:
            return squares
        zero = squares == 0
        return torch.where(zero, torch.zeros_like(squares), torch.sqrt(torch.where(zero, 1.0, squares)))

    eucledian_distance = euclidean_distance  # the reference's old, misspelled name


class BatchTripletLossBase(nn.Module, ABC):
    """What the batch-triplet losses share: the model under its reference attribute name, the distance function,
    and a forward that embeds the first column and hands it to :meth:`compute_loss_from_embeddings`."""

    def __init__(self, model: SentenceTransformer, distance_metric: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.sentence_embedder = model  # the reference's attribute name, which the parameter names carry
        self.distance_metric = distance_metric

    @property
    def model(self) -> SentenceTransformer:
        """The model being trained."""
        return self.sentence_embedder

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` holds one column (only the first is embedded); ``labels`` one
        class per row."""
        return self.compute_loss_from_embeddings(embed_first_column(self.sentence_embedder, sentence_features), labels)

    @abstractmethod
    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the first column's embeddings, ``(batch_size, dim)`` (used by cached wrappers)."""


class BatchHardTripletLoss(BatchTripletLossBase):
    """Batch-hard triplet loss: for every anchor, ``max(hardest_positive - hardest_negative + margin, 0)``, averaged.

    Every row is an anchor; its positives are the other rows with its label, its negatives the rows with another
    label. The hardest positive is the farthest, the hardest negative the closest.

    Args:
        model: the SentenceTransformer to train.
        distance_metric: all-pairs distance of a ``(batch_size, dim)`` tensor, see
            :class:`BatchHardTripletLossDistanceFunction` (euclidean by default).
        margin: how much closer the hardest positive must be than the hardest negative before an anchor stops
            counting.

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
        - :class:`BatchAllTripletLoss` averages over every valid triplet instead of the hardest ones.
        - :class:`BatchSemiHardTripletLoss` picks semi-hard negatives instead.
        - :class:`BatchHardSoftMarginTripletLoss` needs no margin.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import BatchHardTripletLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = BatchHardTripletLoss(model)
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
        return self.batch_hard_triplet_loss(labels, embeddings[0])

    def batch_hard_triplet_loss(self, labels: Tensor, embeddings: Tensor) -> Tensor:
        """The loss of ``embeddings`` ``(batch_size, dim)`` with one label per row.

        Raises:
            ValueError: there is not exactly one label per row.
        """
        labels = check_one_label_per_row(self, labels, embeddings.shape[0])
        hardest_positive, hardest_negative = hardest_distances(self.distance_metric(embeddings), labels)
        return torch.relu(hardest_positive - hardest_negative + self.triplet_margin).mean()

    @staticmethod
    def get_triplet_mask(labels: Tensor) -> Tensor:
        """``(n, n, n)`` bool: ``[a, p, k]`` is a valid triplet (distinct rows, ``a`` and ``p`` share a label, ``k``
        has another)."""
        distinct = ~torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)
        distinct_rows = distinct.unsqueeze(2) & distinct.unsqueeze(1) & distinct.unsqueeze(0)
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        return same.unsqueeze(2) & ~same.unsqueeze(1) & distinct_rows

    @staticmethod
    def get_anchor_positive_triplet_mask(labels: Tensor) -> Tensor:
        """``(n, n)`` bool: ``[a, p]`` are two distinct rows with the same label."""
        distinct = ~torch.eye(labels.size(0), dtype=torch.bool, device=labels.device)
        return (labels.unsqueeze(0) == labels.unsqueeze(1)) & distinct

    @staticmethod
    def get_anchor_negative_triplet_mask(labels: Tensor) -> Tensor:
        """``(n, n)`` bool: ``[a, k]`` have different labels."""
        return labels.unsqueeze(0) != labels.unsqueeze(1)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"distance_metric": metric_name(self.distance_metric), "margin": self.triplet_margin}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def embed_first_column(model: nn.Module, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
    """The first column's ``sentence_embedding``, as a one-item list (the batch triplet losses take one column)."""
    return embed_columns(model, list(sentence_features)[:1])


def hardest_distances(distances: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per anchor (row of ``distances``, ``(n, n)``), the distance to its farthest positive and to its closest
    negative, ``(n, 1)`` each. An anchor without a positive gets 0; one without a negative gets its row maximum."""
    positive = BatchHardTripletLoss.get_anchor_positive_triplet_mask(labels).float()
    hardest_positive = (positive * distances).max(1, keepdim=True).values
    not_negative = 1.0 - BatchHardTripletLoss.get_anchor_negative_triplet_mask(labels).float()
    pushed_away = distances + distances.max(1, keepdim=True).values * not_negative
    return hardest_positive, pushed_away.min(1, keepdim=True).values


def metric_name(distance_metric: Callable[..., Any]) -> str:
    """How a config names a distance function: its ``__name__``, or its ``str`` for objects without one."""
    return getattr(distance_metric, "__name__", str(distance_metric))


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
