"""The reference's older cross-encoder evaluator names, kept as deprecated subclasses: instantiating one warns with a
``DeprecationWarning`` naming its replacement."""

from __future__ import annotations

from typing_extensions import deprecated

from sentrs.cross_encoder.evaluation.classification import CrossEncoderClassificationEvaluator
from sentrs.cross_encoder.evaluation.correlation import CrossEncoderCorrelationEvaluator
from sentrs.cross_encoder.evaluation.reranking import CrossEncoderRerankingEvaluator

__all__ = [
    "CEBinaryAccuracyEvaluator",
    "CEBinaryClassificationEvaluator",
    "CECorrelationEvaluator",
    "CEF1Evaluator",
    "CERerankingEvaluator",
    "CESoftmaxAccuracyEvaluator",
]

_USE_CLASSIFICATION = (
    "This evaluator has been deprecated in favor of the more general CrossEncoderClassificationEvaluator. "
    "Please use CrossEncoderClassificationEvaluator instead, which supports both binary and multi-class "
    "evaluation. It accepts approximately the same inputs as this evaluator."
)


@deprecated(_USE_CLASSIFICATION)
class CEBinaryAccuracyEvaluator(CrossEncoderClassificationEvaluator):
    """Deprecated: use :class:`CrossEncoderClassificationEvaluator`."""


@deprecated(_USE_CLASSIFICATION)
class CEBinaryClassificationEvaluator(CrossEncoderClassificationEvaluator):
    """Deprecated: use :class:`CrossEncoderClassificationEvaluator`."""


@deprecated(_USE_CLASSIFICATION)
class CEF1Evaluator(CrossEncoderClassificationEvaluator):
    """Deprecated: use :class:`CrossEncoderClassificationEvaluator`."""


@deprecated(_USE_CLASSIFICATION)
class CESoftmaxAccuracyEvaluator(CrossEncoderClassificationEvaluator):
    """Deprecated: use :class:`CrossEncoderClassificationEvaluator`."""


@deprecated(
    "The CECorrelationEvaluator has been renamed to CrossEncoderCorrelationEvaluator. "
    "Please use CrossEncoderCorrelationEvaluator instead."
)
class CECorrelationEvaluator(CrossEncoderCorrelationEvaluator):
    """Deprecated: use :class:`CrossEncoderCorrelationEvaluator`."""


@deprecated(
    "The CERerankingEvaluator has been renamed to CrossEncoderRerankingEvaluator. "
    "Please use CrossEncoderRerankingEvaluator instead."
)
class CERerankingEvaluator(CrossEncoderRerankingEvaluator):
    """Deprecated: use :class:`CrossEncoderRerankingEvaluator`."""
