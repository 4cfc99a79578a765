"""Late-interaction search: ``maxsim_search`` against the reference's MaxSim scores (sorted), on every kernel this
CPU runs, and the candidate index's recall against the exact search on clustered token data.

Tolerances: scores 1e-4 absolute (float32 sums of up to 40 maxima of unit-vector dot products, two summation
orders); ids must match where the reference's scores are more than 1e-4 apart.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentrs import _core
from sentrs.multi_vector_encoder import MultiVectorIndex, maxsim_search

KERNELS = ["fp32", "amx"] if _core.maxsim_amx_supported() else ["fp32"]


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def _clustered(seed: int, docs: int, dim: int = 32, topics: int = 256) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Documents whose tokens lie near topic directions (cosine ~0.85, as token embeddings near their cluster), and
    queries made of a document's tokens plus a little noise."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((topics, dim)))
    corpus = []
    for _ in range(docs):
        picks = rng.integers(0, topics, rng.integers(3, 12))
        corpus.append(_unit(centres[picks] + 0.1 * rng.standard_normal((len(picks), dim))))
    queries = []
    for j in rng.integers(0, docs, 40):
        tokens = corpus[j][rng.integers(0, len(corpus[j]), 6)]
        queries.append(_unit(tokens + 0.03 * rng.standard_normal(tokens.shape)))
    return queries, corpus


@pytest.mark.parametrize("kernel", KERNELS)
def test_exact_search_matches_the_reference_scores(kernel: str) -> None:
    from sentence_transformers import util as ref_util

    queries, corpus = _clustered(0, 300)
    corpus[7] = corpus[7][:0]  # a document without tokens never ranks above a real one
    ref = ref_util.maxsim([torch.from_numpy(q) for q in queries], [torch.from_numpy(d) for d in corpus])
    for top_k in (1, 10, 400):
        hits = maxsim_search(queries, corpus, top_k=top_k, kernel=kernel)
        for i, row in enumerate(hits):
            want = torch.sort(ref[i], descending=True).values[: min(top_k, 299)]
            got = torch.tensor([h["score"] for h in row])
            assert len(row) == min(top_k, 299)
            assert torch.allclose(got, want, atol=1e-4)
            for h in row:
                assert abs(float(ref[i, h["corpus_id"]]) - h["score"]) <= 1e-4
    normalized = maxsim_search(queries, corpus, top_k=3, length_normalize=True, kernel=kernel)
    plain = maxsim_search(queries, corpus, top_k=3, kernel=kernel)
    assert normalized[0][0]["score"] == pytest.approx(plain[0][0]["score"] / len(queries[0]), rel=1e-6)


def test_exact_search_accepts_tensors_and_padded_arrays() -> None:
    queries, corpus = _clustered(1, 50)
    padded = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(d) for d in corpus], batch_first=True)
    a = maxsim_search([torch.from_numpy(q) for q in queries], padded, top_k=5)
    b = maxsim_search(queries, corpus, top_k=5)
    assert [[h["corpus_id"] for h in row] for row in a] == [[h["corpus_id"] for h in row] for row in b]
    assert maxsim_search(queries, [], top_k=5) == [[] for _ in queries]


def test_candidate_index_recall_and_round_trip(tmp_path: Path) -> None:
    queries, corpus = _clustered(2, 2000)
    index = MultiVectorIndex(corpus, n_centroids=128, seed=1)
    assert len(index) == 2000
    exact = index.exact_search(queries, top_k=10)
    assert exact == maxsim_search(queries, corpus, top_k=10)
    found = index.search(queries, top_k=10, nprobe=8, candidates=256)
    recall = np.mean(
        [len({h["corpus_id"] for h in f} & {h["corpus_id"] for h in e}) / 10 for f, e in zip(found, exact)]
    )
    assert recall >= 0.95, recall
    # the scores of what it finds are exact MaxSim scores
    exact_scores = {(i, h["corpus_id"]): h["score"] for i, row in enumerate(exact) for h in row}
    for i, row in enumerate(found):
        for h in row:
            if (i, h["corpus_id"]) in exact_scores:
                assert h["score"] == pytest.approx(exact_scores[(i, h["corpus_id"])], abs=1e-4)
    # probing every centroid with every document as a candidate is the exact search
    full = index.search(queries, top_k=10, nprobe=128, candidates=2000)
    assert [[h["corpus_id"] for h in r] for r in full] == [[h["corpus_id"] for h in r] for r in exact]
    index.save(str(tmp_path / "index"))
    loaded = MultiVectorIndex.load(str(tmp_path / "index"))
    assert loaded.search(queries, top_k=10, nprobe=8, candidates=256) == found
    index.save(str(tmp_path / "index"))  # over an existing folder


def test_bad_input_gives_clear_errors(tmp_path: Path) -> None:
    queries, corpus = _clustered(3, 20)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        maxsim_search(queries, corpus, top_k=0)
    with pytest.raises(ValueError, match="same dimension, got 32 and 16"):
        maxsim_search(queries, [d[:, :16] for d in corpus])
    with pytest.raises(ValueError, match=r"corpus_embeddings\[1\] must be a \(tokens, dim\) matrix"):
        maxsim_search(queries, [corpus[0], corpus[1][0]])
    with pytest.raises(ValueError, match="NaN or infinite"):
        maxsim_search([np.full((2, 32), np.nan, dtype=np.float32)], corpus)
    with pytest.raises(ValueError, match="kernel must be 'auto', 'fp32' or 'amx'"):
        maxsim_search(queries, corpus, kernel="int8")
    index = MultiVectorIndex(corpus, n_centroids=4)
    with pytest.raises(ValueError, match="nprobe must be a positive integer"):
        index.search(queries, nprobe=0)
    with pytest.raises(ValueError, match="index's dimension 32, got 8"):
        index.search([q[:, :8] for q in queries])
    with pytest.raises(ValueError, match="at least one token vector"):
        MultiVectorIndex([np.zeros((0, 32), dtype=np.float32)])
    with pytest.raises(FileNotFoundError, match="not a MultiVectorIndex folder"):
        MultiVectorIndex.load(str(tmp_path))
