"""Gradient caching (GradCache, Gao et al. 2021) for the ``Cached*`` losses: batches far larger than the memory of one
forward pass.

A contrastive loss over a batch couples every row with every other, so the batch cannot simply be split. GradCache
splits the *work* instead:

1. embed the batch mini-batch by mini-batch without building a graph, and keep the embeddings as leaf tensors;
2. compute the loss on those leaves (the losses here do it in row chunks, each chunk backpropagated at once) and keep
   the gradient of the loss with respect to every embedding;
3. during the outer ``loss.backward()``, embed each mini-batch again, this time with a graph, and backpropagate
   ``<embedding, cached gradient>`` through it.

Only one mini-batch of activations is alive at any moment. Step 3 must see the dropout masks of step 1, so each
mini-batch's random state is recorded before its first pass and restored for its second (:class:`RandContext`).

A loss gets all of this from :class:`GradCacheMixin` by providing ``calculate_loss(reps, labels, *, with_backward)``.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "GradCacheMixin",
    "RandContext",
    "Range",
    "attach_replay",
    "batch_size_of",
    "chunk_starts",
    "minibatch_ranges",
    "progress",
    "slice_features",
    "truncating_calculate_loss",
    "uses_gradient_cache",
    "validate_mini_batch_num_tokens",
]

# A mini-batch: the (begin, end) rows of one input column.
Range = tuple[int, int]


class RandContext:
    """The random state of the CPU and of the accelerators the given tensors live on, captured at construction.

    Entering the context forks the random state and sets the captured one, so that a second forward pass draws the
    same dropout masks as the first; leaving it puts the caller's random state back.
    """

    def __init__(self, *tensors: Any) -> None:
        from torch.utils.checkpoint import get_device_states

        self.cpu_state = torch.get_rng_state()
        on_mps = [t for t in tensors if isinstance(t, Tensor) and t.device.type == "mps"]
        # get_device_states does not know the MPS device: its state is kept on its own.
        self.mps_state = torch.mps.get_rng_state() if on_mps else None
        others = [t for t in tensors if not (isinstance(t, Tensor) and t.device.type == "mps")]
        self.devices, self.device_states = get_device_states(*others)
        self._fork: AbstractContextManager[Any] | None = None
        self._mps_outside: Tensor | None = None

    def __enter__(self) -> None:
        from torch.utils.checkpoint import set_device_states

        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        if self.mps_state is not None:
            self._mps_outside = torch.mps.get_rng_state()
            torch.mps.set_rng_state(self.mps_state)
        set_device_states(self.devices, self.device_states)

    def __exit__(self, *exc: Any) -> None:
        if self._mps_outside is not None:
            torch.mps.set_rng_state(self._mps_outside)
            self._mps_outside = None
        assert self._fork is not None
        self._fork.__exit__(*exc)
        self._fork = None


def uses_gradient_cache(loss: Any) -> bool:
    """Whether ``loss`` embeds its inputs again during the backward pass (a ``Cached*`` loss).

    Wrappers that work by replacing the model's ``forward`` for the duration of the forward pass (Matryoshka,
    AdaptiveLayer) cannot reach that second pass, so they treat such a loss specially.
    """
    return bool(getattr(loss, "uses_gradient_cache", False))


def validate_mini_batch_num_tokens(mini_batch_num_tokens: int | None) -> None:
    """Raises:
    ValueError: ``mini_batch_num_tokens`` is set but not a positive number."""
    if mini_batch_num_tokens is not None and mini_batch_num_tokens <= 0:
        raise ValueError(f"mini_batch_num_tokens must be a positive integer or None, got {mini_batch_num_tokens!r}")


def batch_size_of(features: dict[str, Any]) -> int:
    """The number of texts in one column's features, padded (``(batch, seq)`` tensors) or flattened."""
    if "cu_seq_lens_q" in features:
        return len(features["cu_seq_lens_q"]) - 1
    for key in ("input_ids", "attention_mask"):
        value = features.get(key)
        if isinstance(value, Tensor):
            return int(value.shape[0])
    for value in features.values():
        if isinstance(value, Tensor) and value.ndim > 0:
            return int(value.shape[0])
    raise ValueError(f"cannot tell the batch size of features without tensors (keys: {sorted(features)})")


