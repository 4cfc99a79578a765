"""The reference's ``util.tensor`` helpers (implemented in :mod:`sentrs.base.tensors`)."""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base.tensors import (
    _convert_to_batch,
    _convert_to_batch_tensor,
    _convert_to_tensor,
    _move_tensors_to_cpu,
    batch_to_device,
    compute_count_vector,
    host_float32,
    normalize_embeddings,
    select_max_active_dims,
    to_scipy_coo,
    truncate_embeddings,
)

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

__getattr__ = unavailable_getattr(
    __name__,
    dict.fromkeys(
        ("cat_padded_token_embeddings", "repad_flattened_features", "stack_padded_token_embeddings"),
        "multi-vector models",
    ),
)
