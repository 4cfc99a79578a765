"""Ranking a corpus chunk by chunk: what the retrieval evaluators of every model type share.

A retrieval evaluator scores the queries against one corpus chunk at a time, keeps each query's best ``k`` hits of
that chunk (:func:`matrix_top_k`) and folds them into the best ``k`` so far (:func:`merge_top_k`). Hits are ranked
by descending score, then ascending corpus id, as the reference ranks them; ``ranks`` gives each corpus row's
position in corpus-id order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Hits", "matrix_top_k", "merge_top_k", "scores_as_numpy", "slice_rows"]

#: Per query, the corpus rows of its hits ``(q, k)`` int64 and their scores ``(q, k)`` float64, best first.
Hits = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


def slice_rows(x: Any, start: int, end: int) -> Any:
    """Rows ``start:end`` of an array, a list or a tensor (sparse tensors included)."""
    from sentrs._lazy import is_tensor

    if is_tensor(x) and x.is_sparse:
        import torch

        return x.index_select(0, torch.arange(start, end, device=x.device))
    return x[start:end]


def scores_as_numpy(scores: Any) -> npt.NDArray[np.floating[Any]]:
    """A score function's output (a tensor, array or nested list) as numpy; half-precision tensors become float32."""
    from sentrs._lazy import is_tensor

    if is_tensor(scores):
        import torch

        scores = scores.detach().cpu()
        if scores.dtype in (torch.float16, torch.bfloat16):
            scores = scores.float()
        return scores.numpy()
    return np.asarray(scores)


def matrix_top_k(scores: npt.NDArray[np.floating[Any]], chunk_ranks: npt.NDArray[np.int64], k: int) -> Hits:
    """Exact top-``k`` of each row of a ``(q, n)`` score matrix, by descending score then ascending corpus id.

    Args:
        scores: ``(q, n)`` scores of the queries against one chunk.
        chunk_ranks: ``(n,)`` corpus-id order of the chunk's rows (breaks ties between equal scores).
        k: hits per query; fewer when the chunk has fewer rows.

    Returns:
        The chunk rows ``(q, min(k, n))`` and their scores as float64.
    """
    n_queries, n = scores.shape
    k = min(k, n)
    if k == 0:
        return np.empty((n_queries, 0), dtype=np.int64), np.empty((n_queries, 0), dtype=np.float64)
    if k == n:
        ids = np.broadcast_to(np.arange(n, dtype=np.int64), (n_queries, n)).copy()
    else:
        ids = np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
        cutoff = np.take_along_axis(scores, ids, axis=1).min(axis=1, keepdims=True)
        # Rows with more candidates at the cut-off score than places: choose among them by corpus id.
        for row in np.flatnonzero((scores >= cutoff).sum(axis=1) > k):
            candidates = np.flatnonzero(scores[row] >= cutoff[row])
            keep = np.lexsort((chunk_ranks[candidates], -scores[row, candidates]))[:k]
            ids[row] = candidates[keep]
    return ids, np.take_along_axis(scores, ids, axis=1).astype(np.float64)


def merge_top_k(best: Hits, new: Hits, ranks: npt.NDArray[np.int64], k: int) -> Hits:
    """The best ``k`` of two hit lists per query (rows as corpus rows), by descending score then ascending corpus id
    (``ranks[row]``)."""
    ids = np.concatenate([best[0], new[0]], axis=1)
    values = np.concatenate([best[1], new[1]], axis=1)
    order = np.lexsort((ranks[ids], -values), axis=-1)[:, :k]
    return np.take_along_axis(ids, order, axis=1), np.take_along_axis(values, order, axis=1)
