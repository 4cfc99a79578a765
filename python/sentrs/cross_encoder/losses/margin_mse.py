"""``MarginMSELoss``: the score margins between a query's documents regress onto a teacher's (distillation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["MarginMSELoss"]


class MarginMSELoss(nn.Module):
    """Mean squared error between the predicted margins ``score(query, doc_1) - score(query, doc_i)`` and the gold
    margins, usually from a stronger teacher.

    Unlike :class:`MultipleNegativesRankingLoss`, the documents need not be a strict positive and negatives: any
    documents with known scores will do. If the teacher's scores went through a sigmoid, consider
    ``activation_fn=nn.Sigmoid()``.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        activation_fn: applied to each pair's logit before the margins are taken; identity by default.
        **kwargs: passed on to :class:`torch.nn.MSELoss` (``reduction``).

    Requirements:
        1. A model with ``num_labels=1``.
        2. Gold scores or margins, typically from a teacher cross-encoder.

    Inputs:
        +------------------------------------------------+-----------------------------------------------+
        | Texts                                          | Labels                                        |
        +================================================+===============================================+
        | (query, document_1, document_2)                | margin ``M(q, d_1) - M(q, d_2)``              |
        +------------------------------------------------+-----------------------------------------------+
        | (query, document_1, document_2)                | scores ``[M(q, d_1), M(q, d_2)]``             |
        +------------------------------------------------+-----------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | margins to each negative, ``(batch, n)``      |
        +------------------------------------------------+-----------------------------------------------+
        | (query, positive, negative_1, ..., negative_n) | scores of every document, ``(batch, n + 1)``  |
        +------------------------------------------------+-----------------------------------------------+

    Relations:
        - :class:`MSELoss` regresses each pair's score on its own, without a second document.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import MarginMSELoss

            student = CrossEncoder("microsoft/mpnet-base")
            loss = MarginMSELoss(student)
            columns = [["What are pandas?"], ["Pandas are a kind of bear."], ["Pandas are a kind of fish."]]
            loss(columns, torch.tensor([6.5])).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the reference's default object
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.activation_fn = activation_fn
        self.loss_fct = nn.MSELoss(**kwargs)
        check_cross_encoder(self, model)
        check_one_label(self, model)

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[queries, documents_1, ..., documents_k]`` (k >= 2), ``labels`` the
        gold margins ``(batch_size,)``/``(batch_size, k - 1)`` or gold scores ``(batch_size, k)`` (a list of
        per-row tensors is stacked).

        Raises:
            ValueError: fewer than three text columns, or labels that are neither margins nor scores.
        """
        if len(inputs) < 3:
            raise ValueError(
                f"MarginMSELoss expects (query, document_one, document_two[, ...]) columns, at least 3, but got a "
                f"dataset with {len(inputs)} columns. For (query, document) pairs with a target score, use MSELoss."
            )
        queries, documents = inputs[0], inputs[1:]
        batch_size, n_negatives = len(queries), len(documents) - 1
        gold = torch.stack(list(labels)) if isinstance(labels, list) else labels
        if gold.shape == (batch_size, n_negatives + 1):  # scores of every document: margins to the first
            gold = gold[:, :1] - gold[:, 1:]
        elif gold.shape == (batch_size,):
            gold = gold.unsqueeze(1)
        if gold.shape != (batch_size, n_negatives):
            raise ValueError(
                f"Labels shape {gold.shape} does not match expected shape {(batch_size, n_negatives)}. "
                "Ensure that your dataset labels/scores are 1) lists of differences between positive scores and "
                "negatives scores (length `num_negatives`), or 2) lists of positive and negative scores "
                "(length `num_negatives + 1`)."
            )
        # One forward pass per document column, as the reference (the same dropout masks in train mode).
        scores = [self.logits_from_pairs(list(zip(queries, column)), prompt=prompt, task=task) for column in documents]
        margins = scores[0].unsqueeze(1) - torch.stack(scores[1:], dim=1)
        loss: Tensor = self.loss_fct(margins, gold.detach().float())
        return loss

    def logits_from_pairs(
        self, pairs: list[tuple[str, str]], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """``(len(pairs),)`` scores of (query, document) pairs, after ``activation_fn``."""
        return self.activation_fn(pair_logits(self.model, pairs, prompt, task).view(-1))

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn)}

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
