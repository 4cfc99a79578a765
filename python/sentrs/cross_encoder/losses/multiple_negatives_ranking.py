"""``MultipleNegativesRankingLoss`` for cross-encoders: each query must score its own document above sampled
documents of the other rows (and its hard negatives)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["MultipleNegativesRankingLoss"]


class MultipleNegativesRankingLoss(nn.Module):
    """InfoNCE for cross-encoders: for each (query, positive[, hard negatives...]) row, softmax cross-entropy of the
    positive's score against the scores of ``num_negatives`` documents drawn from the other rows and of the row's
    own hard negatives.

    A cross-encoder scores each (query, document) pair in a forward pass of its own, so unlike the bi-encoder loss the
    cost grows with the number of negatives: each query is paired with ``num_negatives`` documents sampled (without
    replacement, uniformly) among the other rows' positives and hard negatives. The scores go through
    ``activation_fn`` and are multiplied by ``scale`` before the softmax.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        num_negatives: in-batch negatives sampled per query; None (or more than there are) takes every document of
            the other rows.
        scale: multiplies the activated scores (an inverse temperature); 0 or None leaves them as they are.
        activation_fn: applied to the logits before scaling; sigmoid by default, None for none.

    Requirements:
        1. A model with ``num_labels=1``.

    Inputs:
        +-------------------------------------------------+--------+-------------------------------+
        | Texts                                           | Labels | Number of model output labels |
        +=================================================+========+===============================+
        | (anchor, positive) pairs                        | none   | 1                             |
        +-------------------------------------------------+--------+-------------------------------+
        | (anchor, positive, negative) triplets           | none   | 1                             |
        +-------------------------------------------------+--------+-------------------------------+
        | (anchor, positive, negative_1, ..., negative_n) | none   | 1                             |
        +-------------------------------------------------+--------+-------------------------------+

    Recommendations:
        - ``BatchSamplers.NO_DUPLICATES`` keeps duplicates of a row's texts out of its in-batch negatives.
        - :func:`sentrs.util.mine_hard_negatives` with ``output_format="n-tuple"`` or ``"triplet"`` adds hard
          negatives.

    Relations:
        - :class:`CachedMultipleNegativesRankingLoss` gives the same loss at the memory of ``mini_batch_size``
          pairs per forward pass, for much larger batches.

    Example:
        ::

            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import MultipleNegativesRankingLoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = MultipleNegativesRankingLoss(model, num_negatives=1)
            queries = ["What are pandas?", "What is the capital of France?"]
            answers = ["Pandas are a kind of bear.", "The capital of France is Paris."]
            loss([queries, answers], None).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = nn.Sigmoid(),  # noqa: B008 - the reference's default object
    ) -> None:
        super().__init__()
        self.model = model
        self.num_negatives = num_negatives
        self.scale = scale
        self.activation_fn = activation_fn
        self.cross_entropy_loss = nn.CrossEntropyLoss()
        check_cross_encoder(self, model)
        check_one_label(self, model)

    def forward(
        self, inputs: list[list[str]], labels: Tensor | None, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[anchors, positives, hard_negatives_1, ...]``; ``labels`` is
        ignored (the positive is always the right answer)."""
        self._check_columns(inputs)
        anchors = inputs[0]
        # One forward pass per candidate column, in the reference's order (positives, then the in-batch negatives,
        # sampled only now, then the hard negatives): train-mode dropout masks and the sampled negatives are the
        # reference's for the same seed.
        logits = [self.call_model_with_columns(anchors, inputs[1], prompt=prompt, task=task)]
        for negatives in self.get_in_batch_negatives(anchors, inputs[1:]):
            logits.append(self.call_model_with_columns(anchors, negatives, prompt=prompt, task=task))
        for negatives in inputs[2:]:
            logits.append(self.call_model_with_columns(anchors, negatives, prompt=prompt, task=task))
        return self.calculate_loss(logits, len(anchors))

    def _check_columns(self, inputs: Sequence[Sequence[str]]) -> None:
        if len(inputs) < 2:
            raise ValueError(
                f"{type(self).__name__} expects (anchor, positive[, negative_1, ...]) columns, at least 2, but got a "
                f"dataset with {len(inputs)} columns."
            )
        lengths = {len(column) for column in inputs}
        if len(lengths) > 1:
            raise ValueError(f"{type(self).__name__} expects columns of equal length, got {sorted(lengths)}.")

    def candidate_columns(self, anchors: list[str], documents: Sequence[list[str]]) -> list[list[str]]:
        """The document columns the anchors are scored against: positives, the sampled in-batch negatives, then
        the hard negatives (``documents[1:]``)."""
        return [documents[0], *self.get_in_batch_negatives(anchors, documents), *documents[1:]]

    def call_model_with_columns(
        self, anchors: list[str], candidates: list[str], prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """``(batch_size,)`` logits of the row-wise pairs ``(anchors[i], candidates[i])``."""
        return self.call_model_with_pairs(list(zip(anchors, candidates)), prompt=prompt, task=task)

    def call_model_with_pairs(self, pairs: list[Any], prompt: str | None = None, task: str | None = None) -> Tensor:
        """``(len(pairs),)`` logits of (query, document) pairs."""
        return pair_logits(self.model, pairs, prompt, task).squeeze(1)

    def get_in_batch_negatives(self, anchors: list[str], candidates: Sequence[list[str]]) -> Iterator[list[str]]:
        """Columns of in-batch negatives, ``min(num_negatives, documents of the other rows)`` of them.

        Row ``i`` of a column is a document of another row (any candidate column), drawn without replacement with
        ``torch.multinomial`` over the documents that are not row ``i``'s own; with ``num_negatives=None``, or as
        many as there are, every such document, in column-major order.
        """
        batch_size, n_columns = len(anchors), len(candidates)
        flat = [doc for column in candidates for doc in column]
        # others[i, j]: flat document j belongs to another row than anchor i.
        others = ~torch.eye(batch_size, dtype=torch.bool).repeat(1, n_columns)
        available = len(flat) - n_columns
        if self.num_negatives is not None and self.num_negatives < available:
            picks = torch.multinomial(others.float(), self.num_negatives)
        else:
            picks = torch.arange(batch_size * n_columns).repeat(batch_size, 1)[others].view(batch_size, -1)
        for column in picks.T.tolist():
            yield [flat[index] for index in column]

    def calculate_loss(self, logits: list[Tensor], batch_size: int) -> Tensor:
        """The loss from the flat logits of every pair, candidate column after candidate column (the pieces of
        ``logits`` concatenated): the positive (column 0) against all the others of its row."""
        scores = torch.cat(logits).view(-1, batch_size).T  # (batch_size, 1 + negatives)
        if self.activation_fn:
            scores = self.activation_fn(scores)
        if self.scale:
            scores = scores * self.scale
        target = torch.zeros(batch_size, dtype=torch.long, device=scores.device)
        loss: Tensor = self.cross_entropy_loss(scores, target)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "scale": self.scale,
            "num_negatives": self.num_negatives,
            "activation_fn": fullname(self.activation_fn),
        }
