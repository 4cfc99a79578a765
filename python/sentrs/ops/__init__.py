"""Typed numpy-in, numpy-out facade over the Rust core ``sentrs._core``.

This is the only package that imports the extension. Nothing here imports torch. Every function validates its
arguments and raises ``ValueError`` or ``TypeError`` naming the argument; the kernels release the GIL, and the long
searches (``topk_search``, ``topk_self_search``, ``hamming_topk``, ``code_dot_topk``) stop on Ctrl-C with
``KeyboardInterrupt``.

Environment:

- ``SENTRS_EXACT_FP32=1``: ``topk_search`` skips its bf16 candidate pass (on CPUs with AVX512-BF16) and scores in
  fp32 only; results are the same, this is for benchmarks and checks. Read here at each call and passed to the
  kernel as ``force_fp32`` (the kernels themselves read no environment variable).
- ``SENTRS_NUM_THREADS``: size of the core's thread pool, read once when the pool starts.
- ``SENTRS_SIMD``: caps the SIMD level of every kernel (``scalar``, ``avx2``, ``avx2_vnni`` or ``avx512``), read once;
  :func:`set_simd_level` and :func:`force_simd_level` do the same at run time. A cap above what the CPU runs changes
  nothing, so every level a machine supports can be checked on it. Results are the same at every level.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs import _core
from sentrs._core import Encoding, SparseIndex, Tokenizer

__all__ = [
    "POOLING_MODES",
    "SIMILARITY_FN_NAMES",
    "Encoding",
    "SparseIndex",
    "Tokenizer",
    "code_dot_topk",
    "community_detection",
    "cpu_features",
    "cpu_summary",
    "dense_to_csr",
    "detected_simd_level",
    "force_simd_level",
    "hamming_topk",
    "maxsim",
    "maxsim_amx_supported",
    "maxsim_pairwise",
    "maxsim_topk",
    "mine_pairs",
    "normalize",
    "num_threads",
    "plan_batches",
    "pool",
    "rescore_bits",
    "rescore_rows",
    "set_simd_level",
    "simd_level",
    "similarity_matrix",
    "similarity_pairwise",
    "splade_head_weights",
    "splade_max_head",
    "splade_max_pool",
    "splade_pool",
    "supported_simd_levels",
    "token_assign",
    "token_candidate_search",
    "token_inverted_lists",
    "token_kmeans",
    "topk_search",
    "topk_self_search",
]

PoolingModeName = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
SimilarityFnName = Literal["cosine", "dot", "euclidean", "manhattan"]

POOLING_MODES: tuple[str, ...] = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
SIMILARITY_FN_NAMES: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")

# A forked child must not use the parent's thread pool: run the kernels on the calling thread there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core._mark_forked)


def num_threads() -> int:
    """Threads the Rust core uses (``SENTRS_NUM_THREADS``, default all cores; 1 in a forked child)."""
    return _core.num_threads()


SIMD_LEVELS: tuple[str, ...] = ("scalar", "avx2", "avx2_vnni", "avx512")


def simd_level() -> str:
    """The SIMD level the Rust kernels run at now: the CPU's, capped by ``SENTRS_SIMD`` or :func:`set_simd_level`."""
    return _core.simd_level()


def detected_simd_level() -> str:
    """The widest SIMD level this CPU runs (``scalar``, ``avx2``, ``avx2_vnni`` or ``avx512``)."""
    return _core.detected_simd_level()


def supported_simd_levels() -> list[str]:
    """Every SIMD level this CPU runs, narrowest first (each can be forced with :func:`force_simd_level`)."""
    return _core.supported_simd_levels()


def set_simd_level(level: str | None) -> None:
    """Caps the SIMD level of every Rust kernel, process-wide (``None``: back to ``SENTRS_SIMD``, or no cap).

    Raises:
        ValueError: ``level`` is not one of ``scalar``, ``avx2``, ``avx2_vnni``, ``avx512`` or None.
    """
    if level is not None and not isinstance(level, str):
        raise TypeError(f"level must be a str or None, got {type(level).__name__}")
    _core.set_simd_ceiling(level)


