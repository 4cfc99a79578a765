"""``MultipleNegativesSymmetricRankingLoss`` (deprecated): the symmetric form of MultipleNegativesRankingLoss."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import Tensor

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MultipleNegativesSymmetricRankingLoss"]


class MultipleNegativesSymmetricRankingLoss(MultipleNegativesRankingLoss):
    """Deprecated: :class:`MultipleNegativesRankingLoss` with ``directions=("query_to_doc", "doc_to_query")`` and
    ``partition_mode="per_direction"``, which is what this class builds (with a ``DeprecationWarning``).

    The loss averages two cross-entropies: each anchor must find its positive among the batch's positives, and each
    positive must find its anchor among the batch's anchors. Hard-negative columns only add documents to the first.

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the similarities (``1 / temperature``). Must be positive.
        similarity_fct: ``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` scores; cosine by default.
        gather_across_devices: in a ``torch.distributed`` job, use the rows of every process as negatives.

    Requirements:
        1. (anchor, positive) pairs.

    Inputs:
        +--------------------------+--------+
        | Texts                    | Labels |
        +==========================+========+
        | (anchor, positive) pairs | none   |
        +--------------------------+--------+

    Relations:
        - :class:`MultipleNegativesRankingLoss` with the arguments above replaces it.

    Example:
        ::

            from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

            loss = MultipleNegativesRankingLoss(
                model, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
            )
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        gather_across_devices: bool = False,
    ) -> None:
        warnings.warn(
            "The MultipleNegativesSymmetricRankingLoss is deprecated and will be removed in a future release. "
            "Please use MultipleNegativesRankingLoss with `directions=('query_to_doc', 'doc_to_query')` and "
            "`partition_mode='per_direction'` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
        )
