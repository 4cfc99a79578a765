"""paraphrase_mining(_embeddings) and community_detection against the reference.

Scores agree within 1e-5 (float32 GEMM vs torch.mm); pairs and members may differ only among (near-)tied scores,
which the checks below allow for explicitly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sentrs import util


def _clustered(n_clusters: int, per_cluster: int, dim: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim))
    points = [c + noise * rng.standard_normal((per_cluster, dim)) for c in centres]
    x = np.concatenate([*points, rng.standard_normal((per_cluster, dim))]).astype(np.float32)
    return x[rng.permutation(len(x))]


def _pairs_close(ours: list[list[Any]], ref: list[list[Any]], atol: float = 1e-5) -> None:
    assert len(ours) == len(ref)
    np.testing.assert_allclose([p[0] for p in ours], [p[0] for p in ref], atol=atol)
    ref_scores = {(p[1], p[2]): p[0] for p in ref}
    for score, i, j in ours:
        assert i < j
        if (i, j) not in ref_scores:  # only possible for a pair tied with the cut-off score
            assert abs(score - ref[-1][0]) <= atol
        else:
            assert abs(score - ref_scores[(i, j)]) <= atol


@pytest.mark.parametrize(
    ("top_k", "max_pairs", "q_chunk", "c_chunk"), [(5, 500000, 5000, 100000), (3, 40, 7, 11), (100, 1000, 50, 64)]
)
@pytest.mark.parametrize("score_name", ["cos_sim", "dot_score"])
def test_paraphrase_mining_embeddings_parity(
    top_k: int, max_pairs: int, q_chunk: int, c_chunk: int, score_name: str
) -> None:
    from sentence_transformers import util as ref_util

    x = _clustered(6, 12, 16, 0.3, seed=top_k)
    kwargs = {"top_k": top_k, "max_pairs": max_pairs, "query_chunk_size": q_chunk, "corpus_chunk_size": c_chunk}
    ours = util.paraphrase_mining_embeddings(x, score_function=getattr(util, score_name), **kwargs)
    ref = ref_util.paraphrase_mining_embeddings(
        torch.from_numpy(x), score_function=getattr(ref_util, score_name), **kwargs
    )
    _pairs_close(ours, ref)


def test_paraphrase_mining_torch_fallback() -> None:
    from sentence_transformers import util as ref_util

    x = torch.from_numpy(_clustered(3, 5, 8, 0.2, seed=1))
    ours = util.paraphrase_mining_embeddings(x, top_k=4, score_function=util.manhattan_sim, corpus_chunk_size=6)
    ref = ref_util.paraphrase_mining_embeddings(x, top_k=4, score_function=ref_util.manhattan_sim, corpus_chunk_size=6)
    _pairs_close(ours, ref, atol=1e-4)


def test_paraphrase_mining_with_model(our_minilm: Any, ref_minilm: Any) -> None:
    from sentence_transformers import util as ref_util

    sentences = [
        "The cat sits outside",
        "A man is playing guitar",
        "I love pasta",
        "The new movie is awesome",
        "The cat plays in the garden",
        "A woman watches TV",
        "The new movie is so great",
        "Do you like pizza?",
    ]
    _pairs_close(util.paraphrase_mining(our_minilm, sentences), ref_util.paraphrase_mining(ref_minilm, sentences))


def test_paraphrase_mining_edge_cases() -> None:
    assert util.paraphrase_mining_embeddings(np.ones((1, 4), dtype=np.float32)) == []
    pairs = util.paraphrase_mining_embeddings(np.ones((3, 4), dtype=np.float32), top_k=5)
    assert [p[1:] for p in pairs] == [[0, 1], [0, 2], [1, 2]]  # ties in (i, j) order
    with pytest.raises(ValueError, match="top_k must be a positive integer, got 0"):
        util.paraphrase_mining_embeddings(np.ones((3, 4), dtype=np.float32), top_k=0)


@pytest.mark.parametrize(("threshold", "min_size", "batch"), [(0.75, 5, 1024), (0.9, 3, 7), (0.5, 10, 16)])
def test_community_detection_parity(threshold: float, min_size: int, batch: int) -> None:
    from sentence_transformers import util as ref_util

    x = _clustered(5, 15, 24, 0.25, seed=int(threshold * 100))
    ours = util.community_detection(x, threshold=threshold, min_community_size=min_size, batch_size=batch)
    ref = ref_util.community_detection(
        torch.from_numpy(x), threshold=threshold, min_community_size=min_size, batch_size=batch
    )
    assert [len(c) for c in ours] == [len(c) for c in ref]
    assert [c[0] for c in ours] == [c[0] for c in ref]
    assert [sorted(c) for c in ours] == [sorted(c) for c in ref]
    assert all(isinstance(i, int) for c in ours for i in c)


def test_community_detection_edge_cases() -> None:
    assert util.community_detection(np.zeros((0, 4), dtype=np.float32)) == []
    assert util.community_detection(np.ones((3, 4), dtype=np.float32), min_community_size=10) == []
    assert util.community_detection(torch.ones(4, 2), min_community_size=2) == [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match="min_community_size must be a positive integer"):
        util.community_detection(np.ones((3, 4), dtype=np.float32), min_community_size=0)
    bad = np.ones((3, 4), dtype=np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="embeddings row 0 contains NaN"):
        util.community_detection(bad, min_community_size=1)