@contextlib.contextmanager
def force_simd_level(level: str) -> Iterator[str]:
    """Runs the block with the Rust kernels capped at ``level``; yields the level they run at (lower when the CPU
    lacks ``level``). The previous cap is restored afterwards. Process-wide: other threads see the cap too."""
    previous = simd_level()
    capped_before = previous != detected_simd_level()
    set_simd_level(level)
    try:
        yield simd_level()
    finally:
        set_simd_level(previous if capped_before else None)


def cpu_features() -> dict[str, bool]:
    """The CPU features the kernels dispatch on (``avx2``, ``avx512_bf16``, ``amx``, ...), as ``{name: present}``."""
    return dict(_core.cpu_features())


def cpu_summary() -> str:
    """One line for benchmark output: the active SIMD level, the CPU's features and the core's thread count."""
    present = " ".join(name for name, has in cpu_features().items() if has) or "none"
    level = f"simd level {simd_level()} (detected {detected_simd_level()})"
    return f"{level}; CPU features: {present}; {num_threads()} threads"


def _as_f32_matrix(x: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    arr = np.asarray(x)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got {arr.ndim}-D with shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=np.float32)


# The largest count the core takes (its sizes are usize; numpy's are int64). A larger limit (a batch size, a
# number of pairs, ...) means the same as this one.
_COUNT_MAX = 2**63 - 1


