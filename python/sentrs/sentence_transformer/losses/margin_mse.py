"""``MarginMSELoss``: the student's score margins regress onto a teacher's (cross-architecture distillation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import pairwise_dot_score
from sentrs.sentence_transformer.losses._inputs import embed_columns
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MarginMSELoss"]


class MarginMSELoss(nn.Module):
    """Mean squared error between the predicted margins ``sim(query, doc_1) - sim(query, doc_i)`` and gold margins.

    The gold margins usually come from a stronger teacher (a cross-encoder, say). Unlike
    :class:`MultipleNegativesRankingLoss`, the documents need not be a strict positive and negative: any two documents
    with a known score difference will do. Each query is compared with its own documents only, no in-batch negatives.

    Args:
        model: the SentenceTransformer to train.
        similarity_fct: pairwise score of two ``(batch_size, dim)`` tensors, ``(batch_size,)`` out; dot product by
            default.

    Requirements:
        1. (query, document_1, document_2) triplets, or (query, positive, negative_1, ..., negative_n).
        2. Gold scores or margins, typically from a teacher model.

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
        - :class:`MSELoss` regresses embeddings rather than score margins.
        - :class:`DistillKLDivLoss` matches the teacher's score distribution instead of its margins.

    Example:
        ::

            import torch
            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import MarginMSELoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = MarginMSELoss(model)
            columns = [["What do men eat?"], ["A man eats bread."], ["A plane takes off."]]
            loss([model.preprocess(texts) for texts in columns], torch.tensor([4.5])).backward()
    """

    def __init__(
        self, model: SentenceTransformer, similarity_fct: Callable[[Tensor, Tensor], Tensor] = pairwise_dot_score
    ) -> None:
        super().__init__()
        self.model = model
        self.similarity_fct = similarity_fct
        self.loss_fct = nn.MSELoss()

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` the gold margins
        ``(batch_size,)``/``(batch_size, n)`` or gold scores ``(batch_size, n + 1)``."""
        return self.compute_loss_from_embeddings(embed_columns(self.model, sentence_features), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        """The loss from the columns' embeddings, ``(batch_size, dim)`` each (used by cached wrappers).

        Raises:
            ValueError: the labels are neither one margin per negative nor one score per document.
        """
        query, positive, negatives = embeddings[0], embeddings[1], embeddings[2:]
        batch_size, n_negatives = query.shape[0], len(negatives)
        gold = labels.detach()
        if gold.shape == (batch_size, n_negatives + 1):  # scores of every document: margins to the first
            gold = gold[:, :1] - gold[:, 1:]
        elif gold.shape == (batch_size,):
            gold = gold.unsqueeze(1)
        if gold.shape != (batch_size, n_negatives):
            raise ValueError(
                f"Labels shape {labels.shape} does not match expected shape {(batch_size, n_negatives)}. "
                "Ensure that your dataset labels/scores are 1) lists of differences between positive scores and "
                "negatives scores (length `num_negatives`), or 2) lists of positive and negative scores "
                "(length `num_negatives + 1`)."
            )
        positive_scores = self.similarity_fct(query, positive)
        margins = torch.stack([positive_scores - self.similarity_fct(query, n) for n in negatives], dim=1)
        return self.loss_fct(margins, gold)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"similarity_fct": similarity_fct_name(self.similarity_fct)}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@misc{hofstätter2021improving,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofstätter and Sophia Althammer and Michael Schröder and Mete Sertkan and Allan Hanbury},
    year={2021},
    eprint={2010.02666},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""
