"""``MultiVectorMultipleNegativesRankingLoss``: InfoNCE with in-batch negatives over late-interaction (MaxSim) scores.

Also home of what every multi-vector loss shares: how the columns are checked, how the query column and the document
columns are embedded into padded per-token embeddings with their scoring masks, and how those are gathered across
processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.tensors import cat_padded_token_embeddings, stack_padded_token_embeddings
from sentrs.multi_vector_encoder.scoring import colbert_scores
from sentrs.sentence_transformer.losses._gradcache import batch_size_of, minibatch_ranges, slice_features
from sentrs.sentence_transformer.losses._inputs import _MERGING_OFF, _merge_columns
from sentrs.util.distributed import all_gather_padded, get_rank
from sentrs.util.misc import similarity_fct_name

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = ["MultiVectorMultipleNegativesRankingLoss"]

#: The task of a column the data collator did not stamp one on: the first column is the query, the rest documents.
QUERY_TASK = "query"
DOCUMENT_TASK = "document"


class MultiVectorMultipleNegativesRankingLoss(nn.Module):
    """Contrastive loss for a :class:`~sentrs.MultiVectorEncoder`: each query must pick its own document out of every
    document in the batch, by late-interaction score.

    Each query's token embeddings are scored (MaxSim by default) against the token embeddings of every document of
    the batch: its own positive, the positives of the other rows (in-batch negatives) and every row's hard negatives.
    The loss is the cross-entropy of the positive against all of them, with the scores multiplied by ``scale``,
    averaged over the queries.

    Args:
        model: the MultiVectorEncoder to train.
        scale: multiplies the scores before the softmax (``1 / temperature``), must be positive. MaxSim sums one
            similarity per query token, so its scores already span up to the query length and 1.0 (the default)
            fits; with a length-normalised scorer (``mean_colbert_scores``) a value near the mean query length is a
            better start.
        similarity_fct: scores queries ``(n_queries, query_tokens, dim)`` against document groups
            ``(n_groups, n_per_group, doc_tokens, dim)``, with the keyword arguments ``queries_mask`` and
            ``documents_mask``, into ``(n_queries, n_groups * n_per_group)`` scores in group-major order (group ``j``,
            document ``k`` is column ``j * n_per_group + k``). Default
            :func:`~sentrs.multi_vector_encoder.scoring.colbert_scores` (MaxSim); pass
            :class:`~sentrs.multi_vector_encoder.scoring.XTRScores` for XTR scoring, or a ``functools.partial`` to
            bind options such as ``chunk_elements``.
        mini_batch_size: at most this many texts per forward pass of the document columns (each chunk only as wide
            as its longest text); None (default) embeds them in one pass. The chunks' activations all stay alive for
            the backward pass, so this bounds padding, not memory: for that, use
            :class:`CachedMultiVectorMultipleNegativesRankingLoss`.
        score_mini_batch_size: score this many queries at a time (bounds the scoring's intermediate tensors); None
            (default) scores them all at once. The loss and its gradients do not change.
        gather_across_devices: in a ``torch.distributed`` job, score each process's queries against the documents of
            every process (a larger effective batch). Outside of one, it changes nothing.

    Raises:
        ValueError: an argument is out of range (see each one above).

    Requirements:
        1. (query, positive) pairs, or (query, positive, negative_1, ..., negative_n) tuples.
        2. The query column is embedded as a query (``task="query"``: query length and expansion) and the others as
           documents, unless the data collator stamped another task on a column.

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
        - :class:`CachedMultiVectorMultipleNegativesRankingLoss` computes the same loss with gradient caching, for
          much larger batches at the memory of one mini-batch.
        - :class:`~sentrs.sentence_transformer.losses.MultipleNegativesRankingLoss` is the single-vector loss.

    Example:
        ::

            from sentrs import MultiVectorEncoder
            from sentrs.multi_vector_encoder.losses import MultiVectorMultipleNegativesRankingLoss

            model = MultiVectorEncoder("lightonai/GTE-ModernColBERT-v1")
            loss = MultiVectorMultipleNegativesRankingLoss(model)
            queries = model.preprocess(["Who wrote Hamlet?", "What is the boiling point of water?"], task="query")
            documents = model.preprocess(
                ["Hamlet is a tragedy by William Shakespeare.", "Water boils at 100 degrees Celsius."],
                task="document",
            )
            loss([queries, documents], None).backward()
    """

    def __init__(
        self,
        model: MultiVectorEncoder,
        *,
        scale: float = 1.0,
        similarity_fct: Callable[..., Tensor] | None = None,
        mini_batch_size: int | None = None,
        score_mini_batch_size: int | None = None,
        gather_across_devices: bool = False,
    ) -> None:
        super().__init__()
        check_positive_number("scale", scale)
        check_optional_positive_int("mini_batch_size", mini_batch_size)
        check_optional_positive_int("score_mini_batch_size", score_mini_batch_size)
        self.model = model
        self.scale = scale
        self.similarity_fct = resolve_similarity_fct(similarity_fct, colbert_scores)
        self.mini_batch_size = mini_batch_size
        self.score_mini_batch_size = score_mini_batch_size
        self.gather_across_devices = gather_across_devices

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> Tensor:
        """The loss of a batch: ``sentence_features`` is one features dict per column (the query column first);
        ``labels`` are unused.

        Raises:
            ValueError: fewer than 2 columns, or columns with different numbers of rows.
        """
        columns = copy_columns(self, sentence_features, minimum=2, expected="(query, positive[, negatives...])")
        queries, queries_mask = embed_queries(self.model, columns[0])
        documents, documents_masks = embed_documents(self.model, columns[1:], self.mini_batch_size)
        if self.gather_across_devices:
            documents, documents_masks = gather_documents(documents, documents_masks)
        stacked, stacked_mask = stack_padded_token_embeddings(documents, documents_masks)
        batch_size = queries.shape[0]
        step = self.score_mini_batch_size or batch_size
        scores = torch.cat(
            [
                self.similarity_fct(
                    queries[begin : begin + step],
                    stacked,
                    queries_mask=queries_mask[begin : begin + step],
                    documents_mask=stacked_mask,
                )
                for begin in range(0, batch_size, step)
            ]
        )
        targets = positive_columns(batch_size, len(documents), self.gather_across_devices, queries.device)
        return F.cross_entropy(scores * self.scale, targets)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "scale": self.scale,
            "similarity_fct": similarity_fct_name(self.similarity_fct),
            "mini_batch_size": self.mini_batch_size,
            "score_mini_batch_size": self.score_mini_batch_size,
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced in-batch negatives for response selection."""
        return CITATION


# ------------------------------------------------------------------ shared by the multi-vector losses


def check_positive_number(name: str, value: float, *, finite: bool = False) -> None:
    """Raises:
    ValueError: ``value`` is not a number above 0 (and, with ``finite``, below infinity)."""
    try:
        valid = not isinstance(value, bool) and bool(value > 0) and (not finite or bool(value < math.inf))
    except (TypeError, ValueError, RuntimeError):
        valid = False
    if not valid:
        kind = "a positive finite number" if finite else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}")