def _count(value: Any, name: str, minimum: int = 0) -> int:
    """``value`` as an int >= ``minimum`` (bools, floats and strings refused), capped at ``_COUNT_MAX``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{name} must be a {kind} integer, got {value!r}")
    return min(int(value), _COUNT_MAX)


def _pad_hits(
    ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """``(ids, scores)`` widened to ``k`` columns with id -1 and score -inf (numpy refuses an impossible size)."""
    if ids.shape[1] >= k:
        return ids, scores
    wide_ids = np.full((ids.shape[0], k), -1, dtype=np.int64)
    wide_scores = np.full((ids.shape[0], k), -np.inf, dtype=np.float32)
    wide_ids[:, : ids.shape[1]] = ids
    wide_scores[:, : ids.shape[1]] = scores
    return wide_ids, wide_scores


def _check_offsets(offsets: npt.ArrayLike, rows: int, name: str) -> npt.NDArray[np.int64]:
    """Ragged offsets as int64: from 0, non-decreasing, ending at ``rows``; ValueError naming ``name`` otherwise."""
    arr = np.asarray(offsets)
    if arr.ndim != 1 or arr.dtype.kind not in "iu" or len(arr) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}")
    if arr[0] != 0 or arr[-1] != rows or (len(arr) > 1 and bool((np.diff(arr) < 0).any())):
        raise ValueError(f"{name} must start at 0, never decrease and end at {rows}, got {arr.tolist()[:8]}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def plan_batches(
    lengths: Sequence[int] | npt.NDArray[np.integer], batch_size: int, max_tokens: int | None = None
) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """Sorts rows by token count (longest first, ties in input order) and cuts them into batches.

    Returns ``(order, batches)``: ``order`` is the permutation of row indices, ``batches`` a list of index
    arrays into the input (each at most ``batch_size`` rows and, when given, ``max_tokens`` padded tokens).
    """
    batch_size = _count(batch_size, "batch_size", 1)
    if max_tokens is not None:
        max_tokens = _count(max_tokens, "max_tokens", 1)
    # Token counts: 2**32 bounds rows * longest row far below the core's usize.
    counts = [_count(n, "lengths") for n in lengths]
    if any(n > 2**32 for n in counts):
        raise ValueError(f"lengths must be token counts below 2**32, got {max(counts)}")
    order, bounds = _core.plan_batches(counts, batch_size, max_tokens)
    return order, [order[bounds[k] : bounds[k + 1]] for k in range(len(bounds) - 1)]


def pool(
    token_embeddings: npt.NDArray[np.float32],
    attention_mask: npt.NDArray[np.integer],
    modes: Sequence[str] | str = "mean",
    skip_first: int = 0,
) -> npt.NDArray[np.float32]:
    """Pools ``(batch, seq, hidden)`` token embeddings into ``(batch, hidden * len(modes))`` float32.

    ``skip_first`` excludes that many positions from each row's first attended token on (the prompt).
    """
    if isinstance(modes, str):
        modes = [modes]
    tokens = np.ascontiguousarray(token_embeddings, dtype=np.float32)
    if tokens.ndim != 3:
        raise ValueError(f"token_embeddings must be 3-D (batch, seq, hidden), got shape {tokens.shape}")
    mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
    return _core.pool(tokens, mask, list(modes), _count(skip_first, "skip_first"))


def normalize(x: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """L2-normalises each row: ``x / max(||x||, 1e-12)``; returns a new ``(n, d)`` float32 array."""
    return _core.normalize(_as_f32_matrix(x, "x"))


def _check_sim_name(similarity_fn_name: str) -> None:
    if similarity_fn_name not in SIMILARITY_FN_NAMES:
        raise ValueError(f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES}, got {similarity_fn_name!r}")


def similarity_matrix(
    a: npt.ArrayLike, b: npt.ArrayLike, similarity_fn_name: SimilarityFnName | str = "cosine"
) -> npt.NDArray[np.float32]:
    """``(n, m)`` similarity between rows of ``a`` ``(n, d)`` and ``b`` ``(m, d)`` as float32."""
    _check_sim_name(similarity_fn_name)
    return _core.similarity_matrix(_as_f32_matrix(a, "a"), _as_f32_matrix(b, "b"), similarity_fn_name)


def similarity_pairwise(
    a: npt.ArrayLike, b: npt.ArrayLike, similarity_fn_name: SimilarityFnName | str = "cosine"
) -> npt.NDArray[np.float32]:
    """``(n,)`` similarity between row i of ``a`` and row i of ``b``."""
    _check_sim_name(similarity_fn_name)
    return _core.similarity_pairwise(_as_f32_matrix(a, "a"), _as_f32_matrix(b, "b"), similarity_fn_name)


def _check_finite(arr: npt.NDArray[np.float32], name: str, chunk_rows: int = 65536) -> None:
    """Raises ValueError naming the first row holding NaN or inf; checks in chunks to keep memory flat."""
    for start in range(0, arr.shape[0], chunk_rows):
        bad = ~np.isfinite(arr[start : start + chunk_rows]).all(axis=1)
        if bad.any():
            raise ValueError(f"{name} row {start + int(np.argmax(bad))} contains NaN or infinite values")


def topk_search(
    queries: npt.ArrayLike,
    corpus: npt.ArrayLike,
    k: int,
    score_function: str = "cosine",
    corpus_chunk_size: int = 8192,
    exclude_self: bool = False,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Exact top-``k`` of ``queries`` ``(q, d)`` against ``corpus`` ``(n, d)`` without the full score matrix.

    Returns ``(ids, scores)``, each ``(q, min(k, n))``, best first; ties go to the lower corpus index. With
    ``exclude_self`` query i never matches corpus row i (rows short of hits pad with id -1, score -inf).
    ``SENTRS_EXACT_FP32=1`` in the environment turns the bf16 candidate pass off (same results, fp32 throughout).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {k!r}")
    if (
        isinstance(corpus_chunk_size, bool)
        or not isinstance(corpus_chunk_size, (int, np.integer))
        or corpus_chunk_size < 1
    ):
        raise ValueError(f"corpus_chunk_size must be a positive integer, got {corpus_chunk_size!r}")
    q = _as_f32_matrix(queries, "query_embeddings")
    c = _as_f32_matrix(corpus, "corpus_embeddings")
    _check_finite(q, "query_embeddings")
    _check_finite(c, "corpus_embeddings")
    force_fp32 = os.environ.get("SENTRS_EXACT_FP32") == "1"
    chunk = min(int(corpus_chunk_size), _COUNT_MAX)
    return _core.topk_search(q, c, min(int(k), _COUNT_MAX), score_function, chunk, exclude_self, force_fp32=force_fp32)


def community_detection(
    embeddings: npt.ArrayLike, threshold: float = 0.75, min_community_size: int = 10, batch_size: int = 1024
) -> list[list[int]]:
    """Groups of rows at cosine similarity >= ``threshold`` to a centre; largest first, centre first.

    Communities smaller than ``min_community_size`` are dropped and no row is in two communities.
    """
    min_community_size = _count(min_community_size, "min_community_size", 1)
    batch_size = _count(batch_size, "batch_size", 1)
    if isinstance(threshold, (bool, str)) or not isinstance(threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"threshold must be a number, got {threshold!r}")
    x = _as_f32_matrix(embeddings, "embeddings")
    _check_finite(x, "embeddings")
    offsets, members = _core.community_detection(x, float(threshold), min_community_size, batch_size)
    flat = members.tolist()
    return [flat[offsets[c] : offsets[c + 1]] for c in range(len(offsets) - 1)]


def mine_pairs(
    ids: npt.ArrayLike, scores: npt.ArrayLike, max_pairs: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Unordered pairs ``(lo, hi)`` from per-row neighbour lists (``ids`` -1 for none), each once with the score of
    its first sighting in row order; best first, equal scores in ``(lo, hi)`` order; at most ``max_pairs``."""
    if isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 0:
        raise ValueError(f"max_pairs must be a non-negative integer, got {max_pairs!r}")
    i = np.ascontiguousarray(ids, dtype=np.int64)
    s = np.ascontiguousarray(scores, dtype=np.float32)
    if i.ndim != 2 or i.shape != s.shape:
        raise ValueError(f"ids and scores must be 2-D arrays of one shape, got {i.shape} and {s.shape}")
    # Row indices: below 2**31 the core's pair keys (lo * rows + hi) cannot overflow.
    if i.size and i.max() >= 2**31:
        raise ValueError(f"ids must be row indices below 2**31, got {i.max()}")
    return _core.mine_pairs(i, s, _count(max_pairs, "max_pairs"))


