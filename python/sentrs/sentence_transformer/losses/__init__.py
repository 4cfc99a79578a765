"""Training losses for dense embedding models, one class per module, as in the reference's
``sentence_transformer.losses``: ``MultipleNegativesRankingLoss``, ``CoSENTLoss``, ``TripletLoss``, ... The old path
``sentrs.losses`` is this package (see :mod:`sentrs.util.deprecated_import`).

Names load on first use, so importing this package imports no torch. The reference's losses that sentrs does not
implement yet raise :class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

_PACKAGE = "sentrs.sentence_transformer.losses"

_LAZY = {
    "AnglELoss": f"{_PACKAGE}.angle",
    "BatchAllTripletLoss": f"{_PACKAGE}.batch_all_triplet",
    "BatchHardSoftMarginTripletLoss": f"{_PACKAGE}.batch_hard_soft_margin_triplet",
    "BatchHardTripletLoss": f"{_PACKAGE}.batch_hard_triplet",
    "BatchHardTripletLossDistanceFunction": f"{_PACKAGE}.batch_hard_triplet",
    "BatchSemiHardTripletLoss": f"{_PACKAGE}.batch_semi_hard_triplet",
    "CoSENTLoss": f"{_PACKAGE}.cosent",
    "ContrastiveLoss": f"{_PACKAGE}.contrastive",
    "CosineSimilarityLoss": f"{_PACKAGE}.cosine_similarity",
    "DistillKLDivLoss": f"{_PACKAGE}.distill_kl_div",
    "EmbedDistillLoss": f"{_PACKAGE}.embed_distill",
    "MSELoss": f"{_PACKAGE}.mse",
    "MarginMSELoss": f"{_PACKAGE}.margin_mse",
    "MatryoshkaLoss": f"{_PACKAGE}.matryoshka",
    "MultipleNegativesRankingLoss": f"{_PACKAGE}.multiple_negatives_ranking",
    "MultipleNegativesSymmetricRankingLoss": f"{_PACKAGE}.multiple_negatives_symmetric_ranking",
    "OnlineContrastiveLoss": f"{_PACKAGE}.online_contrastive",
    "SiameseDistanceMetric": f"{_PACKAGE}.contrastive",
    "SoftmaxLoss": f"{_PACKAGE}.softmax",
    "TripletDistanceMetric": f"{_PACKAGE}.triplet",
    "TripletLoss": f"{_PACKAGE}.triplet",
}

# The reference's losses (and their helpers) that sentrs does not implement yet.
_NOT_YET = dict.fromkeys(
    (
        "AdaptiveLayerLoss",
        "CachedGISTEmbedLoss",
        "CachedMultipleNegativesRankingLoss",
        "CachedMultipleNegativesSymmetricRankingLoss",
        "ContrastiveTensionDataLoader",
        "ContrastiveTensionLoss",
        "ContrastiveTensionLossInBatchNegatives",
        "DenoisingAutoEncoderLoss",
        "GISTEmbedLoss",
        "GlobalOrthogonalRegularizationLoss",
        "Matryoshka2dLoss",
        "MegaBatchMarginLoss",
    ),
    "the training loss {name}",
)

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

if TYPE_CHECKING:
    from sentrs.sentence_transformer.losses.angle import AnglELoss
    from sentrs.sentence_transformer.losses.batch_all_triplet import BatchAllTripletLoss
    from sentrs.sentence_transformer.losses.batch_hard_soft_margin_triplet import BatchHardSoftMarginTripletLoss
    from sentrs.sentence_transformer.losses.batch_hard_triplet import (
        BatchHardTripletLoss,
        BatchHardTripletLossDistanceFunction,
    )
    from sentrs.sentence_transformer.losses.batch_semi_hard_triplet import BatchSemiHardTripletLoss
    from sentrs.sentence_transformer.losses.contrastive import ContrastiveLoss, SiameseDistanceMetric
    from sentrs.sentence_transformer.losses.cosent import CoSENTLoss
    from sentrs.sentence_transformer.losses.cosine_similarity import CosineSimilarityLoss
    from sentrs.sentence_transformer.losses.distill_kl_div import DistillKLDivLoss
    from sentrs.sentence_transformer.losses.embed_distill import EmbedDistillLoss
    from sentrs.sentence_transformer.losses.margin_mse import MarginMSELoss
    from sentrs.sentence_transformer.losses.matryoshka import MatryoshkaLoss
    from sentrs.sentence_transformer.losses.mse import MSELoss
    from sentrs.sentence_transformer.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
    from sentrs.sentence_transformer.losses.multiple_negatives_symmetric_ranking import (
        MultipleNegativesSymmetricRankingLoss,
    )
    from sentrs.sentence_transformer.losses.online_contrastive import OnlineContrastiveLoss
    from sentrs.sentence_transformer.losses.softmax import SoftmaxLoss
    from sentrs.sentence_transformer.losses.triplet import TripletDistanceMetric, TripletLoss

__all__ = [
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "DistillKLDivLoss",
    "EmbedDistillLoss",
    "MSELoss",
    "MarginMSELoss",
    "MatryoshkaLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
]
