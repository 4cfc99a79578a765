"""Every failure the fuzzers found (test_fuzz_core, test_fuzz_facade, rust/tests/fuzz_kernels.rs), as an example.

Rust-side findings are ``xfail(strict=True)`` on ``sentrs._core`` directly: each passes, and so fails loudly here,
once the kernel raises a clear error (or returns the right result); then drop its mark and the matching
``assume`` in the fuzz target. Inputs that crash the interpreter (segfault, abort) run in a subprocess.
Python-side findings were fixed in ``sentrs.ops`` and ``SentenceTransformer.encode``; their examples pass.

Findings kept on purpose (sentrs is stricter than the reference, with a clear ``ValueError``/``TypeError``):
``paraphrase_mining_embeddings(top_k=0)`` (the reference returns ``[]``; pinned by tests/util/test_mining.py),
``encode(truncate_dim=0)`` (the reference returns 0-wide embeddings), ``encode(batch_size=True)``, and empty
inputs to some ``util`` functions the reference happens to accept.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from sentrs import _core, ops


def run_isolated(code: str) -> subprocess.CompletedProcess[str]:
    """Runs ``code`` in a fresh interpreter (numpy as np, sentrs._core as _core, sentrs.ops as ops imported)."""
    prelude = "import numpy as np\nfrom sentrs import _core, ops\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def refuses_cleanly(call: str) -> None:
    """``call`` (an expression) must raise ValueError or MemoryError in a subprocess, not crash it."""
    result = run_isolated(
        f"""
        try:
            {call}
        except (ValueError, MemoryError, OverflowError) as e:
            print("REFUSED", type(e).__name__, e)
        else:
            print("RETURNED")
        """
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-600:]}"
    assert "REFUSED" in result.stdout, result.stdout


TOKENIZER_SETUP = """
from tokenizers import Tokenizer, models, pre_tokenizers
tok = Tokenizer(models.WordLevel({"[PAD]": 0, "[UNK]": 1, "a": 2}, unk_token="[UNK]"))
tok.pre_tokenizer = pre_tokenizers.Whitespace()
TOKENIZER = tok.to_str()
"""


def tiny_tokenizer() -> Any:
    namespace: dict[str, Any] = {}
    exec(TOKENIZER_SETUP, namespace)
    return _core.Tokenizer.from_str(namespace["TOKENIZER"])


def rust_bug(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"Rust side (fuzz finding): {reason}")


# ----------------------------------------------------------------------------------------------- Rust side


def test_plan_batches_huge_lengths_respect_max_tokens() -> None:
    try:
        _, bounds = _core.plan_batches([0, 2**63], 2, 1)
    except ValueError:
        return
    assert np.diff(bounds).max() == 1, f"rows of 0 and 2**63 tokens batched together under max_tokens=1: {bounds}"


def test_pool_huge_skip_first_pools_nothing() -> None:
    tokens = np.array([[[1.0], [2.0], [4.0]]], dtype=np.float32)
    mask = np.array([[0, 1, 1]], dtype=np.int64)  # left padding: the row starts at position 1
    np.testing.assert_array_equal(_core.pool(tokens, mask, ["mean"], 5), [[0.0]])
    np.testing.assert_array_equal(_core.pool(tokens, mask, ["mean"], 2**64 - 1), [[0.0]])


def test_mine_pairs_huge_ids() -> None:
    """The pair key lo * width + hi once wrapped for ids near 2**62 and wrong pairs came back; now refused."""
    big = 3689348814741910323  # (2**64 - 1) / 5: row 4's key 4 * (big + 1) + big wraps
    ids = np.full((5, 1), big, dtype=np.int64)
    scores = np.full((5, 1), 0.5, dtype=np.float32)
    try:
        _, lo, hi = _core.mine_pairs(ids, scores, 10)
    except ValueError:
        return
    assert sorted(zip(lo.tolist(), hi.tolist())) == [(r, big) for r in range(5)]


def test_inverted_lists_decreasing_offsets() -> None:
    with pytest.raises(ValueError):
        _core.token_inverted_lists(np.zeros(2, np.uint32), np.array([0, 2, 1, 2], np.int64), 3)


def test_inverted_lists_offsets_not_from_zero() -> None:
    with pytest.raises(ValueError):
        _core.token_inverted_lists(np.zeros(2, np.uint32), np.array([1, 2], np.int64), 3)


def test_inverted_lists_huge_n_centroids_panics() -> None:
    with pytest.raises((ValueError, MemoryError)):
        _core.token_inverted_lists(np.zeros(0, np.uint32), np.array([0], np.int64), 2**63)


def test_inverted_lists_large_n_centroids_aborts() -> None:
    refuses_cleanly("_core.token_inverted_lists(np.zeros(0, np.uint32), np.array([0], np.int64), 2**31)")


def test_pad_huge_pad_to_panics() -> None:
    enc = tiny_tokenizer().encode(["a", "a a"])
    with pytest.raises((ValueError, MemoryError)):
        enc.pad(None, pad_to=2**63)


def test_pad_rounding_overflow_panics() -> None:
    enc = tiny_tokenizer().encode(["a", "a a"])
    with pytest.raises((ValueError, MemoryError)):
        enc.pad(None, pad_to=2**64 - 1, pad_to_multiple_of=2)


def test_pad_zero_rows_huge_length_is_refused() -> None:
    """Zero rows padded to 2**62 columns once segfaulted the interpreter (a numpy array of an overflowing size)."""
    with pytest.raises(ValueError, match="too large"):
        tiny_tokenizer().encode([]).pad(None, pad_to=2**62)


@pytest.mark.parametrize("dim", [2**63 - 1, 2**64 - 1])
def test_sparse_index_huge_dim(dim: int) -> None:
    empty_i, empty_v = np.zeros(0, np.int64), np.zeros(0, np.float32)
    with pytest.raises((ValueError, MemoryError)):
        _core.SparseIndex(np.array([0], np.int64), empty_i, empty_v, dim)


def test_maxsim_topk_huge_k_panics() -> None:
    one = np.ones((1, 2), np.float32)
    with pytest.raises((ValueError, MemoryError)):
        _core.maxsim_topk(one, np.array([0, 1]), one, np.array([0, 1]), 2**62)


def test_maxsim_topk_huge_k_no_queries_segfaults() -> None:
    refuses_cleanly(
        "_core.maxsim_topk(np.zeros((0, 2), np.float32), np.array([0]), np.ones((1, 2), np.float32),"
        " np.array([0, 1]), 2**62)"
    )


def test_candidate_search_huge_k_no_queries_segfaults() -> None:
    refuses_cleanly(
        "_core.candidate_search(np.zeros((0, 2), np.float32), np.array([0]), np.ones((1, 2), np.float32),"
        " np.array([0, 1]), np.ones((1, 2), np.float32), np.zeros(1, np.uint32), np.zeros(1, np.uint32),"
        " np.array([0, 1]), 2**62, 1, 1)"
    )


# ----------------------------------------------------------------------------------------------- ops facade (fixed)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ops.pool(np.ones((1, 2, 2)), np.ones((1, 2)), "mean", -1), "skip_first must be a non-negative"),
        (lambda: ops.plan_batches([3, -1], 2), "lengths must be a non-negative integer, got -1"),
        (lambda: ops.plan_batches([0, 2**63], 2, 1), "lengths must be token counts below 2"),
        (lambda: ops.plan_batches([1], 2, 0), "max_tokens must be a positive integer, got 0"),
        (lambda: ops.community_detection(np.ones((2, 2)), None), "threshold must be a number, got None"),
        (lambda: ops.mine_pairs(np.array([[2**62]]), np.ones((1, 1)), 3), "ids must be row indices below 2"),
        (lambda: ops.token_kmeans(np.ones((3, 2), np.float32), True), "k must be a positive integer, got True"),
        (lambda: ops.token_kmeans(np.ones((3, 2), np.float32), -1), "k must be a positive integer, got -1"),
        (lambda: ops.token_kmeans(np.ones((3, 2), np.float32), 2, seed=-1), "seed must be a non-negative"),
        (
            lambda: ops.token_inverted_lists(np.zeros(2, np.uint32), np.array([0, 2, 1, 2]), 3),
            "document_offsets must start at 0, never decrease and end at 2",
        ),
        (
            lambda: ops.token_inverted_lists(np.zeros(2, np.uint32), np.array([1, 2]), 3),
            "document_offsets must start at 0",
        ),
        (
            lambda: ops.token_inverted_lists(np.zeros(0, np.uint32), np.array([0]), 2**63),
            "n_centroids must be at most 2\\*\\*32",
        ),
        (lambda: ops.token_inverted_lists(np.zeros(0, np.uint32), np.array([0]), -1), "n_centroids must be a non-neg"),
        (
            lambda: ops.maxsim_topk(
                np.ones((1, 2), np.float32), np.array([0, 1]), np.ones((1, 2), np.float32), np.array([0, 1]), -1
            ),
            "k must be a non-negative integer, got -1",
        ),
    ],
)
def test_ops_refuses_with_a_message(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError if "threshold" not in message else TypeError, match=message):
        call()


def test_ops_huge_limits_mean_no_limit() -> None:
    """A limit past what the core takes (2**64) means the same as the largest one, not an OverflowError."""
    x = np.array([[0.0, 3.0, -1.0], [2.0, 0.0, 0.0]], dtype=np.float32)
    for got, want in zip(ops.dense_to_csr(x, 2**64), ops.dense_to_csr(x)):
        np.testing.assert_array_equal(got, want)
    logits = np.ones((1, 2, 3), np.float32)
    for got, want in zip(
        ops.splade_pool(logits, np.ones((1, 2)), max_active_dims=2**70), ops.splade_pool(logits, np.ones((1, 2)))
    ):
        np.testing.assert_array_equal(got, want)
    emb = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]], dtype=np.float32)
    assert ops.community_detection(emb, 0.9, 2, batch_size=2**64) == [[0, 1]]
    assert ops.community_detection(emb, 0.9, 2**64) == []
    ids, scores = np.array([[1], [0]]), np.array([[0.5], [0.5]], np.float32)
    assert ops.mine_pairs(ids, scores, 2**64)[1].tolist() == [0]
    order, batches = ops.plan_batches([3, 1, 2], 2**64)
    assert order.tolist() == [0, 2, 1] and len(batches) == 1


def test_ops_maxsim_topk_pads_past_the_documents() -> None:
    """k beyond the documents: the same hits, then -1 / -inf; an impossible k is numpy's ValueError, not a crash."""
    rng = np.random.default_rng(0)
    q, d = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    q_off, d_off = np.array([0, 1, 3]), np.array([0, 2, 2, 5])
    ids, scores = ops.maxsim_topk(q, q_off, d, d_off, 6)
    core_ids, core_scores = _core.maxsim_topk(q, q_off, d, d_off, 6)
    np.testing.assert_array_equal(ids, core_ids)
    np.testing.assert_array_equal(scores, core_scores)
    assert ids.shape == (2, 6) and (ids[:, 3:] == -1).all() and (scores[:, 3:] == -np.inf).all()
    result = run_isolated(
        """
        for nq in (0, 1):
            q = np.ones((nq, 2), np.float32)
            try:
                ops.maxsim_topk(q, np.arange(nq + 1), np.ones((1, 2), np.float32), np.array([0, 1]), 2**62)
            except ValueError as e:
                print("REFUSED", e)
        """
    )
    assert result.returncode == 0 and result.stdout.count("REFUSED") == 2, (result.stdout, result.stderr[-600:])


