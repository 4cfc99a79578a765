"""``MultiVectorEncoderTrainer``: the training loop for multi-vector (late-interaction) models."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from sentrs.base.trainer import BaseTrainer
from sentrs.multi_vector_encoder.data_collator import MultiVectorEncoderDataCollator
from sentrs.multi_vector_encoder.model import MultiVectorEncoder
from sentrs.multi_vector_encoder.training_args import MultiVectorEncoderTrainingArguments

logger = logging.getLogger(__name__)

__all__ = ["MultiVectorEncoderTrainer"]


def _card_classes() -> tuple[Any, Any]:
    from sentrs.base.model_card_callback import MultiVectorEncoderModelCardCallback
    from sentrs.multi_vector_encoder.model_card import MultiVectorEncoderModelCardData

    return MultiVectorEncoderModelCardData, MultiVectorEncoderModelCardCallback


class MultiVectorEncoderTrainer(BaseTrainer):
    """Trains a :class:`~sentrs.MultiVectorEncoder`; see :class:`~sentrs.base.trainer.BaseTrainer` for the
    arguments.

    Datasets have the usual shapes (pairs, triplets, several negatives), or for distillation
    ``(query, document_1, ..., document_n, scores)`` with the teacher's n scores per row. The first column is tokenized
    as queries and the others as documents unless ``router_mapping`` says otherwise. The default loss is
    :class:`~sentrs.multi_vector_encoder.losses.MultiVectorMultipleNegativesRankingLoss`.
    """

    model_class = MultiVectorEncoder
    data_collator_class = MultiVectorEncoderDataCollator
    training_args_class = MultiVectorEncoderTrainingArguments
    model_card_data_class, model_card_callback_class = _card_classes()

    def get_default_loss(self, model: MultiVectorEncoder) -> nn.Module:
        from sentrs.multi_vector_encoder.losses import MultiVectorMultipleNegativesRankingLoss

        logger.info(
            "No `loss` given: using MultiVectorMultipleNegativesRankingLoss; pass loss= for distillation, margin-MSE "
            "or the cached (large-batch) variant."
        )
        return MultiVectorMultipleNegativesRankingLoss(model=model)
