"""Training losses for multi-vector (late-interaction) models, one class per module, as in the reference's
``multi_vector_encoder.losses``.

- :class:`MultiVectorMultipleNegativesRankingLoss`: in-batch negatives (InfoNCE) over MaxSim scores, and its
  gradient-cached form :class:`CachedMultiVectorMultipleNegativesRankingLoss` for batches larger than one forward pass
  fits in memory.
- :class:`MultiVectorDistillKLDivLoss` and :class:`MultiVectorMarginMSELoss`: distillation of a teacher's scores,
  as a distribution (KL divergence) or as margins (mean squared error).

Every loss scores with a callable from :mod:`sentrs.multi_vector_encoder.scoring` (MaxSim by default; pass an XTR
scorer to switch). Names load on first use, so importing this package imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.multi_vector_encoder.losses"

_LAZY = {
    "CachedMultiVectorMultipleNegativesRankingLoss": f"{_PACKAGE}.cached_multiple_negatives_ranking",
    "MultiVectorDistillKLDivLoss": f"{_PACKAGE}.distill_kl_div",
    "MultiVectorMarginMSELoss": f"{_PACKAGE}.margin_mse",
    "MultiVectorMultipleNegativesRankingLoss": f"{_PACKAGE}.multiple_negatives_ranking",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.losses.cached_multiple_negatives_ranking import (
        CachedMultiVectorMultipleNegativesRankingLoss,
    )
    from sentrs.multi_vector_encoder.losses.distill_kl_div import MultiVectorDistillKLDivLoss
    from sentrs.multi_vector_encoder.losses.margin_mse import MultiVectorMarginMSELoss
    from sentrs.multi_vector_encoder.losses.multiple_negatives_ranking import MultiVectorMultipleNegativesRankingLoss

__all__ = [
    "CachedMultiVectorMultipleNegativesRankingLoss",
    "MultiVectorDistillKLDivLoss",
    "MultiVectorMarginMSELoss",
    "MultiVectorMultipleNegativesRankingLoss",
]
