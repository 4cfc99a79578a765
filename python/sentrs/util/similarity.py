"""The reference's similarity functions and ``SimilarityFunction`` (implemented in :mod:`sentrs.base.similarity`),
and the MaxSim family (:mod:`sentrs.base.maxsim`)."""

from __future__ import annotations

from sentrs.base import similarity as _implementation
from sentrs.base.maxsim import maxsim, maxsim_pairwise, mean_maxsim, mean_maxsim_pairwise
from sentrs.base.similarity import *  # noqa: F403 - the public names, listed once in sentrs.base.similarity

__all__ = [*_implementation.__all__, "maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"]