def check_optional_positive_int(name: str, value: int | None) -> None:
    """Raises:
    ValueError: ``value`` is neither None nor a positive integer."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")


def resolve_similarity_fct(similarity_fct: Callable[..., Tensor] | None, default: Callable[..., Tensor]) -> Any:
    """``similarity_fct``, or ``default`` when it is None.

    Raises:
        ValueError: ``similarity_fct`` is not callable.
    """
    if similarity_fct is None:
        return default
    if not callable(similarity_fct):
        raise ValueError(
            f"similarity_fct must be a scoring callable such as colbert_scores or XTRScores(), got "
            f"{type(similarity_fct).__name__}: {similarity_fct!r:.80}"
        )
    return similarity_fct


def copy_columns(
    loss: nn.Module, sentence_features: Iterable[dict[str, Any]], minimum: int, expected: str
) -> list[dict[str, Any]]:
    """Shallow copies of the columns' features dicts (the model's modules may replace entries in them, the caller's
    dicts stay as they were).

    Raises:
        ValueError: fewer than ``minimum`` columns, an empty batch, or columns with different numbers of rows.
    """
    columns = [dict(features) for features in sentence_features]
    name = type(loss).__name__
    if len(columns) < minimum:
        raise ValueError(f"{name} expects at least {minimum} input columns {expected}, got {len(columns)}")
    rows = [batch_size_of(features) for features in columns]
    if rows[0] == 0:
        raise ValueError(f"{name} expects at least one row per column, got an empty batch")
    if any(count != rows[0] for count in rows[1:]):
        raise ValueError(f"{name} expects the same number of rows in every input column, got {rows}")
    return columns


def embed_queries(model: nn.Module, features: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """``(batch, tokens, dim)`` token embeddings of the query column and their ``(batch, tokens)`` boolean scoring
    mask (the attention mask as MultiVectorMask rewrote it: expansion positions in, skipped tokens out)."""
    outputs = model(features, task=features.get("task", QUERY_TASK))
    return outputs["token_embeddings"], outputs["attention_mask"].bool()


def embed_documents(
    model: nn.Module, columns: list[dict[str, Any]], mini_batch_size: int | None
) -> tuple[list[Tensor], list[Tensor]]:
    """Per column, the ``(batch, tokens, dim)`` token embeddings and their ``(batch, tokens)`` boolean scoring mask.

    Columns that preprocess the same way are concatenated into one batch and embedded together (the query column is
    not among them: it is usually much shorter), as the reference does; padding carries attention mask 0, so the
    embeddings are those of separate passes. With ``mini_batch_size``, the batch is embedded that many rows at a time.
    """
    merged = _merge_columns(columns) if len(columns) > 1 and not _MERGING_OFF.get() else None
    if merged is None:
        outputs = [
            chunked_forward(model, features, features.get("task", DOCUMENT_TASK), mini_batch_size)
            for features in columns
        ]
        return [embeddings for embeddings, _ in outputs], [mask.bool() for _, mask in outputs]
    embeddings, mask = chunked_forward(model, merged, merged.get("task", DOCUMENT_TASK), mini_batch_size)
    count = len(columns)
    return (
        list(embeddings.reshape(count, -1, *embeddings.shape[1:]).unbind(0)),
        list(mask.bool().reshape(count, -1, mask.shape[-1]).unbind(0)),
    )


def chunked_forward(
    model: nn.Module, features: dict[str, Any], task: str, mini_batch_size: int | None
) -> tuple[Tensor, Tensor]:
    """The token embeddings and scoring mask of one batch, embedded ``mini_batch_size`` rows at a time (each chunk at
    its own width, then padded to the widest) or at once when None."""
    ranges = minibatch_ranges(features, mini_batch_size) if mini_batch_size is not None else []
    if len(ranges) <= 1:
        outputs = model(features, task=task)
        return outputs["token_embeddings"], outputs["attention_mask"]
    chunks = [model(slice_features(features, begin, end), task=task) for begin, end in ranges]
    return cat_padded_token_embeddings(
        [chunk["token_embeddings"] for chunk in chunks], [chunk["attention_mask"] for chunk in chunks]
    )


def gather_documents(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Every column's documents from every process (rank order, token axis padded to the widest of any process),
    gradients flowing back to each process's own; the columns themselves outside of a ``torch.distributed`` job."""
    gathered = [all_gather_padded(e, m, with_grad=True) for e, m in zip(embeddings, masks)]
    return [e for e, _ in gathered], [m for _, m in gathered]


def positive_columns(batch_size: int, n_per_group: int, gathered: bool, device: torch.device) -> Tensor:
    """The score column of each local query's positive: groups are rows in group-major order (``n_per_group``
    documents each), and with gathered documents this process's rows come after those of the lower ranks."""
    targets = torch.arange(batch_size, device=device) * n_per_group
    if gathered:
        targets = targets + get_rank() * batch_size * n_per_group
    return targets


CITATION = """
@misc{henderson2017efficient,
    title={Efficient Natural Language Response Suggestion for Smart Reply},
    author={Matthew Henderson and Rami Al-Rfou and Brian Strope and Yun-hsuan Sung and Laszlo Lukacs and Ruiqi Guo and Sanjiv Kumar and Balint Miklos and Ray Kurzweil},
    year={2017},
    eprint={1705.00652},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
"""  # noqa: E501
