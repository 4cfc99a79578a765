"""``CachedMultipleNegativesRankingLoss``: MultipleNegativesRankingLoss with gradient caching, for batches far larger
than what one forward pass fits in memory."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.similarity import cos_sim
from sentrs.sentence_transformer.losses._gradcache import (
    GradCacheMixin,
    RandContext,
    chunk_starts,
    validate_mini_batch_num_tokens,
)
from sentrs.sentence_transformer.losses.multiple_negatives_ranking import (
    Direction,
    HardnessMode,
    MultipleNegativesRankingLoss,
    PartitionMode,
    _gather_with_grad,
)
from sentrs.util.distributed import get_rank
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["CachedMultipleNegativesRankingLoss", "RandContext"]

# The arguments the wrapped MultipleNegativesRankingLoss owns (and validates); reading or setting one of them on the
# cached loss reads or sets it there.
_DELEGATED = frozenset(
    {
        "scale",
        "similarity_fct",
        "gather_across_devices",
        "directions",
        "partition_mode",
        "hardness_mode",
        "hardness_strength",
    }
)


def _delegated(name: str) -> Any:
    """A read-only property that reads ``name`` from the wrapped loss (``__setattr__`` forwards the writes)."""
    return property(lambda self: getattr(self.loss, name), doc=f"``{name}`` of the wrapped loss.")


class CachedMultipleNegativesRankingLoss(GradCacheMixin, nn.Module):
    """:class:`MultipleNegativesRankingLoss` computed with gradient caching (GradCache): the same loss and the same
    gradients, at the memory of one ``mini_batch_size`` forward pass whatever the batch size.

    In-batch negatives tie the rows of a batch together, so a large batch cannot be split into independent parts.
    This loss embeds the batch mini-batch by mini-batch without a graph, computes the loss (in chunks of
    ``mini_batch_size`` query rows) and the gradient with respect to every embedding, then, during
    ``loss.backward()``, embeds each mini-batch again with a graph and backpropagates the cached gradient through it.
    Dropout draws the same masks in both passes. The price is a second forward pass: training is roughly 2x slower
    than :class:`MultipleNegativesRankingLoss` at the same batch size.

    Args:
        model: the SentenceTransformer to train.
        scale: multiplies the similarities (``1 / temperature``). Must be positive.
        similarity_fct: ``(n, dim)`` x ``(m, dim)`` -> ``(n, m)`` scores; cosine by default.
        mini_batch_size: texts per forward pass (and query rows per loss chunk): the memory knob. Larger is faster.
        mini_batch_num_tokens: when set, each forward pass takes as many texts as fit in this many (non-padding)
            tokens instead of ``mini_batch_size`` texts; the loss chunks stay ``mini_batch_size`` rows.
        gather_across_devices: in a ``torch.distributed`` job, score each process's queries against the documents of
            every process.
        directions: the interactions in the loss, as in :class:`MultipleNegativesRankingLoss`.
        partition_mode: ``"joint"`` or ``"per_direction"``, as in :class:`MultipleNegativesRankingLoss`.
        show_progress_bar: show tqdm bars over the mini-batches and the loss chunks.
        hardness_mode: as in :class:`MultipleNegativesRankingLoss`.
        hardness_strength: as in :class:`MultipleNegativesRankingLoss`.

    Raises:
        ValueError: an argument is out of range (see :class:`MultipleNegativesRankingLoss` for the shared ones).

    Requirements:
        1. (anchor, positive) pairs, or (anchor, positive, negative_1, ..., negative_n) tuples.
        2. A large batch with a small ``mini_batch_size``: that is what the caching is for.

    Inputs:
        +-------------------------------------------------+--------+
        | Texts                                           | Labels |
        +=================================================+========+
        | (anchor, positive) pairs                        | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative) triplets           | none   |
        +-------------------------------------------------+--------+
        | (anchor, positive, negative_1, ..., negative_n) | none   |
        +-------------------------------------------------+--------+

    Relations:
        - :class:`MultipleNegativesRankingLoss` computes the same loss in one pass (faster, memory grows with the
          batch).

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import CachedMultipleNegativesRankingLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=16)
            anchors = model.preprocess(["It's sunny today.", "He drove to work."])
            positives = model.preprocess(["The weather is nice.", "He took the car to the office."])
            loss([anchors, positives], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        scale: float = 20.0,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        gather_across_devices: bool = False,
        directions: tuple[Direction, ...] = ("query_to_doc",),
        partition_mode: PartitionMode = "joint",
        show_progress_bar: bool = False,
        hardness_mode: HardnessMode | None = None,
        hardness_strength: float = 0.0,
    ) -> None:
        super().__init__()
        if mini_batch_size <= 0:
            raise ValueError(f"mini_batch_size must be a positive integer, got {mini_batch_size!r}")
        validate_mini_batch_num_tokens(mini_batch_num_tokens)
        self.model = model
        self.loss = MultipleNegativesRankingLoss(
            model,
            scale=scale,
            similarity_fct=similarity_fct,
            gather_across_devices=gather_across_devices,
            directions=directions,
            partition_mode=partition_mode,
            hardness_mode=hardness_mode,
            hardness_strength=hardness_strength,
        )
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar

    scale = _delegated("scale")
    similarity_fct = _delegated("similarity_fct")
    gather_across_devices = _delegated("gather_across_devices")
    directions = _delegated("directions")
    partition_mode = _delegated("partition_mode")
    hardness_mode = _delegated("hardness_mode")
    hardness_strength = _delegated("hardness_strength")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _DELEGATED and isinstance(self.__dict__.get("_modules", {}).get("loss"), nn.Module):
            setattr(self._modules["loss"], name, value)
        else:
            super().__setattr__(name, value)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column; ``labels`` are unused."""
        columns = list(sentence_features)
        if len(columns) < 2:
            raise ValueError(f"Expected at least 2 inputs, got {len(columns)}")
        return self.forward_cached(columns, labels)

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The loss from the mini-batch embeddings ``reps[column][mini_batch]``, in chunks of ``mini_batch_size``
        query rows (each chunk backpropagated at once with ``with_backward``)."""
        inner: MultipleNegativesRankingLoss = self._modules["loss"]  # type: ignore[assignment]
        queries = torch.cat(reps[0])
        docs = [torch.cat(column) for column in reps[1:]]
        batch_size = queries.shape[0]
        first = 0
        if inner.gather_across_devices:
            queries = _gather_with_grad(queries)
            docs = [_gather_with_grad(doc) for doc in docs]
            first = get_rank() * batch_size
        total = queries.shape[0]
        all_docs = torch.cat(docs)
        parts: list[Tensor] = []
        for begin in chunk_starts(batch_size, self.mini_batch_size, self.show_progress_bar):
            end = min(begin + self.mini_batch_size, batch_size)
            own = torch.arange(first + begin, first + end, device=queries.device)
            part = _chunk_loss(inner, queries, docs[0], all_docs, own, total, len(docs))
            part = part / batch_size
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
            "gather_across_devices": self.gather_across_devices,
            "directions": self.directions,
            "partition_mode": self.partition_mode,
            "hardness_mode": self.hardness_mode,
            "hardness_strength": self.hardness_strength,
        }

    @property
    def temperature(self) -> float:
        """``1 / scale``."""
        return 1.0 / float(self.scale)

    @property
    def citation(self) -> str:
        """BibTeX of the GradCache paper."""
        return CITATION


