"""Late-interaction search over a corpus of multi-vector embeddings, in the Rust core.

:func:`maxsim_search` is exact: the MaxSim top-k of every query over the whole corpus, one block of documents at a
time (no ``queries x documents x tokens`` tensor, memory bounded by the block). On CPUs with Intel AMX the blocks are
scored in bf16 and only documents that can still enter a query's top k are rescored in fp32, so results stay those
of fp32 MaxSim.

:class:`MultiVectorIndex` is approximate (PLAID-style): document tokens are coded by their nearest of a few thousand
centroids (spherical k-means); a query takes the documents with tokens in the ``nprobe`` centroids nearest each of
its tokens, ranks them by MaxSim over centroids, and rescores the best ``candidates`` exactly. Scores are exact
MaxSim; recall against :func:`maxsim_search` is what ``nprobe`` and ``candidates`` trade for speed.

Results have the shape of :func:`sentrs.util.semantic_search`: per query, a list of ``{"corpus_id", "score"}`` best
first.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs import ops

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["MultiVectorIndex", "maxsim_search"]

_INDEX_FORMAT = 1


def ragged_embeddings(embeddings: Any, name: str) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """``(tokens, offsets)``: a list of ``(tokens_i, dim)`` arrays or tensors (any device or float dtype), a padded
    ``(n, tokens, dim)`` array (all-zero rows are padding) or one ``(tokens, dim)`` matrix, as one float32 buffer
    and ``n + 1`` row offsets."""
    if isinstance(embeddings, (list, tuple)):
        items = [_host_matrix(x, f"{name}[{i}]") for i, x in enumerate(embeddings)]
    else:
        array = _host_array(embeddings, name)
        if array.ndim == 2:
            items = [array]
        elif array.ndim == 3:
            keep = np.abs(array).sum(axis=-1) > 0
            items = [row[mask] for row, mask in zip(array, keep)]
        else:
            raise ValueError(
                f"{name} must be a list of (tokens, dim) matrices, a (n, tokens, dim) array or one (tokens, dim) "
                f"matrix, got shape {array.shape}"
            )
    dims = {x.shape[1] for x in items if x.shape[0]}
    if len(dims) > 1:
        raise ValueError(f"{name} must have one token dimension, got {sorted(dims)}")
    dim = dims.pop() if dims else (items[0].shape[1] if items else 0)
    lengths = [x.shape[0] for x in items]
    offsets = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = (
        np.ascontiguousarray(np.concatenate([x.reshape(-1, dim) for x in items]), dtype=np.float32)
        if offsets[-1]
        else np.zeros((0, dim), dtype=np.float32)
    )
    if not np.isfinite(data).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return data, offsets


def _host_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    array = np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array.astype(np.float32, copy=False)


def _host_matrix(x: Any, name: str) -> np.ndarray:
    array = _host_array(x, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a (tokens, dim) matrix, got shape {array.shape}")
    return array


def _check_positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _hits(ids: np.ndarray, scores: np.ndarray, length_normalize: bool, q_offsets: np.ndarray) -> list[list[dict]]:
    counts = np.maximum(np.diff(q_offsets), 1).astype(np.float32)
    results = []
    for i, (row_ids, row_scores) in enumerate(zip(ids, scores)):
        keep = (row_ids >= 0) & np.isfinite(row_scores)
        values = row_scores[keep] / counts[i] if length_normalize else row_scores[keep]
        results.append([{"corpus_id": int(c), "score": float(s)} for c, s in zip(row_ids[keep], values)])
    return results


def maxsim_search(
    query_embeddings: Any,
    corpus_embeddings: Any,
    top_k: int = 10,
    *,
    length_normalize: bool = False,
    kernel: str = "auto",
) -> list[list[dict[str, int | float]]]:
    """Exact MaxSim top-k of every query over the corpus.

    Args:
        query_embeddings: per-query token embeddings: a list of ``(tokens_i, dim)`` arrays or tensors (what
            ``MultiVectorEncoder.encode_query`` returns), a padded ``(n, tokens, dim)`` array, or one matrix.
        corpus_embeddings: per-document token embeddings, in the same forms.
        top_k: hits per query.
        length_normalize: rank by MeanMaxSim (MaxSim divided by the query's token count).
        kernel: ``"auto"`` (AMX where the CPU has it, else fp32), ``"fp32"`` or ``"amx"``; the same results.

    Returns:
        Per query, ``[{"corpus_id": int, "score": float}, ...]`` best first (ties: the lower id).
    """
    top_k = _check_positive(top_k, "top_k")
    q, q_off = ragged_embeddings(query_embeddings, "query_embeddings")
    d, d_off = ragged_embeddings(corpus_embeddings, "corpus_embeddings")
    if q.shape[1] != d.shape[1] and len(q) and len(d):
        raise ValueError(
            f"query and corpus token vectors must have the same dimension, got {q.shape[1]} and {d.shape[1]}"
        )
    if len(d_off) == 1:
        return [[] for _ in range(len(q_off) - 1)]
    ids, scores = ops.maxsim_topk(q, q_off, d, d_off, top_k, None, -math.inf, kernel)
    return _hits(ids, scores, length_normalize, q_off)


class MultiVectorIndex:
    """An approximate late-interaction index over a fixed corpus (see the module docs).

    Args:
        corpus_embeddings: per-document token embeddings (as :func:`maxsim_search` takes them), ideally unit length
            (a MultiVectorEncoder's output is).
        n_centroids: token centroids; default ``2 ** round(log2(4 * sqrt(total tokens)))``, at least 16.
        iterations: k-means iterations.
        sample_size: document tokens k-means trains on (default ``64 * n_centroids``); every token is then coded.
        seed: k-means seed.
    """

    def __init__(
        self,
        corpus_embeddings: Any,
        n_centroids: int | None = None,
        iterations: int = 8,
        sample_size: int | None = None,
        seed: int = 0,
    ) -> None:
        self._tokens, self._offsets = ragged_embeddings(corpus_embeddings, "corpus_embeddings")
        total = len(self._tokens)
        if total == 0:
            raise ValueError("corpus_embeddings must hold at least one token vector")
        if n_centroids is None:
            n_centroids = max(16, 2 ** round(math.log2(4 * math.sqrt(total))))
        n_centroids = min(_check_positive(n_centroids, "n_centroids"), total)
        iterations = int(iterations)
        if iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {iterations}")
        sample = min(total, _check_positive(sample_size, "sample_size") if sample_size else 64 * n_centroids)
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(total, size=sample, replace=False)) if sample < total else slice(None)
        training = np.ascontiguousarray(self._tokens[rows])
        self.centroids = ops.token_kmeans(training, n_centroids, iterations, seed)
        self._finish()

    def _finish(self) -> None:
        self.codes = ops.token_assign(self._tokens, self.centroids)
        self._list_ids, self._list_offsets = ops.token_inverted_lists(self.codes, self._offsets, len(self.centroids))

    def __len__(self) -> int:
        return len(self._offsets) - 1

    @property
    def dim(self) -> int:
        return int(self._tokens.shape[1])

    def search(
        self,
        query_embeddings: Any,
        top_k: int = 10,
        nprobe: int = 8,
        candidates: int = 1024,
        *,
        length_normalize: bool = False,
    ) -> list[list[dict[str, int | float]]]:
        """Approximate MaxSim top-k: documents near the ``nprobe`` nearest centroids of each query token, the best
        ``candidates`` by centroid MaxSim rescored exactly. Returns per query ``[{"corpus_id", "score"}, ...]``."""
        top_k = _check_positive(top_k, "top_k")
        nprobe = _check_positive(nprobe, "nprobe")
        candidates = _check_positive(candidates, "candidates")
        q, q_off = ragged_embeddings(query_embeddings, "query_embeddings")
        if len(q) and q.shape[1] != self.dim:
            raise ValueError(f"query token vectors must have the index's dimension {self.dim}, got {q.shape[1]}")
        if len(q) == 0:
            q = np.zeros((0, self.dim), dtype=np.float32)
        ids, scores = ops.token_candidate_search(
            q,
            q_off,
            self._tokens,
            self._offsets,
            self.centroids,
            self.codes,
            self._list_ids,
            self._list_offsets,
            top_k,
            nprobe,
            max(candidates, top_k),
        )
        return _hits(ids, scores, length_normalize, q_off)

    def exact_search(
        self, query_embeddings: Any, top_k: int = 10, *, length_normalize: bool = False
    ) -> list[list[dict[str, int | float]]]:
        """:func:`maxsim_search` over the indexed corpus."""
        top_k = _check_positive(top_k, "top_k")
        q, q_off = ragged_embeddings(query_embeddings, "query_embeddings")
        if len(q) == 0:
            q = np.zeros((0, self.dim), dtype=np.float32)
        ids, scores = ops.maxsim_topk(q, q_off, self._tokens, self._offsets, top_k, None, -math.inf, "auto")
        return _hits(ids, scores, length_normalize, q_off)

    def save(self, path: str) -> None:
        """Writes the index (corpus tokens, centroids, codes) to the folder ``path`` atomically."""
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".index-", dir=parent)
        np.save(os.path.join(tmp, "tokens.npy"), self._tokens)
        np.save(os.path.join(tmp, "offsets.npy"), self._offsets)
        np.save(os.path.join(tmp, "centroids.npy"), self.centroids)
        np.save(os.path.join(tmp, "codes.npy"), self.codes)
        with open(os.path.join(tmp, "index.json"), "w", encoding="utf-8") as f:
            json.dump({"format": _INDEX_FORMAT, "documents": len(self), "dim": self.dim}, f)
        if os.path.isdir(path):
            old = tempfile.mkdtemp(prefix=".index-old-", dir=parent)
            os.rmdir(old)
            os.replace(path, old)
            os.replace(tmp, path)
            import shutil

            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)

    @classmethod
    def load(cls, path: str) -> MultiVectorIndex:
        """Reads an index written by :meth:`save` (memory-mapped token buffer)."""
        meta_path = os.path.join(path, "index.json")
        if not os.path.isfile(meta_path):
            raise FileNotFoundError(f"{path} is not a MultiVectorIndex folder (no index.json)")
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or meta.get("format") != _INDEX_FORMAT:
            raise ValueError(f"{meta_path}: unsupported index format {meta!r}")
        index = cls.__new__(cls)
        index._tokens = np.load(os.path.join(path, "tokens.npy"), mmap_mode="r", allow_pickle=False)
        index._offsets = np.load(os.path.join(path, "offsets.npy"), allow_pickle=False).astype(np.int64)
        index.centroids = np.load(os.path.join(path, "centroids.npy"), allow_pickle=False)
        index.codes = np.load(os.path.join(path, "codes.npy"), allow_pickle=False)
        if index._tokens.dtype != np.float32 or index._tokens.ndim != 2 or index._offsets[-1] != len(index._tokens):
            raise ValueError(f"{path}: tokens.npy and offsets.npy do not match")
        if len(index.codes) != len(index._tokens) or index.centroids.shape[1:] != index._tokens.shape[1:]:
            raise ValueError(f"{path}: codes.npy or centroids.npy do not match the tokens")
        index._list_ids, index._list_offsets = ops.token_inverted_lists(
            index.codes.astype(np.uint32), index._offsets, len(index.centroids)
        )
        return index
