"""``SentenceTransformerTrainer``: the training loop for dense embedding models, over the shared base trainer."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from sentrs.base.trainer import BaseTrainer
from sentrs.sentence_transformer.data_collator import SentenceTransformerDataCollator
from sentrs.sentence_transformer.model import SentenceTransformer
from sentrs.sentence_transformer.training_args import SentenceTransformerTrainingArguments

logger = logging.getLogger(__name__)

__all__ = ["SentenceTransformerTrainer"]


def _card_classes() -> tuple[Any, Any]:
    try:
        from sentrs.sentence_transformer.model_card import (
            SentenceTransformerModelCardCallback,
            SentenceTransformerModelCardData,
        )
    except ImportError:  # pragma: no cover - the card module is optional while it lands
        return None, None
    return SentenceTransformerModelCardData, SentenceTransformerModelCardCallback


class SentenceTransformerTrainer(BaseTrainer):
    """Trains a :class:`~sentrs.SentenceTransformer` on ``datasets`` with a dense loss; see
    :class:`~sentrs.base.trainer.BaseTrainer` for the arguments. The default loss is
    :class:`~sentrs.sentence_transformer.losses.CoSENTLoss`.

    Example::

        from datasets import Dataset
        from sentrs import SentenceTransformer, SentenceTransformerTrainer
        from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

        model = SentenceTransformer("all-MiniLM-L6-v2")
        train = Dataset.from_dict({"anchor": [...], "positive": [...]})
        trainer = SentenceTransformerTrainer(model=model, train_dataset=train,
                                             loss=MultipleNegativesRankingLoss(model))
        trainer.train()
    """

    model_class = SentenceTransformer
    data_collator_class = SentenceTransformerDataCollator
    training_args_class = SentenceTransformerTrainingArguments
    model_card_data_class, model_card_callback_class = _card_classes()

    def get_default_loss(self, model: SentenceTransformer) -> nn.Module:
        from sentrs.sentence_transformer.losses import CoSENTLoss

        loss = CoSENTLoss(model)
        logger.info("No `loss` given: using CoSENTLoss.")
        return loss
