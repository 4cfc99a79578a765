"""Training losses for cross-encoders, one class per module, as in the reference's ``cross_encoder.losses``.

Pairwise and pointwise: ``BinaryCrossEntropyLoss``, ``CrossEntropyLoss``, ``MSELoss``, ``MarginMSELoss``,
``MultipleNegativesRankingLoss`` and ``CachedMultipleNegativesRankingLoss``. Listwise, over a query's list of
documents: ``ListNetLoss``, ``ListMLELoss``, ``PListMLELoss`` (with ``PListMLELambdaWeight``), ``LambdaLoss`` (with
the weighting schemes ``NoWeightingScheme``, ``NDCGLoss1Scheme``, ``NDCGLoss2Scheme``, ``LambdaRankScheme``,
``NDCGLoss2PPScheme``), ``RankNetLoss`` and ``ADRMSELoss``.

Each loss takes the batch as the cross-encoder data collator gives it, raw text columns and labels, and tokenizes the
(query, document) pairs itself with ``model.preprocess``. Names load on first use, so importing this package imports
no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.cross_encoder.losses"

_LAZY = {
    "ADRMSELoss": f"{_PACKAGE}.adr_mse",
    "BinaryCrossEntropyLoss": f"{_PACKAGE}.binary_cross_entropy",
    "CachedMultipleNegativesRankingLoss": f"{_PACKAGE}.cached_multiple_negatives_ranking",
    "CrossEntropyLoss": f"{_PACKAGE}.cross_entropy",
    "LambdaLoss": f"{_PACKAGE}.lambda_loss",
    "LambdaRankScheme": f"{_PACKAGE}.lambda_loss",
    "ListMLELoss": f"{_PACKAGE}.list_mle",
    "ListNetLoss": f"{_PACKAGE}.list_net",
    "MSELoss": f"{_PACKAGE}.mse",
    "MarginMSELoss": f"{_PACKAGE}.margin_mse",
    "MultipleNegativesRankingLoss": f"{_PACKAGE}.multiple_negatives_ranking",
    "NDCGLoss1Scheme": f"{_PACKAGE}.lambda_loss",
    "NDCGLoss2PPScheme": f"{_PACKAGE}.lambda_loss",
    "NDCGLoss2Scheme": f"{_PACKAGE}.lambda_loss",
    "NoWeightingScheme": f"{_PACKAGE}.lambda_loss",
    "PListMLELambdaWeight": f"{_PACKAGE}.plist_mle",
    "PListMLELoss": f"{_PACKAGE}.plist_mle",
    "RankNetLoss": f"{_PACKAGE}.rank_net",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.cross_encoder.losses.adr_mse import ADRMSELoss
    from sentrs.cross_encoder.losses.binary_cross_entropy import BinaryCrossEntropyLoss
    from sentrs.cross_encoder.losses.cached_multiple_negatives_ranking import CachedMultipleNegativesRankingLoss
    from sentrs.cross_encoder.losses.cross_entropy import CrossEntropyLoss
    from sentrs.cross_encoder.losses.lambda_loss import (
        LambdaLoss,
        LambdaRankScheme,
        NDCGLoss1Scheme,
        NDCGLoss2PPScheme,
        NDCGLoss2Scheme,
        NoWeightingScheme,
    )
    from sentrs.cross_encoder.losses.list_mle import ListMLELoss
    from sentrs.cross_encoder.losses.list_net import ListNetLoss
    from sentrs.cross_encoder.losses.margin_mse import MarginMSELoss
    from sentrs.cross_encoder.losses.mse import MSELoss
    from sentrs.cross_encoder.losses.multiple_negatives_ranking import MultipleNegativesRankingLoss
    from sentrs.cross_encoder.losses.plist_mle import PListMLELambdaWeight, PListMLELoss
    from sentrs.cross_encoder.losses.rank_net import RankNetLoss

__all__ = [
    "ADRMSELoss",
    "BinaryCrossEntropyLoss",
    "CachedMultipleNegativesRankingLoss",
    "CrossEntropyLoss",
    "LambdaLoss",
    "LambdaRankScheme",
    "ListMLELoss",
    "ListNetLoss",
    "MSELoss",
    "MarginMSELoss",
    "MultipleNegativesRankingLoss",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
    "PListMLELambdaWeight",
    "PListMLELoss",
    "RankNetLoss",
]
