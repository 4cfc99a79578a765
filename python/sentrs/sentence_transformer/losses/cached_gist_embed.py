"""``CachedGISTEmbedLoss``: GISTEmbedLoss with gradient caching, for batches larger than one forward pass fits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._gradcache import (
    RandContext,
    Range,
    attach_replay,
    chunk_starts,
    minibatch_ranges,
    progress,
    slice_features,
    validate_mini_batch_num_tokens,
)
from sentrs.sentence_transformer.losses.gist_embed import (
    MarginStrategy,
    gist_logits,
    guide_features,
    guide_needs_retokenization,
    similarity_matrix,
)
from sentrs.sentence_transformer.losses.multiple_negatives_ranking import _gather_with_grad
from sentrs.util.distributed import get_rank

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["CachedGISTEmbedLoss"]


class CachedGISTEmbedLoss(nn.Module):
    """:class:`GISTEmbedLoss` computed with gradient caching (GradCache): the same loss and gradients at the memory
    of one ``mini_batch_size`` forward pass.

    The batch is embedded mini-batch by mini-batch without a graph (the guide embeds each mini-batch as well), the
    loss is computed in chunks of ``mini_batch_size`` anchor rows along with the gradient with respect to every
    embedding, and ``loss.backward()`` embeds each mini-batch again with a graph to backpropagate the cached
    gradients (dropout draws the same masks in both passes). See :class:`GISTEmbedLoss` for the loss itself and
    :class:`CachedMultipleNegativesRankingLoss` for the caching.

    Args:
        model: the SentenceTransformer to train.
        guide: the guide SentenceTransformer (not trained); texts are tokenized again for it when its tokenizer
            differs from the model's.
        temperature: divides the similarities; 0.01 by default.
        mini_batch_size: texts per forward pass (and anchor rows per loss chunk).
        mini_batch_num_tokens: when set, forward passes take as many texts as fit in this many tokens instead.
        show_progress_bar: show tqdm bars over the mini-batches and the loss chunks.
        margin_strategy: ``"absolute"`` or ``"relative"``, as in :class:`GISTEmbedLoss`.
        margin: the margin of the false-negative test.
        contrast_anchors: include the anchor-anchor similarities as negatives.
        contrast_positives: include the positive-positive similarities as negatives.
        gather_across_devices: in a ``torch.distributed`` job, use the positives and negatives of every process.

    Raises:
        ValueError: the model or the guide has no transformers tokenizer, or an argument is out of range.

    Requirements:
        1. (anchor, positive) pairs, or (anchor, positive, negative_1, ..., negative_n) tuples.
        2. A large batch with a small ``mini_batch_size``.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import CachedGISTEmbedLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            guide = SentenceTransformer("sentence-transformers/all-MiniLM-L12-v2")
            loss = CachedGISTEmbedLoss(model, guide, mini_batch_size=16)
    """

    uses_gradient_cache = True

    def __init__(
        self,
        model: SentenceTransformer,
        guide: SentenceTransformer,
        temperature: float = 0.01,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        margin_strategy: MarginStrategy = "absolute",
        margin: float = 0.0,
        contrast_anchors: bool = True,
        contrast_positives: bool = True,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.guide = guide
        self.temperature = temperature
        self.similarity_fct = nn.CosineSimilarity(dim=-1)
        if mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        validate_mini_batch_num_tokens(mini_batch_num_tokens)
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self.must_retokenize = guide_needs_retokenization(self, model, guide)
        if self.must_retokenize:
            self.tokenizer = model.tokenizer
        if margin_strategy not in ("absolute", "relative"):
            raise ValueError(f"margin_strategy must be 'absolute' or 'relative', got {margin_strategy!r}.")
        self.margin_strategy = margin_strategy
        self.margin = margin
        self.contrast_anchors = contrast_anchors
        self.contrast_positives = contrast_positives
        self.gather_across_devices = gather_across_devices
        self.cross_entropy_loss = nn.CrossEntropyLoss()

    def sim_matrix(self, embed1: Tensor, embed2: Tensor) -> Tensor:
        """``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` similarities with ``similarity_fct``."""
        return similarity_matrix(self.similarity_fct, embed1, embed2)

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, Tensor | None, RandContext | None]:
        """The model's embeddings of rows ``begin:end``, the guide's (only on the first, gradient-free pass) and the
        random state captured before the model's pass."""
        minibatch = slice_features(sentence_feature, begin, end)
        with nullcontext() if random_state is None else random_state:
            with nullcontext() if with_grad else torch.no_grad():
                state = RandContext(*minibatch.values()) if copy_random_state else None
                reps = self.model(minibatch)["sentence_embedding"]
            guide_reps = None
            if not with_grad:
                with torch.no_grad():
                    guide_reps = self.guide(guide_features(self, minibatch))["sentence_embedding"]
        return reps, guide_reps, state

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: Sequence[RandContext | None] | None = None,
        ranges: Sequence[Range] | None = None,
    ) -> Iterator[tuple[Tensor, Tensor | None, RandContext | None]]:
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
        self, reps: list[list[Tensor]], reps_guided: list[list[Tensor]], *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the model's and the guide's mini-batch embeddings (``[column][mini_batch]``), in chunks of
        ``mini_batch_size`` anchor rows (each backpropagated at once with ``with_backward``)."""
        if len(reps) != len(reps_guided):
            raise ValueError(
                f"reps and reps_guided must have one entry per column, got {len(reps)} and {len(reps_guided)}"
            )
        anchors, anchors_guide = torch.cat(reps[0]), torch.cat(reps_guided[0])
        candidates = [torch.cat(column) for column in reps[1:]]
        candidates_guide = [torch.cat(column) for column in reps_guided[1:]]
        batch_size = anchors.shape[0]
        offset = 0
        if self.gather_across_devices:
            candidates = [_gather_with_grad(c) for c in candidates]
            candidates_guide = [_gather_with_grad(c) for c in candidates_guide]
            offset = get_rank() * batch_size
        parts: list[Tensor] = []
        for begin in chunk_starts(batch_size, self.mini_batch_size, self.show_progress_bar):
            end = min(begin + self.mini_batch_size, batch_size)
            scores = gist_logits(self, anchors, anchors_guide, candidates, candidates_guide, begin, end, offset)
            targets = torch.arange(offset + begin, offset + end, device=anchors.device)
            part = self.cross_entropy_loss(scores, targets) * (end - begin) / batch_size
            if with_backward:
                part.backward()
                part = part.detach()
            parts.append(part)
        return torch.stack(parts).sum()

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` are unused."""
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(
                f"{type(self).__name__} expects at least 2 input columns (anchor, positive[, negative, ...]), "
                f"got {len(columns)}."
            )
        grad_enabled = torch.is_grad_enabled()
        ranges = [minibatch_ranges(f, self.mini_batch_size, self.mini_batch_num_tokens) for f in columns]
        reps: list[list[Tensor]] = []
        reps_guided: list[list[Tensor]] = []
        states: list[list[RandContext | None]] = []
        for features, column_ranges in zip(columns, ranges):
            column_reps, column_guided, column_states = [], [], []
            for rep, guided, state in self.embed_minibatch_iter(
                features, with_grad=False, copy_random_state=grad_enabled, ranges=column_ranges
            ):
                assert guided is not None
                column_reps.append(rep.detach().requires_grad_())
                column_guided.append(guided.detach())
                column_states.append(state)
            reps.append(column_reps)
            reps_guided.append(column_guided)
            states.append(column_states)
        if not grad_enabled:
            return self.calculate_loss(reps, reps_guided)
        loss = self.calculate_loss(reps, reps_guided, with_backward=True)
        return attach_replay(self, loss, columns, reps, states, ranges)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "guide": self.guide,
            "temperature": self.temperature,
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
            "margin_strategy": self.margin_strategy,
            "margin": self.margin,
            "contrast_anchors": self.contrast_anchors,
            "contrast_positives": self.contrast_positives,
            "gather_across_devices": self.gather_across_devices,
        }
