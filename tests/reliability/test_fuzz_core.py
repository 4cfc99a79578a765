"""Hypothesis fuzzing of every ``sentrs._core`` entry point, called directly (no facade checks in between).

Each target draws valid and invalid arguments: odd dtypes, Fortran-order, reversed and strided arrays, 0-d, 1-d,
3-d and empty arrays, NaN/inf, huge or negative sizes, mismatched lengths, odd unicode. The property is always
the same: a result that matches a numpy / pure-Python oracle (checked where it is cheap), or a ``TypeError``,
``ValueError`` or ``OverflowError`` (``IndexError`` for row lookups) with a message. A
``pyo3_runtime.PanicException`` (a ``BaseException``) or a crash fails the target. ``_mark_forked`` is left out:
it turns the core's parallelism off for the rest of the process, which is its whole effect.

Bounded by ``fuzz_budget.fuzz_target``: 20 derandomised examples per target in ``make test``, a time budget per
target in ``make fuzz``.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sentrs import _core
from sentrs.exceptions import TokenizerError

from .fuzz_budget import fuzz_target

ARG_ERRORS = (TypeError, ValueError, OverflowError)
U64_MAX = 2**64 - 1

# ----------------------------------------------------------------------------------------------- helpers


def attempt(fn: Any, *args: Any, errors: tuple[type[BaseException], ...] = ARG_ERRORS, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, or None when it raises one of ``errors`` with a message; anything else propagates."""
    try:
        return fn(*args, **kwargs)
    except errors as e:
        assert str(e), f"{type(e).__name__} without a message"
        return None


# Sizes: mostly small, sometimes 0, sometimes huge or negative (for ints the bindings take as usize).
sizes = st.one_of(st.integers(0, 6), st.sampled_from([-1, 2**31, 2**63 - 1, U64_MAX, 2**64, -(2**63)]))
small_floats = st.floats(-8, 8, width=32)
wild_floats = st.one_of(
    small_floats, st.sampled_from([np.nan, np.inf, -np.inf, 3e38, -3e38, 1e-40, 0.0, -0.0]).map(float)
)


def f32_arrays(shape: Any, *, wild: bool = False) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.float32, shape, elements=wild_floats if wild else small_floats)


matrix_shapes = st.tuples(st.integers(0, 5), st.integers(0, 6))


@st.composite
def layouts(draw: st.DrawFn, arr: np.ndarray) -> tuple[np.ndarray, bool]:
    """``arr`` in another memory layout with the same values (True), or in a form the bindings must refuse (False):
    another dtype, another number of dimensions, a list, None."""
    kind = draw(
        st.sampled_from(
            ["same", "same", "fortran", "reversed", "strided", "dtype", "ndim_up", "ndim_down", "zero_d", "list"]
        )
    )
    if kind == "same":
        return arr, True
    if kind == "fortran":
        return np.asfortranarray(arr), True
    if kind == "reversed":
        # A negative stride on the first axis, with the values put back in the original order.
        return arr[::-1].copy()[::-1], True
    if kind == "strided":
        wide = np.repeat(arr, 2, axis=-1) if arr.ndim else arr
        return (wide[..., ::2] if arr.ndim else wide), True
    if kind == "dtype":
        dtype = draw(st.sampled_from([np.float64, np.float16, np.int32, np.int64, np.bool_, object, np.complex64]))
        if arr.dtype == dtype:
            return arr, True
        with np.errstate(all="ignore"):
            return arr.astype(dtype), False
    if kind == "ndim_up":
        return arr[None], False
    if kind == "ndim_down":
        return (arr.reshape(-1) if arr.ndim > 1 else np.asarray(0, dtype=arr.dtype)), False
    if kind == "zero_d":
        return np.asarray(arr.flat[0] if arr.size else 0, dtype=arr.dtype), False
    return arr.tolist(), False


def close(got: np.ndarray, want: np.ndarray, *, scale: float = 1.0, tol: float = 1e-4) -> None:
    """float32 kernels against float64 oracles: ``tol`` relative to the inputs' magnitude ``scale``."""
    assert got.shape == want.shape, f"shape {got.shape}, expected {want.shape}"
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol * max(scale, 1.0), equal_nan=True)


def unit_safe_norm(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.linalg.norm(x.astype(np.float64), axis=1), 1e-12)


def check_topk(ids: np.ndarray, scores: np.ndarray, full: np.ndarray, k: int, *, tol: float) -> None:
    """``(ids, scores)`` is a correct top-k of the score matrix ``full`` (``-inf`` entries are excluded pairs)."""
    q, n = full.shape
    width = min(k, n)
    assert ids.shape == (q, width) and scores.shape == (q, width), (ids.shape, scores.shape, (q, width))
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    for i in range(q):
        want = np.sort(full[i])[::-1][:width]
        for j in range(width):
            if ids[i, j] == -1:
                assert not np.isfinite(want[j]) or want[j] == -np.inf, f"row {i} padded while a hit exists"
                assert scores[i, j] == -np.inf
                continue
            assert 0 <= ids[i, j] < n
            # Equal first: -inf - -inf is NaN (an empty query or document scores -inf when asked to).
            at_id = full[i, ids[i, j]]
            assert at_id == scores[i, j] or abs(at_id - scores[i, j]) <= tol, (i, j, at_id, scores[i, j])
            assert want[j] == scores[i, j] or abs(want[j] - scores[i, j]) <= tol, (i, j, want[j], scores[i, j])
        real = ids[i][ids[i] >= 0]
        assert len(set(real.tolist())) == len(real), f"row {i} repeats an id: {ids[i]}"


# ----------------------------------------------------------------------------------------------- batching


@fuzz_target
@given(
    lengths=st.lists(st.one_of(st.integers(0, 40), st.sampled_from([-1, 2**63, U64_MAX, 2**64])), max_size=12),
    batch_size=sizes,
    max_tokens=st.one_of(st.none(), sizes, st.integers(1, 100)),
)
def test_plan_batches(lengths: list[int], batch_size: int, max_tokens: int | None) -> None:
    # Known (Rust): rows * longest overflows for lengths near 2**64 (test_fuzz_regressions).
    assume(max_tokens is None or all(n < 2**32 for n in lengths))
    out = attempt(_core.plan_batches, lengths, batch_size, max_tokens)
    if out is None:
        return
    order, bounds = out
    assert sorted(order.tolist()) == list(range(len(lengths)))
    assert order.tolist() == sorted(range(len(lengths)), key=lambda r: -lengths[r])
    assert bounds[0] == 0 and bounds[-1] == len(lengths) and np.all(np.diff(bounds) >= 1)
    for a, b in itertools.pairwise(bounds):
        rows = order[a:b]
        assert len(rows) <= batch_size
        if max_tokens is not None and len(rows) > 1:
            assert len(rows) * max(1, max(lengths[r] for r in rows)) <= max_tokens


# ----------------------------------------------------------------------------------------------- pooling


