"""Training losses for sparse embedding models, one class per module, as in the reference's
``sparse_encoder.losses``: ``SpladeLoss``, ``FlopsLoss``, ``CSRLoss``, ``SparseMultipleNegativesRankingLoss``, ...

Training lands in a later issue; until then every public name here raises
:class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__getattr__ = unavailable_getattr(__name__, "training losses")
