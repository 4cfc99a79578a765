"""``sentrs.util.semantic_search`` against the reference's.

Ids must match except where scores tie within float rounding; scores within 1e-5 (float32 GEMM vs torch.mm).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from sentrs import util


def _assert_same_hits(ours: list[list[dict[str, Any]]], ref: list[list[dict[str, Any]]], atol: float = 1e-5) -> None:
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert len(a) == len(b)
        np.testing.assert_allclose([h["score"] for h in a], [h["score"] for h in b], atol=atol)
        for ha, hb in zip(a, b):
            if ha["corpus_id"] != hb["corpus_id"]:
                assert abs(ha["score"] - hb["score"]) <= atol  # a tie: order among equals may differ
        assert all(isinstance(h["corpus_id"], int) and isinstance(h["score"], float) for h in a)


@pytest.mark.parametrize("score_name", ["cos_sim", "dot_score"])
@pytest.mark.parametrize(
    ("nq", "nc", "top_k", "q_chunk", "c_chunk"),
    [(17, 300, 10, 100, 500000), (1, 50, 100, 100, 7), (40, 1000, 5, 3, 64), (5, 5, 5, 1, 1)],
)
def test_parity_random(score_name: str, nq: int, nc: int, top_k: int, q_chunk: int, c_chunk: int) -> None:
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(nq * 1000 + nc)
    q = rng.standard_normal((nq, 24)).astype(np.float32)
    c = rng.standard_normal((nc, 24)).astype(np.float32)
    kwargs = {"query_chunk_size": q_chunk, "corpus_chunk_size": c_chunk, "top_k": top_k}
    ours = util.semantic_search(q, c, score_function=getattr(util, score_name), **kwargs)
    ref = ref_util.semantic_search(
        torch.from_numpy(q), torch.from_numpy(c), score_function=getattr(ref_util, score_name), **kwargs
    )
    _assert_same_hits(ours, ref)


def test_parity_real_embeddings(our_minilm: Any) -> None:
    from sentence_transformers import util as ref_util

    from tests.conftest import TEXTS

    corpus = our_minilm.encode(TEXTS * 3)
    queries = our_minilm.encode(["a person eats", "horses", "emoji"])
    _assert_same_hits(
        util.semantic_search(queries, corpus, top_k=7), ref_util.semantic_search(queries, corpus, top_k=7)
    )


@pytest.mark.parametrize("score_name", ["cos_sim", "dot_score"])
@pytest.mark.parametrize("duplicates", [False, True])
def test_bf16_candidate_path_is_exact(score_name: str, duplicates: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large enough for the bf16 candidate pass (>= 2^26 multiply-adds, on CPUs with AVX512-BF16): same hits as the
    reference and as sentrs' fp32 path, including exact ties from duplicated corpus rows (lower id first)."""
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(7)
    q = rng.standard_normal((300, 384)).astype(np.float32)
    c = rng.standard_normal((2500, 384)).astype(np.float32)
    if duplicates:
        c[1000:1300] = c[:300]  # exact ties
        c[2000:2300] = q  # every query's own vector: a clear best hit, twice for some
        c[2400:2500] = q[:100] * 1.0000001
    kwargs = {"top_k": 25, "corpus_chunk_size": 700}
    ours = util.semantic_search(q, c, score_function=getattr(util, score_name), **kwargs)
    ref = ref_util.semantic_search(
        torch.from_numpy(q), torch.from_numpy(c), score_function=getattr(ref_util, score_name), **kwargs
    )
    # Dot products of these unnormalised vectors reach ~60, where fp32 itself is only good to ~1e-5 (the reference
    # is off the exact value by up to 2e-5 there): a relative bar of 1e-6 of the largest score instead of 1e-5.
    scale = max(abs(h["score"]) for hits in ref for h in hits)
    atol = 1e-5 if score_name == "cos_sim" else 1e-6 * scale
    _assert_same_hits(ours, ref, atol=atol)
    monkeypatch.setenv("SENTRS_EXACT_FP32", "1")
    fp32 = util.semantic_search(q, c, score_function=getattr(util, score_name), **kwargs)
    _assert_same_hits(ours, fp32, atol=atol)


def test_torch_fallback_for_other_score_functions() -> None:
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(5)
    q = torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))
    c = torch.from_numpy(rng.standard_normal((30, 8)).astype(np.float32))
    ours = util.semantic_search(q, c, top_k=4, score_function=util.manhattan_sim, corpus_chunk_size=7)
    ref = ref_util.semantic_search(q, c, top_k=4, score_function=ref_util.manhattan_sim, corpus_chunk_size=7)
    _assert_same_hits(ours, ref, atol=1e-4)


