"""The reference's ``util.tensor`` helpers (implemented in :mod:`sentrs.base.tensors`)."""

from __future__ import annotations

from sentrs.base import tensors as _implementation
from sentrs.base.tensors import *  # noqa: F403 - the public names, listed once in sentrs.base.tensors

__all__ = list(_implementation.__all__)
