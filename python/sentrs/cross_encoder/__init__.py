"""Cross-encoders: pair scoring and reranking.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``model_card.py``. The training names load on first use (they import torch,
transformers and datasets).
"""

from __future__ import annotations

from sentrs._lazy import lazy_module_attrs
from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoder"]

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "CrossEncoderModelCardData": "sentrs.cross_encoder.model_card",
        "CrossEncoderDataCollator": "sentrs.cross_encoder.data_collator",
        "CrossEncoderTrainer": "sentrs.cross_encoder.trainer",
        "CrossEncoderTrainingArguments": "sentrs.cross_encoder.training_args",
    },
)
