"""``SparseEncoderTrainer``: the training loop for sparse (SPLADE-style) models, over the shared base trainer."""

from __future__ import annotations

import logging
from typing import Any

from torch import nn

from sentrs.base.trainer import BaseTrainer
from sentrs.sparse_encoder.data_collator import SparseEncoderDataCollator
from sentrs.sparse_encoder.model import SparseEncoder
from sentrs.sparse_encoder.training_args import SparseEncoderTrainingArguments

logger = logging.getLogger(__name__)

__all__ = ["SparseEncoderTrainer"]


def _card_classes() -> tuple[Any, Any]:
    from sentrs.base.model_card_callback import SparseEncoderModelCardCallback
    from sentrs.sparse_encoder.model_card import SparseEncoderModelCardData

    return SparseEncoderModelCardData, SparseEncoderModelCardCallback


class SparseEncoderTrainer(BaseTrainer):
    """Trains a :class:`~sentrs.SparseEncoder`; see :class:`~sentrs.base.trainer.BaseTrainer` for the arguments.

    The default loss is :class:`~sentrs.sparse_encoder.losses.SpladeLoss` around
    :class:`~sentrs.sparse_encoder.losses.SparseMultipleNegativesRankingLoss` with query/document regularizer
    weights 5e-5/3e-5. A SpladeLoss gets a
    :class:`~sentrs.sparse_encoder.callbacks.SpladeRegularizerWeightSchedulerCallback` (the regularizer weights
    rise from 0 over the first part of training) unless one for that loss is given.
    """

    model_class = SparseEncoder
    data_collator_class = SparseEncoderDataCollator
    training_args_class = SparseEncoderTrainingArguments
    model_card_data_class, model_card_callback_class = _card_classes()

    def get_default_loss(self, model: SparseEncoder) -> nn.Module:
        from sentrs.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

        logger.info(
            "No `loss` given: using SpladeLoss(SparseMultipleNegativesRankingLoss) with query/document regularizer "
            "weights 5e-5/3e-5 (tune them for your task)."
        )
        return SpladeLoss(
            model=model,
            loss=SparseMultipleNegativesRankingLoss(model=model),
            query_regularizer_weight=5e-5,
            document_regularizer_weight=3e-5,
        )

    def prepare_loss(self, loss: Any, model: Any) -> nn.Module:
        """Also puts a regularizer-weight scheduler for a SpladeLoss second in the callback list (after the default
        flow callback), so it sets the weights before the others read them."""
        from sentrs.sparse_encoder.callbacks import SpladeRegularizerWeightSchedulerCallback
        from sentrs.sparse_encoder.losses import SpladeLoss

        loss = super().prepare_loss(loss, model)
        if not isinstance(loss, SpladeLoss):
            return loss
        callbacks = self.callback_handler.callbacks
        index = next(
            (
                i
                for i, cb in enumerate(callbacks)
                if isinstance(cb, SpladeRegularizerWeightSchedulerCallback) and cb.loss is loss
            ),
            None,
        )
        if index is not None and index <= 1:
            return loss
        if index is not None:
            callback = callbacks.pop(index)
        else:
            logger.warning(
                "SpladeLoss without a SpladeRegularizerWeightSchedulerCallback: adding one, which raises the "
                "regularizer weights from 0 to their values over the first third of training."
            )
            callback = SpladeRegularizerWeightSchedulerCallback(loss=loss)
        callbacks.insert(1, callback)
        return loss
