"""``SparseRows``: a batch of sparse embeddings held as CSR numpy arrays, and the scoring the sparse evaluators need.

The evaluators never densify a batch: pairwise similarities are computed over the union of each pair's active
dimensions, and searches run on the Rust inverted index (:class:`sentrs.ops.SparseIndex`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs import ops

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["SparseRows", "mean_squared_error", "pairwise_similarity"]

# torch.nn.functional.normalize's floor on a norm: a zero vector has cosine 0 with everything, as in the reference.
_NORM_EPS = 1e-12


class SparseRows:
    """``n`` sparse vectors of width ``dim`` in CSR form.

    Attributes:
        indptr: ``(n + 1,)`` int64, row ``i`` holds entries ``indptr[i]:indptr[i + 1]``.
        indices: ``(nnz,)`` int64 column of each entry.
        values: ``(nnz,)`` float32, every one non-zero.
        dim: the width (the vocabulary size).
    """

    __slots__ = ("dim", "indices", "indptr", "values")

    def __init__(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
        dim: int,
    ) -> None:
        self.indptr = np.ascontiguousarray(indptr, dtype=np.int64)
        self.indices = np.ascontiguousarray(indices, dtype=np.int64)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.dim = int(dim)

    @classmethod
    def from_embeddings(cls, embeddings: Any) -> SparseRows:
        """Rows from a torch tensor (sparse COO/CSR or dense, 1-D or 2-D), a list of 1-D tensors, or a numpy
        array. Explicit zeros are dropped."""
        import torch

        from sentrs.util.retrieval import to_csr_arrays

        if isinstance(embeddings, (list, tuple)):
            if not embeddings:
                return cls(np.zeros(1, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
            embeddings = torch.stack([e.to_dense() if e.is_sparse else e for e in embeddings])
        if isinstance(embeddings, np.ndarray):
            embeddings = torch.from_numpy(np.atleast_2d(embeddings))
        if not isinstance(embeddings, torch.Tensor):
            raise TypeError(f"expected sparse embeddings as a torch tensor, got {type(embeddings).__name__}")
        if embeddings.dim() == 1:
            if embeddings.numel() == 0:  # encode([]) gives an empty 1-D tensor
                return cls(np.zeros(1, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 0)
            embeddings = embeddings.unsqueeze(0)
        if embeddings.dim() != 2:
            raise ValueError(f"sparse embeddings must be 1-D or 2-D, got {embeddings.dim()}-D")
        indptr, indices, values = to_csr_arrays(embeddings)
        rows = cls(indptr, indices, values, int(embeddings.shape[1]))
        return rows if bool(np.all(rows.values != 0)) else rows._without_zeros()

    def _without_zeros(self) -> SparseRows:
        keep = self.values != 0
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.row_ids()[keep], minlength=len(self)), out=indptr[1:])
        return SparseRows(indptr, self.indices[keep], self.values[keep], self.dim)

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, dim)``."""
        return (len(self), self.dim)

    def row_ids(self) -> npt.NDArray[np.int64]:
        """The row of each entry, ``(nnz,)``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr))

    def take(self, rows: Sequence[int] | npt.NDArray[np.integer]) -> SparseRows:
        """The given rows, in the given order (repeats allowed)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if len(rows) and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"row index out of range for {len(self)} rows")
        rows = np.where(rows < 0, rows + len(self), rows)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        counts = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        # Position of every kept entry in the source arrays: each row's start plus 0, 1, ... within the row.
        within = np.arange(indptr[-1], dtype=np.int64) - np.repeat(indptr[:-1], counts)
        source = np.repeat(starts, counts) + within
        return SparseRows(indptr, self.indices[source], self.values[source], self.dim)

    def __getitem__(self, key: int | slice | Sequence[int] | npt.NDArray[np.integer]) -> SparseRows:
        """One row (``int``, still 2-D), a slice, or a list of rows."""
        if isinstance(key, slice):
            return self.take(np.arange(len(self))[key])
        if isinstance(key, (int, np.integer)):
            return self.take([int(key)])
        return self.take(key)

    def __iter__(self) -> Iterator[SparseRows]:
        for row in range(len(self)):
            yield self.take([row])

    def active_dims(self) -> npt.NDArray[np.int64]:
        """``(n,)`` number of non-zero dimensions of each row."""
        return np.diff(self.indptr)

    def sparsity(self) -> dict[str, float]:
        """``active_dims`` (mean non-zero dimensions per row) and ``sparsity_ratio`` (``1 - active_dims / dim``), as
        ``SparseEncoder.sparsity``."""
        if len(self) == 0 or self.dim == 0:
            return {"active_dims": 0.0, "sparsity_ratio": 1.0}
        active = float(np.mean(self.active_dims()))
        return {"active_dims": active, "sparsity_ratio": 1.0 - active / self.dim}

    def count_vector(self) -> npt.NDArray[np.float64]:
        """``(dim,)`` for each dimension, how many rows activate it."""
        return np.bincount(self.indices, minlength=self.dim).astype(np.float64)

    def norms(self) -> npt.NDArray[np.float64]:
        """``(n,)`` L2 norm of each row (float64)."""
        squares = self.values.astype(np.float64) ** 2
        return np.sqrt(np.bincount(self.row_ids(), weights=squares, minlength=len(self)))

    def to_dense(self) -> npt.NDArray[np.float32]:
        """``(n, dim)`` float32; for small slices only."""
        out = np.zeros((len(self), self.dim), dtype=np.float32)
        out[self.row_ids(), self.indices] = self.values
        return out

    def to_tensor(self) -> Tensor:
        """A ``(n, dim)`` torch sparse COO tensor (coalesced)."""
        import torch

        indices = torch.from_numpy(np.stack([self.row_ids(), self.indices]))
        tensor = torch.sparse_coo_tensor(indices, torch.from_numpy(self.values.copy()), (len(self), self.dim))
        return tensor.coalesce()

    def csr_arrays(self) -> ops.CsrArrays:
        """``(indptr, indices, values)``, for :class:`sentrs.ops.SparseIndex`."""
        return self.indptr, self.indices, self.values

    def index(self) -> ops.SparseIndex:
        """An inverted index over the rows (documents)."""
        return ops.SparseIndex(*self.csr_arrays(), self.dim)