def _as_code_matrix(x: npt.ArrayLike, name: str, dtype: type[np.generic]) -> npt.NDArray[Any]:
    arr = np.asarray(x)
    if arr.dtype != dtype:
        raise TypeError(f"{name} must be {np.dtype(dtype).name} codes, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def hamming_topk(
    queries: npt.ArrayLike, corpus: npt.ArrayLike, k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]:
    """The ``k`` nearest packed-bit codes (uint8, ``np.packbits`` rows) by Hamming distance, nearest first;
    ties go to the lower corpus index. Returns ``(ids, distances)`` of shape ``(q, min(k, n))``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {k!r}")
    q = _as_code_matrix(queries, "query_embeddings", np.uint8)
    c = _as_code_matrix(corpus, "corpus_embeddings", np.uint8)
    return _core.hamming_topk(q, c, min(int(k), _COUNT_MAX))


def _as_candidate_ids(ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
    i = np.asarray(ids)
    if i.dtype.kind not in "iu" or i.ndim != 2:
        raise TypeError(f"ids must be a 2-D integer array, got dtype {i.dtype} and shape {i.shape}")
    return np.ascontiguousarray(i, dtype=np.int64)


def rescore_bits(queries: npt.ArrayLike, corpus: npt.ArrayLike, ids: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Float scores of packed-bit candidates: ``queries (q, d)`` float times the unpacked bits of ``corpus[ids]``
    (``ids (q, k)`` int64 rows, ``-1`` for none, scored ``-inf``), summed in float64. Returns ``(q, k)`` float32."""
    q = _as_f32_matrix(queries, "query_embeddings")
    c = _as_code_matrix(corpus, "corpus_embeddings", np.uint8)
    return _core.rescore_bits(q, c, _as_candidate_ids(ids))


