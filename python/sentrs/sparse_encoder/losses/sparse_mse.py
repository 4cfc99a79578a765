"""``SparseMSELoss``: mean squared error between the sparse student's embeddings and a teacher's."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs.sentence_transformer.losses.mse import MSELoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseMSELoss"]


class SparseMSELoss(MSELoss):
    """:class:`~sentrs.sentence_transformer.losses.MSELoss` for sparse models: the mean squared error between the
    model's embedding of each column and the teacher's embedding given as the label.

    Unlike the other sparse losses it is used on its own (no regularizer), typically to distil a sparse teacher
    into a student or to carry a sparse model to new languages.

    Args:
        model: the SparseEncoder to train.

    Requirements:
        1. The teacher's embeddings as labels, ``(batch_size, vocab)`` for every column or
           ``(batch_size, n_columns, vocab)``.

    Inputs:
        +-----------------------------------------+-----------------------------+
        | Texts                                   | Labels                      |
        +=========================================+=============================+
        | text                                    | teacher embeddings          |
        +-----------------------------------------+-----------------------------+
        | text_1, text_2, ..., text_n             | teacher embeddings          |
        +-----------------------------------------+-----------------------------+

    Relations:
        - :class:`SparseMarginMSELoss` regresses score margins instead.

    Example:
        ::

            from sentrs import SparseEncoder
            from sentrs.sparse_encoder.losses import SparseMSELoss

            student = SparseEncoder("prithivida/Splade_PP_en_v1")
            teacher = SparseEncoder("naver/splade-cocondenser-ensembledistil")
            english, french = ["The first sentence"], ["La première phrase"]
            targets = teacher.encode(english, convert_to_sparse_tensor=False)
            loss = SparseMSELoss(student)
            loss([student.preprocess(english), student.preprocess(french)], targets).backward()
    """

    def __init__(self, model: SparseEncoder) -> None:
        super().__init__(model)  # type: ignore[arg-type]
