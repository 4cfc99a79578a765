"""``DistillKLDivLoss``: the student's softmax over candidate scores matches the teacher's (KL divergence)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import pairwise_dot_score
from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.util.misc import check_teacher_targets, similarity_fct_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["DistillKLDivLoss"]


class DistillKLDivLoss(nn.Module):
    """KL divergence from the teacher's candidate distribution to the student's, scaled by ``student_temperature**2``.

    For each query, the student scores its N candidate columns with ``similarity_fct``; both the student's scores and
    the teacher's (the labels) go through a softmax at their temperature, and the loss is the batch-mean KL divergence
    between the two distributions.

    Args:
        model: the student SentenceTransformer.
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors, ``(batch_size,)`` out; dot product by
            default.
        temperature: divides both sides' scores; higher is softer. 1.0 leaves them as they are.
        student_temperature: the student's own temperature, in place of ``temperature``. The loss is multiplied by
            its square, which keeps gradients comparable for temperatures of 1.0 and above; below that the loss and
            its gradient shrink.
        teacher_temperature: the teacher's own temperature, in place of ``temperature``. Pick it from the spread of the
            teacher's scores: once a row's spread over the temperature passes about 100, a float32 softmax gives exact
            zeros and those candidates stop counting (a warning says so on the first batch).

    Requirements:
        1. (query, positive, negative_1, ..., negative_n) examples: at least two candidate columns.
        2. The teacher's score of each (query, candidate) pair as the labels, ``(batch_size, n_candidates)``.

    Inputs:
        +------------------------------------------------+--------------------------------------------------------+
        | Texts                                          | Labels                                                 |
        +================================================+========================================================+
        | (query, positive, negative)                    | ``[T(query, positive), T(query, negative)]``           |
        +------------------------------------------------+--------------------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | ``[T(query, positive), T(query, negative_i), ...]``    |
        +------------------------------------------------+--------------------------------------------------------+

    Relations:
        - :class:`MarginMSELoss` regresses score margins instead, with a mean squared error.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import DistillKLDivLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = DistillKLDivLoss(model)
            columns = [["What do men eat?"], ["A man eats bread."], ["A plane takes off."]]
            loss([model.preprocess(texts) for texts in columns], torch.tensor([[9.0, 2.5]])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score,
        temperature: float = 1.0,
        student_temperature: float | None = None,
        teacher_temperature: float | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.temperature = temperature
        self.student_temperature = temperature if student_temperature is None else student_temperature
        self.teacher_temperature = temperature if teacher_temperature is None else teacher_temperature
        for name in ("temperature", "student_temperature", "teacher_temperature"):
            value = getattr(self, name)
            if not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive finite number, got {value}.")
        self.loss_fct = nn.KLDivLoss(reduction="batchmean")
        self._checked_teacher_scale = False

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` the teacher's
        scores, ``(batch_size, n_candidates)``."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers).

        Raises:
            ValueError: fewer than 3 columns, teacher scores of the wrong shape, or teacher scores with NaN.
        """
        name = type(self).__name__
        if len(embeddings) < 3:
            raise ValueError(
                f"{name} expects at least 3 columns (query, positive, negative_1, ...), "
                f"but got {len(embeddings)}. A softmax over one candidate is constant, so the loss and "
                "its gradient would be identically zero. Add at least a second candidate column."
            )
        query, candidates = embeddings[0], embeddings[1:]
        expected = (query.shape[0], len(candidates))
        if labels.shape != expected:
            raise ValueError(
                f"{name} expects teacher scores of shape (batch_size, N) = {expected} for N candidate columns, "
                f"but got {tuple(labels.shape)}."
            )
        student = torch.stack([self.similarity_fct(query, c) for c in candidates], dim=1)
        student_log_probs = torch.log_softmax(student / self.student_temperature, dim=1)
        teacher_probs = torch.softmax(labels.detach() / self.teacher_temperature, dim=1)
        if not self._checked_teacher_scale:
            self._checked_teacher_scale = True
            check_teacher_targets(teacher_probs, labels, self.teacher_temperature, name)
        return self.loss_fct(student_log_probs, teacher_probs) * self.student_temperature**2

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
        return config

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@misc{lin2020distillingdenserepresentationsranking,
      title={Distilling Dense Representations for Ranking using Tightly-Coupled Teachers},
      author={Sheng-Chieh Lin and Jheng-Hong Yang and Jimmy Lin},
      year={2020},
      eprint={2010.11386},
      archivePrefix={arXiv},
      primaryClass={cs.IR},
      url={https://arxiv.org/abs/2010.11386},
}
"""
