"""Evaluators for multi-vector (late-interaction) models, as in the reference's
``multi_vector_encoder.evaluation``: :class:`MultiVectorInformationRetrievalEvaluator` (MaxSim search over the corpus
on the Rust kernel, with a running top-k), :class:`MultiVectorNanoBEIREvaluator` (downloads its data from the Hugging
Face Hub), :class:`MultiVectorRerankingEvaluator`, :class:`MultiVectorTripletEvaluator` and
:class:`MultiVectorDistillationEvaluator`. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.multi_vector_encoder.evaluation"

_LAZY = {
    "MultiVectorDistillationEvaluator": f"{_PACKAGE}.distillation",
    "MultiVectorInformationRetrievalEvaluator": f"{_PACKAGE}.information_retrieval",
    "MultiVectorNanoBEIREvaluator": f"{_PACKAGE}.nano_beir",
    "MultiVectorRerankingEvaluator": f"{_PACKAGE}.reranking",
    "MultiVectorTripletEvaluator": f"{_PACKAGE}.triplet",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.multi_vector_encoder.evaluation.distillation import MultiVectorDistillationEvaluator
    from sentrs.multi_vector_encoder.evaluation.information_retrieval import MultiVectorInformationRetrievalEvaluator
    from sentrs.multi_vector_encoder.evaluation.nano_beir import MultiVectorNanoBEIREvaluator
    from sentrs.multi_vector_encoder.evaluation.reranking import MultiVectorRerankingEvaluator
    from sentrs.multi_vector_encoder.evaluation.triplet import MultiVectorTripletEvaluator

__all__ = [
    "MultiVectorDistillationEvaluator",
    "MultiVectorInformationRetrievalEvaluator",
    "MultiVectorNanoBEIREvaluator",
    "MultiVectorRerankingEvaluator",
    "MultiVectorTripletEvaluator",
]
