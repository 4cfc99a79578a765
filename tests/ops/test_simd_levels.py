"""Every SIMD dispatch level this CPU runs, forced through ``ops.force_simd_level``, gives the same results.

A CI machine without AVX-512 checks the scalar and AVX2 paths; one with AVX-512 checks them all (the level is in each
test id). The reference (sentence-transformers' torch ``semantic_search``) is the oracle for the search; numpy for the
other kernels. Tolerances: scores within 1e-5 (fp32 summation order differs between kernels and torch), ids equal
except where two candidates' scores tie within that.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from sentence_transformers import util as st_util

from sentrs import _core, ops
from sentrs import util as our_util

LEVELS = ops.supported_simd_levels()


@pytest.fixture(params=LEVELS, ids=[f"simd-{level}" for level in LEVELS])
def level(request: pytest.FixtureRequest) -> Iterator[str]:
    with ops.force_simd_level(request.param) as running:
        assert running == request.param
        yield request.param
    assert ops.simd_level() == ops.detected_simd_level()


def clustered(n: int, d: int, seed: int, centers: int = 50) -> np.ndarray:
    """Rows near a few directions, as real embeddings are (scores near the k-th hit are close together)."""
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(1234).standard_normal((centers, d)).astype(np.float32)
    x = c[rng.integers(0, centers, n)] + 0.8 * rng.standard_normal((n, d)).astype(np.float32)
    return x.astype(np.float32)


def expected_pass(level: str) -> str:
    features = ops.cpu_features()
    if level in ("avx2_vnni", "avx512") and features.get("avx_vnni"):
        return "int16-vnni"
    if level == "avx512" and features.get("avx512_bf16"):
        return "bf16"
    if level in ("avx2", "avx2_vnni", "avx512"):
        return "int16"
    return "none"


def assert_same_hits(ids: np.ndarray, scores: np.ndarray, want_ids: np.ndarray, want_scores: np.ndarray) -> None:
    assert ids.shape == want_ids.shape
    np.testing.assert_allclose(scores, want_scores, atol=1e-5, rtol=1e-5)
    differ = ids != want_ids
    # A swapped pair must be a tie within the tolerance.
    assert np.all(np.abs(scores[differ] - want_scores[differ]) <= 1e-5)


@pytest.mark.parametrize("score_function", ["cosine", "dot"])
def test_topk_search_matches_the_reference(level: str, score_function: str) -> None:
    # 96 x 4096 x 256 multiply-adds: above the size from which the candidate passes run.
    queries, corpus = clustered(96, 256, 1), clustered(4096, 256, 2)
    ids, scores = ops.topk_search(queries, corpus, 10, score_function=score_function)
    pass_name, through, _unproven = _core.topk_last_pass()
    assert pass_name == expected_pass(level)
    assert through == (96 if pass_name != "none" else 0)
    fn = st_util.cos_sim if score_function == "cosine" else st_util.dot_score
    ref = st_util.semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=10, score_function=fn)
    want_ids = np.array([[h["corpus_id"] for h in hits] for hits in ref])
    want_scores = np.array([[h["score"] for h in hits] for hits in ref], dtype=np.float32)
    assert_same_hits(ids, scores, want_ids, want_scores)


def test_small_searches_and_exclude_self(level: str) -> None:
    x = clustered(300, 37, 3)
    ids, scores = ops.topk_search(x, x, 7, exclude_self=True)
    sims = x @ x.T / np.outer(np.linalg.norm(x, axis=1), np.linalg.norm(x, axis=1))
    np.fill_diagonal(sims, -np.inf)
    want = np.argsort(-sims, axis=1, kind="stable")[:, :7]
    assert_same_hits(ids, scores, want, np.take_along_axis(sims, want, axis=1).astype(np.float32))
    assert not np.any(ids == np.arange(300)[:, None])


def test_util_semantic_search_matches_the_reference(level: str) -> None:
    queries, corpus = clustered(70, 384, 4), clustered(2500, 384, 5)
    ours = our_util.semantic_search(queries, corpus, top_k=5)
    ref = st_util.semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=5)
    for a, b in zip(ours, ref):
        np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=1e-5)


def test_hamming_and_rescoring_kernels(level: str) -> None:
    rng = np.random.default_rng(6)
    bits = rng.integers(0, 2, size=(2000, 256), dtype=np.uint8)
    codes = np.packbits(bits, axis=1)
    q_bits = rng.integers(0, 2, size=(20, 256), dtype=np.uint8)
    ids, dist = ops.hamming_topk(np.packbits(q_bits, axis=1), codes, 9)
    all_dist = (q_bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    want = np.argsort(all_dist, axis=1, kind="stable")[:, :9]
    np.testing.assert_array_equal(dist, np.take_along_axis(all_dist, want, axis=1))
    np.testing.assert_array_equal(ids, want)

    queries = rng.standard_normal((20, 256)).astype(np.float32)
    rescored = ops.rescore_bits(queries, codes, ids)
    # The kernels sum in float64: so does the oracle.
    q64 = queries.astype(np.float64)
    np.testing.assert_allclose(rescored, np.einsum("qd,qkd->qk", q64, bits[ids].astype(np.float64)), rtol=1e-6)
    rows = rng.standard_normal((2000, 256)).astype(np.float32)
    want_rows = np.einsum("qd,qkd->qk", q64, rows[ids].astype(np.float64))
    np.testing.assert_allclose(ops.rescore_rows(queries, rows, ids), want_rows, rtol=1e-6, atol=1e-6)


def test_maxsim_kernels(level: str) -> None:
    rng = np.random.default_rng(7)
    q = rng.standard_normal((3 * 40, 64)).astype(np.float32)
    d = rng.standard_normal((5 * 70, 64)).astype(np.float32)
    q_off = np.arange(0, 121, 40, dtype=np.int64)
    d_off = np.arange(0, 351, 70, dtype=np.int64)
    scores = ops.maxsim(q, q_off, d, d_off)
    want = np.array(
        [[(q[a : a + 40] @ d[b : b + 70].T).max(axis=1).sum() for b in d_off[:-1]] for a in q_off[:-1]],
        dtype=np.float32,
    )
    np.testing.assert_allclose(scores, want, rtol=1e-4, atol=1e-3)
    assert ops.maxsim_amx_supported() == (level == "avx512" and ops.cpu_features().get("amx", False))


def test_forcing_an_unknown_level_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="level must be one of"):
        ops.set_simd_level("sse9")
    with pytest.raises(TypeError, match="level must be a str"):
        ops.set_simd_level(2)  # type: ignore[arg-type]
    assert ops.simd_level() == ops.detected_simd_level()
    assert "simd level" in ops.cpu_summary()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8])
def test_integer_code_search_is_exact(level: str, dtype: type[np.integer]) -> None:
    info = np.iinfo(dtype)
    rng = np.random.default_rng(8)
    q = rng.integers(info.min, info.max + 1, size=(13, 200), dtype=dtype)
    c = rng.integers(info.min, info.max + 1, size=(3000, 200), dtype=dtype)
    ids, scores = ops.code_dot_topk(q, c, 12)
    exact = q.astype(np.int64) @ c.astype(np.int64).T
    want = np.argsort(-exact, axis=1, kind="stable")[:, :12]
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_array_equal(scores.astype(np.int64), np.take_along_axis(exact, want, axis=1))
