"""Evaluators for dense embedding models, as in the reference's ``sentence_transformer.evaluation``:
``BinaryClassificationEvaluator``, ``EmbeddingSimilarityEvaluator``, ``MSEEvaluator``, ``TripletEvaluator``,
``SequentialEvaluator`` (runs several in turn), and the base class ``BaseEvaluator`` (also named
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
    "BinaryClassificationEvaluator": f"{_PACKAGE}.binary_classification",
    "EmbeddingSimilarityEvaluator": f"{_PACKAGE}.embedding_similarity",
    "MSEEvaluator": f"{_PACKAGE}.mse",
    "SentenceEvaluator": "sentrs.base.evaluation.evaluator",
    "SequentialEvaluator": "sentrs.base.evaluation.sequential",
    "SimilarityFunction": "sentrs.base.similarity",
    "TripletEvaluator": f"{_PACKAGE}.triplet",
}

# The reference's evaluators that sentrs does not implement yet.
_NOT_YET = dict.fromkeys(
    (
        "InformationRetrievalEvaluator",
        "LabelAccuracyEvaluator",
        "MSEEvaluatorFromDataFrame",
        "NanoBEIREvaluator",
        "ParaphraseMiningEvaluator",
        "RerankingEvaluator",
        "TranslationEvaluator",
    ),
    "the {name} among the evaluators",
)

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

if TYPE_CHECKING:
    from sentrs.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
    from sentrs.base.evaluation.sequential import SequentialEvaluator
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sentence_transformer.evaluation.binary_classification import BinaryClassificationEvaluator
    from sentrs.sentence_transformer.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
    from sentrs.sentence_transformer.evaluation.mse import MSEEvaluator
    from sentrs.sentence_transformer.evaluation.triplet import TripletEvaluator

__all__ = [
    "BaseEvaluator",
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "MSEEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TripletEvaluator",
]
