"""``CachedMultipleNegativesRankingLoss`` for cross-encoders: MultipleNegativesRankingLoss with gradient caching, for
batches whose pairs do not fit in one forward pass."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.tensors import batch_to_device
from sentrs.cross_encoder.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
from sentrs.sentence_transformer.losses._gradcache import RandContext, Range, attach_replay, progress

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CachedMultipleNegativesRankingLoss"]


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """:class:`MultipleNegativesRankingLoss` with gradient caching (GradCache): the same loss and gradients, with
    the activations of only ``mini_batch_size`` pairs alive at a time, whatever the batch size.

    The loss scores every pair of the batch mini-batch by mini-batch without a graph, computes the loss and its
    gradient with respect to each score, and during ``loss.backward()`` scores each mini-batch again, with a graph,
    and backpropagates the cached gradient through it (dropout draws the same masks both times). The price is the
    second forward pass: roughly 20-50% slower than :class:`MultipleNegativesRankingLoss` at the same batch size.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        num_negatives: in-batch negatives sampled per query; None takes every document of the other rows.
        scale: multiplies the activated scores (an inverse temperature); 0 or None leaves them as they are.
        activation_fn: applied to the logits before scaling; sigmoid by default, None for none.
        mini_batch_size: (query, document) pairs per forward pass: the memory knob.
        show_progress_bar: show a progress bar over the mini-batches.

    Requirements:
        1. A model with ``num_labels=1``.
        2. Large batches (``per_device_train_batch_size``) with a small ``mini_batch_size``; for batches that fit
           in memory, :class:`MultipleNegativesRankingLoss` is faster.

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

    Example:
        ::

            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import CachedMultipleNegativesRankingLoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = CachedMultipleNegativesRankingLoss(model, num_negatives=1, mini_batch_size=2)
            queries = ["What are pandas?", "What is the capital of France?"]
            answers = ["Pandas are a kind of bear.", "The capital of France is Paris."]
            loss([queries, answers], None).backward()
    """

    # Scores its pairs again during the backward pass (see sentrs.sentence_transformer.losses._gradcache).
    uses_gradient_cache = True

    def __init__(
        self,
        model: CrossEncoder,
        num_negatives: int | None = 4,
        scale: float = 10.0,
        activation_fn: nn.Module | None = nn.Sigmoid(),  # noqa: B008 - the reference's default object
        mini_batch_size: int = 32,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(model, num_negatives=num_negatives, scale=scale, activation_fn=activation_fn)
        if isinstance(mini_batch_size, bool) or not isinstance(mini_batch_size, int) or mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        self.mini_batch_size = mini_batch_size
        self.show_progress_bar = show_progress_bar

    def forward(
        self,
        inputs: list[list[str]],
        labels: Tensor | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch (as :meth:`MultipleNegativesRankingLoss.forward`); with gradients enabled, the
        returned loss replays the forward passes when backpropagated."""
        self._check_columns(inputs)
        anchors = inputs[0]
        batch_size = len(anchors)
        candidates = self.candidate_columns(anchors, inputs[1:])
        pairs = [(anchor, doc) for column in candidates for anchor, doc in zip(anchors, column)]
        ranges = self._ranges(len(pairs))
        features = {"pairs": pairs, "prompt": prompt, "task": task}
        grad_enabled = torch.is_grad_enabled()
        logits: list[Tensor] = []
        states: list[RandContext | None] = []
        # Step 1: every mini-batch scored without a graph (random states kept only when a replay will need them).
        for minibatch_logits, state in self.embed_minibatch_iter(
            features, with_grad=False, copy_random_state=grad_enabled, ranges=ranges
        ):
            logits.append(minibatch_logits.detach().requires_grad_())
            states.append(state)
        if not grad_enabled:
            return self.calculate_loss(logits, batch_size)
        # Step 2: the loss and its gradient with respect to every score; step 3 runs in a hook on the loss.
        loss, _ = self.calculate_loss_and_cache_gradients(logits, batch_size)
        return attach_replay(self, loss, [features], [logits], [states], [ranges])

    def _ranges(self, n_pairs: int) -> list[Range]:
        """``(begin, end)`` of each mini-batch of ``mini_batch_size`` pairs."""
        step = self.mini_batch_size
        return [(begin, min(begin + step, n_pairs)) for begin in range(0, n_pairs, step)]

    def predict_minibatch(
        self,
        pairs: Sequence[Any],
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> tuple[Tensor, RandContext | None]:
        """``(len(pairs),)`` logits of one mini-batch, and the random state captured before the pass (when
        ``copy_random_state``); ``random_state`` replays an earlier pass.

        The pairs are tokenized and moved to the model's device first, so that the captured state covers that
        device's generator.
        """
        features = batch_to_device(self.model.preprocess(list(pairs), prompt=prompt, task=task), self.model.device)
        with nullcontext() if random_state is None else random_state:
            with nullcontext() if with_grad else torch.no_grad():
                state = RandContext(*features.values()) if copy_random_state else None
                logits = self.model(features)["scores"].squeeze(1)
        return logits, state

    def predict_minibatch_iter(
        self,
        pairs: Sequence[Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: Sequence[RandContext | None] | None = None,
        prompt: str | None = None,
        task: str | None = None,
    ) -> Iterator[tuple[Tensor, RandContext | None]]:
        """:meth:`predict_minibatch` over consecutive mini-batches of ``mini_batch_size`` pairs."""
        yield from self.embed_minibatch_iter(
            {"pairs": pairs, "prompt": prompt, "task": task},
            with_grad=with_grad,
            copy_random_state=copy_random_state,
            random_states=random_states,
        )

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: Sequence[RandContext | None] | None = None,
        ranges: Sequence[Range] | None = None,
    ) -> Iterator[tuple[Tensor, RandContext | None]]:
        """:meth:`predict_minibatch` over the ``ranges`` of ``sentence_feature["pairs"]`` (``mini_batch_size``
        pairs each by default); the replay hook calls it with the ranges and random states of the first pass."""
        pairs = sentence_feature["pairs"]
        if ranges is None:
            ranges = self._ranges(len(pairs))
        for index, (begin, end) in enumerate(progress(ranges, self.show_progress_bar, "Predict mini-batches")):
            yield self.predict_minibatch(
                pairs[begin:end],
                with_grad=with_grad,
                copy_random_state=copy_random_state,
                random_state=None if random_states is None else random_states[index],
                prompt=sentence_feature["prompt"],
                task=sentence_feature["task"],
            )

    def calculate_loss_and_cache_gradients(self, logits: list[Tensor], batch_size: int) -> tuple[Tensor, list[Tensor]]:
        """The loss of the leaf ``logits`` (backpropagated to them at once), detached, and their gradients."""
        loss = self.calculate_loss(logits, batch_size)
        loss.backward()
        cache = [piece.grad for piece in logits if piece.grad is not None]
        return loss.detach().requires_grad_(), cache

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {**super().get_config_dict(), "mini_batch_size": self.mini_batch_size}
