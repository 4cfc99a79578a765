"""``CrossEncoderTrainer``: the training loop for cross-encoders, over the shared base trainer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from torch import nn

from sentrs.base.trainer import BaseTrainer
from sentrs.cross_encoder.data_collator import CrossEncoderDataCollator
from sentrs.cross_encoder.model import CrossEncoder
from sentrs.cross_encoder.training_args import CrossEncoderTrainingArguments

logger = logging.getLogger(__name__)

__all__ = ["CrossEncoderTrainer"]


def _card_classes() -> tuple[Any, Any]:
    from sentrs.base.model_card_callback import CrossEncoderModelCardCallback
    from sentrs.cross_encoder.model_card import CrossEncoderModelCardData

    return CrossEncoderModelCardData, CrossEncoderModelCardCallback


class CrossEncoderTrainer(BaseTrainer):
    """Trains a :class:`~sentrs.CrossEncoder`; see :class:`~sentrs.base.trainer.BaseTrainer` for the arguments.

    The dataset's columns are passed raw (lists of texts) to the loss, which pairs the first column (the query)
    with the others and tokenizes the pairs. The default loss is
    :class:`~sentrs.cross_encoder.losses.BinaryCrossEntropyLoss` for one label and
    :class:`~sentrs.cross_encoder.losses.CrossEntropyLoss` for several. IterableDatasets are not supported.
    """

    model_class = CrossEncoder
    data_collator_class = CrossEncoderDataCollator
    training_args_class = CrossEncoderTrainingArguments
    model_card_data_class, model_card_callback_class = _card_classes()

    def __init__(
        self,
        model: CrossEncoder | None = None,
        args: CrossEncoderTrainingArguments | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        loss: Any = None,
        evaluator: Any = None,
        data_collator: CrossEncoderDataCollator | None = None,
        processing_class: Any = None,
        model_init: Callable[[], CrossEncoder] | None = None,
        compute_metrics: Callable[[Any], dict[str, Any]] | None = None,
        callbacks: list[Any] | None = None,
        optimizers: tuple[Any, Any] = (None, None),
        optimizer_cls_and_kwargs: tuple[type[Any], dict[str, Any]] | None = None,
        preprocess_logits_for_metrics: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        from datasets import IterableDataset

        for kind, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            values = dataset.values() if isinstance(dataset, dict) else [dataset]
            if any(isinstance(d, IterableDataset) for d in values):
                raise ValueError(
                    f"CrossEncoderTrainer does not take an IterableDataset as `{kind}_dataset`; convert it to a "
                    "Dataset or DatasetDict"
                )
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            loss=loss,
            evaluator=evaluator,
            data_collator=data_collator,
            processing_class=processing_class,
            model_init=model_init,
            compute_metrics=compute_metrics,
            callbacks=callbacks,
            optimizers=optimizers,
            optimizer_cls_and_kwargs=optimizer_cls_and_kwargs,
            preprocess_logits_for_metrics=preprocess_logits_for_metrics,
        )

    def get_default_loss(self, model: CrossEncoder) -> nn.Module:
        from sentrs.cross_encoder.losses import BinaryCrossEntropyLoss, CrossEntropyLoss

        loss = BinaryCrossEntropyLoss(model) if model.num_labels == 1 else CrossEntropyLoss(model)
        logger.info("No `loss` given: using %s.", type(loss).__name__)
        return loss

    def collect_features(self, inputs: dict[str, Any]) -> tuple[list[Any], Any]:
        """The raw columns in order (the first is the query) and the labels."""
        labels = inputs.pop("label", None)
        return list(inputs.values()), labels

    def call_loss(self, loss_fn: nn.Module, inputs: dict[str, Any]) -> Any:
        prompt = inputs.pop("prompt", None)
        task = inputs.pop("task", None)
        features, labels = self.collect_features(inputs)
        try:
            return loss_fn(features, labels, prompt=prompt, task=task)
        except TypeError as exc:
            if "prompt" not in str(exc) and "task" not in str(exc):
                raise
            logger.warning(
                "%s.forward takes no `prompt`/`task` keyword; calling it without them.", type(loss_fn).__name__
            )
            return loss_fn(features, labels)
