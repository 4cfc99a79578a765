"""Sparse (SPLADE-style) embedding models.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``model_card.py``. The training names load on first use (they import torch,
transformers and datasets).
"""

from __future__ import annotations

from sentrs._lazy import lazy_module_attrs
from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseEncoder"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "SparseEncoderModelCardData": "sentrs.sparse_encoder.model_card",
        "SparseEncoderDataCollator": "sentrs.sparse_encoder.data_collator",
        "SparseEncoderTrainer": "sentrs.sparse_encoder.trainer",
        "SparseEncoderTrainingArguments": "sentrs.sparse_encoder.training_args",
    },
)
