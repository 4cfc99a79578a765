"""``CachedMultiVectorMultipleNegativesRankingLoss``: MultiVectorMultipleNegativesRankingLoss with gradient caching,
for batches far larger than what one forward pass fits in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.tensors import cat_padded_token_embeddings, stack_padded_token_embeddings
from sentrs.multi_vector_encoder.losses.multiple_negatives_ranking import (
    DOCUMENT_TASK,
    QUERY_TASK,
    check_optional_positive_int,
    check_positive_number,
    copy_columns,
    gather_documents,
    positive_columns,
    resolve_similarity_fct,
)
from sentrs.multi_vector_encoder.scoring import colbert_scores
from sentrs.sentence_transformer.losses._gradcache import (
    RandContext,
    Range,
    attach_replay,
    minibatch_ranges,
    progress,
    slice_features,
    validate_mini_batch_num_tokens,
)
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["CachedMultiVectorMultipleNegativesRankingLoss"]


class CachedMultiVectorMultipleNegativesRankingLoss(nn.Module):
    """:class:`MultiVectorMultipleNegativesRankingLoss` computed with gradient caching (GradCache): the same loss and
    the same gradients, at the memory of one ``mini_batch_size`` forward pass whatever the batch size.

    In-batch negatives tie the rows of a batch together, so a large batch cannot be split into independent parts.
    This loss embeds every column mini-batch by mini-batch without a graph, computes the loss
    (``score_mini_batch_size`` queries at a time) and its gradient with respect to every token embedding, then, during
    ``loss.backward()``, embeds each mini-batch again with a graph and backpropagates the cached gradient through it.
    Dropout draws the same masks in both passes. The price is the second forward pass: training is roughly 2x slower
    than :class:`MultiVectorMultipleNegativesRankingLoss` at the same batch size.

    Args:
        model: the MultiVectorEncoder to train.
        scale: multiplies the scores before the softmax (``1 / temperature``), must be positive; see
            :class:`MultiVectorMultipleNegativesRankingLoss`.
        similarity_fct: the scoring callable, as for :class:`MultiVectorMultipleNegativesRankingLoss`; default
            :func:`~sentrs.multi_vector_encoder.scoring.colbert_scores` (MaxSim).
        mini_batch_size: texts per forward pass: the memory knob. Larger is faster.
        mini_batch_num_tokens: when set, each forward pass takes as many texts as fit in this many (non-padding)
            tokens instead of ``mini_batch_size`` texts.
        score_mini_batch_size: queries scored at a time (bounds the scoring's ``(queries, documents, query tokens,
            document tokens)`` intermediate, often the largest tensor of a big batch); default ``mini_batch_size``.
        gather_across_devices: in a ``torch.distributed`` job, score each process's queries against the documents of
            every process. Outside of one, it changes nothing.
        show_progress_bar: show tqdm bars over the mini-batches and the scoring chunks.

    Raises:
        ValueError: an argument is out of range (see each one above).

    Requirements:
        1. (query, positive) pairs, or (query, positive, negative_1, ..., negative_n) tuples.
        2. A large batch with a small ``mini_batch_size``: that is what the caching is for.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (query, positive) pairs                         | none   |
        +-------------------------------------------------+--------+
        | (query, positive, negative) triplets            | none   |
        +-------------------------------------------------+--------+
        | (query, positive, negative_1, ..., negative_n)  | none   |
        +-------------------------------------------------+--------+

    Recommendations:
        - Batches without duplicate texts (``BatchSamplers.NO_DUPLICATES``): a copy of a row's positive in another
          row counts as one of its negatives.

    Relations:
        - :class:`MultiVectorMultipleNegativesRankingLoss` computes the same loss in one pass (faster; memory grows
          with the batch).
        - :class:`~sentrs.sentence_transformer.losses.CachedMultipleNegativesRankingLoss` is the single-vector loss.

    Example:
        ::

            from sentrs import MultiVectorEncoder
            from sentrs.multi_vector_encoder.losses import CachedMultiVectorMultipleNegativesRankingLoss

            model = MultiVectorEncoder("lightonai/GTE-ModernColBERT-v1")
            loss = CachedMultiVectorMultipleNegativesRankingLoss(model, mini_batch_size=8)
            queries = model.preprocess(["Who wrote Hamlet?", "What is the boiling point of water?"], task="query")
            documents = model.preprocess(
                ["Hamlet is a tragedy by William Shakespeare.", "Water boils at 100 degrees Celsius."],
                task="document",
            )
            loss([queries, documents], None).backward()
    """

    #: The loss embeds its inputs again during the backward pass (see ``_gradcache.uses_gradient_cache``).
    uses_gradient_cache = True

    def __init__(
        self,
        model: MultiVectorEncoder,
        *,
        scale: float = 1.0,
        similarity_fct: Callable[..., Tensor] | None = None,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        score_mini_batch_size: int | None = None,
        gather_across_devices: bool = False,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        validate_mini_batch_num_tokens(mini_batch_num_tokens)
        check_positive_number("scale", scale)
        check_optional_positive_int("score_mini_batch_size", score_mini_batch_size)
        self.model = model
        self.scale = scale
        self.similarity_fct = resolve_similarity_fct(similarity_fct, colbert_scores)
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.score_mini_batch_size = mini_batch_size if score_mini_batch_size is None else score_mini_batch_size
        self.gather_across_devices = gather_across_devices
        self.show_progress_bar = show_progress_bar

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column (the query column first);
        ``labels`` are unused. With gradients enabled, the model's gradients arrive during ``loss.backward()``.

        Raises:
            ValueError: fewer than 2 columns, or columns with different numbers of rows.
        """
        columns = copy_columns(self, sentence_features, minimum=2, expected="(query, positive[, negatives...])")
        # The task goes into each column's dict, so the replay in the backward pass embeds with the same one.
        columns = [
            {**features, "task": features.get("task", QUERY_TASK if index == 0 else DOCUMENT_TASK)}
            for index, features in enumerate(columns)
        ]
        grad_enabled = torch.is_grad_enabled()
        # The ranges come first: a module may change the features while embedding, and the replay must cut the same
        # mini-batches.
        ranges = [minibatch_ranges(f, self.mini_batch_size, self.mini_batch_num_tokens) for f in columns]
        reps: list[list[Tensor]] = []
        masks: list[list[Tensor]] = []
        states: list[list[RandContext | None]] = []
        for features, column_ranges in zip(columns, ranges):
            column_reps: list[Tensor] = []
            column_masks: list[Tensor] = []
            column_states: list[RandContext | None] = []
            for rep, mask, state in self.embed_minibatch_iter(
                features, with_grad=False, copy_random_state=grad_enabled, ranges=column_ranges
            ):
                column_reps.append(rep.detach().requires_grad_())
                column_masks.append(mask)
                column_states.append(state)
            reps.append(column_reps)
            masks.append(column_masks)
            states.append(column_states)
        if not grad_enabled:
            return self.calculate_loss(reps, masks)
        loss = self.calculate_loss(reps, masks, with_backward=True)
        return attach_replay(self, loss, columns, reps, states, ranges)

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, Tensor, RandContext | None]:
        """``(mini_batch, tokens, dim)`` token embeddings of rows ``begin:end``, their ``(mini_batch, tokens)``
        boolean scoring mask, and the random state captured before the pass (when ``copy_random_state``);
        ``random_state`` replays an earlier pass."""
        minibatch = slice_features(sentence_feature, begin, end)
        with nullcontext() if random_state is None else random_state:
            with nullcontext() if with_grad else torch.no_grad():
                state = RandContext(*minibatch.values()) if copy_random_state else None
                outputs = self.model(minibatch, task=minibatch.get("task"))
        return outputs["token_embeddings"], outputs["attention_mask"].bool(), state

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: Sequence[RandContext | None] | None = None,
        ranges: Sequence[Range] | None = None,
    ) -> Iterator[tuple[Tensor, Tensor, RandContext | None]]:
        """:meth:`embed_minibatch` over every mini-batch of one column."""
        if ranges is None:
            ranges = minibatch_ranges(sentence_feature, self.mini_batch_size, self.mini_batch_num_tokens)
        for index, (begin, end) in enumerate(progress(ranges, self.show_progress_bar, "Embed mini-batches")):
            yield self.embed_minibatch(
                sentence_feature,
                begin,
                end,
                with_grad=with_grad,
                copy_random_state=copy_random_state,
                random_state=None if random_states is None else random_states[index],
            )

    def calculate_loss(
        self, reps: list[list[Tensor]], masks_chunks: list[list[Tensor]], *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the mini-batch token embeddings ``reps[column][mini_batch]`` and their scoring masks,
        ``score_mini_batch_size`` queries at a time (each chunk backpropagated at once with ``with_backward``, the
        detached total returned)."""
        columns = [cat_padded_token_embeddings(r, m) for r, m in zip(reps, masks_chunks)]
        queries, queries_mask = columns[0]
        documents = [embeddings for embeddings, _ in columns[1:]]
        documents_masks = [mask for _, mask in columns[1:]]
        batch_size = queries.shape[0]
        if self.gather_across_devices:
            documents, documents_masks = gather_documents(documents, documents_masks)
        stacked, stacked_mask = stack_padded_token_embeddings(documents, documents_masks)
        targets = positive_columns(batch_size, len(documents), self.gather_across_devices, queries.device)
        step = self.score_mini_batch_size
        parts: list[Tensor] = []
        for begin in progress(range(0, batch_size, step), self.show_progress_bar, "Score mini-batches"):
            end = begin + step
            scores = self.similarity_fct(
                queries[begin:end], stacked, queries_mask=queries_mask[begin:end], documents_mask=stacked_mask
            )
            # Divided inside the graph, so that the cached gradients are those of the mean.
            part = F.cross_entropy(scores * self.scale, targets[begin:end], reduction="sum") / batch_size
            if with_backward:
                part.backward()
                part = part.detach()
            parts.append(part)
        return torch.stack(parts).sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
            "score_mini_batch_size": self.score_mini_batch_size,
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the GradCache paper."""
        return CITATION


CITATION = """
@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
"""
