"""Hypothesis fuzzing of the Python facade: ``sentrs.ops``, ``sentrs.util`` and ``encode`` argument handling.

``ops`` promises a ``ValueError`` or ``TypeError`` naming the argument for anything it cannot take, so an
``OverflowError``, ``IndexError`` or a panic from the core underneath is a failure. ``util`` and ``encode`` are
compared with the reference (sentence-transformers 6.2) on the same inputs: when the reference returns, sentrs
returns the same values; when the reference raises, sentrs raises too (an ``Exception`` with a message).

Bounded by ``fuzz_budget.fuzz_target``: 20 derandomised examples per target in ``make test``, a time budget per
target in ``make fuzz``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentrs import ops

from .fuzz_budget import fuzz_target

FACADE_ERRORS = (TypeError, ValueError)

# Integers as users pass them: small, zero, negative, huge, bools, floats, numpy scalars, None.
odd_ints = st.one_of(
    st.integers(0, 6),
    st.sampled_from([-1, -(2**63), 2**63, 2**64, True, False, 2.0, 1.5, math.nan, None, "3"]),
    st.integers(0, 6).map(np.int64),
)
small_floats = st.floats(-8, 8, width=32)


def refuse_or_return(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn``'s result, or None when it raises ValueError/TypeError with a message; other exceptions propagate."""
    try:
        return fn(*args, **kwargs)
    except FACADE_ERRORS as e:
        assert str(e), f"{type(e).__name__} without a message"
        return None


