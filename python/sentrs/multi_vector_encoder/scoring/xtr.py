"""XTR (contextualized token retrieval, Lee et al. 2023) scoring for training multi-vector models.

XTR trains the way an index is searched: each query token keeps only its ``top_k`` most similar document tokens out
of *all* the batch's document tokens. A document's score is the sum, over the query tokens, of the best similarity
among that document's retrieved tokens, divided by ``Z``: the number of query tokens that retrieved at least one of
its real tokens (the paper's eq. 5). A query token that retrieved nothing from a document counts 0 for it, and a
document without any real token scores -1e9, below every real document.

Scoring runs in torch (the matmul in the input dtype, integers upcast to float32; the sums in float32) and is
differentiable with respect to both embeddings. The full ``(Q, q_tokens, Q_doc * N, d_tokens)`` similarity grid is
built; ``chunk_elements`` only bounds the transient memory of the matmuls that fill it.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.maxsim import EMPTY_DOCUMENT_SCORE, _warn_empty
from sentrs.multi_vector_encoder.scoring.colbert import _check_same_dim, _embeddings_tensor

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["XTRKDScores", "XTRScores", "xtr_kd_scores", "xtr_scores", "xtr_scores_pairwise"]


class _MaskTypeError(TypeError, AttributeError):
    """A mask that is not a tensor. A ``TypeError``; also an ``AttributeError``, which the reference raises when it
    calls tensor methods on such a mask, so that code catching either keeps working."""


def xtr_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    top_k: int = 256,
    chunk_elements: int | None = None,
) -> Tensor:
    """XTR score of every query against every document of every query's document group (in-batch negatives).

    ``scores[i, j * N + n]`` is query ``i`` against document ``n`` of group ``j`` (query ``i``'s positive is column
    ``i * N``). The ``top_k`` retrieval of each query token spans the document tokens of all ``Q_doc * N``
    documents, so a score depends on the rest of the batch whenever ``top_k`` is below that token count.

    Args:
        queries_embeddings: ``(Q, q_tokens, dim)`` (a list of same-shape tensors is stacked).
        documents_embeddings: ``(Q_doc, N, d_tokens, dim)`` document groups.
        queries_mask: a tensor broadcastable to ``(Q, q_tokens)``: each query token's score is weighted by it, and
            tokens with a 0 entry neither score nor count in ``Z``. Default: the non-zero query rows.
        documents_mask: a tensor of ``Q_doc * N * d_tokens`` entries (read as ``(Q_doc, N, d_tokens)``); tokens with
            a 0 / False entry are never retrieved. Default: the non-zero document rows.
        top_k: how many document tokens each query token retrieves from the whole batch (a positive integer).
        chunk_elements: element budget of one matmul over a chunk of documents (query tokens plus one embedding row,
            per document token); default: one matmul. Memory only: the scores do not depend on it.

    Returns:
        ``(Q, Q_doc * N)`` scores, float32 (float64 with a float64 ``queries_mask``), on the inputs' device.

    Raises:
        ValueError: ``top_k`` is not positive, or an embeddings tensor has the wrong number of dimensions.
        TypeError: ``top_k`` is not an integer; a mask is not a tensor (that error is also an ``AttributeError``).
        RuntimeError: the two sides' dimensions differ, or a mask has the wrong number of entries or shape.
        IndexError: the documents have no token positions (``d_tokens`` is 0).
    """
    import torch

    _check_top_k(top_k)
    queries = _embeddings_tensor(queries_embeddings, "queries_embeddings")
    documents = _embeddings_tensor(documents_embeddings, "documents_embeddings")
    # An integer similarity grid could not hold the dtype-minimum filler of the unretrieved tokens.
    if not queries.is_floating_point():
        queries = queries.float()
    if not documents.is_floating_point():
        documents = documents.float()
    if queries.dim() != 3:
        raise ValueError(f"queries_embeddings must be (Q, q_tokens, dim), got shape {tuple(queries.shape)}")
    if documents.dim() != 4:
        raise ValueError(f"documents_embeddings must be (Q_doc, N, d_tokens, dim), got shape {tuple(documents.shape)}")
    _check_same_dim(queries, documents)
    n_queries, query_tokens, dim = (int(size) for size in queries.shape)
    n_documents = int(documents.shape[0] * documents.shape[1])
    document_tokens = int(documents.shape[2])
    docs = documents.reshape(n_documents, document_tokens, dim)

    if documents_mask is None:
        # As MaxSim does: all-zero rows are padding, or a padding token's 0 would beat real negative similarities.
        keep = docs.any(dim=-1)
    else:
        _require_tensor(documents_mask, "documents_mask")
        if documents_mask.numel() != n_documents * document_tokens:
            raise RuntimeError(
                f"documents_mask must be (Q_doc, N, d_tokens) = {tuple(documents.shape[:3])}, got shape "
                f"{tuple(documents_mask.shape)}"
            )
        keep = documents_mask.reshape(n_documents, document_tokens).bool()
    if queries_mask is None:
        weights: Tensor = queries.any(dim=-1)
    else:
        _require_tensor(queries_mask, "queries_mask")
        if queries_mask.dim() > 2 or not _broadcasts(tuple(queries_mask.shape), (n_queries, query_tokens)):
            raise RuntimeError(
                f"queries_mask must broadcast to (Q, q_tokens) = {(n_queries, query_tokens)}, got shape "
                f"{tuple(queries_mask.shape)}"
            )
        weights = queries_mask
    if document_tokens == 0:
        raise IndexError(
            f"documents_embeddings has no token positions (shape {tuple(documents.shape)}): XTR needs d_tokens >= 1"
        )

    grid = _similarity_grid(queries, docs, keep, _documents_per_chunk(chunk_elements, queries, document_tokens))
    # Retrieval: per query token, the top_k document tokens of the whole batch; all other entries drop to the dtype
    # minimum so that they lose every max below. Overwritten in place: the grid is not needed any more, and a copy
    # would double the largest tensor of the step.
    pool = grid.flatten(2)
    retrieved_scores, retrieved = pool.topk(min(top_k, pool.shape[-1]), dim=-1, sorted=False)
    kept = pool.fill_(torch.finfo(pool.dtype).min).scatter_(-1, retrieved, retrieved_scores)
    # hits[q, s, d]: query token s of query q retrieved a real token of document d. Retrieved padding slots are
    # sent to an extra column n_documents, which is dropped.
    owner = torch.where(keep.reshape(-1)[retrieved], retrieved // document_tokens, n_documents)
    hits = torch.zeros(n_queries, query_tokens, n_documents + 1, dtype=torch.bool, device=owner.device)
    hits = hits.scatter_(-1, owner, True)[..., :n_documents]
    # Best retrieved similarity per (query token, document), summed in float32; 0 where nothing was retrieved.
    best = kept.view(n_queries, query_tokens, n_documents, document_tokens).max(dim=-1).values.float()
    best = best.masked_fill(~hits, 0.0) * weights.unsqueeze(-1)
    hits = hits & weights.bool().unsqueeze(-1)
    scores = best.sum(dim=1) / hits.float().sum(dim=1).clamp(min=1)
    return _fill_empty_documents(scores, ~keep.any(dim=-1))


def xtr_kd_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    top_k: int = 256,
    chunk_elements: int | None = None,
) -> Tensor:
    """XTR score of each query with each of its own ``n_ways`` documents, for distillation from a teacher's scores.

    The retrieval still spans every document of the batch, as in :func:`xtr_scores`; of its ``(batch, batch *
    n_ways)`` scores, this keeps each query's own block.

    Args:
        queries_embeddings: ``(batch, q_tokens, dim)``.
        documents_embeddings: ``(batch, n_ways, d_tokens, dim)``.
        queries_mask: see :func:`xtr_scores`.
        documents_mask: see :func:`xtr_scores`.
        top_k: see :func:`xtr_scores`.
        chunk_elements: see :func:`xtr_scores`.

    Returns:
        ``(batch, n_ways)`` scores, float32.

    Raises:
        RuntimeError: the queries and document groups differ in ``batch``; and as :func:`xtr_scores`.
    """
    import torch

    documents = _embeddings_tensor(documents_embeddings, "documents_embeddings")
    scores = xtr_scores(queries_embeddings, documents, queries_mask, documents_mask, top_k, chunk_elements)
    groups, n_ways = int(documents.shape[0]), int(documents.shape[1])
    if scores.shape[0] != groups:
        raise RuntimeError(
            "queries_embeddings and documents_embeddings must hold the same batch to score each query's own "
            f"documents, got {scores.shape[0]} and {groups}"
        )
    own = torch.arange(groups * n_ways, device=scores.device).view(groups, n_ways)
    return scores.gather(1, own)


def xtr_scores_pairwise(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    top_k: int = 256,
    chunk_elements: int | None = None,
) -> Tensor:
    """XTR score of query ``i`` with document ``i``, for every ``i``.

    Unlike MaxSim, a pair's score depends on the other pairs: the retrieval spans every document of the batch.

    Args:
        queries_embeddings: ``(batch, q_tokens, dim)``.
        documents_embeddings: ``(batch, d_tokens, dim)`` (or ``(batch, n_ways, d_tokens, dim)``, scored as
            :func:`xtr_kd_scores`).
        queries_mask: see :func:`xtr_scores`.
        documents_mask: ``(batch, d_tokens)`` (or as :func:`xtr_scores` takes it).
        top_k: see :func:`xtr_scores`.
        chunk_elements: see :func:`xtr_scores`.

    Returns:
        ``(batch,)`` scores, float32 (``(batch, n_ways)`` for 4-D documents with ``n_ways > 1``).
    """
    documents = _embeddings_tensor(documents_embeddings, "documents_embeddings")
    if documents.dim() == 3:
        documents = documents.unsqueeze(1)
    if documents_mask is not None:
        _require_tensor(documents_mask, "documents_mask")
        if documents_mask.dim() == 2:
            documents_mask = documents_mask.unsqueeze(1)
    scores = xtr_kd_scores(queries_embeddings, documents, queries_mask, documents_mask, top_k, chunk_elements)
    return scores.squeeze(-1)


class XTRScores:
    """:func:`xtr_scores` with ``top_k`` and ``chunk_elements`` fixed, to pass as a loss's ``similarity_fct``.

    Args:
        top_k: how many document tokens each query token retrieves from the whole batch (checked when called).
        chunk_elements: element budget of one matmul, see :func:`xtr_scores`.
    """

    def __init__(self, top_k: int = 256, *, chunk_elements: int | None = None) -> None:
        self.top_k = top_k
        self.chunk_elements = chunk_elements

    def get_config_dict(self) -> dict[str, int | None]:
        """The settings, as saved in a model card or training configuration."""
        return {"top_k": self.top_k, "chunk_elements": self.chunk_elements}

    def __call__(
        self,
        queries_embeddings: list[Any] | np.ndarray | Tensor,
        documents_embeddings: list[Any] | np.ndarray | Tensor,
        queries_mask: Tensor | None = None,
        documents_mask: Tensor | None = None,
    ) -> Tensor:
        """``(Q, Q_doc * N)`` scores, see :func:`xtr_scores`."""
        return xtr_scores(
            queries_embeddings, documents_embeddings, queries_mask, documents_mask, self.top_k, self.chunk_elements
        )


class XTRKDScores(XTRScores):
    """:func:`xtr_kd_scores` with ``top_k`` and ``chunk_elements`` fixed (``(batch, n_ways)`` scores)."""

    def __call__(
        self,
        queries_embeddings: list[Any] | np.ndarray | Tensor,
        documents_embeddings: list[Any] | np.ndarray | Tensor,
        queries_mask: Tensor | None = None,
        documents_mask: Tensor | None = None,
    ) -> Tensor:
        """``(batch, n_ways)`` scores, see :func:`xtr_kd_scores`."""
        return xtr_kd_scores(
            queries_embeddings, documents_embeddings, queries_mask, documents_mask, self.top_k, self.chunk_elements
        )


# ------------------------------------------------------------------ helpers


def _check_top_k(top_k: Any) -> None:
    if isinstance(top_k, bool) or (isinstance(top_k, numbers.Real) and top_k <= 0):
        raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
    if not isinstance(top_k, numbers.Integral):
        raise TypeError(f"top_k must be a positive integer, got {top_k!r}")


def _require_tensor(mask: Any, name: str) -> None:
    import torch

    if not isinstance(mask, torch.Tensor):
        raise _MaskTypeError(f"{name} must be a torch tensor, got {type(mask).__name__}")


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    """Whether a tensor of ``shape`` broadcasts to exactly ``target``."""
    if len(shape) > len(target):
        return False
    return all(size in (1, wanted) for size, wanted in zip(reversed(shape), reversed(target)))


def _documents_per_chunk(chunk_elements: Any, queries: Tensor, document_tokens: int) -> int | None:
    """How many documents one matmul scores under ``chunk_elements`` (at least one); None for a single matmul."""
    if chunk_elements is None:
        return None
    if not isinstance(chunk_elements, numbers.Real):
        raise TypeError(f"chunk_elements must be a number of elements or None, got {type(chunk_elements).__name__}")
    # Per document: its token scores for every query token, plus its embedding rows.
    per_document = (queries.shape[0] * queries.shape[1] + queries.shape[2]) * document_tokens
    return max(1, int(float(chunk_elements) // per_document)) if per_document else None


def _similarity_grid(queries: Tensor, docs: Tensor, keep: Tensor, per_chunk: int | None) -> Tensor:
    """``(Q, q_tokens, D, d_tokens)`` dot products of every query token with every document token, masked-out
    document tokens at the dtype minimum; ``per_chunk`` documents per matmul (None: one matmul)."""
    import torch

    n_queries, query_tokens, dim = queries.shape
    n_documents, document_tokens = docs.shape[0], docs.shape[1]
    flat_queries = queries.reshape(n_queries * query_tokens, dim)
    parts = []
    step = per_chunk or max(n_documents, 1)
    for start in range(0, max(n_documents, 1), step):
        chunk = docs[start : start + step]
        part = (flat_queries @ chunk.reshape(-1, dim).T).view(n_queries, query_tokens, len(chunk), document_tokens)
        parts.append(part.masked_fill_(~keep[start : start + step][None, None], torch.finfo(part.dtype).min))
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def _fill_empty_documents(scores: Tensor, empty: Tensor) -> Tensor:
    """``scores`` with the columns of documents that have no real token set to -1e9.

    The check that logs the warning runs only on the CPU and outside ``torch.compile``: on an accelerator it would
    wait for the device, and it is a data-dependent branch that a compiled graph cannot hold.
    """
    import torch

    if not torch.compiler.is_compiling() and empty.device.type == "cpu" and bool(empty.any()):
        _warn_empty()
    return scores.masked_fill(empty, EMPTY_DOCUMENT_SCORE)