def rescore_rows(queries: npt.ArrayLike, corpus: npt.ArrayLike, ids: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Float scores of candidates: ``queries (q, d)`` times the float rows ``corpus[ids]`` (``ids (q, k)`` int64,
    ``-1`` for none, scored ``-inf``), summed in float64. Only the candidate rows are read. Returns ``(q, k)``."""
    q = _as_f32_matrix(queries, "query_embeddings")
    c = _as_f32_matrix(corpus, "corpus_embeddings")
    return _core.rescore_rows(q, c, _as_candidate_ids(ids))


def code_dot_topk(
    queries: npt.ArrayLike, corpus: npt.ArrayLike, k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """The ``k`` best int8 or uint8 codes by inner product (exact, as float32), best first, ties to the lower
    index. Queries and corpus must share the dtype. Returns ``(ids, scores)`` of shape ``(q, min(k, n))``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {k!r}")
    k = min(int(k), _COUNT_MAX)  # k past the corpus means all of it
    dtype = np.asarray(corpus).dtype
    if dtype == np.uint8:
        q = _as_code_matrix(queries, "query_embeddings", np.uint8)
        return _core.code_dot_topk_u8(q, _as_code_matrix(corpus, "corpus_embeddings", np.uint8), int(k))
    if dtype == np.int8:
        q = _as_code_matrix(queries, "query_embeddings", np.int8)
        return _core.code_dot_topk_i8(q, _as_code_matrix(corpus, "corpus_embeddings", np.int8), int(k))
    raise TypeError(f"corpus_embeddings must be int8 or uint8 codes, got dtype {dtype}")


CsrArrays = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]


def _check_max_active_dims(max_active_dims: int | None) -> int | None:
    """``max_active_dims`` as an int (or None: keep every value); ValueError unless a positive integer or None."""
    if max_active_dims is not None and (
        isinstance(max_active_dims, bool) or not isinstance(max_active_dims, (int, np.integer)) or max_active_dims < 1
    ):
        raise ValueError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}")
    return None if max_active_dims is None else min(int(max_active_dims), _COUNT_MAX)


def splade_pool(
    logits: npt.ArrayLike,
    attention_mask: npt.ArrayLike,
    pooling_strategy: str = "max",
    activation_function: str = "relu",
    max_active_dims: int | None = None,
) -> CsrArrays:
    """SPLADE pooling of MLM logits ``(batch, seq, vocab)``: ``pool_t log1p(relu(logit))`` over attended tokens
    (``log1p`` twice for ``log1p_relu``), as CSR ``(indptr, indices, values)``, pruned to ``max_active_dims``."""
    max_active_dims = _check_max_active_dims(max_active_dims)
    x = np.ascontiguousarray(logits, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"logits must be 3-D (batch, seq, vocab), got shape {x.shape}")
    mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
    return _core.splade_pool(x, mask, pooling_strategy, activation_function, max_active_dims)


