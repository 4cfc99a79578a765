"""``SentenceTransformerModelCardData``: what a training run records for a dense model's card.

It lands with training; the card ``save`` writes today comes from :mod:`sentrs.base.model_card`. Until then the
names here raise :class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__getattr__ = unavailable_getattr(__name__, "model card data (it lands with training)")