def pool_oracle(tokens: np.ndarray, mask: np.ndarray, mode: str, skip_first: int) -> np.ndarray:
    """The reference's Pooling on a 0/1 mask, with the prompt (``skip_first`` tokens from the first attended one)
    masked out, in float64."""
    batch, seq, hidden = tokens.shape
    out = np.zeros((batch, hidden))
    for b in range(batch):
        attended = [t for t in range(seq) if mask[b, t]]
        start = attended[0] if attended else 0
        pooled = [t for t in attended if t >= start + skip_first]
        rows = tokens[b, pooled].astype(np.float64)
        if mode == "cls":
            out[b] = tokens[b, pooled[0] if pooled else 0]
        elif mode == "lasttoken":
            out[b] = rows[-1] if pooled else 0.0
        elif mode == "max":
            out[b] = rows.max(axis=0) if pooled else -np.inf
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            count = max(len(pooled), 1e-9)
            out[b] = rows.sum(axis=0) / (count if mode == "mean" else math.sqrt(count))
        else:
            weights = np.array([t - start + 1 for t in pooled], dtype=np.float64)
            out[b] = (weights[:, None] * rows).sum(axis=0) / max(weights.sum(), 1e-9)
    return out


@fuzz_target
@given(data=st.data(), shape=st.tuples(st.integers(0, 3), st.integers(0, 5), st.integers(0, 4)))
def test_pool(data: st.DataObject, shape: tuple[int, int, int]) -> None:
    tokens = data.draw(f32_arrays(shape))
    mask = data.draw(hnp.arrays(np.int64, shape[:2], elements=st.integers(0, 1)))
    modes = data.draw(
        st.lists(
            st.sampled_from(["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken", "MEAN", ""]),
            max_size=3,
        )
    )
    skip_first = data.draw(st.one_of(st.integers(0, 6), st.sampled_from([-1, 2**63, U64_MAX, 2**64])))
    arg, same = data.draw(layouts(tokens))
    # Known (Rust): start + skip_first wraps for skip_first near 2**64 (test_fuzz_regressions).
    assume(skip_first < 2**63)
    if data.draw(st.booleans()):
        mask = mask[:, :-1] if shape[1] else np.zeros((shape[0] + 1, 1), np.int64)
        shape_ok = False
    else:
        shape_ok = True
    out = attempt(_core.pool, arg, mask, modes, skip_first)
    if out is None:
        return
    assert same and shape_ok, "accepted an argument of the wrong type or shape"
    assert modes and all(
        m in {"cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"} for m in modes
    )
    assert 0 <= skip_first < 2**64
    assert out.shape == (shape[0], shape[2] * len(modes)) and out.dtype == np.float32
    want = np.concatenate([pool_oracle(tokens, mask, m, skip_first) for m in modes], axis=1)
    close(out, want, scale=8)


@fuzz_target
@given(data=st.data(), shape=matrix_shapes, wild=st.booleans())
def test_normalize(data: st.DataObject, shape: tuple[int, int], wild: bool) -> None:
    x = data.draw(f32_arrays(shape, wild=wild))
    arg, same = data.draw(layouts(x))
    out = attempt(_core.normalize, arg)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert out.shape == x.shape and out.dtype == np.float32
    if not wild:
        close(out, x / unit_safe_norm(x)[:, None])


# ----------------------------------------------------------------------------------------------- similarity


def similarity_oracle(a: np.ndarray, b: np.ndarray, name: str, pairwise: bool) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    if pairwise:
        pairs = [(a64[i], b64[i]) for i in range(len(a64))]
    else:
        pairs = [(x, y) for x in a64 for y in b64]
    out = []
    for x, y in pairs:
        if name == "cosine":
            out.append(x @ y / (max(np.linalg.norm(x), 1e-12) * max(np.linalg.norm(y), 1e-12)))
        elif name == "dot":
            out.append(x @ y)
        elif name == "euclidean":
            out.append(-np.linalg.norm(x - y))
        else:
            out.append(-np.abs(x - y).sum())
    return np.array(out).reshape(len(a64) if pairwise else (len(a64), len(b64)))


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 4),
    m=st.integers(0, 4),
    d=st.integers(0, 6),
    d_other=st.integers(0, 6),
    name=st.sampled_from(["cosine", "dot", "euclidean", "manhattan", "cos", "Cosine", "", "dot\x00"]),
    pairwise=st.booleans(),
    wild=st.booleans(),
)
def test_similarity(
    data: st.DataObject, n: int, m: int, d: int, d_other: int, name: str, pairwise: bool, wild: bool
) -> None:
    if data.draw(st.booleans()):
        d_other = d
    a = data.draw(f32_arrays((n, d), wild=wild))
    b = data.draw(f32_arrays((m, d_other), wild=wild))
    a_arg, same = data.draw(layouts(a))
    fn = _core.similarity_pairwise if pairwise else _core.similarity_matrix
    out = attempt(fn, a_arg, b, name)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert name in ("cosine", "dot", "euclidean", "manhattan") and d == d_other and (not pairwise or n == m)
    with np.errstate(all="ignore"):  # the oracle on NaN/inf inputs
        want = similarity_oracle(a, b, name, pairwise)
    assert out.dtype == np.float32 and out.shape == want.shape
    if not wild:
        close(out, want, scale=64 * max(d, 1), tol=1e-4)


# ----------------------------------------------------------------------------------------------- top-k


def score_matrix(q: np.ndarray, c: np.ndarray, score: str) -> np.ndarray:
    full = q.astype(np.float64) @ c.astype(np.float64).T
    if score == "cosine":
        full /= unit_safe_norm(q)[:, None] * unit_safe_norm(c)[None, :]
    return full


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 4),
    n=st.integers(0, 7),
    d=st.integers(0, 6),
    k=sizes,
    score=st.sampled_from(["cosine", "dot", "euclidean", "COSINE"]),
    chunk=st.one_of(st.integers(1, 4), sizes),
    exclude_self=st.booleans(),
    force_fp32=st.booleans(),
    wild=st.booleans(),
)
def test_topk_search(
    data: st.DataObject,
    nq: int,
    n: int,
    d: int,
    k: int,
    score: str,
    chunk: int,
    exclude_self: bool,
    force_fp32: bool,
    wild: bool,
) -> None:
    queries = data.draw(f32_arrays((nq, d), wild=wild))
    corpus = data.draw(f32_arrays((n, d), wild=wild))
    corpus_arg, same = data.draw(layouts(corpus))
    out = attempt(_core.topk_search, queries, corpus_arg, k, score, chunk, exclude_self, force_fp32=force_fp32)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert score in ("cosine", "dot") and 0 <= k < 2**64 and chunk >= 1
    ids, scores = out
    if wild:
        assert ids.shape == scores.shape and ids.shape[0] == nq
        return
    full = score_matrix(queries, corpus, score)
    if exclude_self:
        for i in range(min(nq, n)):
            full[i, i] = -np.inf
    check_topk(ids, scores, full, k, tol=1e-4 * (64 * d if score == "dot" else 1) + 1e-5)


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 7),
    d=st.integers(0, 5),
    k=sizes,
    score=st.sampled_from(["cosine", "dot", "manhattan"]),
    wild=st.booleans(),
)
def test_topk_self_search(data: st.DataObject, n: int, d: int, k: int, score: str, wild: bool) -> None:
    x = data.draw(f32_arrays((n, d), wild=wild))
    arg, same = data.draw(layouts(x))
    out = attempt(_core.topk_self_search, arg, k, score)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert score in ("cosine", "dot") and 0 <= k < 2**64
    ids, scores = out
    width = min(k, max(n - 1, 0))
    assert ids.shape == (n, width) and scores.shape == (n, width)
    if wild:
        return
    full = score_matrix(x, x, score)
    np.fill_diagonal(full, -np.inf)
    check_topk(ids, scores, full, width, tol=1e-4 * (64 * d if score == "dot" else 1) + 1e-5)


