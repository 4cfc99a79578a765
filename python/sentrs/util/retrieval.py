"""Semantic search, paraphrase mining and community detection over embeddings.

Float32 numpy inputs go straight to the Rust core without importing torch; tensors on the host share their memory
with it; other inputs (CUDA, autograd, other dtypes, custom score functions) run in torch like the reference.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.base.similarity import cos_sim, dot_score

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "community_detection",
    "information_retrieval",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "semantic_search",
]


def semantic_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    query_chunk_size: int = 100,
    corpus_chunk_size: int = 500000,
    top_k: int = 10,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[dict[str, int | float]]]:
    """The ``top_k`` best corpus entries for every query: ``[[{"corpus_id": int, "score": float}, ...], ...]``.

    With ``cos_sim`` or ``dot_score`` on host float32 data the search runs in the Rust core: exact, parallel,
    without building the full score matrix, ties to the lower corpus id. Other score functions, CUDA tensors and
    tensors that need gradients run in torch, chunked like the reference.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {top_k!r}")
    for name, value in (("query_chunk_size", query_chunk_size), ("corpus_chunk_size", corpus_chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rust_score = "cosine" if score_function is cos_sim else "dot" if score_function is dot_score else None
    hq, hc = _host_rows(query_embeddings), _host_rows(corpus_embeddings)
    if rust_score is not None and hq is not None and hc is not None:
        return _rust_search(hq, hc, top_k, rust_score, corpus_chunk_size)
    import torch

    from sentrs.base.tensors import _convert_to_batch_tensor, host_float32

    queries = _convert_to_batch_tensor(query_embeddings)
    corpus = _convert_to_batch_tensor(corpus_embeddings)
    sparse_score = "cosine" if score_function is cos_sim else "dot" if score_function is dot_score else None
    if (queries.layout != torch.strided or corpus.layout != torch.strided) and sparse_score is not None:
        return _sparse_search(queries, corpus, top_k, sparse_score)
    if queries.is_sparse or corpus.is_sparse:
        queries, corpus = queries.to_dense(), corpus.to_dense()
    if corpus.numel() == 0:
        return [[] for _ in range(queries.shape[0])]
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query and corpus embeddings must have the same dimension, got {queries.shape[1]} and {corpus.shape[1]}"
        )
    tq, tc = host_float32(queries), host_float32(corpus)
    if rust_score is not None and tq is not None and tc is not None:
        return _rust_search(tq, tc, top_k, rust_score, corpus_chunk_size)
    return _semantic_search_torch(queries, corpus, query_chunk_size, corpus_chunk_size, top_k, score_function)


def _host_rows(x: Any) -> npt.NDArray[np.float32] | None:
    """A float32 numpy array (1-D promoted to one row) as it is, else None (the torch path decides)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim not in (1, 2):
        return None
    return x.reshape(1, -1) if x.ndim == 1 else x


def _rust_search(
    queries: npt.NDArray[np.float32], corpus: npt.NDArray[np.float32], top_k: int, score: str, corpus_chunk_size: int
) -> list[list[dict[str, int | float]]]:
    """Exact top-k in the Rust core, ties to the lower corpus id."""
    if corpus.size == 0:
        return [[] for _ in range(queries.shape[0])]
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query and corpus embeddings must have the same dimension, got {queries.shape[1]} and {corpus.shape[1]}"
        )
    # top_k past the corpus means all of it (so a huge top_k, even beyond 64 bits, neither allocates nor overflows).
    ids, scores = ops.topk_search(queries, corpus, min(top_k, corpus.shape[0]), score, min(corpus_chunk_size, 8192))
    return [
        [{"corpus_id": int(i), "score": float(s)} for i, s in zip(id_row, score_row)]
        for id_row, score_row in zip(ids.tolist(), scores.tolist())
    ]


def to_csr_arrays(x: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 2-D tensor (sparse COO/CSR or dense) as CSR ``(indptr int64, indices int64, values float32)`` numpy."""
    import torch

    if x.layout == torch.sparse_csr:
        return (
            x.crow_indices().cpu().numpy().astype(np.int64),
            x.col_indices().cpu().numpy().astype(np.int64),
            x.values().detach().float().cpu().numpy(),
        )
    if x.layout != torch.sparse_coo:
        dense = x.detach().float().cpu().numpy()
        return ops.dense_to_csr(dense)
    coo = x.detach().coalesce().cpu()
    rows, cols = coo.indices().numpy()
    values = coo.values().float().numpy()
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    indptr = np.zeros(coo.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=coo.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int64), np.ascontiguousarray(values, dtype=np.float32)


# At most this many sparse queries, and about this much work (postings read + documents scanned), per inverted-index
# search call (see _sparse_search): about 20-50 ms on one core.
_SPARSE_QUERY_BLOCK = 64
_SPARSE_BLOCK_WORK = 20_000_000


def _sparse_search(queries: Tensor, corpus: Tensor, top_k: int, score: str) -> list[list[dict[str, int | float]]]:
    """Exact search of sparse vectors through an inverted index of the corpus (Rust), without densifying."""
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query and corpus embeddings must have the same dimension, got {queries.shape[1]} and {corpus.shape[1]}"
        )
    corpus_csr = to_csr_arrays(corpus)
    index = ops.SparseIndex(*corpus_csr, int(corpus.shape[1]))
    indptr, indices, values = to_csr_arrays(queries)
    k = min(top_k, int(corpus.shape[0]))
    results: list[list[dict[str, int | float]]] = []
    # Queries in blocks of bounded work (postings read plus the scan of every document): one search call cannot be
    # interrupted, so Ctrl-C lands between blocks, tens of milliseconds apart.
    postings = np.bincount(corpus_csr[1], minlength=int(corpus.shape[1])).astype(np.int64)
    work = np.zeros(len(indptr) - 1, dtype=np.int64)
    nonempty = np.diff(indptr) > 0
    if nonempty.any():
        work[nonempty] = np.add.reduceat(postings[indices], indptr[:-1][nonempty])
    q0 = 0
    cumulative = np.cumsum(work + int(corpus.shape[0]))
    while q0 < len(indptr) - 1:
        base = int(cumulative[q0 - 1]) if q0 else 0
        q1 = int(np.searchsorted(cumulative, base + _SPARSE_BLOCK_WORK, side="right"))
        q1 = min(max(q1, q0 + 1), q0 + _SPARSE_QUERY_BLOCK, len(indptr) - 1)
        lo, hi = int(indptr[q0]), int(indptr[q1])
        ids, scores = index.search(indptr[q0 : q1 + 1] - lo, indices[lo:hi], values[lo:hi], k, score)
        results.extend(
            [{"corpus_id": int(i), "score": float(s)} for i, s in zip(id_row, score_row)]
            for id_row, score_row in zip(ids.tolist(), scores.tolist())
        )
        q0 = q1
    return results


