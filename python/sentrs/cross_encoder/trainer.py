"""``CrossEncoderTrainer``: the training loop for cross-encoders, over the shared base trainer.

Training lands in a later issue; until then the names here raise :class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__getattr__ = unavailable_getattr(__name__, "training")
