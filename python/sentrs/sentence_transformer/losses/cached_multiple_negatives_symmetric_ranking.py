"""``CachedMultipleNegativesSymmetricRankingLoss`` (deprecated): the symmetric form of the cached ranking loss."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import Tensor

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["CachedMultipleNegativesSymmetricRankingLoss"]


class CachedMultipleNegativesSymmetricRankingLoss(CachedMultipleNegativesRankingLoss):
    """Deprecated: :class:`CachedMultipleNegativesRankingLoss` with ``directions=("query_to_doc", "doc_to_query")``
    and ``partition_mode="per_direction"``, which is what this class builds (with a ``DeprecationWarning``).

    The loss averages two cross-entropies: each anchor must find its positive among the batch's positives, and each
    positive must find its anchor among the batch's anchors; computed with gradient caching.

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the similarities (``1 / temperature``). Must be positive.
        similarity_fct: ``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` scores; cosine by default.
        mini_batch_size: texts per forward pass (and rows per loss chunk).
        mini_batch_num_tokens: when set, forward passes are packed by token count instead.
        gather_across_devices: in a ``torch.distributed`` job, use the rows of every process as negatives.
        show_progress_bar: show tqdm bars over the mini-batches.

    Requirements:
        1. (anchor, positive) pairs.

    Inputs:
        +--------------------------+--------+
        | Texts                    | Labels |
        +==========================+========+
        | (anchor, positive) pairs | none   |
        +--------------------------+--------+

    Relations:
        - :class:`CachedMultipleNegativesRankingLoss` with the arguments above replaces it.
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        show_progress_bar: bool = False,
    ) -> None:
        warnings.warn(
            "The CachedMultipleNegativesSymmetricRankingLoss is deprecated and will be removed in a future release. "
            "Please use CachedMultipleNegativesRankingLoss with `directions=('query_to_doc', 'doc_to_query')` and "
            "`partition_mode='per_direction'` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            mini_batch_size=mini_batch_size,
            mini_batch_num_tokens=mini_batch_num_tokens,
            gather_across_devices=gather_across_devices,
            directions=("query_to_doc", "doc_to_query"),
            partition_mode="per_direction",
            show_progress_bar=show_progress_bar,
        )
