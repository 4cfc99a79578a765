"""The evaluator base class every model type's evaluators derive from, and ``SequentialEvaluator``, which runs
several evaluators in turn, as in the reference's ``base.evaluation``."""

from __future__ import annotations

from sentrs.base.evaluation.evaluator import BaseEvaluator, SentenceEvaluator
from sentrs.base.evaluation.sequential import SequentialEvaluator

__all__ = ["BaseEvaluator", "SentenceEvaluator", "SequentialEvaluator"]