def minibatch_ranges(
    features: dict[str, Any], mini_batch_size: int, mini_batch_num_tokens: int | None = None
) -> list[Range]:
    """The ``(begin, end)`` row ranges of one column's mini-batches.

    ``mini_batch_size`` rows each by default. With ``mini_batch_num_tokens``, each range takes as many rows as fit in
    that many real (non-padding) tokens; a row longer than the budget gets a range of its own.
    """
    if mini_batch_size <= 0:
        raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
    total = batch_size_of(features)
    if mini_batch_num_tokens is None:
        return [(begin, min(begin + mini_batch_size, total)) for begin in range(0, total, mini_batch_size)]
    if "cu_seq_lens_q" in features:
        ends = [int(x) for x in features["cu_seq_lens_q"][1:].tolist()]
    elif isinstance(features.get("attention_mask"), Tensor):
        ends = [int(x) for x in features["attention_mask"].sum(dim=1).cumsum(dim=0).tolist()]
    else:
        raise ValueError(
            "mini_batch_num_tokens needs the length of every text, but the features have neither 'cu_seq_lens_q' "
            "(flattened inputs) nor 'attention_mask' (padded inputs); use mini_batch_size instead."
        )
    ranges: list[Range] = []
    begin = 0
    while begin < total:
        start_tokens = ends[begin - 1] if begin else 0
        end = max(bisect.bisect_right(ends, start_tokens + mini_batch_num_tokens), begin + 1)
        ranges.append((begin, end))
        begin = end
    return ranges


