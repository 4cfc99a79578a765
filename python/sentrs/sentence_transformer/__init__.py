"""Dense embedding models.

The package has the reference's shape: ``model.py``, ``modules/``, ``losses/``, ``evaluation/``, ``trainer.py``,
``training_args.py``, ``model_card.py``. The training names the reference exports here
(``SentenceTransformerTrainer``, ...) raise :class:`~sentrs.exceptions.NotYetAvailableError` until training lands.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["SentenceTransformer"]

__getattr__ = unavailable_getattr(
    __name__,
    {
        "SentenceTransformerDataCollator": "training",
        "SentenceTransformerModelCardData": "model card data (it lands with training)",
        "SentenceTransformerTrainer": "training",
        "SentenceTransformerTrainingArguments": "training",
    },
)
