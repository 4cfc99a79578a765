"""Evaluators for dense embedding models, as in the reference's ``sentence_transformer.evaluation``:
``BinaryClassificationEvaluator``, ``EmbeddingSimilarityEvaluator``, ``InformationRetrievalEvaluator``,
``LabelAccuracyEvaluator``, ``MSEEvaluator``, ``MSEEvaluatorFromDataFrame``, ``NanoBEIREvaluator`` (downloads its
data from the Hugging Face Hub), ``ParaphraseMiningEvaluator``, ``RerankingEvaluator``, ``TranslationEvaluator``,
``TripletEvaluator``, ``SequentialEvaluator`` (runs several in turn), and the base class ``BaseEvaluator`` (also
named ``SentenceEvaluator``). The old path ``sentrs.evaluation`` is this package (see
:mod:`sentrs.util.deprecated_import`).

``SimilarityFunction`` is here, as in the reference. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.sentence_transformer.evaluation"

_LAZY = {
    "BaseEvaluator": "sentrs.base.evaluation.evaluator",
    "BinaryClassificationEvaluator": f"{_PACKAGE}.binary_classification",
    "EmbeddingSimilarityEvaluator": f"{_PACKAGE}.embedding_similarity",
    "InformationRetrievalEvaluator": f"{_PACKAGE}.information_retrieval",
    "LabelAccuracyEvaluator": f"{_PACKAGE}.label_accuracy",
    "MSEEvaluator": f"{_PACKAGE}.mse",
    "MSEEvaluatorFromDataFrame": f"{_PACKAGE}.mse_from_dataframe",
    "NanoBEIREvaluator": f"{_PACKAGE}.nano_beir",
    "ParaphraseMiningEvaluator": f"{_PACKAGE}.paraphrase_mining",
    "RerankingEvaluator": f"{_PACKAGE}.reranking",
    "SentenceEvaluator": "sentrs.base.evaluation.evaluator",
    "SequentialEvaluator": "sentrs.base.evaluation.sequential",
    "SimilarityFunction": "sentrs.base.similarity",
    "TranslationEvaluator": f"{_PACKAGE}.translation",
    "TripletEvaluator": f"{_PACKAGE}.triplet",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
    from sentrs.base.evaluation.sequential import SequentialEvaluator
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sentence_transformer.evaluation.binary_classification import BinaryClassificationEvaluator
    from sentrs.sentence_transformer.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
    from sentrs.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator
    from sentrs.sentence_transformer.evaluation.label_accuracy import LabelAccuracyEvaluator
    from sentrs.sentence_transformer.evaluation.mse import MSEEvaluator
    from sentrs.sentence_transformer.evaluation.mse_from_dataframe import MSEEvaluatorFromDataFrame
    from sentrs.sentence_transformer.evaluation.nano_beir import NanoBEIREvaluator
    from sentrs.sentence_transformer.evaluation.paraphrase_mining import ParaphraseMiningEvaluator
    from sentrs.sentence_transformer.evaluation.reranking import RerankingEvaluator
    from sentrs.sentence_transformer.evaluation.translation import TranslationEvaluator
    from sentrs.sentence_transformer.evaluation.triplet import TripletEvaluator

__all__ = [
    "BaseEvaluator",
    "BinaryClassificationEvaluator",
    "EmbeddingSimilarityEvaluator",
    "InformationRetrievalEvaluator",
    "LabelAccuracyEvaluator",
    "MSEEvaluator",
    "MSEEvaluatorFromDataFrame",
    "NanoBEIREvaluator",
    "ParaphraseMiningEvaluator",
    "RerankingEvaluator",
    "SentenceEvaluator",
    "SequentialEvaluator",
    "SimilarityFunction",
    "TranslationEvaluator",
    "TripletEvaluator",
]