def _semantic_search_torch(
    queries: Tensor,
    corpus: Tensor,
    query_chunk_size: int,
    corpus_chunk_size: int,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> list[list[dict[str, int | float]]]:
    import torch

    if corpus.device != queries.device:
        queries = queries.to(corpus.device)
    heaps: list[list[tuple[float, int]]] = [[] for _ in range(queries.shape[0])]
    for c0 in range(0, corpus.shape[0], corpus_chunk_size):
        chunk = corpus[c0 : c0 + corpus_chunk_size]
        for q0 in range(0, queries.shape[0], query_chunk_size):
            scores = score_function(queries[q0 : q0 + query_chunk_size], chunk)
            k = min(top_k, scores.shape[1])
            values, indices = torch.topk(scores, k, dim=1, largest=True, sorted=False)
            for row, (vals, idxs) in enumerate(zip(values.tolist(), indices.tolist())):
                heap = heaps[q0 + row]
                for score, idx in zip(vals, idxs):
                    item = (score, -(c0 + idx))  # at equal score the lower corpus id ranks higher
                    if len(heap) < top_k:
                        heapq.heappush(heap, item)
                    else:
                        heapq.heappushpop(heap, item)
    return [[{"corpus_id": -neg_id, "score": score} for score, neg_id in sorted(heap, reverse=True)] for heap in heaps]


def information_retrieval(*args: Any, **kwargs: Any) -> list[list[dict[str, int | float]]]:
    """Deprecated alias of :func:`semantic_search`."""
    return semantic_search(*args, **kwargs)


def _nearest_neighbours(
    embeddings: Tensor,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
    query_chunk_size: int,
    corpus_chunk_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """For every row, its ``top_k`` best other rows: ``(ids, scores)`` ``(n, top_k)``, -1 / -inf padded."""
    import torch

    from sentrs.base.tensors import host_float32

    rust_score = "cosine" if score_function is cos_sim else "dot" if score_function is dot_score else None
    host = host_float32(embeddings)
    if rust_score is not None and host is not None:
        return ops.topk_self_search(host, top_k, rust_score)
    n = embeddings.shape[0]
    k = min(top_k + 1, n)
    ids = np.full((n, top_k), -1, dtype=np.int64)
    scores = np.full((n, top_k), -np.inf, dtype=np.float32)
    for q0 in range(0, n, query_chunk_size):
        best_v: Tensor | None = None
        best_i: Tensor | None = None
        for c0 in range(0, n, corpus_chunk_size):
            block = score_function(embeddings[q0 : q0 + query_chunk_size], embeddings[c0 : c0 + corpus_chunk_size])
            v, i = torch.topk(block.detach(), min(k, block.shape[1]), dim=1)
            i = i + c0
            if best_v is None or best_i is None:
                best_v, best_i = v, i
            else:
                cat_v, cat_i = torch.cat([best_v, v], 1), torch.cat([best_i, i], 1)
                best_v, pos = torch.topk(cat_v, min(k, cat_v.shape[1]), dim=1)
                best_i = torch.gather(cat_i, 1, pos)
        assert best_v is not None and best_i is not None
        for row, (vals, idxs) in enumerate(zip(best_v.float().cpu().tolist(), best_i.cpu().tolist())):
            keep = [(j, s) for j, s in zip(idxs, vals) if j != q0 + row][:top_k]
            for rank, (j, s) in enumerate(keep):
                ids[q0 + row, rank] = j
                scores[q0 + row, rank] = s
    return ids, scores


def paraphrase_mining_embeddings(
    embeddings: Any,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
) -> list[list[float | int]]:
    """Pairs of rows with high similarity: ``[[score, i, j], ...]`` with ``i < j``, best first.

    Each row contributes its ``top_k`` best other rows; a pair seen from both sides counts once; at most
    ``max_pairs`` pairs are returned. Equal scores come in ``(i, j)`` order. With ``cos_sim`` or ``dot_score`` on
    host float32 data the neighbour search runs in the Rust core.
    """
    for name, value in (
        ("query_chunk_size", query_chunk_size),
        ("corpus_chunk_size", corpus_chunk_size),
        ("max_pairs", max_pairs),
        ("top_k", top_k),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    rust_score = "cosine" if score_function is cos_sim else "dot" if score_function is dot_score else None
    host = _host_rows(embeddings)
    if rust_score is not None and host is not None:
        if host.shape[0] < 2:
            return []
        ids, scores = ops.topk_self_search(host, min(top_k, host.shape[0]), rust_score)
    else:
        from sentrs.base.tensors import _convert_to_batch_tensor

        emb = _convert_to_batch_tensor(embeddings)
        if emb.shape[0] < 2:
            return []
        top_k = min(top_k, int(emb.shape[0]))  # columns past the other rows would only hold padding
        ids, scores = _nearest_neighbours(emb, top_k, score_function, query_chunk_size, corpus_chunk_size)
    # Each unordered pair once (its first sighting in row order, as the reference), best first, equal scores in
    # (i, j) order: deduplicated and sorted in the Rust core.
    vals, lo, hi = ops.mine_pairs(ids, scores, min(max_pairs, ids.size))
    return [[v, i, j] for v, i, j in zip(vals.tolist(), lo.tolist(), hi.tolist())]


def paraphrase_mining(
    model: Any,
    sentences: list[str],
    show_progress_bar: bool = False,
    batch_size: int = 32,
    query_chunk_size: int = 5000,
    corpus_chunk_size: int = 100000,
    max_pairs: int = 500000,
    top_k: int = 100,
    score_function: Callable[[Tensor, Tensor], Tensor] = cos_sim,
    truncate_dim: int | None = None,
    prompt_name: str | None = None,
    prompt: str | None = None,
) -> list[list[float | int]]:
    """Encodes ``sentences`` with ``model`` and returns :func:`paraphrase_mining_embeddings` of them."""
    embeddings = model.encode(
        sentences,
        show_progress_bar=show_progress_bar,
        batch_size=batch_size,
        convert_to_tensor=True,
        truncate_dim=truncate_dim,
        prompt_name=prompt_name,
        prompt=prompt,
    )
    return paraphrase_mining_embeddings(
        embeddings,
        query_chunk_size=query_chunk_size,
        corpus_chunk_size=corpus_chunk_size,
        max_pairs=max_pairs,
        top_k=top_k,
        score_function=score_function,
    )


def community_detection(
    embeddings: Any,
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
    show_progress_bar: bool = False,
) -> list[list[int]]:
    """Groups of rows whose cosine similarity to a centre is at least ``threshold``.

    Returns lists of row ids, largest community first, each starting with its centre; rows belong to at most one
    community and communities smaller than ``min_community_size`` are dropped. Runs in the Rust core.
    """
    if isinstance(embeddings, np.ndarray):
        emb = embeddings
    else:
        from sentrs.base.tensors import _convert_to_batch_tensor

        emb = _convert_to_batch_tensor(embeddings).detach().float().cpu().numpy()
    if len(emb) == 0:
        return []
    return ops.community_detection(emb, threshold, min_community_size, batch_size)
