"""``AnglELoss``: CoSENT with the angle similarity of AnglE."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from sentrs.base.similarity import pairwise_angle_sim
from sentrs.sentence_transformer.losses._inputs import check_one_label_per_row
from sentrs.sentence_transformer.losses.cosent import CoSENTLoss

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["AnglELoss"]


class AnglELoss(CoSENTLoss):
    """:class:`CoSENTLoss` scored with :func:`~sentrs.util.pairwise_angle_sim`.

    The angle similarity compares the two embeddings as complex vectors (first half real, second half imaginary
    parts), which keeps a useful gradient where the cosine saturates near 1 or -1.

    With more than two columns, ``(anchor, positive, negative_1, ..., negative_n)``, the batch becomes pairs: the
    anchor with its positive (label ``labels``, or 1 without labels) and the anchor with each negative (label
    ``1 - labels``, or 0).

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the scores (an inverse temperature); larger values sharpen the ranking.

    Requirements:
        1. Sentence pairs with a similarity score, or (anchor, positive, negative...) tuples.

    Inputs:
        +-------------------------------------------------+---------------------------------+
        | Texts                                           | Labels                          |
        +=================================================+=================================+
        | (sentence_A, sentence_B) pairs                  | float similarity score          |
        +-------------------------------------------------+---------------------------------+
        | (anchor, positive, negative_1, ..., negative_n) | none, or float pair score       |
        +-------------------------------------------------+---------------------------------+

    Relations:
        - :class:`CoSENTLoss` is the same loss with the cosine similarity.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import AnglELoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = AnglELoss(model)
            features = [model.preprocess(["A man eats.", "A cat."]), model.preprocess(["He eats.", "A plane."])]
            loss(features, torch.tensor([0.9, 0.1])).backward()
    """

    def __init__(self, model: SentenceTransformer, scale: float = 20.0) -> None:
        super().__init__(model, scale, similarity_fct=pairwise_angle_sim)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """The loss from the columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers)."""
        if len(embeddings) <= 2:
            if labels is None:
                raise ValueError("AnglELoss requires labels for datasets with pairs.")
            return super().compute_loss_from_embeddings(embeddings, labels)
        anchors, candidates = embeddings[0], embeddings[1:]
        if labels is None:
            labels = torch.ones(anchors.shape[0], device=anchors.device)
        labels = check_one_label_per_row(self, labels, anchors.shape[0])
        pair_labels = torch.cat([labels, (1 - labels).repeat(len(candidates) - 1)])
        pairs = [anchors.repeat(len(candidates), 1), torch.cat(candidates)]
        return super().compute_loss_from_embeddings(pairs, pair_labels)

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{li-li-2024-aoe,
    title = "{A}o{E}: Angle-optimized Embeddings for Semantic Textual Similarity",
    author = "Li, Xianming and Li, Jing",
    year = "2024",
    publisher = "Association for Computational Linguistics",
    url = "https://aclanthology.org/2024.acl-long.101/",
    doi = "10.18653/v1/2024.acl-long.101"
}
"""
