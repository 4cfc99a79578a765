"""Evaluators for cross-encoders, as in the reference's ``cross_encoder.evaluation``:
``CrossEncoderRerankingEvaluator``, ``CrossEncoderClassificationEvaluator``, ``CrossEncoderNanoBEIREvaluator``, ...

They land with training; until then every public name here raises :class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__getattr__ = unavailable_getattr(__name__, "evaluators")