def splade_max_head(
    hidden: npt.NDArray[np.float32],
    attention_mask: npt.ArrayLike,
    weight: npt.NDArray[np.float32],
    bias: npt.NDArray[np.float32] | None,
    activation_function: str = "relu",
    max_active_dims: int | None = None,
) -> CsrArrays | None:
    """SPLADE max pooling from the MLM decoder's input ``(batch, seq, dim)`` with its weight ``(vocab, dim)`` and
    bias on Intel AMX, exact (bf16 tiles pick the entries that can be active, fp32 rescores them): what
    :func:`splade_pool` gives on the decoder's fp32 logits. None when the inputs hold non-finite values. Only on
    CPUs where :func:`maxsim_amx_supported`."""
    max_active_dims = _check_max_active_dims(max_active_dims)
    mask = np.ascontiguousarray(attention_mask, dtype=np.int64)
    return _core.splade_max_head(
        np.ascontiguousarray(hidden, dtype=np.float32),
        mask,
        np.ascontiguousarray(weight, dtype=np.float32),
        None if bias is None else np.ascontiguousarray(bias, dtype=np.float32),
        activation_function,
        max_active_dims,
    )


def splade_head_weights(
    weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None
) -> _core.SpladeHeadWeights:
    """The MLM decoder's ``weight`` ``(vocab, dim)`` and ``bias`` prepared once for :func:`splade_max_head`'s AMX
    pass (bf16 tiles, fp32 rows, norms): ``prepared.max_pool(hidden, attention_mask, activation_function,
    max_active_dims)`` then pools each batch without packing the weights again. A snapshot: weights changed later are
    not seen. Only on CPUs where :func:`maxsim_amx_supported`."""
    return _core.SpladeHeadWeights(
        np.ascontiguousarray(weight, dtype=np.float32),
        None if bias is None else np.ascontiguousarray(bias, dtype=np.float32),
    )


def splade_max_pool(
    prepared: _core.SpladeHeadWeights,
    hidden: npt.NDArray[np.float32],
    attention_mask: npt.ArrayLike,
    activation_function: str = "relu",
    max_active_dims: int | None = None,
) -> CsrArrays | None:
    """:func:`splade_max_head` with weights from :func:`splade_head_weights`."""
    max_active_dims = _check_max_active_dims(max_active_dims)
    return prepared.max_pool(
        np.ascontiguousarray(hidden, dtype=np.float32),
        np.ascontiguousarray(attention_mask, dtype=np.int64),
        activation_function,
        max_active_dims,
    )


def dense_to_csr(x: npt.ArrayLike, max_active_dims: int | None = None) -> CsrArrays:
    """Dense rows to CSR ``(indptr, indices, values)``, keeping the ``max_active_dims`` largest magnitudes."""
    max_active_dims = _check_max_active_dims(max_active_dims)
    return _core.dense_to_csr(_as_f32_matrix(x, "embeddings"), max_active_dims)


