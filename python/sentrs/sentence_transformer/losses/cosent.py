"""``CoSENTLoss``: learn the order of similarity labels over all pairs of a batch."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import pairwise_cos_sim
from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row, embed_columns

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["CoSENTLoss"]


class CoSENTLoss(nn.Module):
    """A ranking loss over the pairs of a batch: a pair with a higher label should get a higher score.

    With ``s_i = scale * similarity_fct(u_i, v_i)``, the loss is
    ``log(1 + sum over (i, j) with label_i < label_j of exp(s_i - s_j))``. It only uses the order of the labels, so
    the labels may be on any scale. This is the trainer's default loss.

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the scores (an inverse temperature); larger values sharpen the ranking.
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors, ``(batch_size,)`` out; cosine by default.

    Requirements:
        1. Sentence pairs with a similarity score (any scale: only their order matters).

    Inputs:
        +--------------------------------+------------------------+
        | Texts                          | Labels                 |
        +================================+========================+
        | (sentence_A, sentence_B) pairs | float similarity score |
        +--------------------------------+------------------------+

    Relations:
        - :class:`AnglELoss` is this loss with the angle similarity.
        - :class:`CosineSimilarityLoss` regresses the scores instead; this loss usually trains better.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import CoSENTLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = CoSENTLoss(model)
            features = [model.preprocess(["A man eats.", "A cat."]), model.preprocess(["He eats.", "A plane."])]
            loss(features, torch.tensor([0.9, 0.1])).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_cos_sim,
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.scale = scale

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column, ``labels`` ``(batch_size,)``."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the two columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        labels = check_one_label_per_row(self, labels, embeddings[0].shape[0])
        scores = self.similarity_fct(embeddings[0], embeddings[1])
        if labels.shape != scores.shape:
            raise ValueError(f"Labels and scores must have the same shape, got {labels.shape} and {scores.shape}.")
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()  # the exponentials below overflow in half precision
        if labels.dtype == torch.bool:
            labels = labels.int()
        return _ranking_loss(scores * self.scale, labels)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"scale": self.scale, "similarity_fct": self.similarity_fct.__name__}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


def _ranking_loss(scores: Tensor, labels: Tensor) -> Tensor:
    """``log(1 + sum_{labels[i] < labels[j]} exp(scores[i] - scores[j]))`` in O(n log n) time and O(n) memory.

    After sorting by label, the pairs ``j`` that outrank ``i`` are a suffix of the order (ties excluded), so the inner
    sum for ``i`` is ``exp(scores[i])`` times a suffix sum of ``exp(-scores)``, which a reversed ``logcumsumexp``
    gives for every ``i`` at once.
    """
    sorted_labels, order = labels.sort()
    sorted_scores = scores[order]
    # log of sum_{k >= m} exp(-sorted_scores[k]) for every start m, and log(0) for the empty suffix m = n
    suffix = torch.logcumsumexp(-sorted_scores.flip(0), dim=0).flip(0)
    suffix = torch.cat((suffix, suffix.new_full((1,), float("-inf"))))
    first_higher = torch.searchsorted(sorted_labels, sorted_labels, right=True)
    terms = sorted_scores + suffix[first_higher]
    return torch.logsumexp(torch.cat((terms.new_zeros(1), terms)), dim=0)


CITATION = """
@article{10531646,
    author={Huang, Xiang and Peng, Hao and Zou, Dongcheng and Liu, Zhiwei and Li, Jianxin and Liu, Kay and Wu, Jia and Su, Jianlin and Yu, Philip S.},
    journal={IEEE/ACM Transactions on Audio, Speech, and Language Processing},
    title={CoSENT: Consistent Sentence Embedding via Similarity Ranking},
    year={2024},
    doi={10.1109/TASLP.2024.3402087}
}
"""  # noqa: E501