# ----------------------------------------------------------------------------------------------- quantised search


def popcount_distance(q: np.ndarray, c: np.ndarray) -> np.ndarray:
    bits_q = np.unpackbits(q, axis=1).astype(np.int64)
    bits_c = np.unpackbits(c, axis=1).astype(np.int64)
    return (bits_q[:, None, :] != bits_c[None, :, :]).sum(axis=2)


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 4),
    n=st.integers(0, 7),
    width=st.integers(0, 5),
    width_other=st.integers(0, 5),
    k=sizes,
)
def test_hamming_topk(data: st.DataObject, nq: int, n: int, width: int, width_other: int, k: int) -> None:
    if data.draw(st.booleans()):
        width_other = width
    q = data.draw(hnp.arrays(np.uint8, (nq, width)))
    c = data.draw(hnp.arrays(np.uint8, (n, width_other)))
    c_arg, same = data.draw(layouts(c))
    out = attempt(_core.hamming_topk, q, c_arg, k)
    if out is None:
        return
    assert same and width == width_other, "accepted an argument of the wrong type or shape"
    ids, dist = out
    assert dist.dtype == np.uint32
    full = -popcount_distance(q, c).astype(np.float64)
    check_topk(ids, -dist.astype(np.float32), full, k, tol=0)


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 4),
    n=st.integers(0, 7),
    d=st.integers(0, 9),
    k=sizes,
    signed=st.booleans(),
)
def test_code_dot_topk(data: st.DataObject, nq: int, n: int, d: int, k: int, signed: bool) -> None:
    dtype = np.int8 if signed else np.uint8
    q = data.draw(hnp.arrays(dtype, (nq, d)))
    c = data.draw(hnp.arrays(dtype, (n, d)))
    c_arg, same = data.draw(layouts(c))
    fn = _core.code_dot_topk_i8 if signed else _core.code_dot_topk_u8
    out = attempt(fn, q, c_arg, k)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    ids, scores = out
    full = q.astype(np.float64) @ c.astype(np.float64).T
    check_topk(ids, scores, full, k, tol=0)


@st.composite
def candidate_ids(draw: st.DrawFn, nq: int, n: int) -> np.ndarray:
    k = draw(st.integers(0, 4))
    return draw(
        hnp.arrays(np.int64, (nq, k), elements=st.one_of(st.integers(-1, max(n - 1, -1)), st.integers(-3, n + 2)))
    )


@fuzz_target
@given(data=st.data(), nq=st.integers(0, 3), n=st.integers(0, 5), d=st.integers(0, 20), bits=st.booleans())
def test_rescore(data: st.DataObject, nq: int, n: int, d: int, bits: bool) -> None:
    queries = data.draw(f32_arrays((nq, d)))
    ids = data.draw(candidate_ids(nq, n))
    if bits:
        width = data.draw(st.sampled_from([(d + 7) // 8, (d + 7) // 8, d // 8 + 2]))
        corpus = data.draw(hnp.arrays(np.uint8, (n, width)))
        dense = np.unpackbits(corpus, axis=1)[:, :d].astype(np.float64) if n else np.zeros((0, d))
        ok_width = width == (d + 7) // 8
        fn = _core.rescore_bits
    else:
        width = data.draw(st.sampled_from([d, d, d + 1]))
        corpus = data.draw(f32_arrays((n, width)))
        dense = corpus.astype(np.float64)
        ok_width = width == d
        fn = _core.rescore_rows
    ids_arg, same = data.draw(layouts(ids))
    out = attempt(fn, queries, corpus, ids_arg)
    if out is None:
        return
    assert same and ok_width, "accepted an argument of the wrong type or shape"
    assert ((ids >= -1) & (ids < n)).all(), f"accepted candidate ids outside [-1, {n}): {ids}"
    assert out.shape == ids.shape and out.dtype == np.float32
    for i, j in np.ndindex(*ids.shape):
        if ids[i, j] == -1:
            assert out[i, j] == -np.inf
        else:
            want = queries[i].astype(np.float64) @ dense[ids[i, j]]
            assert abs(out[i, j] - want) <= 1e-4 * max(1.0, abs(want)), (i, j, out[i, j], want)


# ----------------------------------------------------------------------------------------------- clustering


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 10),
    d=st.integers(0, 4),
    threshold=st.one_of(st.floats(-1.5, 1.5), st.sampled_from([math.nan, math.inf, -math.inf, 1e300])),
    min_size=sizes,
    batch=sizes,
)
def test_community_detection(data: st.DataObject, n: int, d: int, threshold: float, min_size: int, batch: int) -> None:
    # Few distinct directions, so communities form.
    base = data.draw(hnp.arrays(np.float32, (3, d), elements=st.sampled_from([-1.0, 0.0, 1.0, 2.0])))
    pick = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, 2)))
    x = base[pick] if d else np.zeros((n, 0), np.float32)
    arg, same = data.draw(layouts(x))
    out = attempt(_core.community_detection, arg, threshold, min_size, batch)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert not math.isnan(threshold) and min_size >= 1 and batch >= 1
    offsets, members = out
    assert offsets[0] == 0 and offsets[-1] == len(members) and np.all(np.diff(offsets) >= min_size)
    assert len(set(members.tolist())) == len(members) and ((members >= 0) & (members < n)).all()
    unit = x / unit_safe_norm(x)[:, None] if n else x
    for c in range(len(offsets) - 1):
        group = members[offsets[c] : offsets[c + 1]]
        sims = unit[group] @ unit[group[0]]
        assert (sims >= np.float32(threshold) - 1e-5).all(), (group, sims, threshold)


def mine_pairs_oracle(ids: np.ndarray, scores: np.ndarray, max_pairs: int) -> list[tuple[float, int, int]]:
    first: dict[tuple[int, int], float] = {}
    for r in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            c = int(ids[r, t])
            if c >= 0:
                first.setdefault((min(c, r), max(c, r)), float(scores[r, t]))
    ordered = sorted(first.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(s, lo, hi) for (lo, hi), s in ordered[:max_pairs]]


@fuzz_target
@given(
    data=st.data(),
    rows=st.integers(0, 5),
    width=st.integers(0, 4),
    max_pairs=sizes,
    big_ids=st.booleans(),
)
def test_mine_pairs(data: st.DataObject, rows: int, width: int, max_pairs: int, big_ids: bool) -> None:
    # Known (Rust): ids near 2**62 overflow the pair key lo * width + hi and come back wrong
    # (test_fuzz_regressions); the ops facade refuses ids >= 2**31.
    id_values = st.integers(-2, 2**31) if big_ids else st.integers(-1, rows + 1)
    ids = data.draw(hnp.arrays(np.int64, (rows, width), elements=id_values))
    scores = data.draw(hnp.arrays(np.float32, (rows, width), elements=st.sampled_from([0.5, 0.25, 1.0, -1.0])))
    scores_arg, same = data.draw(layouts(scores))
    out = attempt(_core.mine_pairs, ids, scores_arg, max_pairs)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    got = list(zip(out[0].tolist(), out[1].tolist(), out[2].tolist()))
    assert got == mine_pairs_oracle(ids, scores, max_pairs)


# ----------------------------------------------------------------------------------------------- sparse


