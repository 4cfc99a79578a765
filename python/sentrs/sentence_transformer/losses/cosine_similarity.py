"""``CosineSimilarityLoss``: regress the cosine similarity of two texts onto a gold score."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row, embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["CosineSimilarityLoss"]


class CosineSimilarityLoss(nn.Module):
    """Fits ``cos(u, v)`` of a text pair to its similarity label.

    Each pair is embedded (``u`` for the first text, ``v`` for the second), ``cos_score_transformation`` is applied to
    their cosine similarity, and ``loss_fct`` compares the result with the float label (mean squared error by
    default).

    Args:
        model: the SentenceTransformer to train.
        loss_fct: compares the ``(batch_size,)`` transformed cosine scores with the ``(batch_size,)`` float labels.
        cos_score_transformation: applied to the cosine scores first (identity by default).

    Requirements:
        1. Sentence pairs with a similarity score, usually between 0 and 1 (or -1 and 1).

    Inputs:
        +--------------------------------+------------------------+
        | Texts                          | Labels                 |
        +================================+========================+
        | (sentence_A, sentence_B) pairs | float similarity score |
        +--------------------------------+------------------------+

    Relations:
        - :class:`CoSENTLoss` and :class:`AnglELoss` learn the ranking of the scores instead of their values, and
          usually train better on the same data.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import CosineSimilarityLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = CosineSimilarityLoss(model)
            features = [model.preprocess(["A man eats."]), model.preprocess(["Someone is eating."])]
            loss(features, torch.tensor([0.9])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        loss_fct: nn.Module = nn.MSELoss(),  # noqa: B008 - the reference's default object
        cos_score_transformation: nn.Module = nn.Identity(),  # noqa: B008
    ) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.cos_score_transformation = cos_score_transformation

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column, ``labels`` ``(batch_size,)``."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the two columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        labels = check_one_label_per_row(self, labels, embeddings[0].shape[0])
        scores = self.cos_score_transformation(torch.cosine_similarity(embeddings[0], embeddings[1]))
        return self.loss_fct(scores, labels.float())

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "loss_fct": fullname(self.loss_fct),
            "cos_score_transformation": fullname(self.cos_score_transformation),
        }
