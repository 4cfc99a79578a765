"""Host/tensor bridging: conversions between lists, numpy arrays and torch tensors, and small tensor helpers.

The one place where sentrs decides whether data may go to the Rust core (:func:`host_float32`). Public through
:mod:`sentrs.util.tensor`; the model types and modules import it from here (layers point down).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from sentrs import ops

__all__ = [
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "batch_to_device",
    "compute_count_vector",
    "host_float32",
    "normalize_embeddings",
    "select_max_active_dims",
    "to_scipy_coo",
    "truncate_embeddings",
]


def _from_numpy(a: npt.NDArray[Any]) -> Tensor:
    """``torch.from_numpy`` without copying, also for read-only (memory-mapped) arrays: sentrs only reads the inputs
    it converts, so torch's "array is not writable" warning does not apply."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _convert_to_tensor(a: Any) -> Tensor:
    """Turns a list, numpy array or tensor into a tensor (no copy for arrays); fp16/bf16 become fp32."""
    if isinstance(a, Tensor):
        t = a
    elif isinstance(a, np.ndarray):
        if a.dtype.kind not in "fiub":
            raise TypeError(f"embeddings must hold numbers, got a numpy array of dtype {a.dtype}")
        t = _from_numpy(np.ascontiguousarray(a))
    elif isinstance(a, (list, tuple)):
        if len(a) and all(isinstance(x, Tensor) for x in a):
            t = torch.stack(list(a))
        else:
            try:
                t = torch.tensor(np.asarray(a, dtype=np.float32) if len(a) else a)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"embeddings must be numbers, a numpy array or a tensor, got {type(a[0])}") from exc
    else:
        raise TypeError(f"embeddings must be a list, numpy array or torch tensor, got {type(a).__name__}")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t


def _convert_to_batch(a: Tensor) -> Tensor:
    """``a`` with a 1-D tensor promoted to one row (``(dim,)`` -> ``(1, dim)``); other shapes unchanged."""
    return a.unsqueeze(0) if a.dim() == 1 else a


def _convert_to_batch_tensor(a: Any) -> Tensor:
    """As :func:`_convert_to_tensor`, with a 1-D input promoted to one row."""
    t = _convert_to_tensor(a)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return t


def host_float32(t: Tensor) -> npt.NDArray[np.float32] | None:
    """A zero-copy float32 numpy view of ``t`` when the Rust core may compute on it, else None.

    That is: a dense CPU float32 tensor that autograd does not track. CUDA tensors, tensors on the gradient path and
    code being traced by ``torch.compile`` (``model.compile()``: the Rust kernels are opaque to it) stay in torch.
    """
    if t.layout != torch.strided or t.device.type != "cpu" or t.dtype != torch.float32:
        return None
    if torch.compiler.is_compiling():
        return None
    if t.requires_grad and torch.is_grad_enabled():
        return None
    return t.detach().contiguous().numpy()


def normalize_embeddings(embeddings: Tensor) -> Tensor:
    """L2-normalises along the last dimension (``x / max(||x||, 1e-12)``)."""
    if not isinstance(embeddings, Tensor):
        embeddings = _convert_to_tensor(embeddings)
    if embeddings.is_sparse:
        embeddings = embeddings.coalesce()
        dense = embeddings.to_dense()
        return torch.nn.functional.normalize(dense, p=2, dim=-1).to_sparse()
    host = host_float32(embeddings) if embeddings.dim() == 2 else None
    if host is not None:
        return torch.from_numpy(ops.normalize(host))
    return torch.nn.functional.normalize(embeddings, p=2, dim=-1)


def truncate_embeddings(embeddings: Any, truncate_dim: int | None) -> Any:
    """Keeps the first ``truncate_dim`` dimensions (``embeddings[..., :truncate_dim]``); None keeps all."""
    return embeddings[..., :truncate_dim]


def batch_to_device(batch: dict[str, Any], target_device: torch.device | str) -> dict[str, Any]:
    """Moves every tensor of a feature dict to ``target_device``."""
    return {k: (v.to(target_device) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _move_tensors_to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside it (nested in dicts, lists and tuples) moved to the CPU."""
    if isinstance(value, Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _move_tensors_to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_move_tensors_to_cpu(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_move_tensors_to_cpu(item) for item in value)
    return value


def select_max_active_dims(embeddings: Any, max_active_dims: int | None) -> Any:
    """Keeps the ``max_active_dims`` largest-magnitude values of each row (the rest become 0); None keeps all.

    Returns a new dense tensor (numpy input is converted); ties go to the lower dimension.
    """
    if max_active_dims is None:
        return embeddings
    if isinstance(max_active_dims, bool) or not isinstance(max_active_dims, int) or max_active_dims <= 0:
        raise ValueError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}")
    t = _convert_to_tensor(embeddings)
    if t.is_sparse:
        t = t.to_dense()
    single = t.dim() == 1
    rows = t.unsqueeze(0) if single else t
    host = host_float32(rows)
    if host is not None:
        indptr, indices, values = ops.dense_to_csr(host, max_active_dims)
        out = torch.zeros_like(rows)
        row_ids = torch.from_numpy(np.repeat(np.arange(rows.shape[0]), np.diff(indptr)))
        out[row_ids, torch.from_numpy(indices)] = torch.from_numpy(values)
    else:
        k = min(max_active_dims, rows.shape[-1])
        _, top = torch.topk(rows.abs(), k, dim=-1)
        out = torch.zeros_like(rows).scatter(-1, top, rows.gather(-1, top))
    return out[0] if single else out


def compute_count_vector(embeddings: Tensor) -> Tensor:
    """For each dimension, the number of rows where it is non-zero (int32, as the reference)."""
    t = embeddings.to_dense() if embeddings.is_sparse else embeddings
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return (t != 0).sum(dim=0).to(torch.int32)


def to_scipy_coo(x: Tensor) -> Any:
    """A 2-D torch tensor (sparse or dense) as a ``scipy.sparse.coo_matrix``."""
    try:
        from scipy.sparse import coo_matrix
    except ImportError as exc:  # pragma: no cover - scipy ships with most installs
        raise ImportError("to_scipy_coo needs scipy: pip install scipy") from exc
    t = x.detach().cpu()
    if t.layout != torch.sparse_coo:
        t = t.to_sparse()
    t = t.coalesce()
    rows, cols = t.indices().numpy()
    return coo_matrix((t.values().numpy(), (rows, cols)), shape=tuple(t.shape))