def is_count(value: Any, minimum: int = 0) -> bool:
    """Whether ``value`` is an integer the facade should take as a size (not a bool, not a float)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum


@st.composite
def odd_arrays(draw: st.DrawFn, shape: Any, dtype: Any = np.float32) -> Any:
    """A float array, or the same data as another dtype, a list, a transposed or reversed view, or 0-d/3-d."""
    arr = draw(hnp.arrays(dtype, shape, elements=small_floats if dtype == np.float32 else None))
    kind = draw(st.sampled_from(["same", "same", "f64", "int", "list", "fortran", "reversed", "3d", "0d", "nan"]))
    if kind == "f64":
        return arr.astype(np.float64)
    if kind == "int":
        return arr.astype(np.int32)
    if kind == "list":
        return arr.tolist()
    if kind == "fortran":
        return np.asfortranarray(arr)
    if kind == "reversed":
        return arr[::-1]
    if kind == "3d":
        return arr[None, None]
    if kind == "0d":
        return np.asarray(arr.flat[0] if arr.size else 0.0, dtype=arr.dtype)
    if kind == "nan" and arr.size and arr.dtype.kind == "f":
        arr = arr.copy()
        arr.flat[0] = np.nan
    return arr


# ----------------------------------------------------------------------------------------------- ops


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 3),
    n=st.integers(0, 5),
    d=st.integers(0, 4),
    k=odd_ints,
    fn=st.sampled_from(["topk_search", "topk_self_search", "hamming_topk", "code_dot_topk"]),
    score=st.sampled_from(["cosine", "dot", "manhattan"]),
    chunk=odd_ints,
)
def test_ops_topk_family(
    data: st.DataObject, nq: int, n: int, d: int, k: Any, fn: str, score: str, chunk: Any
) -> None:
    if fn in ("topk_search", "topk_self_search"):
        q = data.draw(odd_arrays((nq, d)))
        c = data.draw(odd_arrays((n, d)))
    else:
        dtype = data.draw(st.sampled_from([np.uint8, np.int8, np.float32]))
        q = data.draw(hnp.arrays(dtype, (nq, d)))
        c = data.draw(hnp.arrays(data.draw(st.sampled_from([dtype, dtype, np.uint8])), (n, d)))
    if fn == "topk_search":
        out = refuse_or_return(
            ops.topk_search, q, c, k, score, chunk if is_count(chunk) or data.draw(st.booleans()) else 8
        )
    elif fn == "topk_self_search":
        out = refuse_or_return(ops.topk_self_search, c, k, score)
    elif fn == "hamming_topk":
        out = refuse_or_return(ops.hamming_topk, q, c, k)
    else:
        out = refuse_or_return(ops.code_dot_topk, q, c, k)
    if out is None:
        return
    assert is_count(k), f"accepted top_k={k!r}"
    ids, scores = out
    assert ids.ndim == 2 and ids.shape == scores.shape and ids.dtype == np.int64
    assert ((ids >= -1) & (ids < max(n, 1))).all()


@fuzz_target
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 3)),
    modes=st.one_of(
        st.sampled_from(["mean", "max", "cls", "bogus"]), st.lists(st.sampled_from(["mean", "lasttoken", "x"]))
    ),
    skip_first=odd_ints,
    name=st.sampled_from(["cosine", "dot", "euclidean", "manhattan", "cos_sim"]),
)
def test_ops_pool_normalize_similarity(
    data: st.DataObject, shape: tuple[int, int, int], modes: Any, skip_first: Any, name: str
) -> None:
    tokens = data.draw(odd_arrays(shape))
    mask = data.draw(st.sampled_from([np.ones(shape[:2], np.int64), np.ones(shape[:2], bool), np.ones((1, 1))]))
    out = refuse_or_return(ops.pool, tokens, mask, modes, skip_first)
    if out is not None:
        assert is_count(skip_first), f"accepted skip_first={skip_first!r}"
        assert out.ndim == 2 and out.dtype == np.float32
    a = data.draw(odd_arrays((shape[0], shape[2])))
    b = data.draw(odd_arrays((shape[1], shape[2])))
    for fn in (ops.similarity_matrix, ops.similarity_pairwise):
        sims = refuse_or_return(fn, a, b, name)
        if sims is not None:
            assert name in ops.SIMILARITY_FN_NAMES
            assert sims.dtype == np.float32
    normed = refuse_or_return(ops.normalize, a)
    if normed is not None:
        assert normed.ndim == 2 and normed.dtype == np.float32


@fuzz_target
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 5)),
    max_active=odd_ints,
    strategy=st.sampled_from(["max", "sum", "mean"]),
)
def test_ops_sparse(data: st.DataObject, shape: tuple[int, int, int], max_active: Any, strategy: str) -> None:
    x = data.draw(odd_arrays((shape[0], shape[2])))
    out = refuse_or_return(ops.dense_to_csr, x, max_active)
    if out is not None:
        assert max_active is None or is_count(max_active, 1), f"accepted max_active_dims={max_active!r}"
    logits = data.draw(odd_arrays(shape))
    mask = np.ones(shape[:2], np.int64)
    out = refuse_or_return(ops.splade_pool, logits, mask, strategy, "relu", max_active)
    if out is not None:
        assert max_active is None or is_count(max_active, 1), f"accepted max_active_dims={max_active!r}"
        assert len(out[0]) == shape[0] + 1


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 8),
    d=st.integers(0, 3),
    threshold=st.one_of(st.floats(-2, 2), st.sampled_from([math.nan, math.inf, "0.5", None])),
    min_size=odd_ints,
    batch_size=odd_ints,
    max_pairs=odd_ints,
    lengths=st.lists(st.one_of(st.integers(-2, 30), st.sampled_from([2**64, 1.5, "3"])), max_size=6),
)
def test_ops_cluster_and_batches(
    data: st.DataObject,
    n: int,
    d: int,
    threshold: Any,
    min_size: Any,
    batch_size: Any,
    max_pairs: Any,
    lengths: list[Any],
) -> None:
    x = data.draw(odd_arrays((n, d)))
    out = refuse_or_return(ops.community_detection, x, threshold, min_size, batch_size)
    if out is not None:
        assert is_count(min_size, 1) and is_count(batch_size, 1)
        assert all(len(c) >= min_size for c in out)
    ids = data.draw(hnp.arrays(np.int64, (n, 2), elements=st.integers(-1, max(n - 1, 0))))
    scores = data.draw(odd_arrays((n, 2)))
    pairs = refuse_or_return(ops.mine_pairs, ids, scores, max_pairs)
    if pairs is not None:
        assert is_count(max_pairs)
    plan = refuse_or_return(ops.plan_batches, lengths, batch_size)
    if plan is not None:
        assert is_count(batch_size, 1) and all(is_count(v) for v in lengths)
        order, _ = plan
        assert sorted(order.tolist()) == list(range(len(lengths)))


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 2),
    nd=st.integers(0, 3),
    d=st.integers(1, 3),
    k=odd_ints,
    n_centroids=odd_ints,
    nprobe=odd_ints,
    fn=st.sampled_from(["maxsim", "maxsim_pairwise", "maxsim_topk", "kmeans", "assign", "lists", "candidates"]),
)
def test_ops_late_interaction(
    data: st.DataObject, nq: int, nd: int, d: int, k: Any, n_centroids: Any, nprobe: Any, fn: str
) -> None:
    q_counts = data.draw(st.lists(st.integers(0, 3), min_size=nq, max_size=nq))
    d_counts = data.draw(st.lists(st.integers(0, 3), min_size=nd, max_size=nd))
    q_off = np.concatenate([[0], np.cumsum(q_counts)]).astype(np.int64)
    d_off = np.concatenate([[0], np.cumsum(d_counts)]).astype(np.int64)
    if data.draw(st.booleans()) and len(d_off) > 2:
        d_off = d_off[::-1].copy()  # decreasing offsets
    q = data.draw(hnp.arrays(np.float32, (int(q_off[-1]), d), elements=small_floats))
    docs = data.draw(hnp.arrays(np.float32, (int(max(d_off.max(initial=0), 0)), d), elements=small_floats))
    if fn == "maxsim":
        out = refuse_or_return(ops.maxsim, q, q_off, docs, d_off)
    elif fn == "maxsim_pairwise":
        out = refuse_or_return(ops.maxsim_pairwise, q, q_off, docs, d_off)
    elif fn == "maxsim_topk":
        out = refuse_or_return(ops.maxsim_topk, q, q_off, docs, d_off, k)
        if out is not None:
            assert is_count(k), f"accepted k={k!r}"
            assert out[0].shape == (nq, k)
    elif fn == "kmeans":
        out = refuse_or_return(ops.token_kmeans, docs, n_centroids, 2)
        if out is not None:
            assert is_count(n_centroids, 1), f"accepted k={n_centroids!r}"
    elif fn == "assign":
        cents = data.draw(hnp.arrays(np.float32, (data.draw(st.integers(0, 3)), d), elements=small_floats))
        out = refuse_or_return(ops.token_assign, docs, cents)
        if out is not None:
            assert len(cents) or not len(docs), "assigned rows to no centroid"
    elif fn == "lists":
        codes = np.zeros(len(docs), np.uint32)
        out = refuse_or_return(ops.token_inverted_lists, codes, d_off, n_centroids)
        if out is not None:
            assert is_count(n_centroids) and bool(np.all(np.diff(d_off) >= 0))
    else:
        cents = docs[:1] if len(docs) else np.ones((1, d), np.float32)
        codes = ops.token_assign(docs, cents) if len(docs) else np.zeros(0, np.uint32)
        if bool(np.all(np.diff(d_off) >= 0)):
            list_ids, list_offsets = ops.token_inverted_lists(codes, d_off, 1)
        else:
            list_ids, list_offsets = np.zeros(0, np.uint32), np.array([0, 0], np.int64)
        out = refuse_or_return(
            ops.token_candidate_search, q, q_off, docs, d_off, cents, codes, list_ids, list_offsets, k, nprobe, 4
        )
        if out is not None:
            assert is_count(k) and is_count(nprobe), f"accepted k={k!r}, nprobe={nprobe!r}"
            assert out[0].shape == (nq, k)


# ----------------------------------------------------------------------------------------------- util vs reference


@functools.lru_cache(maxsize=1)
def reference_util() -> Any:
    from sentence_transformers import util

    return util


def same_outcome(
    ours: Callable[[], Any], theirs: Callable[[], Any], *, stricter: bool = False
) -> tuple[Any, Any] | None:
    """Both results, or None when either raises.

    sentrs may return where the reference raises (it is lenient on empty inputs, say), but where the reference
    returns sentrs must too, unless ``stricter``: an argument sentrs refuses on purpose with a clear ValueError
    (``top_k=0`` in paraphrase mining, ``truncate_dim=0``, negative sizes; see the report in
    test_fuzz_regressions.py).
    """
    raised: type[BaseException] | None = None
    try:
        want = theirs()
    except Exception as e:
        want, raised = _RAISED, type(e)
    try:
        got = ours()
    except Exception as e:
        # The reference's own exception (sentrs runs the same torch code there), or a clear ValueError/TypeError.
        assert type(e) is raised or isinstance(e, FACADE_ERRORS), (
            f"{type(e).__name__} where the reference gave {raised}"
        )
        assert str(e), f"{type(e).__name__} without a message"
        assert want is _RAISED or stricter, f"the reference returned, sentrs raised {type(e).__name__}: {e}"
        return None
    return None if want is _RAISED else (got, want)


_RAISED = object()


def rows(x: Any) -> int:
    """Rows of an embedding input (a 1-D input is one row)."""
    return len(np.atleast_2d(as_numpy(x)))


def as_numpy(x: Any) -> np.ndarray:
    import torch

    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64).numpy()
    return np.asarray(x, dtype=np.float64)


@st.composite
def embedding_inputs(draw: st.DrawFn, rows: int, d: int) -> Any:
    """Embeddings as users hand them to ``util``: numpy (float32/float64), torch tensors, lists, 1-D rows."""
    import torch

    arr = draw(hnp.arrays(np.float32, (rows, d), elements=small_floats))
    kind = draw(st.sampled_from(["numpy", "numpy64", "torch", "list", "row", "torch64"]))
    if kind == "numpy64":
        return arr.astype(np.float64)
    if kind == "torch":
        return torch.from_numpy(arr.copy())
    if kind == "torch64":
        return torch.from_numpy(arr.astype(np.float64))
    if kind == "list":
        return arr.tolist()
    if kind == "row":
        return arr[0] if rows else arr.reshape(-1)
    return arr


SIMILARITY_FUNCTIONS = [
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pairwise_angle_sim",
]


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 3),
    m=st.integers(0, 3),
    d=st.integers(1, 4),
    name=st.sampled_from(SIMILARITY_FUNCTIONS),
)
def test_util_similarity_matches_reference(data: st.DataObject, n: int, m: int, d: int, name: str) -> None:
    import sentrs.util as ours

    if name.startswith("pairwise") and data.draw(st.booleans()):
        m = n
    a = data.draw(embedding_inputs(n, d))
    b = data.draw(embedding_inputs(m, d))
    both = same_outcome(
        lambda: getattr(ours, name)(a, b),
        lambda: getattr(reference_util(), name)(a, b),
        stricter=n == 0 or m == 0 or (name.startswith("pairwise") and rows(a) != rows(b)),
    )
    if both is None:
        return
    got, want = (as_numpy(x) for x in both)
    assert got.shape == want.shape, (name, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * 64 * d)


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 3),
    n=st.integers(0, 6),
    d=st.integers(1, 4),
    top_k=st.one_of(st.integers(0, 7), st.sampled_from([-1, True, 2.0, 2**40])),
    query_chunk=st.one_of(st.integers(1, 3), st.sampled_from([0, -1])),
    corpus_chunk=st.one_of(st.integers(1, 3), st.sampled_from([0, 100000])),
    dot=st.booleans(),
)
def test_util_semantic_search_matches_reference(
    data: st.DataObject, nq: int, n: int, d: int, top_k: Any, query_chunk: int, corpus_chunk: int, dot: bool
) -> None:
    import sentrs.util as ours

    # Distinct scores, so the order does not depend on tie-breaking (documented: sentrs breaks ties by lower id).
    q = data.draw(hnp.arrays(np.float32, (nq, d), elements=st.integers(-4, 4).map(float)))
    c = (np.arange(n * d, dtype=np.float32).reshape(n, d) % 7 - 3) * 0.5 + np.arange(n, dtype=np.float32)[:, None] / 97
    kind = data.draw(st.sampled_from(["numpy", "torch"]))
    if kind == "torch":
        import torch

        q, c = torch.from_numpy(q), torch.from_numpy(c)
    ref = reference_util()
    both = same_outcome(
        stricter=nq == 0 or n == 0 or not is_count(top_k) or query_chunk < 1 or corpus_chunk < 1,
        ours=lambda: ours.semantic_search(
            q, c, query_chunk, corpus_chunk, top_k, score_function=ours.dot_score if dot else ours.cos_sim
        ),
        theirs=lambda: ref.semantic_search(
            q, c, query_chunk, corpus_chunk, top_k, score_function=ref.dot_score if dot else ref.cos_sim
        ),
    )
    if both is None:
        return
    got, want = both
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [h["corpus_id"] for h in g] == [h["corpus_id"] for h in w] or np.allclose(
            [h["score"] for h in g], [h["score"] for h in w], atol=1e-4
        ), (g, w)
        np.testing.assert_allclose([h["score"] for h in g], [h["score"] for h in w], rtol=1e-4, atol=1e-3)


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 8),
    d=st.integers(1, 3),
    threshold=st.floats(-1, 1),
    min_size=st.one_of(st.integers(1, 4), st.sampled_from([0, -1])),
    top_k=st.one_of(st.integers(1, 4), st.sampled_from([0, -1])),
)
def test_util_clustering_matches_reference(
    data: st.DataObject, n: int, d: int, threshold: float, min_size: int, top_k: int
) -> None:
    import torch

    import sentrs.util as ours

    # A few distinct directions, so communities and pairs form; exact ties are left to the order checks below.
    base = data.draw(hnp.arrays(np.float32, (3, d), elements=st.sampled_from([-1.0, 1.0, 2.0])))
    pick = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2)))
    x = torch.from_numpy(base[pick].copy())
    # A similarity on the threshold is a float rounding tie (0 here, -1e-8 in the reference): not compared.
    unit = base[pick] / np.maximum(np.linalg.norm(base[pick], axis=1, keepdims=True), 1e-12)
    assume(not n or np.abs(unit @ unit.T - threshold).min() > 1e-4)
    ref = reference_util()
    both = same_outcome(
        lambda: ours.community_detection(x, threshold=threshold, min_community_size=min_size),
        lambda: ref.community_detection(x, threshold=threshold, min_community_size=min_size),
    )
    if both is not None:
        got, want = both
        assert sorted(map(sorted, got)) == sorted(map(sorted, want))
    both = same_outcome(
        lambda: ours.paraphrase_mining_embeddings(x, top_k=top_k),
        lambda: ref.paraphrase_mining_embeddings(x, top_k=top_k),
        stricter=top_k <= 0,
    )
    # Equal similarities in a row make the top_k neighbours a tie-break (sentrs: the lower index, documented).
    sims = np.round(unit @ unit.T, 5) if n else np.zeros((0, 0))
    tied = any(len(set(np.delete(sims[i], i))) < n - 1 for i in range(n))
    if both is not None and not tied:
        got, want = both
        assert sorted(round(s, 4) for s, _, _ in got) == sorted(round(s, 4) for s, _, _ in want)


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 4),
    d=st.integers(1, 9),
    precision=st.sampled_from(["float32", "int8", "uint8", "binary", "ubinary", "float16", "int4"]),
    ranges=st.booleans(),
    kind=st.sampled_from(["numpy", "torch", "list"]),
)
def test_util_quantize_embeddings_matches_reference(
    data: st.DataObject, n: int, d: int, precision: str, ranges: bool, kind: str
) -> None:
    import torch

    import sentrs.util as ours

    x = data.draw(hnp.arrays(np.float32, (n, d), elements=small_floats))
    r = None
    if ranges:
        lo = data.draw(hnp.arrays(np.float32, d, elements=st.floats(-8, 0, width=32)))
        r = np.stack([lo, lo + 8]).astype(np.float32)
    arg: Any = {"numpy": x, "torch": torch.from_numpy(x.copy()), "list": x.tolist()}[kind]
    ref = reference_util()
    assume(not (precision in ("int8", "uint8") and n < 2 and r is None))  # the reference warns on a single row
    both = same_outcome(
        lambda: ours.quantize_embeddings(arg, precision, ranges=r),
        lambda: ref.quantize_embeddings(arg, precision, ranges=r),
        stricter=n == 0,
    )
    if both is None:
        return
    got, want = (np.asarray(v) for v in both)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    # int8/uint8 bucketing may round a value on a bucket edge differently in float32: off by one at most.
    np.testing.assert_allclose(
        got.astype(np.float64), want.astype(np.float64), atol=1 if precision.endswith("int8") else 0
    )


# ----------------------------------------------------------------------------------------------- encode


@pytest.fixture(scope="module")
def tiny_pair(make_tiny_st: Callable[..., str]) -> tuple[Any, Any]:
    """The same tiny BERT (hidden 32, mean pooling, prompts) loaded by sentrs and by the reference."""
    import sentence_transformers

    import sentrs

    path = make_tiny_st(prompts={"query": "query: ", "doc": ""})
    return sentrs.SentenceTransformer(path, device="cpu"), sentence_transformers.SentenceTransformer(
        path, device="cpu"
    )


encode_texts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "\x00", "e\u0301", "\u200b", "שלום", "🙂", "A man is eating food.", "x" * 300]),
)
encode_inputs = st.one_of(
    encode_texts,
    st.lists(encode_texts, max_size=4),
    st.lists(st.one_of(encode_texts, st.sampled_from([None, 3, b"bytes"])), min_size=1, max_size=3),
    st.sampled_from([None, 3, (), ("a", "b"), np.array(["a", "b"])]),
)


@fuzz_target
@given(
    inputs=encode_inputs,
    batch_size=st.one_of(st.integers(1, 5), st.sampled_from([0, -1, 2**40, True, 2.0])),
    precision=st.sampled_from(["float32", "int8", "uint8", "binary", "ubinary", "float16"]),
    output_value=st.sampled_from(["sentence_embedding", "token_embeddings", None, "bogus"]),
    convert_to_numpy=st.booleans(),
    convert_to_tensor=st.booleans(),
    normalize=st.booleans(),
    truncate_dim=st.one_of(st.none(), st.sampled_from([0, 1, 8, 32, 100, -1])),
    prompt=st.one_of(st.none(), st.sampled_from(["", "search: ", "\x00"])),
    prompt_name=st.one_of(st.none(), st.sampled_from(["query", "doc", "missing"])),
)
def test_encode_arguments_match_reference(
    tiny_pair: tuple[Any, Any],
    inputs: Any,
    batch_size: Any,
    precision: str,
    output_value: str | None,
    convert_to_numpy: bool,
    convert_to_tensor: bool,
    normalize: bool,
    truncate_dim: int | None,
    prompt: str | None,
    prompt_name: str | None,
) -> None:
    ours, ref = tiny_pair
    # int8/uint8 on fewer than two rows make the reference warn about its calibration; not an argument check.
    assume(not (precision in ("int8", "uint8") and not isinstance(inputs, list)))
    kwargs = dict(
        batch_size=batch_size,
        precision=precision,
        output_value=output_value,
        convert_to_numpy=convert_to_numpy,
        convert_to_tensor=convert_to_tensor,
        normalize_embeddings=normalize,
        truncate_dim=truncate_dim,
        prompt=prompt,
        prompt_name=prompt_name,
    )
    import warnings

    with warnings.catch_warnings():
        # Both libraries warn the same way when prompt and prompt_name are both given.
        warnings.simplefilter("ignore")
        both = same_outcome(
            lambda: ours.encode(inputs, **kwargs),
            lambda: ref.encode(inputs, **kwargs),
            stricter=(truncate_dim is not None and truncate_dim <= 0)
            or not is_count(batch_size, 1)
            or (isinstance(inputs, (list, tuple)) and not inputs),
        )
    if both is None:
        return
    got, want = both
    assert type(got).__name__ == type(want).__name__ or isinstance(want, list) == isinstance(got, list), (
        type(got),
        type(want),
    )
    if isinstance(want, list):
        assert len(got) == len(want)
        pairs = list(zip(got, want))
    else:
        pairs = [(got, want)]
    for g, w in pairs:
        if isinstance(w, dict) or w is None:
            continue
        g64, w64 = as_numpy(g), as_numpy(w)
        assert g64.shape == w64.shape, (g64.shape, w64.shape)
        atol = 1 if precision in ("int8", "uint8") else 1e-4
        np.testing.assert_allclose(g64, w64, atol=atol, rtol=1e-3)
