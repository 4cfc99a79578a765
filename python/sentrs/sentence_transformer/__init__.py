"""Dense embedding models.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``data_collator.py``, ``model_card.py``. The training names load on first use (they import
torch, transformers and datasets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs.sentence_transformer.model import SentenceTransformer

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "SentenceTransformerDataCollator": "sentrs.sentence_transformer.data_collator",
        "SentenceTransformerModelCardData": "sentrs.sentence_transformer.model_card",
        "SentenceTransformerTrainer": "sentrs.sentence_transformer.trainer",
        "SentenceTransformerTrainingArguments": "sentrs.sentence_transformer.training_args",
        "evaluation": "sentrs.sentence_transformer.evaluation:-",
        "losses": "sentrs.sentence_transformer.losses:-",
        "modules": "sentrs.sentence_transformer.modules:-",
    },
)

if TYPE_CHECKING:
    from sentrs.sentence_transformer.data_collator import SentenceTransformerDataCollator
    from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardData
    from sentrs.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentrs.sentence_transformer.training_args import SentenceTransformerTrainingArguments

__all__ = [
    "SentenceTransformer",
    "SentenceTransformerDataCollator",
    "SentenceTransformerModelCardData",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
]
