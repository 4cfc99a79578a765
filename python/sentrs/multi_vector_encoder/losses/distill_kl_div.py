"""``MultiVectorDistillKLDivLoss``: a late-interaction student's softmax over candidate documents matches a teacher's
(KL divergence)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.tensors import stack_padded_token_embeddings
from sentrs.multi_vector_encoder.losses.multiple_negatives_ranking import (
    check_optional_positive_int,
    check_positive_number,
    copy_columns,
    embed_documents,
    embed_queries,
    resolve_similarity_fct,
)
from sentrs.multi_vector_encoder.scoring import colbert_kd_scores
from sentrs.sentence_transformer.losses._gradcache import batch_size_of
from sentrs.util.misc import check_teacher_targets, similarity_fct_name

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorDistillKLDivLoss"]


class MultiVectorDistillKLDivLoss(nn.Module):
    """KL divergence from a teacher's distribution over each query's candidate documents to a
    :class:`~sentrs.MultiVectorEncoder` student's, scaled by ``student_temperature**2``.

    Every row holds a query and N candidate documents (typically a positive and mined negatives) with the teacher's
    score for each. The student scores the query's token embeddings against each candidate's (MaxSim by default);
    both sides' scores go through a softmax over the N candidates at their temperature, and the loss is the
    batch-mean KL divergence between the two distributions.

    Args:
        model: the MultiVectorEncoder to train (the student).
        similarity_fct: scores queries ``(batch, query_tokens, dim)`` against their own candidates
            ``(batch, N, doc_tokens, dim)``, with the keyword arguments ``queries_mask`` and ``documents_mask``, into
            ``(batch, N)`` scores. Default :func:`~sentrs.multi_vector_encoder.scoring.colbert_kd_scores` (MaxSim);
            :class:`~sentrs.multi_vector_encoder.scoring.XTRKDScores` scores the XTR way.
        temperature: divides both sides' scores; higher is softer. 1.0 leaves them as they are.
        student_temperature: the student's own temperature, in place of ``temperature``. The loss is multiplied by
            its square, which keeps gradients comparable for temperatures of 1.0 and above; below that the loss and
            its gradient shrink (weigh the loss up when combining it with others).
        teacher_temperature: the teacher's own temperature, in place of ``temperature``. Pick it from the spread of the
            teacher's scores: once a row's spread over the temperature passes about 100, a float32 softmax gives exact
            zeros and those candidates stop counting (a warning says so on the first batch).
        mini_batch_size: at most this many texts per forward pass of the candidate columns (each chunk only as wide as
            its longest text); None (default) embeds them in one pass. The loss does not change.

    Raises:
        ValueError: a temperature is not a positive finite number, or ``mini_batch_size`` is not a positive integer.

    Requirements:
        1. (query, document_1, ..., document_N) rows with N >= 2 (a softmax over one candidate is constant).
        2. The teacher's score of each (query, document_i) pair as the labels, ``(batch_size, N)``.

    Inputs:
        +--------------------------------------+----------------------------------------------------+
        | Texts                                | Labels                                             |
        +======================================+====================================================+
        | (query, document_1, ..., document_N) | ``[T(query, document_i) for i in 1..N]``, ``(N,)`` |
        +--------------------------------------+----------------------------------------------------+

    Relations:
        - :class:`MultiVectorMarginMSELoss` distills the same teacher scores as margins, with a mean squared error.
        - :class:`~sentrs.sentence_transformer.losses.DistillKLDivLoss` is the single-vector loss.

    Example:
        ::

            import torch
            from sentrs import MultiVectorEncoder
            from sentrs.multi_vector_encoder.losses import MultiVectorDistillKLDivLoss

            model = MultiVectorEncoder("lightonai/GTE-ModernColBERT-v1")
            loss = MultiVectorDistillKLDivLoss(model, temperature=0.25)
            query = model.preprocess(["Who wrote Hamlet?"], task="query")
            positive = model.preprocess(["Hamlet is a tragedy by William Shakespeare."], task="document")
            negative = model.preprocess(["Macbeth is set in Scotland."], task="document")
            loss([query, positive, negative], torch.tensor([[9.5, 2.0]])).backward()
    """

    def __init__(
        self,
        model: MultiVectorEncoder,
        *,
        similarity_fct: Callable[..., Tensor] | None = None,
        temperature: float = 1.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = resolve_similarity_fct(similarity_fct, colbert_kd_scores)
        self.temperature = temperature
        self.student_temperature = temperature if student_temperature is None else student_temperature
        self.teacher_temperature = temperature if teacher_temperature is None else teacher_temperature
        for name in ("temperature", "student_temperature", "teacher_temperature"):
            check_positive_number(name, getattr(self, name), finite=True)
        check_optional_positive_int("mini_batch_size", mini_batch_size)
        self.mini_batch_size = mini_batch_size
        # The teacher's side enters as log-probabilities, as in the reference (the same float32 math).
        self.loss_function = nn.KLDivLoss(reduction="batchmean", log_target=True)
        self._checked_teacher_scale = False

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column (the query column first);
        ``labels`` the teacher's scores, ``(batch_size, N)`` for N candidate columns.

        Raises:
            ValueError: fewer than 3 columns, columns with different numbers of rows, teacher scores that are missing
                or of the wrong shape, or teacher scores with NaN.
        """
        columns = copy_columns(
            self, sentence_features, minimum=3, expected="(query, document_1, ..., document_N) with N >= 2"
        )
        labels = check_teacher_labels(self, labels, (batch_size_of(columns[0]), len(columns) - 1))
        queries, queries_mask = embed_queries(self.model, columns[0])
        documents, documents_mask = stack_padded_token_embeddings(
            *embed_documents(self.model, columns[1:], self.mini_batch_size)
        )
        scores = self.similarity_fct(queries, documents, queries_mask=queries_mask, documents_mask=documents_mask)
        student_log_probs = F.log_softmax(scores / self.student_temperature, dim=-1)
        teacher_log_probs = F.log_softmax(labels.detach().to(scores.dtype) / self.teacher_temperature, dim=-1)
        if not self._checked_teacher_scale:
            self._checked_teacher_scale = True
            check_teacher_targets(teacher_log_probs.exp(), labels, self.teacher_temperature, type(self).__name__)
        return self.loss_function(student_log_probs, teacher_log_probs) * self.student_temperature**2

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (each side's temperature only where it differs)."""
        config: dict[str, Any] = {
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "temperature": self.temperature,
        }
        if self.student_temperature != self.temperature:
            config["student_temperature"] = self.student_temperature
        if self.teacher_temperature != self.temperature:
            config["teacher_temperature"] = self.teacher_temperature
        config["mini_batch_size"] = self.mini_batch_size
        return config

    @property
    def citation(self) -> str:
        """BibTeX of ColBERTv2, which distills a cross-encoder into a late-interaction model this way."""
        return CITATION


def check_teacher_labels(loss: nn.Module, labels: Any, shape: tuple[int, int]) -> Tensor:
    """``labels`` when it is a tensor of ``shape`` (``(batch_size, N)``).

    Raises:
        ValueError: ``labels`` is not a tensor, or has another shape.
    """
    name = type(loss).__name__
    if not isinstance(labels, Tensor):
        raise ValueError(
            f"{name} expects the teacher's scores as labels, a tensor of shape (batch_size, N) = {shape}, got "
            f"{type(labels).__name__}"
        )
    if tuple(labels.shape) != shape:
        raise ValueError(
            f"{name} expects teacher scores of shape (batch_size, N) = {shape} for N candidate document columns, "
            f"got {tuple(labels.shape)}"
        )
    return labels


CITATION = """
@inproceedings{santhanam-etal-2022-colbertv2,
    title = "ColBERTv2: Effective and Efficient Retrieval via Lightweight Late Interaction",
    author = "Santhanam, Keshav and Khattab, Omar and Saad-Falcon, Jon and Potts, Christopher and Zaharia, Matei",
    booktitle = "Proceedings of the 2022 Conference of the North American Chapter of the Association for Computational Linguistics: Human Language Technologies",
    year = "2022",
    publisher = "Association for Computational Linguistics",
}
"""  # noqa: E501
