"""Training losses for dense embedding models, one class per module, as in the reference's
``sentence_transformer.losses``: ``MultipleNegativesRankingLoss``, ``CoSENTLoss``, ``TripletLoss``, ... The old path
``sentrs.losses`` is this package (see :mod:`sentrs.util.deprecated_import`).

Names load on first use, so importing this package imports no torch. Every loss of the reference's package is here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.sentence_transformer.losses"

_LAZY = {
    "AdaptiveLayerLoss": f"{_PACKAGE}.adaptive_layer",
    "AnglELoss": f"{_PACKAGE}.angle",
    "BatchAllTripletLoss": f"{_PACKAGE}.batch_all_triplet",
    "BatchHardSoftMarginTripletLoss": f"{_PACKAGE}.batch_hard_soft_margin_triplet",
    "BatchHardTripletLoss": f"{_PACKAGE}.batch_hard_triplet",
    "BatchHardTripletLossDistanceFunction": f"{_PACKAGE}.batch_hard_triplet",
    "BatchSemiHardTripletLoss": f"{_PACKAGE}.batch_semi_hard_triplet",
    "CachedGISTEmbedLoss": f"{_PACKAGE}.cached_gist_embed",
    "CachedMultipleNegativesRankingLoss": f"{_PACKAGE}.cached_multiple_negatives_ranking",
    "CachedMultipleNegativesSymmetricRankingLoss": f"{_PACKAGE}.cached_multiple_negatives_symmetric_ranking",
    "CoSENTLoss": f"{_PACKAGE}.cosent",
    "ContrastiveLoss": f"{_PACKAGE}.contrastive",
    "ContrastiveTensionDataLoader": f"{_PACKAGE}.contrastive_tension",
    "ContrastiveTensionLoss": f"{_PACKAGE}.contrastive_tension",
    "ContrastiveTensionLossInBatchNegatives": f"{_PACKAGE}.contrastive_tension",
    "CosineSimilarityLoss": f"{_PACKAGE}.cosine_similarity",
    "DenoisingAutoEncoderLoss": f"{_PACKAGE}.denoising_auto_encoder",
    "DistillKLDivLoss": f"{_PACKAGE}.distill_kl_div",
    "EmbedDistillLoss": f"{_PACKAGE}.embed_distill",
    "GISTEmbedLoss": f"{_PACKAGE}.gist_embed",
    "GlobalOrthogonalRegularizationLoss": f"{_PACKAGE}.global_orthogonal_regularization",
    "MSELoss": f"{_PACKAGE}.mse",
    "MarginMSELoss": f"{_PACKAGE}.margin_mse",
    "Matryoshka2dLoss": f"{_PACKAGE}.matryoshka_2d",
    "MatryoshkaLoss": f"{_PACKAGE}.matryoshka",
    "MegaBatchMarginLoss": f"{_PACKAGE}.mega_batch_margin",
    "MultipleNegativesRankingLoss": f"{_PACKAGE}.multiple_negatives_ranking",
    "MultipleNegativesSymmetricRankingLoss": f"{_PACKAGE}.multiple_negatives_symmetric_ranking",
    "OnlineContrastiveLoss": f"{_PACKAGE}.online_contrastive",
    "SiameseDistanceMetric": f"{_PACKAGE}.contrastive",
    "SoftmaxLoss": f"{_PACKAGE}.softmax",
    "TripletDistanceMetric": f"{_PACKAGE}.triplet",
    "TripletLoss": f"{_PACKAGE}.triplet",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.losses.adaptive_layer import AdaptiveLayerLoss
    from sentrs.sentence_transformer.losses.angle import AnglELoss
    from sentrs.sentence_transformer.losses.batch_all_triplet import BatchAllTripletLoss
    from sentrs.sentence_transformer.losses.batch_hard_soft_margin_triplet import BatchHardSoftMarginTripletLoss
    from sentrs.sentence_transformer.losses.batch_hard_triplet import (
        BatchHardTripletLoss,
        BatchHardTripletLossDistanceFunction,
    )
    from sentrs.sentence_transformer.losses.batch_semi_hard_triplet import BatchSemiHardTripletLoss
    from sentrs.sentence_transformer.losses.cached_gist_embed import CachedGISTEmbedLoss
    from sentrs.sentence_transformer.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
    from sentrs.sentence_transformer.losses.cached_multiple_negatives_symmetric_ranking import (
        CachedMultipleNegativesSymmetricRankingLoss,
    )
    from sentrs.sentence_transformer.losses.contrastive import ContrastiveLoss, SiameseDistanceMetric
    from sentrs.sentence_transformer.losses.contrastive_tension import (
        ContrastiveTensionDataLoader,
        ContrastiveTensionLoss,
        ContrastiveTensionLossInBatchNegatives,
    )
    from sentrs.sentence_transformer.losses.cosent import CoSENTLoss
    from sentrs.sentence_transformer.losses.cosine_similarity import CosineSimilarityLoss
    from sentrs.sentence_transformer.losses.denoising_auto_encoder import DenoisingAutoEncoderLoss
    from sentrs.sentence_transformer.losses.distill_kl_div import DistillKLDivLoss
    from sentrs.sentence_transformer.losses.embed_distill import EmbedDistillLoss
    from sentrs.sentence_transformer.losses.gist_embed import GISTEmbedLoss
    from sentrs.sentence_transformer.losses.global_orthogonal_regularization import GlobalOrthogonalRegularizationLoss
    from sentrs.sentence_transformer.losses.margin_mse import MarginMSELoss
    from sentrs.sentence_transformer.losses.matryoshka import MatryoshkaLoss
    from sentrs.sentence_transformer.losses.matryoshka_2d import Matryoshka2dLoss
    from sentrs.sentence_transformer.losses.mega_batch_margin import MegaBatchMarginLoss
    from sentrs.sentence_transformer.losses.mse import MSELoss
    from sentrs.sentence_transformer.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
    from sentrs.sentence_transformer.losses.multiple_negatives_symmetric_ranking import (
        MultipleNegativesSymmetricRankingLoss,
    )
    from sentrs.sentence_transformer.losses.online_contrastive import OnlineContrastiveLoss
    from sentrs.sentence_transformer.losses.softmax import SoftmaxLoss
    from sentrs.sentence_transformer.losses.triplet import TripletDistanceMetric, TripletLoss

__all__ = [
    "AdaptiveLayerLoss",
    "AnglELoss",
    "BatchAllTripletLoss",
    "BatchHardSoftMarginTripletLoss",
    "BatchHardTripletLoss",
    "BatchHardTripletLossDistanceFunction",
    "BatchSemiHardTripletLoss",
    "CachedGISTEmbedLoss",
    "CachedMultipleNegativesRankingLoss",
    "CachedMultipleNegativesSymmetricRankingLoss",
    "CoSENTLoss",
    "ContrastiveLoss",
    "ContrastiveTensionDataLoader",
    "ContrastiveTensionLoss",
    "ContrastiveTensionLossInBatchNegatives",
    "CosineSimilarityLoss",
    "DenoisingAutoEncoderLoss",
    "DistillKLDivLoss",
    "EmbedDistillLoss",
    "GISTEmbedLoss",
    "GlobalOrthogonalRegularizationLoss",
    "MSELoss",
    "MarginMSELoss",
    "Matryoshka2dLoss",
    "MatryoshkaLoss",
    "MegaBatchMarginLoss",
    "MultipleNegativesRankingLoss",
    "MultipleNegativesSymmetricRankingLoss",
    "OnlineContrastiveLoss",
    "SiameseDistanceMetric",
    "SoftmaxLoss",
    "TripletDistanceMetric",
    "TripletLoss",
]