def slice_features(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    """Rows ``begin:end`` of one column's features.

    Padded inputs lose the trailing padding columns that none of the selected rows uses (leading padding stays, as
    positions may depend on it); flattened inputs get their token range and rebuilt sequence bounds. A column counts
    as used when its attention mask is set or when it is a query-expansion position (``query_expansion_positions``):
    ColBERT-style expansion tokens may be hidden from attention (``attend=False``) and still be scored.
    """
    if "cu_seq_lens_q" in features:
        return _slice_flattened(features, begin, end)
    end = min(end, batch_size_of(features))
    width: int | None = None
    keep: int | None = None
    mask = features.get("attention_mask")
    if isinstance(mask, Tensor) and mask.ndim == 2:
        width = int(mask.shape[1])
        rows = mask[begin:end].bool()
        expansion = features.get("query_expansion_positions")
        if isinstance(expansion, Tensor) and expansion.shape == mask.shape:
            rows = rows | expansion[begin:end].bool()
        used = rows.any(dim=0)
        if used.any():
            last = int(used.nonzero().max().item()) + 1
            keep = last if last < width else None
    sliced: dict[str, Any] = {}
    for key, value in features.items():
        if not isinstance(value, Tensor) or value.ndim == 0:
            sliced[key] = value
        elif keep is not None and value.ndim >= 2 and value.shape[1] == width:
            sliced[key] = value[begin:end, :keep]
        else:
            sliced[key] = value[begin:end]
    return sliced


def _slice_flattened(features: dict[str, Any], begin: int, end: int) -> dict[str, Any]:
    bounds = features["cu_seq_lens_q"]
    end = min(end, len(bounds) - 1)
    first, last, total = int(bounds[begin]), int(bounds[end]), int(bounds[-1])
    new_bounds = bounds[begin : end + 1] - bounds[begin]
    sliced: dict[str, Any] = {}
    for key, value in features.items():
        if key in ("cu_seq_lens_q", "cu_seq_lens_k"):
            sliced[key] = new_bounds
        elif key in ("max_length_q", "max_length_k"):
            sliced[key] = int((new_bounds[1:] - new_bounds[:-1]).max().item())
        elif key == "seq_idx":
            sliced[key] = value[..., first:last] - begin
        elif isinstance(value, Tensor) and value.ndim >= 1 and value.shape[-1] == total:
            sliced[key] = value[..., first:last]  # a per-token tensor (input_ids, position_ids, ...)
        else:
            sliced[key] = value
    return sliced


def _replay_context(model: nn.Module, last: bool) -> AbstractContextManager[Any]:
    """Under DistributedDataParallel, gradients are synchronized once, on the last replayed mini-batch."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel) and not last:
        return model.no_sync()
    return nullcontext()


def _replay_backward(
    grad_output: Tensor,
    *,
    loss: Any,
    sentence_features: list[dict[str, Any]],
    cache: list[list[Tensor]],
    random_states: list[list[RandContext | None]],
    ranges: list[list[Range]],
) -> None:
    """The hook on the returned loss: step 3, every mini-batch embedded again with a graph and backpropagated with
    its cached gradient times ``grad_output`` (which carries loss scaling and gradient-accumulation factors).

    ``loss`` provides ``model`` and ``embed_minibatch_iter``; the cache, random states and ranges belong to one forward
    pass, so a second forward before this backward cannot mix up batches.
    """
    model = getattr(loss.model, "_orig_mod", loss.model)
    remaining = sum(len(column) for column in cache)
    with torch.enable_grad():
        for features, grads, states, column_ranges in zip(sentence_features, cache, random_states, ranges):
            embedded = loss.embed_minibatch_iter(
                features, with_grad=True, copy_random_state=False, random_states=states, ranges=column_ranges
            )
            for grad in grads:
                remaining -= 1
                with _replay_context(model, last=remaining == 0):
                    reps = next(embedded)[0]
                    if not reps.requires_grad:  # a frozen model
                        continue
                    dtype = torch.promote_types(reps.dtype, grad.dtype)
                    if dtype in (torch.float16, torch.bfloat16):
                        dtype = torch.float32
                    surrogate = torch.dot(reps.flatten().to(dtype), grad.flatten().to(dtype)) * grad_output
                    surrogate.backward()


class GradCacheMixin:
    """The three GradCache steps for a loss (an ``nn.Module`` with ``model``, ``mini_batch_size``,
    ``mini_batch_num_tokens`` and ``show_progress_bar``) that implements :meth:`calculate_loss`."""

    model: nn.Module
    mini_batch_size: int
    mini_batch_num_tokens: int | None = None
    show_progress_bar: bool = False
    uses_gradient_cache: bool = True

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss of the whole batch from ``reps[column][mini_batch]`` embeddings. With ``with_backward``, each
        part of it is backpropagated as soon as it is computed and the detached total is returned."""
        raise NotImplementedError

    def embed_minibatch(
        self,
        sentence_feature: dict[str, Any],
        begin: int,
        end: int,
        with_grad: bool,
        copy_random_state: bool,
        random_state: RandContext | None = None,
    ) -> tuple[Tensor, RandContext | None]:
        """``(mini_batch, dim)`` embeddings of rows ``begin:end``, and the random state captured before the pass
        (when ``copy_random_state``); ``random_state`` replays an earlier pass."""
        minibatch = slice_features(sentence_feature, begin, end)
        with nullcontext() if random_state is None else random_state:
            with nullcontext() if with_grad else torch.no_grad():
                state = RandContext(*minibatch.values()) if copy_random_state else None
                reps = self.model(minibatch)["sentence_embedding"]
        return reps, state

    def embed_minibatch_iter(
        self,
        sentence_feature: dict[str, Any],
        with_grad: bool,
        copy_random_state: bool,
        random_states: Sequence[RandContext | None] | None = None,
        ranges: Sequence[Range] | None = None,
    ) -> Iterator[tuple[Tensor, RandContext | None]]:
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

    def forward_cached(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """Steps 1 and 2 now, step 3 in a hook on the returned loss (without gradients: steps 1 and 2 only)."""
        columns = list(sentence_features)
        grad_enabled = torch.is_grad_enabled()
        # The ranges come first: a module may change the features in place (Pooling without the prompt), and the
        # replay must cut the same mini-batches.
        ranges = [minibatch_ranges(f, self.mini_batch_size, self.mini_batch_num_tokens) for f in columns]
        reps: list[list[Tensor]] = []
        states: list[list[RandContext | None]] = []
        for features, column_ranges in zip(columns, ranges):
            column_reps, column_states = [], []
            for rep, state in self.embed_minibatch_iter(
                features, with_grad=False, copy_random_state=grad_enabled, ranges=column_ranges
            ):
                column_reps.append(rep.detach().requires_grad_())
                column_states.append(state)
            reps.append(column_reps)
            states.append(column_states)
        if not grad_enabled:
            return self.calculate_loss(reps, labels)
        loss = self.calculate_loss(reps, labels, with_backward=True)
        return attach_replay(self, loss, columns, reps, states, ranges)


def attach_replay(
    owner: Any,
    loss: Tensor,
    columns: list[dict[str, Any]],
    reps: list[list[Tensor]],
    states: list[list[RandContext | None]],
    ranges: list[list[Range]],
) -> Tensor:
    """Step 3: ``loss`` (whose backward already filled ``reps[column][mini_batch].grad``) detached, with a hook that
    replays ``owner``'s mini-batches (``owner.embed_minibatch_iter``, whose items start with the embeddings) and
    backpropagates the cached gradients through them.

    Raises:
        ValueError: the loss did not use a column (its embeddings have no gradient).
    """
    cache: list[list[Tensor]] = []
    unused = []
    for index, column in enumerate(reps):
        grads = [rep.grad for rep in column]
        if any(grad is None for grad in grads):
            unused.append(str(index))
        cache.append([grad for grad in grads if grad is not None])
    if unused:
        raise ValueError(
            f"{type(owner).__name__} did not use input column(s) {', '.join(unused)}: their embeddings got no "
            "gradient. Every column is embedded (twice, with gradient caching), so remove the unused column(s) "
            "from the dataset."
        )
    loss = loss.detach().requires_grad_()
    loss.register_hook(
        partial(
            _replay_backward,
            loss=owner,
            sentence_features=columns,
            cache=cache,
            random_states=states,
            ranges=ranges,
        )
    )
    return loss


def progress(items: Sequence[Any], show: bool, desc: str) -> Iterable[Any]:
    """``items``, behind a tqdm bar labelled ``desc`` when ``show``."""
    if not show:
        return items
    from tqdm.autonotebook import tqdm

    return tqdm(items, desc=desc)


def chunk_starts(batch_size: int, chunk: int, show_progress_bar: bool) -> Iterable[int]:
    """The first row of each loss chunk of ``chunk`` rows."""
    return progress(range(0, batch_size, chunk), show_progress_bar, "Calculating loss")


def truncating_calculate_loss(
    calculate_loss: Callable[..., Tensor],
    dims: Sequence[int],
    weights: Sequence[float] | Sequence[int],
    n_dims_per_step: int,
    shrink: Callable[[Tensor, int], Tensor],
) -> Callable[..., Tensor]:
    """``calculate_loss`` of a cached loss, made Matryoshka: the weighted sum over ``dims`` (drawn as MatryoshkaLoss
    draws them) of the loss on the embeddings shrunk to each dimension. The gradients reach the full embeddings, so
    the cached gradients (and the replay) stay those of the full dimension."""

    def matryoshka_calculate_loss(reps: list[list[Tensor]], *args: Any, **kwargs: Any) -> Tensor:
        indices: Sequence[int] = range(len(dims))
        if 0 < n_dims_per_step < len(indices):
            indices = random.sample(indices, n_dims_per_step)
        grad = torch.is_grad_enabled()
        total: Tensor | float = 0.0
        for index in indices:
            dim, weight = dims[index], weights[index]
            shrunk = [[shrink(rep, dim) for rep in column] for column in reps]
            leaves = [[rep.detach().requires_grad_() for rep in column] for column in shrunk] if grad else shrunk
            total = total + weight * calculate_loss(leaves, *args, **kwargs)
            if grad:
                for shrunk_column, leaf_column in zip(shrunk, leaves):
                    for rep, leaf in zip(shrunk_column, leaf_column):
                        if leaf.grad is not None:
                            rep.backward(weight * leaf.grad)
        assert isinstance(total, Tensor)
        return total

    matryoshka_calculate_loss.wrapped = calculate_loss  # type: ignore[attr-defined]
    return matryoshka_calculate_loss
