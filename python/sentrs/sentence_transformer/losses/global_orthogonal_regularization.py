"""``GlobalOrthogonalRegularizationLoss``: a regularizer that spreads the embeddings of unrelated texts out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses._inputs import embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["GlobalOrthogonalRegularizationLoss"]


class GlobalOrthogonalRegularizationLoss(nn.Module):
    """Global Orthogonal Regularization (GOR): pushes the similarities between the texts of a column towards those
    of random directions, whose mean is 0 and whose second moment is ``1 / dim``.

    For each column's ``(batch_size, dim)`` embeddings and their off-diagonal similarities ``s``, the terms are
    ``mean(s) ** 2`` and ``relu(mean(s ** 2) - 1 / dim)``. Each term is aggregated over the columns (``"mean"`` or
    ``"sum"``) and weighted; the loss returns them as components, ``{"gor_mean": ..., "gor_second_moment": ...}``
    (a term with weight 0 or None is left out), which the trainer adds up and logs separately.

    Usually added to a main loss, e.g. a loss whose ``forward`` returns ``{"mnrl": mnrl(...), **gor(...)}``.

    Args:
        model: the SentenceTransformer to train.
        similarity_fct: ``(n, dim)`` x ``(n, dim)`` -> ``(n, n)`` scores; cosine by default.
        mean_weight: weight of the mean term; 0 or None leaves it out.
        second_moment_weight: weight of the second-moment term; 0 or None leaves it out.
        aggregation: ``"mean"`` or ``"sum"`` of each term over the columns.

    Raises:
        ValueError: both weights are 0/None, or ``aggregation`` is unknown.

    Requirements:
        1. Any number of text columns; each column's texts should be unrelated to each other.

    Inputs:
        +-------------------+--------+
        | Texts             | Labels |
        +===================+========+
        | any text columns  | none   |
        +-------------------+--------+

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import GlobalOrthogonalRegularizationLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            gor = GlobalOrthogonalRegularizationLoss(model)
            terms = gor([model.preprocess(["A cat.", "Stock prices fell.", "Rain tomorrow."])], None)
            sum(terms.values()).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mean_weight: float | None = 1.0,
        second_moment_weight: float | None = 1.0,
        aggregation: Literal["mean", "sum"] = "mean",
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.mean_weight = mean_weight
        self.second_moment_weight = second_moment_weight
        if not mean_weight and not second_moment_weight:
            raise ValueError(
                "At least one of mean_weight or second_moment_weight must be non-zero, "
                f"got {mean_weight!r} and {second_moment_weight!r}"
            )
        if aggregation not in ("mean", "sum"):
            raise ValueError(f"aggregation must be 'mean' or 'sum', got '{aggregation}'")
        self.aggregation = aggregation

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> dict[str, Tensor]:
        """The weighted terms of a batch (one features dict per column); ``labels`` are unused."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features))

    def compute_loss_from_embeddings(
        self, embeddings: list[Tensor], labels: Tensor | None = None
    ) -> dict[str, Tensor]:
        """The weighted terms from each column's ``(batch_size, dim)`` embeddings."""
        means, second_moments = zip(*(self.compute_gor(column) for column in embeddings))
        terms: dict[str, Tensor] = {}
        if self.mean_weight:
            terms["gor_mean"] = self.mean_weight * self._aggregate(torch.stack(means))
        if self.second_moment_weight:
            terms["gor_second_moment"] = self.second_moment_weight * self._aggregate(torch.stack(second_moments))
        return terms

    def compute_gor(self, embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean(s) ** 2, relu(mean(s ** 2) - 1 / dim))`` over the off-diagonal similarities ``s`` of one column."""
        batch_size, dim = embeddings.shape[0], embeddings.shape[1]
        eye = torch.eye(batch_size, dtype=torch.bool, device=embeddings.device)
        scores = self.similarity_fct(embeddings, embeddings).masked_fill(eye, 0.0)
        pairs = max(batch_size * (batch_size - 1), 1)
        mean_term = (scores.sum() / pairs).pow(2)
        second_moment_term = torch.relu(scores.pow(2).sum() / pairs - 1.0 / dim)
        return mean_term, second_moment_term

    def _aggregate(self, values: Tensor) -> Tensor:
        return values.sum() if self.aggregation == "sum" else values.mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "similarity_fct": getattr(self.similarity_fct, "__name__", type(self.similarity_fct).__name__),
            "mean_weight": self.mean_weight,
            "second_moment_weight": self.second_moment_weight,
            "aggregation": self.aggregation,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the regularizer."""
        return CITATION


CITATION = """
@misc{zhang2017learningspreadoutlocalfeature,
      title={Learning Spread-out Local Feature Descriptors},
      author={Xu Zhang and Felix X. Yu and Sanjiv Kumar and Shih-Fu Chang},
      year={2017},
      eprint={1708.06320},
      archivePrefix={arXiv},
      primaryClass={cs.CV},
      url={https://arxiv.org/abs/1708.06320},
}
"""
