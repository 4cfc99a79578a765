"""Training losses for dense embedding models, one class per module, as in the reference's
``sentence_transformer.losses``: ``MultipleNegativesRankingLoss``, ``CoSENTLoss``, ``MatryoshkaLoss``, ... The old path
``sentrs.losses`` is this package (see :mod:`sentrs.util.deprecated_import`).

Training lands in a later issue; until then every public name here raises
:class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__getattr__ = unavailable_getattr(__name__, "training losses")
