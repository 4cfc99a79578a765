"""The reference's similarity functions and ``SimilarityFunction`` (implemented in :mod:`sentrs.base.similarity`)."""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base import similarity as _implementation
from sentrs.base.similarity import *  # noqa: F403 - the public names, listed once in sentrs.base.similarity

__all__ = list(_implementation.__all__)

__getattr__ = unavailable_getattr(
    __name__,
    dict.fromkeys(("maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"), "multi-vector models"),
)