def _chunk_loss(
    loss: MultipleNegativesRankingLoss,
    queries: Tensor,
    positives: Tensor,
    all_docs: Tensor,
    own: Tensor,
    total: int,
    n_doc_columns: int,
) -> Tensor:
    """The summed per-row loss of the query rows ``own`` (indices into the gathered rows) against every candidate.

    ``queries`` and ``positives`` are ``(total, dim)``; ``all_docs`` is ``(total * n_doc_columns, dim)``: the
    positives, then each negative column.
    """
    rows = torch.arange(own.shape[0], device=queries.device)
    # own_doc[i, k]: document k of all_docs belongs to the chunk's row i (its positive or one of its negatives)
    own_column = torch.zeros(own.shape[0], total, dtype=torch.bool, device=queries.device)
    own_column[rows, own] = True
    own_doc = own_column.repeat(1, n_doc_columns)
    local_queries = queries[own]
    logits: dict[str, Tensor] = {"query_to_doc": loss.similarity_fct(local_queries, all_docs)}
    if "query_to_query" in loss.directions:
        logits["query_to_query"] = loss.similarity_fct(local_queries, queries).masked_fill(own_column, float("-inf"))
    if "doc_to_query" in loss.directions:
        logits["doc_to_query"] = loss.similarity_fct(queries, positives[own]).T
    if "doc_to_doc" in loss.directions:
        logits["doc_to_doc"] = loss.similarity_fct(all_docs, positives[own]).T.masked_fill(own_doc, float("-inf"))
    penalty = loss._hardness_penalty(logits["query_to_doc"], own_doc, total)
    logits = {name: scores * loss.scale for name, scores in logits.items()}
    if penalty is not None:
        logits["query_to_doc"] = logits["query_to_doc"] + penalty
    positive = logits["query_to_doc"][rows, own]
    if loss.partition_mode == "joint":
        log_partition = torch.logsumexp(torch.cat(list(logits.values()), dim=1), dim=1)
    else:
        log_partition = torch.stack([torch.logsumexp(s, dim=1) for s in logits.values()]).mean(dim=0)
    return (log_partition - positive).sum()


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