@fuzz_target
@given(data=st.data(), shape=matrix_shapes, max_active=st.one_of(st.none(), sizes), wild=st.booleans())
def test_dense_to_csr(data: st.DataObject, shape: tuple[int, int], max_active: int | None, wild: bool) -> None:
    x = data.draw(
        hnp.arrays(np.float32, shape, elements=st.one_of(st.just(0.0), wild_floats if wild else small_floats))
    )
    arg, same = data.draw(layouts(x))
    out = attempt(_core.dense_to_csr, arg, max_active)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert max_active is None or 1 <= max_active < 2**64
    indptr, indices, values = out
    assert len(indptr) == shape[0] + 1 and indptr[0] == 0 and np.all(np.diff(indptr) >= 0)
    assert indptr[-1] == len(indices) == len(values)
    for r in range(shape[0]):
        cols, vals = indices[indptr[r] : indptr[r + 1]], values[indptr[r] : indptr[r + 1]]
        assert np.all(np.diff(cols) > 0), "columns not ascending"
        np.testing.assert_array_equal(vals, x[r, cols])
        nonzero = np.flatnonzero(x[r])
        limit = len(nonzero) if max_active is None else min(max_active, len(nonzero))
        assert len(cols) == limit, (r, cols, nonzero, max_active)
        dropped = np.setdiff1d(nonzero, cols)
        if len(dropped) and len(cols) and not np.isnan(x[r]).any():
            assert np.abs(x[r, dropped]).max() <= np.abs(vals).min()


@fuzz_target
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 3), st.integers(0, 4), st.integers(0, 5)),
    strategy=st.sampled_from(["max", "sum", "mean", ""]),
    activation=st.sampled_from(["relu", "log1p_relu", "gelu"]),
    max_active=st.one_of(st.none(), sizes),
)
def test_splade_pool(
    data: st.DataObject, shape: tuple[int, int, int], strategy: str, activation: str, max_active: int | None
) -> None:
    logits = data.draw(f32_arrays(shape))
    mask = data.draw(hnp.arrays(np.int64, shape[:2], elements=st.integers(0, 1)))
    arg, same = data.draw(layouts(logits))
    out = attempt(_core.splade_pool, arg, mask, strategy, activation, max_active)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert strategy in ("max", "sum") and activation in ("relu", "log1p_relu")
    indptr, indices, values = out
    act = np.log1p(np.maximum(logits.astype(np.float64), 0))
    if activation == "log1p_relu":
        act = np.log1p(act)
    act = act * mask[:, :, None]
    dense = act.max(axis=1) if strategy == "max" and shape[1] else act.sum(axis=1)
    assert len(indptr) == shape[0] + 1
    for r in range(shape[0]):
        cols = indices[indptr[r] : indptr[r + 1]]
        got = np.zeros(shape[2])
        got[cols] = values[indptr[r] : indptr[r + 1]]
        nonzero = np.count_nonzero(dense[r])
        if max_active is None or max_active >= nonzero:
            close(got, dense[r], scale=4)
        else:
            assert len(cols) == max_active
            close(got[cols], dense[r][cols], scale=4)


@st.composite
def csr_matrices(draw: st.DrawFn, rows: int, dim: int, *, valid: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = [draw(st.integers(0, min(dim, 4))) for _ in range(rows)]
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    indices = np.concatenate([np.sort(draw(st.permutations(range(dim)))[:c]) for c in counts] or [np.zeros(0)]).astype(
        np.int64
    )
    values = draw(hnp.arrays(np.float32, len(indices), elements=st.floats(0.125, 4, width=32)))
    if not valid:
        broken = draw(st.sampled_from(["indptr_start", "indptr_down", "index_big", "index_negative", "short_values"]))
        if broken == "indptr_start":
            indptr = indptr + 1
        elif broken == "indptr_down" and len(indptr) > 2:
            indptr[1] = indptr[-1] + 1
        elif broken == "index_big" and len(indices):
            indices[-1] = dim + draw(st.integers(0, 2**40))
        elif broken == "index_negative" and len(indices):
            indices[0] = -1
        elif broken == "short_values" and len(values):
            values = values[:-1]
    return indptr, indices, values


def csr_dense(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, dim: int) -> np.ndarray:
    out = np.zeros((len(indptr) - 1, dim))
    for r in range(len(indptr) - 1):
        out[r, indices[indptr[r] : indptr[r + 1]]] = values[indptr[r] : indptr[r + 1]]
    return out


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 6),
    nq=st.integers(0, 3),
    dim=st.integers(0, 6),
    index_dim=st.one_of(st.none(), sizes),
    valid_docs=st.booleans(),
    valid_queries=st.booleans(),
    k=sizes,
    score=st.sampled_from(["dot", "cosine", "euclidean"]),
)
def test_sparse_index(
    data: st.DataObject,
    n: int,
    nq: int,
    dim: int,
    index_dim: int | None,
    valid_docs: bool,
    valid_queries: bool,
    k: int,
    score: str,
) -> None:
    docs = data.draw(csr_matrices(n, dim, valid=valid_docs or data.draw(st.booleans())))
    dim_arg = dim if index_dim is None else index_dim
    # Known (Rust): dim near 2**63 or 2**64 panics (capacity overflow, index out of bounds); test_fuzz_regressions.
    # The index also allocates (and touches) a counter per dimension: 2**31 of them exhausts the machine's memory,
    # so large dims are left out altogether.
    assume(dim_arg < 2**20)
    index = attempt(_core.SparseIndex, *docs, dim_arg)
    if index is None:
        return
    indptr, indices, values = docs
    assert indptr[0] == 0 and np.all(np.diff(indptr) >= 0) and indptr[-1] == len(indices) == len(values)
    assert ((indices >= 0) & (indices < dim_arg)).all()
    assert len(index) == n and index.dim == dim_arg
    queries = data.draw(csr_matrices(nq, dim, valid=valid_queries))
    q_arg, same = data.draw(layouts(queries[0]))
    out = attempt(index.search, q_arg, queries[1], queries[2], k, score)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    qp, qi, qv = queries
    assert qp[0] == 0 and np.all(np.diff(qp) >= 0) and qp[-1] == len(qi) == len(qv)
    assert ((qi >= 0) & (qi < dim_arg)).all(), f"accepted query columns outside [0, {dim_arg}): {qi}"
    assert score in ("dot", "cosine")
    ids, scores = out
    d_dense = csr_dense(*docs, max(dim, dim_arg if dim_arg < 64 else dim))
    q_dense = csr_dense(*queries, d_dense.shape[1])
    check_topk(ids, scores, score_matrix(q_dense, d_dense, score), k, tol=1e-4 * (64 if score == "dot" else 1))


# ----------------------------------------------------------------------------------------------- late interaction