def test_ops_candidate_search_pads_past_the_documents() -> None:
    docs = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    d_off = np.array([0, 1, 2])
    cents = docs.copy()
    codes = ops.token_assign(docs, cents)
    list_ids, list_offsets = ops.token_inverted_lists(codes, d_off, 2)
    q, q_off = np.array([[1.0, 0.2]], np.float32), np.array([0, 1])
    ids, scores = ops.token_candidate_search(q, q_off, docs, d_off, cents, codes, list_ids, list_offsets, 4, 2, 8)
    assert ids.shape == (1, 4) and ids[0, :2].tolist() == [0, 1] and (ids[0, 2:] == -1).all()
    np.testing.assert_allclose(scores[0, :2], [1.0, 0.2], rtol=1e-6)
    with pytest.raises(ValueError, match="nprobe must be a non-negative integer, got -1"):
        ops.token_candidate_search(q, q_off, docs, d_off, cents, codes, list_ids, list_offsets, 4, -1, 8)


# ----------------------------------------------------------------------------------------------- encode (fixed)


@pytest.mark.parametrize("precision", ["int8", "binary", "ubinary"])
def test_encode_token_embeddings_take_the_precision(make_tiny_st: Callable[..., str], precision: str) -> None:
    """As the reference: ``precision`` quantises token embeddings too (one numpy matrix per input)."""
    import sentence_transformers

    import sentrs

    path = make_tiny_st()
    ours = sentrs.SentenceTransformer(path, device="cpu")
    ref = sentence_transformers.SentenceTransformer(path, device="cpu")
    texts = ["A man is eating food.", "A man rides a horse", "hi"]
    got = ours.encode(texts, output_value="token_embeddings", precision=precision)
    want = ref.encode(texts, output_value="token_embeddings", precision=precision)
    assert isinstance(got, list) and len(got) == len(want)
    for g, w in zip(got, want):
        assert isinstance(g, np.ndarray) and g.dtype == w.dtype and g.shape == w.shape
        # int8 buckets: a value on a bucket edge may round to the neighbouring bucket in float32.
        assert np.abs(g.astype(np.int64) - w.astype(np.int64)).max() <= (1 if precision == "int8" else 0)
    single = ours.encode("A man is eating food.", output_value="token_embeddings", precision=precision)
    assert isinstance(single, np.ndarray) and single.dtype == want[0].dtype