def test_edge_cases_and_errors() -> None:
    q = np.ones((2, 4), dtype=np.float32)
    c = np.ones((3, 4), dtype=np.float32)
    assert util.semantic_search(q, c, top_k=0) == [[], []]
    assert [h["corpus_id"] for h in util.semantic_search(q, c, top_k=10)[0]] == [0, 1, 2]  # ties: lower id first
    assert util.semantic_search(q[0], c, top_k=1)[0][0]["corpus_id"] == 0
    assert util.semantic_search(q, np.zeros((0, 4), dtype=np.float32)) == [[], []]
    with pytest.raises(ValueError, match="top_k must be a non-negative integer, got -1"):
        util.semantic_search(q, c, top_k=-1)
    with pytest.raises(ValueError, match="same dimension, got 4 and 5"):
        util.semantic_search(q, np.ones((3, 5), dtype=np.float32))
    bad = c.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="corpus_embeddings row 1 contains NaN"):
        util.semantic_search(q, bad)
    with pytest.raises(ValueError, match="corpus_chunk_size must be a positive integer"):
        util.semantic_search(q, c, corpus_chunk_size=0)


def test_thread_safety() -> None:
    rng = np.random.default_rng(9)
    q = rng.standard_normal((50, 32)).astype(np.float32)
    c = rng.standard_normal((2000, 32)).astype(np.float32)
    expected = util.semantic_search(q, c, top_k=5)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(util.semantic_search(q, c, top_k=5))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_numpy_inputs_need_no_torch(tmp_path: Any) -> None:
    """On float32 numpy inputs semantic_search, paraphrase mining and community detection run in Rust: a fresh
    process never imports torch, and the results equal the reference's (run here, with torch)."""
    import json
    import subprocess
    import sys

    import sentence_transformers

    rng = np.random.default_rng(3)
    queries = rng.standard_normal((7, 24)).astype(np.float32)
    corpus = rng.standard_normal((300, 24)).astype(np.float32)
    np.save(tmp_path / "q.npy", queries)
    np.save(tmp_path / "c.npy", corpus)
    script = f"""
import json, sys, numpy as np
from sentrs import util
q, c = np.load({str(tmp_path / "q.npy")!r}), np.load({str(tmp_path / "c.npy")!r}, mmap_mode="r")
out = {{
    "cos": util.semantic_search(q, c, top_k=5),
    "dot": util.semantic_search(q[0], c, top_k=3, score_function=util.dot_score),
    "mining": util.paraphrase_mining_embeddings(np.ascontiguousarray(c[:50]), top_k=3, max_pairs=20),
}}
assert "torch" not in sys.modules, "torch was imported"
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    got = json.loads(result.stdout)
    ref = sentence_transformers.util
    _assert_same_hits(got["cos"], ref.semantic_search(torch.from_numpy(queries), torch.from_numpy(corpus), top_k=5))
    _assert_same_hits(
        got["dot"],
        ref.semantic_search(
            torch.from_numpy(queries[0]), torch.from_numpy(corpus), top_k=3, score_function=ref.dot_score
        ),
    )
    want = ref.paraphrase_mining_embeddings(torch.from_numpy(corpus[:50]), top_k=3, max_pairs=20)
    np.testing.assert_allclose([p[0] for p in got["mining"]], [p[0] for p in want], atol=1e-5)


def test_read_only_arrays_give_no_warning(tmp_path: Any) -> None:
    """Memory-mapped (read-only) arrays: same results as writable ones, and no torch "not writable" warning."""
    import warnings

    rng = np.random.default_rng(4)
    np.save(tmp_path / "c.npy", rng.standard_normal((40, 8)).astype(np.float32))
    mapped = np.load(tmp_path / "c.npy", mmap_mode="r")
    writable = np.array(mapped)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for function in (util.cos_sim, util.dot_score, util.pairwise_cos_sim, util.manhattan_sim):
            torch.testing.assert_close(function(mapped, mapped), function(writable, writable))
        assert util.semantic_search(mapped[:3], mapped, top_k=2) == util.semantic_search(
            writable[:3], writable, top_k=2
        )
        half = mapped.astype(np.float16)
        half.flags.writeable = False
        torch.testing.assert_close(
            util.cos_sim(half, half), util.cos_sim(writable.astype(np.float16), writable.astype(np.float16))
        )
