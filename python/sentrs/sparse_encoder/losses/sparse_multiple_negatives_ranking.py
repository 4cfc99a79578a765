"""``SparseMultipleNegativesRankingLoss``: in-batch negatives (InfoNCE) scored with the dot product, for SPLADE."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.base.similarity import dot_score
from sentrs.sentence_transformer.losses.multiple_negatives_ranking import (
    Direction,
    HardnessMode,
    MultipleNegativesRankingLoss,
    PartitionMode,
)

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseMultipleNegativesRankingLoss"]


class SparseMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """:class:`~sentrs.sentence_transformer.losses.MultipleNegativesRankingLoss` with the sparse defaults: the dot
    product and ``scale=1.0`` (SPLADE scores are unnormalised).

    Each query must score its own document above every other document of the batch (and above its hard negatives,
    the extra columns). ``directions``, ``partition_mode`` and hardness weighting work as in the dense loss. It is a
    base loss: wrap it in :class:`SpladeLoss` or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        scale: multiplies the scores (an inverse temperature).
        similarity_fct: score matrix of ``(n, dim)`` and ``(m, dim)`` tensors; dot product by default.
        gather_across_devices: gather the embeddings of every process first (more negatives under DDP).
        directions: the interaction terms, a subset of ``query_to_doc`` (required), ``query_to_query``,
            ``doc_to_query`` and ``doc_to_doc``.
        partition_mode: ``joint`` (one softmax over every direction) or ``per_direction`` (averaged).
        hardness_mode: None, ``in_batch_negatives``, ``hard_negatives`` or ``all_negatives``: whose logits get
            ``hardness_strength * similarity`` (without gradient) added.
        hardness_strength: the strength of that weighting (>= 0).

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. (anchor, positive) pairs or (anchor, positive, negative_1, ..., negative_n) tuples.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative) triplets           | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Example:
        ::

            from sentrs import SparseEncoder
            from sentrs.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

            model = SparseEncoder("naver/splade-cocondenser-ensembledistil")
            loss = SpladeLoss(
                model,
                SparseMultipleNegativesRankingLoss(model),
                document_regularizer_weight=3e-5,
                query_regularizer_weight=5e-5,
            )
    """

    def __init__(
        self,
        model: SparseEncoder,
        scale: float = 1.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = dot_score,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: PartitionMode = "joint",
        hardness_mode: HardnessMode | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__(
            model,  # type: ignore[arg-type]
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=directions,
            partition_mode=partition_mode,
            hardness_mode=hardness_mode,
            hardness_strength=hardness_strength,
        )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError(
            "SparseMultipleNegativesRankingLoss should not be used alone. Use it with SpladeLoss or CSRLoss."
        )
