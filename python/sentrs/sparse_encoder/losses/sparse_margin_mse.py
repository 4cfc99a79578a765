"""``SparseMarginMSELoss``: score margins of the sparse student regressed onto a teacher's (dot product)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.base.similarity import pairwise_dot_score
from sentrs.sentence_transformer.losses.margin_mse import MarginMSELoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseMarginMSELoss"]


class SparseMarginMSELoss(MarginMSELoss):
    """:class:`~sentrs.sentence_transformer.losses.MarginMSELoss` for sparse models: the mean squared error between
    ``sim(query, doc_1) - sim(query, doc_i)`` and the gold margins, with the dot product by default.

    A base loss: wrap it in :class:`SpladeLoss` or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors; dot product by default.

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. (query, document_1, document_2) triplets or (query, positive, negative_1, ..., negative_n).
        3. Gold margins or scores, usually from a teacher model.

    Inputs:
        +------------------------------------------------+--------------------------------------------------------+
        | Texts                                          | Labels                                                 |
        +================================================+========================================================+
        | (query, document_1, document_2)                | margin ``M(q, d_1) - M(q, d_2)``, ``(batch_size,)``    |
        +------------------------------------------------+--------------------------------------------------------+
        | (query, document_1, document_2)                | scores ``[M(q, d_1), M(q, d_2)]``, ``(batch_size, 2)`` |
        +------------------------------------------------+--------------------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | margins to each negative, ``(batch_size, n)``          |
        +------------------------------------------------+--------------------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | scores of every document, ``(batch_size, n + 1)``      |
        +------------------------------------------------+--------------------------------------------------------+

    Relations:
        - :class:`SparseMSELoss` regresses embeddings instead of margins.
        - :class:`SparseDistillKLDivLoss` matches the teacher's score distribution.
    """

    def __init__(
        self, model: SparseEncoder, similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score
    ) -> None:
        super().__init__(model, similarity_fct=similarity_fct)  # type: ignore[arg-type]

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseMarginMSELoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
