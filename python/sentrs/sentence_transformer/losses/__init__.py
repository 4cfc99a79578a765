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
    "CoSENTLoss": f"{_PACKAGE}.cosent",
    "ContrastiveLoss": f"{_PACKAGE}.contrastive",
    "CosineSimilarityLoss": f"{_PACKAGE}.cosine_similarity",
    "EmbedDistillLoss": f"{_PACKAGE}.embed_distill",
    "MSELoss": f"{_PACKAGE}.mse",
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
        "BatchAllTripletLoss",
        "BatchHardSoftMarginTripletLoss",
        "BatchHardTripletLoss",
        "BatchHardTripletLossDistanceFunction",
        "BatchSemiHardTripletLoss",
        "CachedGISTEmbedLoss",
        "CachedMultipleNegativesRankingLoss",
        "CachedMultipleNegativesSymmetricRankingLoss",
        "ContrastiveTensionDataLoader",
        "ContrastiveTensionLoss",
        "ContrastiveTensionLossInBatchNegatives",
        "DenoisingAutoEncoderLoss",
        "DistillKLDivLoss",
        "GISTEmbedLoss",
        "GlobalOrthogonalRegularizationLoss",
        "MarginMSELoss",
        "Matryoshka2dLoss",
        "MatryoshkaLoss",
        "MegaBatchMarginLoss",
    ),
    "the training loss {name}",
)

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

if TYPE_CHECKING:
    from sentrs.sentence_transformer.losses.angle import AnglELoss
    from sentrs.sentence_transformer.losses.contrastive import ContrastiveLoss, SiameseDistanceMetric
    from sentrs.sentence_transformer.losses.cosent import CoSENTLoss
    from sentrs.sentence_transformer.losses.cosine_similarity import CosineSimilarityLoss
    from sentrs.sentence_transformer.losses.embed_distill import EmbedDistillLoss
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
    "CoSENTLoss",
    "ContrastiveLoss",
    "CosineSimilarityLoss",
    "EmbedDistillLoss",
    "MSELoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
]
