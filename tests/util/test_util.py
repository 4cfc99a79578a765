"""``sentrs.util`` against ``sentence_transformers.util`` on numpy, torch and list inputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from sentrs import util

FNS = [
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


@pytest.mark.parametrize("name", FNS)
@pytest.mark.parametrize("kind", ["numpy", "torch", "list", "1d", "float64", "grad"])
def test_similarity_parity(name: str, kind: str) -> None:
    """Tolerance 1e-4 abs / 1e-5 rel: float32 GEMM vs direct sums."""
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(1)
    a = rng.standard_normal((6, 16)).astype(np.float32)
    b = rng.standard_normal((6, 16)).astype(np.float32)
    x: Any
    y: Any
    if kind == "numpy":
        x, y = a, b
    elif kind == "torch":
        x, y = torch.from_numpy(a), torch.from_numpy(b)
    elif kind == "list":
        x, y = a.tolist(), b.tolist()
    elif kind == "1d":
        x, y = a[0], b[0]
    elif kind == "float64":
        x, y = a.astype(np.float64), b.astype(np.float64)
    else:
        x, y = torch.from_numpy(a).requires_grad_(True), torch.from_numpy(b)
    ours = getattr(util, name)(x, y)
    if name == "pairwise_angle_sim" and kind == "1d":
        # The reference raises IndexError on 1-D input here; sentrs treats it as one row, like the other functions.
        torch.testing.assert_close(ours, getattr(ref_util, name)(a[:1], b[:1])[0])
        return
    ref = getattr(ref_util, name)(x, y)
    assert isinstance(ours, torch.Tensor) and ours.shape == ref.shape and ours.dtype == ref.dtype
    torch.testing.assert_close(ours.detach(), ref.detach(), atol=1e-4, rtol=1e-5)
    if kind == "grad":
        assert ours.requires_grad  # stayed on the autograd path


@pytest.mark.parametrize("precision", ["float32", "int8", "uint8", "binary", "ubinary"])
def test_quantize_embeddings_parity(precision: str) -> None:
    from sentence_transformers.util import quantize_embeddings as ref_quantize

    rng = np.random.default_rng(2)
    emb = rng.standard_normal((120, 20)).astype(np.float32)
    calib = rng.standard_normal((300, 20)).astype(np.float32)
    np.testing.assert_array_equal(util.quantize_embeddings(emb, precision), ref_quantize(emb, precision))
    if precision.endswith("int8"):
        np.testing.assert_array_equal(
            util.quantize_embeddings(emb[:1], precision, calibration_embeddings=calib),
            ref_quantize(emb[:1], precision, calibration_embeddings=calib),
        )
        with pytest.raises(ValueError, match="single embedding"):
            util.quantize_embeddings(emb[:1], precision)
    out = util.quantize_embeddings(torch.from_numpy(emb), precision)
    assert isinstance(out, np.ndarray)


def test_quantize_errors() -> None:
    with pytest.raises(ValueError, match="Precision 'int4' is not supported"):
        util.quantize_embeddings(np.zeros((2, 2), dtype=np.float32), "int4")
    with pytest.raises(ValueError, match="must be float"):
        util.quantize_embeddings(np.zeros((2, 2), dtype=np.int8), "binary")


def test_normalize_and_truncate() -> None:
    x = torch.tensor([[3.0, 4.0, 0.0]])
    torch.testing.assert_close(util.normalize_embeddings(x), torch.tensor([[0.6, 0.8, 0.0]]))
    assert util.truncate_embeddings(x, 2).shape == (1, 2)


def test_similarity_function_enum() -> None:
    assert util.SimilarityFunction.to_similarity_fn("cosine") is util.cos_sim
    from sentence_transformers.util import SimilarityFunction as RefSimilarityFunction

    assert util.SimilarityFunction.possible_values() == RefSimilarityFunction.possible_values()
    assert util.SimilarityFunction.to_similarity_fn("maxsim") is util.maxsim
    assert util.SimilarityFunction.to_similarity_pairwise_fn("meanmaxsim") is util.mean_maxsim_pairwise
    with pytest.raises(ValueError):
        util.SimilarityFunction.to_similarity_fn("jaccard")


def test_similarity_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same dimension, got 3 and 4"):
        util.cos_sim(np.zeros((1, 3)), np.zeros((1, 4)))
    with pytest.raises(TypeError, match="embeddings must be"):
        util.cos_sim("abc", np.zeros((1, 3)))


def test_select_max_active_dims_and_sparse_helpers() -> None:
    from sentence_transformers import util as ref_util

    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.standard_normal((5, 40)).astype(np.float32))
    for k in (1, 7, 100):
        torch.testing.assert_close(util.select_max_active_dims(x, k), ref_util.select_max_active_dims(x, k))
    torch.testing.assert_close(util.select_max_active_dims(x[0], 3), ref_util.select_max_active_dims(x[0], 3))
    assert util.select_max_active_dims(x, None) is x
    with pytest.raises(ValueError, match="max_active_dims must be a positive integer"):
        util.select_max_active_dims(x, 0)
    sparse = util.select_max_active_dims(x, 4).to_sparse()
    torch.testing.assert_close(util.compute_count_vector(sparse), ref_util.compute_count_vector(sparse))
    coo = util.to_scipy_coo(sparse)
    np.testing.assert_allclose(coo.toarray(), sparse.to_dense().numpy())
