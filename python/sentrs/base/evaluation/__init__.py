"""The evaluator base class every model type's evaluators derive from, as in the reference's ``base.evaluation``.

``SequentialEvaluator`` raises :class:`~sentrs.exceptions.NotYetAvailableError` until it lands.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator

__getattr__ = unavailable_getattr(__name__, {"SequentialEvaluator": "the {name} among the evaluators"})

__all__ = ["BaseEvaluator", "SentenceEvaluator"]
