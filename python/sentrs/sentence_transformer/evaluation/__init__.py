"""Evaluators for dense embedding models, as in the reference's ``sentence_transformer.evaluation``:
``EmbeddingSimilarityEvaluator``, ``TripletEvaluator``, and the base class ``BaseEvaluator`` (also named
``SentenceEvaluator``). The old path ``sentrs.evaluation`` is this package (see :mod:`sentrs.util.deprecated_import`).

``SimilarityFunction`` is here, as in the reference. Names load on first use. The reference's other evaluators
(``InformationRetrievalEvaluator``, ``NanoBEIREvaluator``, ...) raise
:class:`~sentrs.exceptions.NotYetAvailableError` until they land.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

_PACKAGE = "sentrs.sentence_transformer.evaluation"

_LAZY = {
    "BaseEvaluator": "sentrs.base.evaluation.evaluator",
    "EmbeddingSimilarityEvaluator": f"{_PACKAGE}.embedding_similarity",
    "SentenceEvaluator": "sentrs.base.evaluation.evaluator",
    "SimilarityFunction": "sentrs.base.similarity",
    "TripletEvaluator": f"{_PACKAGE}.triplet",
}

# The reference's evaluators that sentrs does not implement yet.
_NOT_YET = dict.fromkeys(
    (
        "BinaryClassificationEvaluator",
        "InformationRetrievalEvaluator",
        "LabelAccuracyEvaluator",
        "MSEEvaluator",
        "MSEEvaluatorFromDataFrame",
        "NanoBEIREvaluator",
        "ParaphraseMiningEvaluator",
        "RerankingEvaluator",
        "SequentialEvaluator",
        "TranslationEvaluator",
    ),
    "the {name} among the evaluators",
)

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

if TYPE_CHECKING:
    from sentrs.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sentence_transformer.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
    from sentrs.sentence_transformer.evaluation.triplet import TripletEvaluator

__all__ = [
    "BaseEvaluator",
    "EmbeddingSimilarityEvaluator",
    "SentenceEvaluator",
    "SimilarityFunction",
    "TripletEvaluator",
]
