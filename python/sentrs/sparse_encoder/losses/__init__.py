"""Training losses for sparse embedding models, one class per module, as in the reference's
``sparse_encoder.losses``.

- :class:`SpladeLoss` (and its gradient-cached form :class:`CachedSpladeLoss`) trains SPLADE models: a base loss
  plus FLOPS regularization (:class:`FlopsLoss`) of the query and document embeddings.
- :class:`CSRLoss` trains CSR models (a dense encoder with a SparseAutoEncoder): :class:`CSRReconstructionLoss` plus
  a base loss.
- The base losses, used inside those two: :class:`SparseMultipleNegativesRankingLoss`, :class:`SparseMarginMSELoss`,
  :class:`SparseDistillKLDivLoss`, :class:`SparseCoSENTLoss`, :class:`SparseAnglELoss`,
  :class:`SparseCosineSimilarityLoss`, :class:`SparseTripletLoss`. :class:`SparseMSELoss` is used on its own.

Names load on first use, so importing this package imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.sparse_encoder.losses"

_LAZY = {
    "CSRLoss": f"{_PACKAGE}.csr",
    "CSRReconstructionLoss": f"{_PACKAGE}.csr",
    "CachedSpladeLoss": f"{_PACKAGE}.cached_splade",
    "FlopsLoss": f"{_PACKAGE}.flops",
    "SparseAnglELoss": f"{_PACKAGE}.sparse_angle",
    "SparseCoSENTLoss": f"{_PACKAGE}.sparse_cosent",
    "SparseCosineSimilarityLoss": f"{_PACKAGE}.sparse_cosine_similarity",
    "SparseDistillKLDivLoss": f"{_PACKAGE}.sparse_distill_kl_div",
    "SparseMSELoss": f"{_PACKAGE}.sparse_mse",
    "SparseMarginMSELoss": f"{_PACKAGE}.sparse_margin_mse",
    "SparseMultipleNegativesRankingLoss": f"{_PACKAGE}.sparse_multiple_negatives_ranking",
    "SparseTripletLoss": f"{_PACKAGE}.sparse_triplet",
    "SpladeLoss": f"{_PACKAGE}.splade",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.sparse_encoder.losses.cached_splade import CachedSpladeLoss
    from sentrs.sparse_encoder.losses.csr import CSRLoss, CSRReconstructionLoss
    from sentrs.sparse_encoder.losses.flops import FlopsLoss
    from sentrs.sparse_encoder.losses.sparse_angle import SparseAnglELoss
    from sentrs.sparse_encoder.losses.sparse_cosent import SparseCoSENTLoss
    from sentrs.sparse_encoder.losses.sparse_cosine_similarity import SparseCosineSimilarityLoss
    from sentrs.sparse_encoder.losses.sparse_distill_kl_div import SparseDistillKLDivLoss
    from sentrs.sparse_encoder.losses.sparse_margin_mse import SparseMarginMSELoss
    from sentrs.sparse_encoder.losses.sparse_mse import SparseMSELoss
    from sentrs.sparse_encoder.losses.sparse_multiple_negatives_ranking import SparseMultipleNegativesRankingLoss
    from sentrs.sparse_encoder.losses.sparse_triplet import SparseTripletLoss
    from sentrs.sparse_encoder.losses.splade import SpladeLoss

__all__ = [
    "CSRLoss",
    "CSRReconstructionLoss",
    "CachedSpladeLoss",
    "FlopsLoss",
    "SparseAnglELoss",
    "SparseCoSENTLoss",
    "SparseCosineSimilarityLoss",
    "SparseDistillKLDivLoss",
    "SparseMSELoss",
    "SparseMarginMSELoss",
    "SparseMultipleNegativesRankingLoss",
    "SparseTripletLoss",
    "SpladeLoss",
]