@st.composite
def ragged(draw: st.DrawFn, items: int, d: int, *, valid: bool) -> tuple[np.ndarray, np.ndarray]:
    counts = [draw(st.integers(0, 3)) for _ in range(items)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    data = draw(f32_arrays((int(offsets[-1]), d)))
    if not valid:
        broken = draw(st.sampled_from(["negative", "past_end", "down", "start"]))
        if broken == "negative":
            offsets[0] = -1
        elif broken == "past_end":
            offsets[-1] += draw(st.integers(1, 2**62))
        elif broken == "down" and len(offsets) > 2:
            offsets[1] = offsets[-1] + 1
        elif broken == "start":
            offsets = offsets + 1
    return data, offsets


def maxsim_oracle(
    q: np.ndarray, q_off: np.ndarray, d: np.ndarray, d_off: np.ndarray, weights: np.ndarray | None, empty: float
) -> np.ndarray:
    out = np.zeros((len(q_off) - 1, len(d_off) - 1))
    for i in range(len(q_off) - 1):
        qi = q[q_off[i] : q_off[i + 1]].astype(np.float64)
        w = np.ones(len(qi)) if weights is None else weights[q_off[i] : q_off[i + 1]].astype(np.float64)
        for j in range(len(d_off) - 1):
            dj = d[d_off[j] : d_off[j + 1]].astype(np.float64)
            out[i, j] = empty if len(dj) == 0 else float(w @ (qi @ dj.T).max(axis=1)) if len(qi) else 0.0
    return out


def offsets_valid(offsets: np.ndarray, rows: int) -> bool:
    return len(offsets) >= 1 and offsets[0] == 0 and bool(np.all(np.diff(offsets) >= 0)) and offsets[-1] == rows


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 3),
    nd=st.integers(0, 4),
    d=st.integers(1, 4),
    d_other=st.integers(1, 4),
    mode=st.sampled_from(["matrix", "pairwise", "topk"]),
    k=sizes,
    weighted=st.booleans(),
    kernel=st.sampled_from(["auto", "fp32", "amx", "gpu"]),
    valid=st.booleans(),
)
def test_maxsim(
    data: st.DataObject,
    nq: int,
    nd: int,
    d: int,
    d_other: int,
    mode: str,
    k: int,
    weighted: bool,
    kernel: str,
    valid: bool,
) -> None:
    if data.draw(st.booleans()):
        d_other = d
    if mode == "pairwise" and data.draw(st.booleans()):
        nd = nq
    q, q_off = data.draw(ragged(nq, d, valid=valid or data.draw(st.booleans())))
    docs, d_off = data.draw(ragged(nd, d_other, valid=valid))
    weights = data.draw(f32_arrays(len(q) + data.draw(st.sampled_from([0, 0, 1])))) if weighted else None
    empty = data.draw(st.sampled_from([-1e9, 0.0, math.nan, -math.inf]))
    q_arg, same = data.draw(layouts(q))
    # Known (Rust): maxsim_topk with k near 2**62 panics (capacity overflow), or segfaults with no queries;
    # test_fuzz_regressions. The ops facade pads past the documents itself.
    # The k columns are allocated for real: valid k stay small here.
    assume(mode != "topk" or k < 4096 or k >= 2**64)
    if mode == "matrix":
        out = attempt(_core.maxsim, q_arg, q_off, docs, d_off, weights, empty, kernel)
    elif mode == "pairwise":
        out = attempt(_core.maxsim_pairwise, q_arg, q_off, docs, d_off, weights, empty)
    else:
        out = attempt(_core.maxsim_topk, q_arg, q_off, docs, d_off, k, weights, empty, kernel)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert offsets_valid(q_off, len(q)) and offsets_valid(d_off, len(docs)) and d == d_other
    assert weights is None or len(weights) == len(q)
    full = maxsim_oracle(q, q_off, docs, d_off, weights, empty)
    scale = 64.0 * d * max(len(q), 1)
    if mode == "matrix":
        close(out, full, scale=scale)
    elif mode == "pairwise":
        assert nq == nd
        close(out, np.diagonal(full).copy() if nq else np.zeros(0), scale=scale)
    else:
        ids, scores = out
        if math.isnan(empty):
            assert ids.shape[0] == nq
            return
        assert ids.shape == (nq, k)
        width = min(k, nd)
        check_topk(ids[:, :width], scores[:, :width], full, k, tol=1e-4 * scale)
        assert (ids[:, width:] == -1).all() and (scores[:, width:] == -np.inf).all()


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 8),
    d=st.integers(0, 4),
    k=sizes,
    iterations=st.one_of(st.integers(0, 3), sizes),
    seed=st.one_of(st.integers(0, U64_MAX), st.sampled_from([-1, 2**64])),
)
def test_token_kmeans_and_assign(data: st.DataObject, n: int, d: int, k: int, iterations: int, seed: int) -> None:
    x = data.draw(f32_arrays((n, d)))
    x = x / unit_safe_norm(x).astype(np.float32)[:, None] if n else x
    arg, same = data.draw(layouts(x.astype(np.float32)))
    if 50 < iterations < 2**64:
        iterations = 3  # a valid but huge count would only make the run long
    cents = attempt(_core.token_kmeans, arg, k, iterations, seed)
    if cents is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert cents.dtype == np.float32 and cents.shape[1] == d and cents.shape[0] == min(k, n)
    codes = attempt(_core.token_assign, x.astype(np.float32), cents)
    assert codes is not None
    assert codes.shape == (n,) and codes.dtype == np.uint32
    if n and k:
        sims = x.astype(np.float64) @ cents.astype(np.float64).T
        got = sims[np.arange(n), codes.astype(np.int64)]
        np.testing.assert_allclose(got, sims.max(axis=1), atol=1e-5)


@fuzz_target
@given(
    data=st.data(),
    n=st.integers(0, 6),
    d=st.integers(0, 4),
    k=st.integers(0, 4),
    d_cent=st.integers(0, 4),
)
def test_token_assign(data: st.DataObject, n: int, d: int, k: int, d_cent: int) -> None:
    if data.draw(st.booleans()):
        d_cent = d
    x = data.draw(f32_arrays((n, d), wild=data.draw(st.booleans())))
    cents = data.draw(f32_arrays((k, d_cent)))
    arg, same = data.draw(layouts(cents))
    codes = attempt(_core.token_assign, x, arg)
    if codes is None:
        return
    assert same and d == d_cent, "accepted an argument of the wrong type or shape"
    assert codes.shape == (n,)
    assert k > 0 or n == 0, "assigned rows to no centroid"
    if n and k and np.abs(x).max(initial=0) < 1e18:  # beyond, float32 products overflow and ties are arbitrary
        sims = x.astype(np.float64) @ cents.astype(np.float64).T
        got = sims[np.arange(n), codes.astype(np.int64)]
        np.testing.assert_allclose(got, sims.max(axis=1), atol=1e-4 * 64 * max(d, 1))


@fuzz_target
# n_centroids stays below 2**31: a list per centroid is allocated up front, and 2**31 of them is an abort
# (allocation failure), not an exception; fuzz_regressions covers the huge values in a subprocess.
@given(
    data=st.data(),
    docs=st.integers(0, 5),
    n_centroids=st.one_of(st.integers(0, 8), st.sampled_from([-1, 2**63, 2**64])),
    valid=st.booleans(),
)
def test_token_inverted_lists(data: st.DataObject, docs: int, n_centroids: int, valid: bool) -> None:
    _, offsets = data.draw(ragged(docs, 1, valid=valid))
    total = int(offsets[-1]) if valid else data.draw(st.integers(0, 8))
    top = min(n_centroids, 6) if 0 < n_centroids < 2**63 else 6
    codes = data.draw(hnp.arrays(np.uint32, total, elements=st.integers(0, top + 1)))
    codes_arg, same = data.draw(layouts(codes))
    out = attempt(_core.token_inverted_lists, codes_arg, offsets, n_centroids)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert offsets_valid(offsets, len(codes)), f"accepted offsets {offsets} for {len(codes)} codes"
    assert (codes < n_centroids).all(), f"accepted codes >= n_centroids={n_centroids}"
    ids, list_offsets = out
    assert len(list_offsets) == n_centroids + 1
    for c in range(n_centroids):
        want = sorted({doc for doc in range(docs) for t in range(offsets[doc], offsets[doc + 1]) if codes[t] == c})
        assert ids[list_offsets[c] : list_offsets[c + 1]].tolist() == want


