"""Similarity functions with the reference's names, inputs and outputs.

Inputs may be lists, numpy arrays or tensors, 1-D (one row) or 2-D. The result is always a torch tensor.
Dense float32 data on the host is scored by the Rust core; CUDA tensors, tensors that need gradients and other
dtypes stay in torch.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs import ops
from sentrs._lazy import is_tensor

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "SimilarityFunction",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "manhattan_sim",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "pytorch_cos_sim",
]


def _prepare(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    from sentrs.base.tensors import _convert_to_batch_tensor

    ta, tb = _convert_to_batch_tensor(a), _convert_to_batch_tensor(b)
    if ta.is_sparse:
        ta = ta.to_dense()
    if tb.is_sparse:
        tb = tb.to_dense()
    if ta.dim() != 2 or tb.dim() != 2:
        raise ValueError(f"embeddings must be 1-D or 2-D, got {ta.dim()}-D and {tb.dim()}-D")
    if ta.shape[1] != tb.shape[1]:
        raise ValueError(f"embeddings must have the same dimension, got {ta.shape[1]} and {tb.shape[1]}")
    return ta, tb


def _host_pair(ta: Tensor, tb: Tensor) -> tuple[Any, Any] | None:
    from sentrs.base.tensors import host_float32

    ha, hb = host_float32(ta), host_float32(tb)
    if ha is None or hb is None:
        return None
    return ha, hb


def _matrix(a: Any, b: Any, name: str) -> Tensor:
    import torch

    ta, tb = _prepare(a, b)
    host = _host_pair(ta, tb)
    if host is not None:
        return torch.from_numpy(ops.similarity_matrix(host[0], host[1], name))
    if ta.dtype != tb.dtype:
        dtype = torch.promote_types(ta.dtype, tb.dtype)
        ta, tb = ta.to(dtype), tb.to(dtype)
    if not ta.is_floating_point():
        ta, tb = ta.float(), tb.float()
    if name == "cosine":
        return torch.mm(torch.nn.functional.normalize(ta, p=2, dim=1), torch.nn.functional.normalize(tb, p=2, dim=1).T)
    if name == "dot":
        return torch.mm(ta, tb.T)
    if name == "euclidean":
        return -torch.cdist(ta, tb, p=2.0)
    return -torch.cdist(ta, tb, p=1.0)


def _pairwise(a: Any, b: Any, name: str) -> Tensor:
    result = _pairwise_rows(a, b, name)
    if _is_1d(a) and _is_1d(b):
        return result[0]  # two single vectors give a scalar, as in the reference
    return result


def _is_1d(x: Any) -> bool:
    if isinstance(x, np.ndarray) or is_tensor(x):
        return int(x.ndim) == 1
    return isinstance(x, (list, tuple)) and (
        not x or not (isinstance(x[0], (list, tuple, np.ndarray)) or is_tensor(x[0]))
    )


def _pairwise_rows(a: Any, b: Any, name: str) -> Tensor:
    import torch

    ta, tb = _prepare(a, b)
    if ta.shape[0] != tb.shape[0]:
        raise ValueError(f"pairwise similarity needs the same number of rows, got {ta.shape[0]} and {tb.shape[0]}")
    host = _host_pair(ta, tb)
    if host is not None:
        return torch.from_numpy(ops.similarity_pairwise(host[0], host[1], name))
    if not ta.is_floating_point():
        ta, tb = ta.float(), tb.float()
    if name == "cosine":
        na = torch.nn.functional.normalize(ta, p=2, dim=1)
        nb = torch.nn.functional.normalize(tb, p=2, dim=1)
        return (na * nb).sum(dim=-1)
    if name == "dot":
        return (ta * tb).sum(dim=-1)
    if name == "euclidean":
        return -torch.sqrt(((ta - tb) ** 2).sum(dim=-1))
    return -(ta - tb).abs().sum(dim=-1)


def cos_sim(a: Any, b: Any) -> Tensor:
    """Cosine similarity matrix: ``(n, d)`` x ``(m, d)`` -> ``(n, m)``."""
    return _matrix(a, b, "cosine")


def pytorch_cos_sim(a: Any, b: Any) -> Tensor:
    """Alias of :func:`cos_sim`."""
    return cos_sim(a, b)


def dot_score(a: Any, b: Any) -> Tensor:
    """Dot-product matrix: ``(n, d)`` x ``(m, d)`` -> ``(n, m)``."""
    return _matrix(a, b, "dot")


def euclidean_sim(a: Any, b: Any) -> Tensor:
    """Negative euclidean distance matrix: ``(n, d)`` x ``(m, d)`` -> ``(n, m)``."""
    return _matrix(a, b, "euclidean")


def manhattan_sim(a: Any, b: Any) -> Tensor:
    """Negative manhattan distance matrix: ``(n, d)`` x ``(m, d)`` -> ``(n, m)``."""
    return _matrix(a, b, "manhattan")


def pairwise_cos_sim(a: Any, b: Any) -> Tensor:
    """Cosine similarity of row i of ``a`` with row i of ``b``: ``(n,)``."""
    return _pairwise(a, b, "cosine")


def pairwise_dot_score(a: Any, b: Any) -> Tensor:
    """Dot product of row i of ``a`` with row i of ``b``: ``(n,)``."""
    return _pairwise(a, b, "dot")


def pairwise_euclidean_sim(a: Any, b: Any) -> Tensor:
    """Negative euclidean distance of row i of ``a`` to row i of ``b``: ``(n,)``."""
    return _pairwise(a, b, "euclidean")


def pairwise_manhattan_sim(a: Any, b: Any) -> Tensor:
    """Negative manhattan distance of row i of ``a`` to row i of ``b``: ``(n,)``."""
    return _pairwise(a, b, "manhattan")


def pairwise_angle_sim(x: Any, y: Any) -> Tensor:
    """Angle similarity of row i of ``x`` with row i of ``y`` (AnglE): ``|cos + sin|`` after L2 normalisation,
    pairing dimension i with i + D/2 (an odd D is zero-padded). Returns ``(n,)`` (a scalar for two vectors)."""
    import torch

    tx, ty = _prepare(x, y)
    if not tx.is_floating_point():
        tx, ty = tx.float(), ty.float()
    if tx.shape[1] % 2:
        tx = torch.nn.functional.pad(tx, (0, 1))
        ty = torch.nn.functional.pad(ty, (0, 1))
    nx = torch.nn.functional.normalize(tx, p=2, dim=1)
    ny = torch.nn.functional.normalize(ty, p=2, dim=1)
    cosines = (nx * ny).sum(dim=1)
    first_x, last_x = torch.chunk(nx, 2, dim=1)
    first_y, last_y = torch.chunk(ny, 2, dim=1)
    sines = (last_x * first_y - first_x * last_y).sum(dim=1)
    result = torch.abs(cosines + sines)
    return result[0] if _is_1d(x) and _is_1d(y) else result


class SimilarityFunction(Enum):
    """The similarity functions a model can be configured with."""

    COSINE = "cosine"
    DOT_PRODUCT = "dot"
    DOT = "dot"  # alias of DOT_PRODUCT
    EUCLIDEAN = "euclidean"
    MANHATTAN = "manhattan"
    MAXSIM = "maxsim"  # late interaction (multi-vector models)
    MEAN_MAXSIM = "meanmaxsim"  # MaxSim divided by the query's token count

    @staticmethod
    def to_similarity_fn(similarity_function: SimilarityFunction | str) -> Callable[..., Tensor]:
        """The ``(n, m)`` matrix function for a name or member."""
        from sentrs.base.maxsim import maxsim, mean_maxsim

        name = SimilarityFunction(similarity_function).value
        return {
            "cosine": cos_sim,
            "dot": dot_score,
            "euclidean": euclidean_sim,
            "manhattan": manhattan_sim,
            "maxsim": maxsim,
            "meanmaxsim": mean_maxsim,
        }[name]

    @staticmethod
    def to_similarity_pairwise_fn(similarity_function: SimilarityFunction | str) -> Callable[..., Tensor]:
        """The ``(n,)`` pairwise function for a name or member."""
        from sentrs.base.maxsim import maxsim_pairwise, mean_maxsim_pairwise

        name = SimilarityFunction(similarity_function).value
        return {
            "cosine": pairwise_cos_sim,
            "dot": pairwise_dot_score,
            "euclidean": pairwise_euclidean_sim,
            "manhattan": pairwise_manhattan_sim,
            "maxsim": maxsim_pairwise,
            "meanmaxsim": mean_maxsim_pairwise,
        }[name]

    @staticmethod
    def possible_values() -> list[str]:
        """The accepted names."""
        return [m.value for m in SimilarityFunction]
