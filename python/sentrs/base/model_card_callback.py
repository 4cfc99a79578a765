"""The trainer callbacks that record a training run in ``model.model_card_data``.

They subclass ``transformers.TrainerCallback``, so this module imports transformers; the model card modules serve
these names lazily (``from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardCallback``
imports this module on first use).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from transformers import TrainerCallback

from sentrs.base.model_card import get_losses

__all__ = [
    "BaseModelCardCallback",
    "CrossEncoderModelCardCallback",
    "ModelCardCallback",
    "MultiVectorEncoderModelCardCallback",
    "SentenceTransformerModelCardCallback",
    "SparseEncoderModelCardCallback",
]

#: Training arguments the card does not list: paths, logging and saving cadence, Hub credentials.
IGNORED_ARGUMENTS = frozenset(
    {
        "output_dir",
        "logging_dir",
        "logging_strategy",
        "logging_first_step",
        "logging_steps",
        "evaluation_strategy",
        "eval_strategy",
        "eval_steps",
        "eval_delay",
        "save_strategy",
        "save_steps",
        "save_total_limit",
        "metric_for_best_model",
        "greater_is_better",
        "report_to",
        "samples_per_label",
        "show_progress_bar",
        "do_train",
        "do_eval",
        "do_test",
        "run_name",
        "hub_token",
        "push_to_hub_token",
    }
)


class BaseModelCardCallback(TrainerCallback):
    """Records a run for the model card: datasets, losses and widget examples when the trainer is built, the
    hyperparameters when training starts, losses and metrics as they are logged.

    Args:
        default_args_dict: ``TrainingArguments(...).to_dict()`` of default arguments, to tell which were changed.
    """

    def __init__(self, default_args_dict: dict[str, Any]) -> None:
        super().__init__()
        self.default_args_dict = default_args_dict

    def on_init_end(
        self, args: Any, state: Any, control: Any, model: Any = None, trainer: Any = None, **kwargs: Any
    ) -> None:
        """Called by the trainer's constructor (with ``trainer=self``): tags the card ``generated_from_trainer``
        and records the datasets, the losses and widget examples."""
        card = getattr(model, "model_card_data", None)
        if card is None:
            return
        card.add_tags("generated_from_trainer")
        if trainer is None:
            return
        handler = getattr(trainer, "callback_handler", None)
        for callback in getattr(handler, "callbacks", None) or []:
            if type(callback).__name__ == "CodeCarbonCallback":
                card.code_carbon_callback = callback
                break
        loss = getattr(trainer, "loss", None)
        router_mapping = getattr(args, "router_mapping", None) or {}
        train_dataset = getattr(trainer, "train_dataset", None)
        eval_dataset = getattr(trainer, "eval_dataset", None)
        if train_dataset:
            card.train_datasets = card.extract_dataset_metadata(
                train_dataset, card.train_datasets, loss, "train", router_mapping
            )
        if eval_dataset:
            card.eval_datasets = card.extract_dataset_metadata(
                eval_dataset, card.eval_datasets, loss, "eval", router_mapping
            )
        if loss is not None:
            card.set_losses(get_losses(loss))
        dataset = eval_dataset or train_dataset
        if not card.widget and dataset:
            card.set_widget_examples(dataset)

    def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        """Records every training argument, and those that differ from the defaults, and starts the clock."""
        card = getattr(model, "model_card_data", None)
        if card is None:
            return
        arguments = {key: value for key, value in args.to_dict().items() if key not in IGNORED_ARGUMENTS}
        card.all_hyperparameters = arguments
        card.non_default_hyperparameters = {
            key: value
            for key, value in arguments.items()
            if key in self.default_args_dict and value != self.default_args_dict[key]
        }
        card._training_start_time = time.time()

    def on_evaluate(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Adds the evaluation losses (``eval_loss`` reads "Validation Loss", ``eval_<name>_loss`` "<name> loss")
        to the training-log row of the current step, and counts the time spent evaluating."""
        card = getattr(model, "model_card_data", None)
        if card is None or not metrics:
            return
        losses = {
            " ".join(key.split("_")[1:]): value
            for key, value in metrics.items()
            if key.startswith("eval_") and key.endswith("_loss")
        }
        if list(losses) == ["loss"]:
            losses = {"Validation Loss": losses["loss"]}
        card.evaluation_duration += float(metrics.get("eval_runtime") or 0.0)
        card._log_row(state.epoch, state.global_step).update(losses)

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        """Adds the training loss to the training-log row of the current step."""
        card = getattr(model, "model_card_data", None)
        if card is None or not logs or "loss" not in logs:
            return
        card._log_row(state.epoch, state.global_step)["Training Loss"] = logs["loss"]


class SentenceTransformerModelCardCallback(BaseModelCardCallback):
    """The model-card callback of ``SentenceTransformerTrainer``."""


class CrossEncoderModelCardCallback(BaseModelCardCallback):
    """The model-card callback of ``CrossEncoderTrainer``."""


class SparseEncoderModelCardCallback(BaseModelCardCallback):
    """The model-card callback of ``SparseEncoderTrainer``."""


class MultiVectorEncoderModelCardCallback(BaseModelCardCallback):
    """The model-card callback of ``MultiVectorEncoderTrainer``."""


class ModelCardCallback(SentenceTransformerModelCardCallback):
    """Deprecated name of :class:`SentenceTransformerModelCardCallback`."""

    def __init__(self, default_args_dict: dict[str, Any]) -> None:
        warnings.warn(
            "ModelCardCallback is deprecated; use SentenceTransformerModelCardCallback",
            DeprecationWarning,
            stacklevel=2,
        )
        super().__init__(default_args_dict)