@fuzz_target
@given(
    data=st.data(),
    nq=st.integers(0, 3),
    nd=st.integers(0, 5),
    d=st.integers(1, 3),
    n_centroids=st.integers(1, 3),
    k=sizes,
    nprobe=sizes,
    candidates=sizes,
    corrupt=st.sampled_from(["none", "none", "codes_short", "code_big", "list_id_big", "list_offsets"]),
)
def test_candidate_search(
    data: st.DataObject,
    nq: int,
    nd: int,
    d: int,
    n_centroids: int,
    k: int,
    nprobe: int,
    candidates: int,
    corrupt: str,
) -> None:
    q, q_off = data.draw(ragged(nq, d, valid=True))
    docs, d_off = data.draw(ragged(nd, d, valid=True))
    cents = data.draw(f32_arrays((n_centroids, d)))
    codes = _core.token_assign(docs, cents) if len(docs) else np.zeros(0, np.uint32)
    list_ids, list_offsets = _core.token_inverted_lists(codes, d_off, n_centroids)
    if corrupt == "codes_short" and len(codes):
        codes = codes[:-1]
    elif corrupt == "code_big" and len(codes):
        codes = codes.copy()
        codes[0] = n_centroids + 5
    elif corrupt == "list_id_big" and len(list_ids):
        list_ids = list_ids.copy()
        list_ids[0] = nd + 7
    elif corrupt == "list_offsets":
        list_offsets = list_offsets.copy()
        list_offsets[-1] += 3
    # Known (Rust): k near 2**62 segfaults with no queries, panics otherwise (as maxsim_topk).
    k_small = k if k <= 64 else 3
    out = attempt(
        _core.candidate_search,
        q,
        q_off,
        docs,
        d_off,
        cents,
        codes,
        list_ids,
        list_offsets,
        k_small,
        nprobe,
        candidates,
    )
    if out is None:
        return
    ids, scores = out
    assert ids.shape[0] == nq and ids.shape == scores.shape
    if corrupt != "none" and ids.size:
        # A corrupted index may still give a result, but never ids outside the corpus.
        assert ((ids >= -1) & (ids < nd)).all()
        return
    full = maxsim_oracle(q, q_off, docs, d_off, None, -1e9)
    # Candidates come from the query tokens' centroids: documents without tokens, and every document for a query
    # without tokens, are never candidates.
    full[:, np.diff(d_off) == 0] = -np.inf
    full[np.diff(q_off) == 0, :] = -np.inf
    for i in range(nq):
        for j in range(ids.shape[1]):
            if ids[i, j] >= 0:
                assert 0 <= ids[i, j] < nd
                assert abs(scores[i, j] - full[i, ids[i, j]]) <= 1e-3, (i, j)
    if nprobe >= n_centroids and candidates >= nd and k_small <= 64 and nd:
        width = min(k_small, nd)
        check_topk(ids[:, :width], scores[:, :width], full, k_small, tol=1e-3)


# ----------------------------------------------------------------------------------------------- sampler


@fuzz_target
@given(
    columns=st.lists(
        st.lists(st.one_of(st.text(max_size=3), st.sampled_from(["", "\x00", "é", "e\u0301", "🙂", " "])), max_size=5),
        max_size=3,
    ),
    poison=st.sampled_from([None, None, 1, b"x", None]),
)
def test_intern_str_columns(columns: list[list[str]], poison: Any) -> None:
    if poison is not None and columns and columns[0]:
        columns = [list(c) for c in columns]
        columns[0][0] = poison
    out = attempt(_core.intern_str_columns, columns)
    if out is None:
        return
    assert poison is None or not (columns and columns[0]), "accepted a non-str value"
    ids, num_values = out
    rows = len(columns[0]) if columns else 0
    assert all(len(c) == rows for c in columns)
    assert ids.shape == (rows, len(columns)) and ids.dtype == np.uint32
    flat = [columns[c][r] for r in range(rows) for c in range(len(columns))]
    assert num_values == len(set(flat))
    mapping: dict[str, int] = {}
    for value, got in zip(flat, ids.reshape(-1).tolist()):
        assert mapping.setdefault(value, got) == got
    assert len(set(mapping.values())) == len(mapping)


@fuzz_target
@given(data=st.data(), shape=matrix_shapes)
def test_intern_u64(data: st.DataObject, shape: tuple[int, int]) -> None:
    hashes = data.draw(hnp.arrays(np.uint64, shape, elements=st.sampled_from([0, 1, 2, U64_MAX, 2**63])))
    arg, same = data.draw(layouts(hashes))
    out = attempt(_core.intern_u64, arg)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    ids, num_values = out
    assert ids.shape == shape and num_values == len(set(hashes.reshape(-1).tolist()))
    mapping: dict[int, int] = {}
    for value, got in zip(hashes.reshape(-1).tolist(), ids.reshape(-1).tolist()):
        assert mapping.setdefault(value, got) == got


@fuzz_target
@given(
    data=st.data(),
    rows=st.integers(0, 8),
    per_row=st.integers(0, 3),
    num_values=st.one_of(st.integers(0, 6), sizes),
    batch_size=sizes,
    drop_last=st.booleans(),
)
def test_no_duplicates_batches(
    data: st.DataObject, rows: int, per_row: int, num_values: int, batch_size: int, drop_last: bool
) -> None:
    top = 5 if not 0 < num_values < 2**63 else min(num_values + 1, 7)
    ids = data.draw(hnp.arrays(np.uint32, (rows, per_row), elements=st.integers(0, top)))
    order = np.array(
        data.draw(st.one_of(st.permutations(range(rows)), st.lists(st.integers(-2, rows + 1), max_size=rows))),
        dtype=np.int64,
    )
    order_arg, same = data.draw(layouts(order))
    if 2**24 < num_values < 2**64:
        num_values = 2**20  # the pass allocates one stamp per value: keep real runs small
    out = attempt(_core.no_duplicates_batches, ids, num_values, order_arg, batch_size, drop_last)
    if out is None:
        return
    assert same, "accepted an argument of the wrong type or shape"
    assert (ids < num_values).all() and ((order >= 0) & (order < rows)).all() and per_row >= 1
    out_rows, bounds = out
    assert bounds[0] == 0 and bounds[-1] == len(out_rows)
    assert set(out_rows.tolist()) <= set(order.tolist())
    for a, b in itertools.pairwise(bounds):
        batch = out_rows[a:b]
        assert 1 <= len(batch) <= batch_size
        if drop_last:
            assert len(batch) == batch_size
        values = ids[batch].reshape(-1).tolist()
        assert len(values) == len(set(values)) or (per_row > 1 and len(set(values)) >= len(batch)), batch


# ----------------------------------------------------------------------------------------------- tokenizer


