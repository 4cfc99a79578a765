"""``MultiVectorMarginMSELoss``: a late-interaction student's score margins regress onto a teacher's
(cross-architecture distillation)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.multi_vector_encoder.losses.multiple_negatives_ranking import (
    check_optional_positive_int,
    copy_columns,
    embed_documents,
    embed_queries,
    resolve_similarity_fct,
)
from sentrs.multi_vector_encoder.scoring import colbert_scores_pairwise
from sentrs.sentence_transformer.losses._gradcache import batch_size_of
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorMarginMSELoss"]


class MultiVectorMarginMSELoss(nn.Module):
    """Mean squared error between a :class:`~sentrs.MultiVectorEncoder` student's margins
    ``score(query, positive) - score(query, negative_i)`` and a teacher's.

    Each query is compared with its own documents only (no in-batch negatives), by late-interaction score (MaxSim by
    default). The documents need not be a strict positive and negatives: any documents with known teacher score
    differences will do.

    Args:
        model: the MultiVectorEncoder to train (the student).
        similarity_fct: scores matched pairs, queries ``(batch, query_tokens, dim)`` against documents
            ``(batch, doc_tokens, dim)`` with the keyword arguments ``queries_mask`` and ``documents_mask``, into
            ``(batch,)`` scores. Default :func:`~sentrs.multi_vector_encoder.scoring.colbert_scores_pairwise`
            (MaxSim); :func:`~sentrs.multi_vector_encoder.scoring.xtr_scores_pairwise` scores the XTR way.
        mini_batch_size: at most this many texts per forward pass of the document columns (each chunk only as wide as
            its longest text); None (default) embeds them in one pass. The loss does not change.

    Raises:
        ValueError: ``mini_batch_size`` is not a positive integer.

    Requirements:
        1. (query, positive, negative_1, ..., negative_k) rows with k >= 1.
        2. The teacher's margins ``(batch_size, k)`` (``(batch_size,)`` also for k = 1) or its scores of every document
           ``(batch_size, k + 1)``, which become margins to the first document.

    Inputs:
        +------------------------------------------------+-----------------------------------------------------------+
        | Texts                                          | Labels                                                    |
        +================================================+===========================================================+
        | (query, positive, negative)                    | ``T(query, positive) - T(query, negative)``               |
        +------------------------------------------------+-----------------------------------------------------------+
        | (query, positive, negative)                    | ``[T(query, positive), T(query, negative)]``              |
        +------------------------------------------------+-----------------------------------------------------------+
        | (query, positive, negative_1, ..., negative_k) | ``[T(query, positive) - T(query, negative_i), ...]``      |
        +------------------------------------------------+-----------------------------------------------------------+
        | (query, positive, negative_1, ..., negative_k) | ``[T(query, positive), T(query, negative_1), ...]``       |
        +------------------------------------------------+-----------------------------------------------------------+

    Relations:
        - :class:`MultiVectorDistillKLDivLoss` distills the same teacher scores as a distribution (KL divergence).
        - :class:`~sentrs.sentence_transformer.losses.MarginMSELoss` is the single-vector loss.

    Example:
        ::

            import torch
            from sentrs import MultiVectorEncoder
            from sentrs.multi_vector_encoder.losses import MultiVectorMarginMSELoss

            model = MultiVectorEncoder("lightonai/GTE-ModernColBERT-v1")
            loss = MultiVectorMarginMSELoss(model)
            query = model.preprocess(["Who wrote Hamlet?"], task="query")
            positive = model.preprocess(["Hamlet is a tragedy by William Shakespeare."], task="document")
            negative = model.preprocess(["Macbeth is set in Scotland."], task="document")
            loss([query, positive, negative], torch.tensor([7.5])).backward()
    """

    def __init__(
        self,
        model: MultiVectorEncoder,
        *,
        similarity_fct: Callable[..., Tensor] | None = None,
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        check_optional_positive_int("mini_batch_size", mini_batch_size)
        self.model = model
        self.similarity_fct = resolve_similarity_fct(similarity_fct, colbert_scores_pairwise)
        self.mini_batch_size = mini_batch_size
        self.loss_function = nn.MSELoss()

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column (the query column first);
        ``labels`` the teacher's margins ``(batch_size, k)`` / ``(batch_size,)`` or scores ``(batch_size, k + 1)``.

        Raises:
            ValueError: fewer than 3 columns, columns with different numbers of rows, or labels that are missing or
                neither one margin per negative nor one score per document.
        """
        columns = copy_columns(self, sentence_features, minimum=3, expected="(query, positive, negative_1, ...)")
        gold = self._teacher_margins(labels, batch_size_of(columns[0]), len(columns) - 2)
        queries, queries_mask = embed_queries(self.model, columns[0])
        documents, masks = embed_documents(self.model, columns[1:], self.mini_batch_size)
        positive_scores = self._score(queries, queries_mask, documents[0], masks[0])
        margins = torch.stack(
            [positive_scores - self._score(queries, queries_mask, d, m) for d, m in zip(documents[1:], masks[1:])],
            dim=1,
        )
        return self.loss_function(margins, gold.to(margins.dtype))

    def _score(self, queries: Tensor, queries_mask: Tensor, documents: Tensor, documents_mask: Tensor) -> Tensor:
        return self.similarity_fct(queries, documents, queries_mask=queries_mask, documents_mask=documents_mask)

    def _teacher_margins(self, labels: Any, batch_size: int, negatives: int) -> Tensor:
        """The teacher's margins, ``(batch_size, negatives)``, from the accepted label layouts.

        Raises:
            ValueError: ``labels`` is not a tensor of one of those layouts.
        """
        name = type(self).__name__
        expected = (
            f"the teacher's margins, shape {(batch_size, negatives)}"
            + (f" or {(batch_size,)}" if negatives == 1 else "")
            + f", or its scores of every document, shape {(batch_size, negatives + 1)}"
        )
        if not isinstance(labels, Tensor):
            raise ValueError(f"{name} expects labels holding {expected}; got {type(labels).__name__}")
        gold = labels.detach()
        if gold.ndim == 1 and negatives == 1:
            gold = gold.unsqueeze(1)
        elif gold.shape == (batch_size, negatives + 1):
            gold = gold[:, :1] - gold[:, 1:]
        if gold.shape != (batch_size, negatives):
            raise ValueError(
                f"{name} expects labels holding {expected} for {negatives} negative column(s); got labels of shape "
                f"{tuple(labels.shape)}"
            )
        return gold

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "mini_batch_size": self.mini_batch_size,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@misc{hofstaetter2020improving,
    title={Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation},
    author={Sebastian Hofstätter and Sophia Althammer and Michael Schröder and Mete Sertkan and Allan Hanbury},
    year={2020},
    eprint={2010.02666},
    archivePrefix={arXiv},
    primaryClass={cs.IR}
}
"""