# ----------------------------------------------------------------------------------------------- found by make fuzz


def test_maxsim_fortran_queries() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((5, 4)).astype(np.float32)
    q_off, d_off = np.array([0, 2, 5]), np.array([0, 3, 5])
    want = _core.maxsim(tokens, q_off, tokens, d_off)
    np.testing.assert_allclose(_core.maxsim(np.asfortranarray(tokens), q_off, tokens, d_off), want, rtol=1e-5)


def test_maxsim_fortran_documents() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((5, 4)).astype(np.float32)
    q_off, d_off = np.array([0, 2, 5]), np.array([0, 3, 5])
    want = _core.maxsim(tokens, q_off, tokens, d_off)
    np.testing.assert_allclose(_core.maxsim(tokens, q_off, np.asfortranarray(tokens), d_off), want, rtol=1e-5)


def test_ops_maxsim_takes_any_layout() -> None:
    """The facade hands the core C-contiguous float32 buffers, so any layout scores the same."""
    rng = np.random.default_rng(0)
    tokens = rng.standard_normal((5, 4)).astype(np.float32)
    q_off, d_off = np.array([0, 2, 5]), np.array([0, 3, 5])
    want = ops.maxsim(tokens, q_off, tokens, d_off)
    fortran = np.asfortranarray(tokens)
    np.testing.assert_allclose(ops.maxsim(fortran, q_off, fortran, d_off), want, rtol=1e-5)
    np.testing.assert_allclose(ops.maxsim_pairwise(fortran, q_off, fortran, d_off), np.diagonal(want), rtol=1e-5)
    _, scores = ops.maxsim_topk(fortran, q_off, fortran, d_off, 2)
    np.testing.assert_allclose(scores, np.sort(want, axis=1)[:, ::-1], rtol=1e-5)