def topk_self_search(
    embeddings: npt.ArrayLike, k: int, score_function: str = "cosine"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """For every row, its best ``k`` *other* rows (``(n, min(k, n - 1))``, best first, ties to the lower index).

    Scores are symmetric, so only half of the ``n x n`` products are computed.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"top_k must be a non-negative integer, got {k!r}")
    if score_function not in ("cosine", "dot"):
        raise ValueError(f"score_function must be 'cosine' or 'dot', got {score_function!r}")
    x = _as_f32_matrix(embeddings, "embeddings")
    _check_finite(x, "embeddings")
    return _core.topk_self_search(x, min(int(k), _COUNT_MAX), score_function)


# ------------------------------------------------------------------ late interaction (ragged token matrices)
# A side is one float32 ``(total tokens, dim)`` buffer plus ``n + 1`` int64 row offsets (item i owns rows
# ``offsets[i]:offsets[i + 1]``); the callers in ``base.maxsim`` and ``multi_vector_encoder.search`` build them.


def _token_buffers(
    queries: npt.ArrayLike, documents: npt.ArrayLike, query_weights: npt.ArrayLike | None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.float32] | None]:
    """The token buffers as C-contiguous float32 (the AMX kernel reads rows as slices: a Fortran-order buffer gave
    zeros or a panic there)."""
    weights = None if query_weights is None else np.ascontiguousarray(query_weights, dtype=np.float32)
    return np.ascontiguousarray(queries, dtype=np.float32), np.ascontiguousarray(documents, dtype=np.float32), weights


def maxsim_amx_supported() -> bool:
    """Whether this CPU (and OS) runs the AMX MaxSim kernel."""
    return _core.maxsim_amx_supported()


def maxsim(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = -1e9,
    kernel: str = "auto",
) -> npt.NDArray[np.float32]:
    """``(n_queries, n_documents)`` MaxSim scores (``kernel``: ``auto``, ``fp32`` or ``amx``; the same scores)."""
    queries, documents, query_weights = _token_buffers(queries, documents, query_weights)
    return _core.maxsim(queries, query_offsets, documents, document_offsets, query_weights, empty_score, kernel)


def maxsim_pairwise(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = -1e9,
) -> npt.NDArray[np.float32]:
    """``(n,)`` MaxSim scores of query i with document i."""
    queries, documents, query_weights = _token_buffers(queries, documents, query_weights)
    return _core.maxsim_pairwise(queries, query_offsets, documents, document_offsets, query_weights, empty_score)


def maxsim_topk(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    k: int,
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = -1e9,
    kernel: str = "auto",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Exact MaxSim top-``k`` per query: ``(ids, scores)``, ``(n_queries, k)``, best first, ``-1`` past the end."""
    k = _count(k, "k")
    n_documents = max(len(np.asarray(document_offsets)) - 1, 0)
    # The core fills (n_queries, k) itself; past the documents the padding is made here, where numpy refuses an
    # impossible k with a ValueError.
    queries, documents, query_weights = _token_buffers(queries, documents, query_weights)
    ids, scores = _core.maxsim_topk(
        queries, query_offsets, documents, document_offsets, min(k, n_documents), query_weights, empty_score, kernel
    )
    return _pad_hits(ids, scores, k)


def token_kmeans(data: npt.NDArray[np.float32], k: int, iterations: int = 8, seed: int = 0) -> npt.NDArray[np.float32]:
    """Spherical k-means centroids ``(k, dim)`` of unit token vectors (k-means++ seeds)."""
    seed = _count(seed, "seed")
    return _core.token_kmeans(data, _count(k, "k", 1), _count(iterations, "iterations"), seed)


def token_assign(data: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]:
    """The nearest centroid (largest dot product) of every row."""
    return _core.token_assign(data, centroids)


def token_inverted_lists(
    codes: npt.NDArray[np.uint32], document_offsets: npt.NDArray[np.int64], n_centroids: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]:
    """The documents holding each centroid: ``(ids, offsets)``."""
    codes = np.ascontiguousarray(codes, dtype=np.uint32)
    offsets = _check_offsets(document_offsets, len(codes), "document_offsets")
    n_centroids = _count(n_centroids, "n_centroids")
    if n_centroids > 2**32:
        raise ValueError(f"n_centroids must be at most 2**32 (codes are uint32), got {n_centroids}")
    return _core.token_inverted_lists(codes, offsets, n_centroids)


def token_candidate_search(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    centroids: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint32],
    list_ids: npt.NDArray[np.uint32],
    list_offsets: npt.NDArray[np.int64],
    k: int,
    nprobe: int,
    candidates: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """PLAID-style candidate search (see ``sentrs.multi_vector_encoder.search``): ``(ids, scores)``."""
    k = _count(k, "k")
    nprobe, candidates = _count(nprobe, "nprobe"), _count(candidates, "candidates")
    n_documents = max(len(np.asarray(document_offsets)) - 1, 0)
    queries, documents, _ = _token_buffers(queries, documents, None)
    centroids = np.ascontiguousarray(centroids, dtype=np.float32)
    ids, scores = _core.candidate_search(
        queries,
        query_offsets,
        documents,
        document_offsets,
        centroids,
        codes,
        list_ids,
        list_offsets,
        min(k, n_documents),
        nprobe,
        candidates,
    )
    return _pad_hits(ids, scores, k)