def _tiny_tokenizer_json() -> str:
    """A BERT-style WordPiece ``tokenizer.json`` over a tiny vocabulary (ASCII letters, some words, a few
    non-ASCII characters), built with the ``tokenizers`` library that is also the oracle."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, normalizers, pre_tokenizers, processors

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list("0123456789.,!?'-") + ["é", "ß", "中", "🙂"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *(f"##{c}" for c in letters)]
    vocab += ["the", "quick", "brown", "fox", "##ing", "##ed", "run"]
    tok = HFTokenizer(
        models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]", max_input_chars_per_word=100)
    )
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tok.to_str()


TOKENIZER_JSON = _tiny_tokenizer_json()

texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet="abc xyz.,!?'-\t\n", max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\t\n ",
            "\x00",
            "a\x00b",
            "e\u0301",
            "\u200b\u200d",
            "שלום עולם",
            "مرحبا",
            "🙂🙂 fox",
            "中文字",
            "Quick BROWN fox",
            "a" * 300,
            "x" * 150 + " the",
            "\ufeffthe",
            "\U0010ffff",
            "\ud7ff",
        ]
    ),
)


def oracle_tokenizer(max_length: int | None, strategy: str, side: str) -> Any:
    from tokenizers import Tokenizer as HFTokenizer

    tok = HFTokenizer.from_str(TOKENIZER_JSON)
    if max_length is not None:
        tok.enable_truncation(max_length, strategy=strategy, direction=side)
    return tok


@fuzz_target
@given(
    batch=st.lists(texts, max_size=4),
    pairs=st.one_of(st.none(), st.lists(st.one_of(st.none(), texts), max_size=5)),
    max_length=st.one_of(st.none(), st.integers(0, 12), st.sampled_from([-1, 2**64, U64_MAX])),
    strategy=st.sampled_from(["longest_first", "only_first", "only_second", "do_not_truncate", "LONGEST"]),
    side=st.sampled_from(["right", "left", "middle"]),
    add_special_tokens=st.booleans(),
)
def test_tokenizer_encode(
    batch: list[str],
    pairs: list[str | None] | None,
    max_length: int | None,
    strategy: str,
    side: str,
    add_special_tokens: bool,
) -> None:
    tok = attempt(
        _core.Tokenizer.from_str,
        TOKENIZER_JSON,
        max_length=max_length,
        truncation_strategy=strategy,
        truncation_side=side,
    )
    if tok is None:
        return
    assert (side in ("right", "left") and max_length is None) or 0 <= max_length < 2**64
    assert tok.max_length == max_length
    enc = attempt(tok.encode, batch, pairs, add_special_tokens=add_special_tokens)
    if enc is None:
        return
    assert pairs is None or len(pairs) == len(batch), "accepted pairs of another length than texts"
    assert len(enc) == len(batch)
    if max_length is not None and max_length > 1000:
        max_length = None
    hf_strategy = {"do_not_truncate": None}.get(strategy, strategy)
    hf = oracle_tokenizer(max_length if hf_strategy else None, hf_strategy or "longest_first", side)
    for row, text in enumerate(batch):
        pair = pairs[row] if pairs is not None else None
        try:
            want = hf.encode(text, pair, add_special_tokens=add_special_tokens).ids
        except Exception:
            # Where tokenizers refuses a truncation sentrs refuses the batch. Known (Rust): only_second on a text
            # without a pair is truncated instead by the WordPiece fast path (test_fuzz_regressions).
            assert strategy == "only_second" and pair is None, (text, pair, enc.ids(row))
            continue
        assert enc.ids(row) == want, (text, pair, enc.ids(row), want)
    assert enc.lengths().tolist() == [len(enc.ids(r)) for r in range(len(batch))]


@fuzz_target
@given(
    batch=st.lists(texts, max_size=5),
    rows=st.one_of(st.none(), st.lists(st.integers(-1, 6), max_size=5)),
    pad_to=st.one_of(st.none(), st.integers(0, 40), sizes),
    multiple_of=st.one_of(st.none(), st.integers(0, 5), sizes),
    pad_id=st.one_of(st.integers(0, 3), st.sampled_from([2**32 - 1, 2**32, -1])),
    padding_side=st.sampled_from(["right", "left", "both"]),
)
def test_encoding_pad_and_flat(
    batch: list[str],
    rows: list[int] | None,
    pad_to: int | None,
    multiple_of: int | None,
    pad_id: int,
    padding_side: str,
) -> None:
    tok = attempt(_core.Tokenizer.from_str, TOKENIZER_JSON, max_length=16, pad_id=pad_id, padding_side=padding_side)
    if tok is None:
        return
    assert 0 <= pad_id < 2**32 and padding_side in ("right", "left")
    enc = tok.encode(batch)
    assert isinstance(enc, _core.Encoding)
    # Keep real allocations small: a huge fixed length must be refused or is skipped here.
    # Known (Rust): a padded length near 2**63 panics instead of raising (test_fuzz_regressions).
    # Zero rows padded to such a length is a segfault.
    assume((pad_to is None or pad_to < 2**40) and (multiple_of is None or multiple_of < 2**40))
    # A valid but huge multiple allocates rows x multiple for real: keep real runs small.
    assume(multiple_of is None or multiple_of < 4096)
    if pad_to is not None and pad_to > 4096:
        pad_to = 4096
    out = attempt(enc.pad, rows, pad_to=pad_to, pad_to_multiple_of=multiple_of, errors=(*ARG_ERRORS, IndexError))
    chosen = list(range(len(batch))) if rows is None else rows
    if out is not None:
        assert all(0 <= r < len(batch) for r in chosen), f"accepted rows {chosen} for {len(batch)} texts"
        ids, mask, types = out
        longest = max([len(enc.ids(r)) for r in chosen], default=0)
        seq = longest if pad_to is None else pad_to
        assert seq >= longest
        if multiple_of is not None:
            assert multiple_of >= 1
            seq = -(-seq // multiple_of) * multiple_of
        assert ids.shape == mask.shape == types.shape == (len(chosen), seq)
        for i, r in enumerate(chosen):
            row = enc.ids(r)
            pad = seq - len(row)
            where = slice(0, len(row)) if padding_side == "right" else slice(pad, seq)
            assert ids[i, where].tolist() == row and mask[i, where].sum() == len(row) == mask[i].sum()
            assert (ids[i][mask[i] == 0] == pad_id).all()
    flat = attempt(enc.flat, rows, errors=(*ARG_ERRORS, IndexError))
    if flat is not None:
        assert all(0 <= r < len(batch) for r in chosen)
        flat_ids, offsets = flat
        assert flat_ids.tolist() == [t for r in chosen for t in enc.ids(r)]
        assert offsets.tolist() == list(np.cumsum([0] + [len(enc.ids(r)) for r in chosen])[:-1])
    row = attempt(enc.ids, rows[0] if rows else len(batch), errors=(*ARG_ERRORS, IndexError))
    if row is not None:
        assert rows and 0 <= rows[0] < len(batch)


@fuzz_target
@given(
    batch=st.lists(texts, max_size=4),
    vocab_rows=st.sampled_from([0, 10, None]),
    dim=st.integers(0, 4),
    layout=st.sampled_from(["same", "fortran", "f64", "1d"]),
)
def test_tokenizer_embed_mean(batch: list[str], vocab_rows: int | None, dim: int, layout: str) -> None:
    tok = _core.Tokenizer.from_str(TOKENIZER_JSON)
    rows = tok.vocab_size if vocab_rows is None else vocab_rows
    weights = np.arange(rows * dim, dtype=np.float32).reshape(rows, dim) / 7
    arg: Any = {"same": weights, "fortran": np.asfortranarray(weights), "f64": weights.astype(np.float64)}.get(
        layout, weights.reshape(-1)
    )
    out = attempt(tok.embed_mean, batch, arg)
    if out is None:
        return
    assert layout in ("same", "fortran"), "accepted weights of the wrong type or shape"
    hf = oracle_tokenizer(None, "longest_first", "right")
    assert out.shape == (len(batch), dim)
    for r, text in enumerate(batch):
        ids = hf.encode(text, add_special_tokens=False).ids
        assert max(ids, default=-1) < rows, "read a weight row past the end"
        want = weights[ids].astype(np.float64).mean(axis=0) if ids else np.zeros(dim)
        close(out[r], want, scale=float(np.abs(weights).max(initial=1)))


@fuzz_target
@given(
    json_text=st.one_of(
        st.text(max_size=40),
        st.sampled_from(["{}", "null", "[]", '{"model": null}', TOKENIZER_JSON[: len(TOKENIZER_JSON) // 2]]),
        st.just(TOKENIZER_JSON),
    ),
    token=st.one_of(texts, st.sampled_from(["[CLS]", "the", "##ing", "zzz"])),
    path=st.sampled_from(["/nonexistent/tokenizer.json", "/", "", "\x00"]),
)
def test_tokenizer_construction(json_text: str, token: str, path: str) -> None:
    tok = attempt(_core.Tokenizer.from_str, json_text, errors=(*ARG_ERRORS, TokenizerError))
    if tok is not None:
        assert json_text == TOKENIZER_JSON, "parsed a broken tokenizer.json"
        got = tok.token_to_id(token)
        from tokenizers import Tokenizer as HFTokenizer

        assert got == HFTokenizer.from_str(TOKENIZER_JSON).token_to_id(token)
        assert tok.vocab_size == HFTokenizer.from_str(TOKENIZER_JSON).get_vocab_size(with_added_tokens=True)
    with pytest.raises((FileNotFoundError, TokenizerError, ValueError, IsADirectoryError)) as info:
        _core.Tokenizer.from_file(path)
    assert str(info.value)


# ----------------------------------------------------------------------------------------------- the rest


@fuzz_target
@given(
    data=st.data(),
    shape=st.tuples(st.integers(0, 2), st.integers(0, 3), st.integers(0, 3)),
    vocab=st.integers(0, 4),
)
def test_splade_max_head(data: st.DataObject, shape: tuple[int, int, int], vocab: int) -> None:
    hidden = data.draw(f32_arrays(shape))
    mask = np.ones(shape[:2], np.int64)
    weight = data.draw(f32_arrays((vocab, shape[2])))
    out = attempt(_core.splade_max_head, hidden, mask, weight, None, "relu", None)
    # The same through weights prepared once (also with a hidden size other than the weight's: an error).
    prepared = attempt(_core.SpladeHeadWeights, weight, None)
    wrong_width = data.draw(st.integers(0, 4))
    if prepared is not None:
        assert (prepared.vocab, prepared.dim) == weight.shape
        again = attempt(prepared.max_pool, hidden, mask, "relu", None)
        assert (again is None) == (out is None)
        if again is not None:
            assert all(np.array_equal(a, b) for a, b in zip(out, again))
        if wrong_width != shape[2]:
            other = np.zeros((shape[0], shape[1], wrong_width), np.float32)
            with pytest.raises(ValueError, match="columns"):
                prepared.max_pool(other, mask)
    if _core.maxsim_amx_supported():
        if out is None:
            return
        indptr, indices, values = out
        logits = hidden.astype(np.float64) @ weight.astype(np.float64).T
        dense = np.log1p(np.maximum(logits, 0)).max(axis=1) if shape[1] else np.zeros((shape[0], vocab))
        close(csr_dense(indptr, indices, values, vocab), dense, scale=64)
    else:
        assert out is None, "splade_max_head ran on a CPU without AMX"
        assert prepared is None, "SpladeHeadWeights was built on a CPU without AMX"


def test_module_level_entry_points_are_all_fuzzed() -> None:
    """Every public name of ``sentrs._core`` has a target here (``_mark_forked`` excepted, see the module doc)."""
    from pathlib import Path

    source = Path(__file__).read_text(encoding="utf-8")
    names = [n for n in _core.__all__ if n not in ("__version__", "_mark_forked")]
    missing = [n for n in names if f"_core.{n}" not in source]
    assert not missing, f"entry points without a fuzz target: {missing}"
    assert _core.num_threads() >= 1 and isinstance(_core.maxsim_amx_supported(), bool)


# ----------------------------------------------------------------------------------------------- SIMD levels

SIMD_LEVELS = ("scalar", "avx2", "avx2_vnni", "avx512")


@fuzz_target
@given(
    data=st.data(),
    level=st.one_of(st.none(), st.sampled_from([*SIMD_LEVELS, "AVX2", "", "sse", "avx512\x00"]), st.text(max_size=4)),
    nq=st.integers(0, 3),
    n=st.integers(0, 40),
    d=st.integers(0, 40),
    k=st.integers(0, 5),
)
def test_simd_levels(data: st.DataObject, level: str | None, nq: int, n: int, d: int, k: int) -> None:
    """Any SIMD cap gives the same top-k, similarity and Hamming results (checked against numpy at that level)."""
    levels = _core.supported_simd_levels()
    assert levels and set(levels) <= set(SIMD_LEVELS) and _core.detected_simd_level() in levels
    features = _core.cpu_features()
    assert all(isinstance(name, str) and isinstance(has, bool) for name, has in features)
    queries = data.draw(f32_arrays((nq, d)))
    corpus = data.draw(f32_arrays((n, d)))
    codes_q = data.draw(hnp.arrays(np.uint8, (nq, (d + 7) // 8)))
    codes_c = data.draw(hnp.arrays(np.uint8, (n, (d + 7) // 8)))
    try:
        if attempt(lambda: _core.set_simd_ceiling(level) or True) is None:
            assert level is not None and level.strip().lower() not in SIMD_LEVELS, f"refused the level {level!r}"
            return
        # Level names are read case-insensitively, surrounding whitespace ignored.
        level = None if level is None else level.strip().lower()
        assert level is None or level in SIMD_LEVELS, f"accepted the level {level!r}"
        active = _core.simd_level()
        assert active in levels
        if level is not None:
            assert SIMD_LEVELS.index(active) <= SIMD_LEVELS.index(level)
        ids, scores = _core.topk_search(queries, corpus, k, "dot", 8192, False, force_fp32=data.draw(st.booleans()))
        check_topk(ids, scores, score_matrix(queries, corpus, "dot"), k, tol=1e-4 * 64 * max(d, 1))
        kernel, *counts = _core.topk_last_pass()
        assert isinstance(kernel, str) and all(isinstance(c, int) for c in counts)
        close(_core.similarity_matrix(queries, corpus, "cosine"), similarity_oracle(queries, corpus, "cosine", False))
        h_ids, dist = _core.hamming_topk(codes_q, codes_c, k)
        check_topk(h_ids, -dist.astype(np.float32), -popcount_distance(codes_q, codes_c).astype(np.float64), k, tol=0)
    finally:
        _core.set_simd_ceiling(None)