def test_topk_zero_dimensions_under_a_simd_cap() -> None:
    levels = _core.supported_simd_levels()
    try:
        _core.set_simd_ceiling(levels[0])
        ids, _ = _core.topk_search(np.zeros((3, 0), np.float32), np.zeros((11, 0), np.float32), 1, "dot")
        assert ids.shape == (3, 1)
    finally:
        _core.set_simd_ceiling(None)


def test_no_duplicates_huge_batch_size() -> None:
    ids = np.zeros((3, 1), np.uint32)
    rows, bounds = _core.no_duplicates_batches(ids, 1, np.array([0, 2, 1]), 2**64 - 1, False)
    assert rows.tolist() == [0, 2, 1] and bounds.tolist() == [0, 1, 2, 3]


def test_tokenize_only_second_without_a_pair() -> None:
    from tokenizers import Tokenizer as HFTokenizer

    from .test_fuzz_core import TOKENIZER_JSON  # BERT-style WordPiece: the fast path

    reference = HFTokenizer.from_str(TOKENIZER_JSON)
    reference.enable_truncation(2, strategy="only_second")
    with pytest.raises(Exception, match="Second sequence not provided"):
        reference.encode("the quick fox", add_special_tokens=False)
    tok = _core.Tokenizer.from_str(TOKENIZER_JSON, max_length=2, truncation_strategy="only_second")
    with pytest.raises(ValueError):
        tok.encode(["the quick fox"], add_special_tokens=False)


def test_ops_topk_huge_k_and_chunk() -> None:
    """top_k or corpus_chunk_size past 2**64 (a Python int) mean all rows, not an OverflowError."""
    q = np.eye(3, dtype=np.float32)
    codes = np.packbits(q > 0, axis=1)
    pairs = [
        (ops.topk_search(q, q, 2, corpus_chunk_size=2**64), ops.topk_search(q, q, 2)),
        (ops.topk_search(q, q, 2**64), ops.topk_search(q, q, 3)),
        (ops.topk_self_search(q, 2**64), ops.topk_self_search(q, 2)),
        (ops.hamming_topk(codes, codes, 2**64), ops.hamming_topk(codes, codes, 3)),
        (ops.code_dot_topk(codes, codes, 2**64), ops.code_dot_topk(codes, codes, 3)),
    ]
    for result, want in pairs:
        for got, expected in zip(result, want):
            np.testing.assert_array_equal(got, expected)
