"""The numpy facade over the Rust core, checked against the reference's torch implementations."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sentrs import ops
from sentrs.exceptions import TokenizerError


def _random_batch(seed: int, left: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.standard_normal((5, 9, 7)).astype(np.float32)
    lengths = rng.integers(1, 10, size=5)
    mask = np.zeros((5, 9), dtype=np.int64)
    for i, n in enumerate(lengths):
        if left:
            mask[i, 9 - n :] = 1
        else:
            mask[i, :n] = 1
    return tokens, mask


@pytest.mark.parametrize("mode", ops.POOLING_MODES)
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("prompt_length", [0, 2])
def test_pool_matches_reference_pooling(mode: str, left: bool, prompt_length: int) -> None:
    """Tolerance 1e-6: same float32 arithmetic, different summation order."""
    from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling

    tokens, mask = _random_batch(3, left)
    ref = RefPooling(7, pooling_mode=mode, include_prompt=prompt_length == 0)
    features = {"token_embeddings": torch.from_numpy(tokens), "attention_mask": torch.from_numpy(mask)}
    if prompt_length:
        features["prompt_length"] = prompt_length
    with torch.inference_mode():
        expected = ref(features)["sentence_embedding"].numpy()
    got = ops.pool(tokens, mask, [mode], prompt_length)
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-6)


def test_pool_concatenates_modes_in_order() -> None:
    tokens, mask = _random_batch(1, False)
    both = ops.pool(tokens, mask, ["max", "mean"])
    np.testing.assert_array_equal(both[:, :7], ops.pool(tokens, mask, "max"))
    np.testing.assert_array_equal(both[:, 7:], ops.pool(tokens, mask, "mean"))


def test_pool_errors() -> None:
    tokens, mask = _random_batch(1, False)
    with pytest.raises(ValueError, match="pooling_mode must be one of .* got 'avg'"):
        ops.pool(tokens, mask, ["avg"])
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        ops.pool(tokens, mask[:, :3])
    with pytest.raises(ValueError, match="must be 3-D"):
        ops.pool(tokens[0], mask)


@pytest.mark.parametrize("name", ops.SIMILARITY_FN_NAMES)
def test_similarity_matches_reference(name: str) -> None:
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(0)
    a = rng.standard_normal((70, 33)).astype(np.float32)
    b = rng.standard_normal((50, 33)).astype(np.float32)
    ref_fn = {
        "cosine": ref_util.cos_sim,
        "dot": ref_util.dot_score,
        "euclidean": ref_util.euclidean_sim,
        "manhattan": ref_util.manhattan_sim,
    }[name]
    np.testing.assert_allclose(ops.similarity_matrix(a, b, name), ref_fn(a, b).numpy(), atol=1e-4, rtol=1e-5)
    ref_pw = {
        "cosine": ref_util.pairwise_cos_sim,
        "dot": ref_util.pairwise_dot_score,
        "euclidean": ref_util.pairwise_euclidean_sim,
        "manhattan": ref_util.pairwise_manhattan_sim,
    }[name]
    np.testing.assert_allclose(
        ops.similarity_pairwise(a[:50], b, name), ref_pw(a[:50], b).numpy(), atol=1e-4, rtol=1e-5
    )


def test_similarity_errors() -> None:
    a = np.zeros((2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="embeddings must have the same dimension, got 3 and 4"):
        ops.similarity_matrix(a, np.zeros((2, 4)), "cosine")
    with pytest.raises(ValueError, match="similarity_fn_name must be one of"):
        ops.similarity_matrix(a, a, "cos")
    with pytest.raises(TypeError, match="must hold numbers"):
        ops.similarity_matrix(np.array([["a", "b", "c"]]), a)
    with pytest.raises(ValueError, match="same number of rows"):
        ops.similarity_pairwise(a, np.zeros((3, 3)), "dot")


def test_normalize() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(ops.normalize(x), [[0.6, 0.8], [0.0, 0.0]])
    assert x[0, 0] == 3.0  # input untouched


def test_plan_batches() -> None:
    order, batches = ops.plan_batches([3, 9, 1, 9, 5], 2)
    assert order.tolist() == [1, 3, 4, 0, 2]
    assert [b.tolist() for b in batches] == [[1, 3], [4, 0], [2]]
    _, budget = ops.plan_batches([10, 10, 10, 2], 100, max_tokens=20)
    assert [len(b) for b in budget] == [2, 2]
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        ops.plan_batches([1], 0)


def test_tokenizer_errors_and_threads(minilm_path: str) -> None:
    with pytest.raises(TokenizerError, match="could not parse"):
        ops.Tokenizer.from_str("{not json")
    with pytest.raises(FileNotFoundError):
        ops.Tokenizer.from_file("/nonexistent/tokenizer.json")
    with pytest.raises(ValueError, match="padding_side must be 'right' or 'left', got 'up'"):
        ops.Tokenizer.from_file(f"{minilm_path}/tokenizer.json", padding_side="up")
    tok = ops.Tokenizer.from_file(f"{minilm_path}/tokenizer.json", max_length=16)
    texts = [f"sentence number {i} " * (i % 7) for i in range(200)]
    expected = tok.encode(texts).pad()[0]
    results: list[np.ndarray] = []

    def run() -> None:
        results.append(tok.encode(texts).pad()[0])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, expected) for r in results)
    with pytest.raises(ValueError, match="row index 500 is out of range"):
        tok.encode(texts).pad([500])


def test_mine_pairs_matches_numpy_dedup_and_order() -> None:
    """Against the plain numpy formulation: first sighting per unordered pair, score desc, ties by (lo, hi)."""
    rng = np.random.default_rng(3)
    n, k = 60, 7
    ids = np.stack([rng.choice(np.delete(np.arange(n), r), size=k, replace=False) for r in range(n)]).astype(np.int64)
    ids[5, 3:] = -1
    scores = rng.integers(0, 6, size=(n, k)).astype(np.float32) / 4  # many exact ties
    rows = np.repeat(np.arange(n), k)
    cols, vals = ids.ravel(), scores.ravel()
    keep = cols >= 0
    rows, cols, vals = rows[keep], cols[keep], vals[keep]
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    _, first = np.unique(lo * n + hi, return_index=True)
    lo, hi, vals = lo[first], hi[first], vals[first]
    order = np.argsort(-vals, kind="stable")
    for max_pairs in (1, 17, 10_000):
        got = ops.mine_pairs(ids, scores, max_pairs)
        np.testing.assert_array_equal(got[0], vals[order][:max_pairs])
        np.testing.assert_array_equal(got[1], lo[order][:max_pairs])
        np.testing.assert_array_equal(got[2], hi[order][:max_pairs])


def test_mine_pairs_bad_input() -> None:
    with pytest.raises(ValueError, match="ids and scores must be 2-D arrays of one shape"):
        ops.mine_pairs(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 2), dtype=np.float32), 5)
    with pytest.raises(ValueError, match="max_pairs must be a non-negative integer"):
        ops.mine_pairs(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3), dtype=np.float32), -1)
