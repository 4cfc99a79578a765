"""Cross-encoders: pair scoring and reranking.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``model_card.py``. The training names the reference exports here
(``CrossEncoderTrainer``, ...) raise :class:`~sentrs.exceptions.NotYetAvailableError` until training lands.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoder"]

__getattr__ = unavailable_getattr(
    __name__,
    {
        "CrossEncoderDataCollator": "training",
        "CrossEncoderModelCardData": "model card data (it lands with training)",
        "CrossEncoderTrainer": "training",
        "CrossEncoderTrainingArguments": "training",
    },
)
