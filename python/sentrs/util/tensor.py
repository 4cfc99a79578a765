"""The reference's ``util.tensor`` helpers (implemented in :mod:`sentrs.base.tensors`)."""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base import tensors as _implementation
from sentrs.base.tensors import *  # noqa: F403 - the public names, listed once in sentrs.base.tensors

__all__ = list(_implementation.__all__)

__getattr__ = unavailable_getattr(
    __name__,
    dict.fromkeys(
        ("cat_padded_token_embeddings", "repad_flattened_features", "stack_padded_token_embeddings"),
        "multi-vector models",
    ),
)
