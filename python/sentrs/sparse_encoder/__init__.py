"""Sparse (SPLADE-style) embedding models.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``model_card.py``. The training names the reference exports here
(``SparseEncoderTrainer``, ...) raise :class:`~sentrs.exceptions.NotYetAvailableError` until training lands.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseEncoder"]

__getattr__ = unavailable_getattr(
    __name__,
    {
        "SparseEncoderDataCollator": "training",
        "SparseEncoderModelCardData": "model card data (it lands with training)",
        "SparseEncoderTrainer": "training",
        "SparseEncoderTrainingArguments": "training",
    },
)
