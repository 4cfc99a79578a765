"""``SparseDistillKLDivLoss``: KL divergence between the teacher's and the sparse student's score distributions."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor

from sentrs.base.similarity import pairwise_dot_score
from sentrs.sentence_transformer.losses.distill_kl_div import DistillKLDivLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseDistillKLDivLoss"]


class SparseDistillKLDivLoss(DistillKLDivLoss):
    """:class:`~sentrs.sentence_transformer.losses.DistillKLDivLoss` for sparse models: dot-product scores and a
    softer default temperature of 2.0, which keeps the student from collapsing to no active dimensions.

    For each query the student's scores of its candidates go through a log-softmax, the teacher's through a softmax,
    and the loss is their KL divergence (times ``student_temperature ** 2``). A base loss: wrap it in
    :class:`SpladeLoss` or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train (the student).
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors; dot product by default.
        temperature: divides both sides' scores before the softmax (higher: softer distributions).
        student_temperature: the student side's temperature instead of ``temperature``.
        teacher_temperature: the teacher side's temperature instead of ``temperature``; keep it near the spread
            of the teacher's scores, or the target collapses to one-hot.

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. (query, positive, negative_1, ..., negative_n) rows.
        3. The teacher's score of every candidate as the labels.

    Inputs:
        +------------------------------------------------+-----------------------------------------------------+
        | Texts                                          | Labels                                              |
        +================================================+=====================================================+
        | (query, positive, negative)                    | ``[T(query, positive), T(query, negative)]``        |
        +------------------------------------------------+-----------------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | ``[T(query, positive), T(query, negative_i), ...]`` |
        +------------------------------------------------+-----------------------------------------------------+

    Relations:
        - :class:`SparseMarginMSELoss` regresses the margins instead.
    """

    def __init__(
        self,
        model: SparseEncoder,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score,
        temperature: float = 2.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__(
            model,  # type: ignore[arg-type]
            similarity_fct=similarity_fct,
            temperature=temperature,
            student_temperature=student_temperature,
            teacher_temperature=teacher_temperature,
        )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseDistillKLDivLoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
