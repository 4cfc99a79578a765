"""Evaluators for dense embedding models, as in the reference's ``sentence_transformer.evaluation``:
``InformationRetrievalEvaluator``, ``EmbeddingSimilarityEvaluator``, ``NanoBEIREvaluator``, ... The old path
``sentrs.evaluation`` is this package (see :mod:`sentrs.util.deprecated_import`).

``SimilarityFunction`` is here, as in the reference. The evaluators land with training; until then their names raise
:class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

__getattr__, __dir__ = lazy_module_attrs(
    __name__, {"SimilarityFunction": "sentrs.base.similarity"}, missing=unavailable_getattr(__name__, "evaluators")
)

if TYPE_CHECKING:
    from sentrs.base.similarity import SimilarityFunction

__all__ = ["SimilarityFunction"]
