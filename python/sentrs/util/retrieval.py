"""Semantic search over embeddings."""

from __future__ import annotations

import heapq
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from sentrs import ops
from sentrs.util.similarity import cos_sim, dot_score
from sentrs.util.tensor import _convert_to_batch_tensor, host_float32

__all__ = ["semantic_search"]


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
    queries = _convert_to_batch_tensor(query_embeddings)
    corpus = _convert_to_batch_tensor(corpus_embeddings)
    if queries.is_sparse or corpus.is_sparse:
        queries, corpus = queries.to_dense(), corpus.to_dense()
    if corpus.numel() == 0:
        return [[] for _ in range(queries.shape[0])]
    if queries.shape[1] != corpus.shape[1]:
        raise ValueError(
            f"query and corpus embeddings must have the same dimension, got {queries.shape[1]} and {corpus.shape[1]}"
        )
    rust_score = "cosine" if score_function is cos_sim else "dot" if score_function is dot_score else None
    hq, hc = host_float32(queries), host_float32(corpus)
    if rust_score is not None and hq is not None and hc is not None:
        ids, scores = ops.topk_search(hq, hc, top_k, rust_score, min(corpus_chunk_size, 8192))
        return [
            [{"corpus_id": int(i), "score": float(s)} for i, s in zip(id_row, score_row)]
            for id_row, score_row in zip(ids.tolist(), scores.tolist())
        ]
    return _semantic_search_torch(queries, corpus, query_chunk_size, corpus_chunk_size, top_k, score_function)


def _semantic_search_torch(
    queries: Tensor,
    corpus: Tensor,
    query_chunk_size: int,
    corpus_chunk_size: int,
    top_k: int,
    score_function: Callable[[Tensor, Tensor], Tensor],
) -> list[list[dict[str, int | float]]]:
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