def _aligned(
    a: SparseRows, b: SparseRows
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Row ``i`` of ``a`` against row ``i`` of ``b`` over the union of their active dimensions: ``(row of each union
    entry, a's value there, b's value there)``, float64 with zeros where a row is inactive.

    Raises:
        ValueError: the two have different numbers of rows or widths.
    """
    if len(a) != len(b):
        raise ValueError(f"pairwise comparison needs the same number of rows, got {len(a)} and {len(b)}")
    if a.dim != b.dim and len(a):
        raise ValueError(f"embeddings must have the same dimension, got {a.dim} and {b.dim}")
    width = max(a.dim, 1)
    keys_a = a.row_ids() * width + a.indices
    keys_b = b.row_ids() * width + b.indices
    union = np.union1d(keys_a, keys_b)
    values_a = np.zeros(len(union), dtype=np.float64)
    values_b = np.zeros(len(union), dtype=np.float64)
    values_a[np.searchsorted(union, keys_a)] = a.values
    values_b[np.searchsorted(union, keys_b)] = b.values
    return union // width, values_a, values_b


def pairwise_similarity(a: SparseRows, b: SparseRows, similarity_fn_name: str) -> npt.NDArray[np.float32]:
    """``(n,)`` similarity of row ``i`` of ``a`` with row ``i`` of ``b``: ``cosine``, ``dot``, ``euclidean``
    (negative L2 distance) or ``manhattan`` (negative L1 distance), computed in float64 over the union of the two
    rows' active dimensions and returned as float32.

    Raises:
        ValueError: the two have different numbers of rows or widths, or the name is unknown.
    """
    if similarity_fn_name not in ops.SIMILARITY_FN_NAMES:
        raise ValueError(
            f"similarity_fn_name must be one of {list(ops.SIMILARITY_FN_NAMES)}, got {similarity_fn_name!r}"
        )
    rows, values_a, values_b = _aligned(a, b)
    n = len(a)
    if similarity_fn_name in ("dot", "cosine"):
        scores = np.bincount(rows, weights=values_a * values_b, minlength=n)
        if similarity_fn_name == "cosine":
            scores = scores / (np.maximum(a.norms(), _NORM_EPS) * np.maximum(b.norms(), _NORM_EPS))
    elif similarity_fn_name == "euclidean":
        scores = -np.sqrt(np.bincount(rows, weights=(values_a - values_b) ** 2, minlength=n))
    else:
        scores = -np.bincount(rows, weights=np.abs(values_a - values_b), minlength=n)
    return scores.astype(np.float32)


def mean_squared_error(a: SparseRows, b: SparseRows) -> float:
    """``mean((a - b) ** 2)`` over every cell of the two ``(n, dim)`` matrices (float64).

    Raises:
        ValueError: the two have different numbers of rows or widths.
    """
    _, values_a, values_b = _aligned(a, b)
    cells = len(a) * a.dim
    return float(np.sum((values_a - values_b) ** 2) / cells) if cells else float("nan")
