"""Evaluators for cross-encoders, as in the reference's ``cross_encoder.evaluation``:
``CrossEncoderClassificationEvaluator`` (binary and multi-class), ``CrossEncoderCorrelationEvaluator``,
``CrossEncoderRerankingEvaluator``, ``CrossEncoderNanoBEIREvaluator`` (downloads its data from the Hugging Face Hub),
and the deprecated ``CE*`` names of older releases. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.cross_encoder.evaluation"

_LAZY = {
    "CEBinaryAccuracyEvaluator": f"{_PACKAGE}.deprecated",
    "CEBinaryClassificationEvaluator": f"{_PACKAGE}.deprecated",
    "CECorrelationEvaluator": f"{_PACKAGE}.deprecated",
    "CEF1Evaluator": f"{_PACKAGE}.deprecated",
    "CERerankingEvaluator": f"{_PACKAGE}.deprecated",
    "CESoftmaxAccuracyEvaluator": f"{_PACKAGE}.deprecated",
    "CrossEncoderClassificationEvaluator": f"{_PACKAGE}.classification",
    "CrossEncoderCorrelationEvaluator": f"{_PACKAGE}.correlation",
    "CrossEncoderNanoBEIREvaluator": f"{_PACKAGE}.nano_beir",
    "CrossEncoderRerankingEvaluator": f"{_PACKAGE}.reranking",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.cross_encoder.evaluation.classification import CrossEncoderClassificationEvaluator
    from sentrs.cross_encoder.evaluation.correlation import CrossEncoderCorrelationEvaluator
    from sentrs.cross_encoder.evaluation.deprecated import (
        CEBinaryAccuracyEvaluator,
        CEBinaryClassificationEvaluator,
        CECorrelationEvaluator,
        CEF1Evaluator,
        CERerankingEvaluator,
        CESoftmaxAccuracyEvaluator,
    )
    from sentrs.cross_encoder.evaluation.nano_beir import CrossEncoderNanoBEIREvaluator
    from sentrs.cross_encoder.evaluation.reranking import CrossEncoderRerankingEvaluator

__all__ = [
    "CEBinaryAccuracyEvaluator",
    "CEBinaryClassificationEvaluator",
    "CECorrelationEvaluator",
    "CEF1Evaluator",
    "CERerankingEvaluator",
    "CESoftmaxAccuracyEvaluator",
    "CrossEncoderClassificationEvaluator",
    "CrossEncoderCorrelationEvaluator",
    "CrossEncoderNanoBEIREvaluator",
    "CrossEncoderRerankingEvaluator",
]
