"""The trainer callbacks the old ``fit`` APIs add to keep the behaviour of the old training loops: evaluate after
every epoch, call the user's ``callback(score, epoch, steps)``, and save the model to ``output_path``.

:meth:`SentenceTransformer.fit <sentrs.sentence_transformer.fit_mixin.FitMixin.fit>` saves with
:class:`SaveModelCallback` (the best model, or the final one without an evaluator);
:meth:`CrossEncoder.fit <sentrs.cross_encoder.fit_mixin.FitMixin.fit>` with :class:`SaveBestModelCallback` (only the
best model by the evaluator, as the reference's cross-encoder ``SaveModelCallback``).

They import transformers, so they live apart from the fit mixins (which the model classes import) and load from
there on first use, under the reference's names.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

__all__ = ["EvaluatorCallback", "OriginalCallback", "SaveBestModelCallback", "SaveModelCallback"]


def _primary_key(evaluator: Any) -> str:
    """The metric-name suffix that identifies an evaluator's main score in the trainer's metrics."""
    return getattr(evaluator, "primary_metric", None) or "evaluator"


class SaveBestModelCallback(TrainerCallback):
    """Saves the model to ``output_dir`` whenever an evaluation beats the best primary metric so far (in the direction
    of ``evaluator.greater_is_better``), with an evaluator and ``save_best_model``; never without an evaluator.

    Args:
        output_dir: the folder to save to.
        evaluator: the evaluator whose primary metric ranks the models, or None.
        save_best_model: save on improvement (only meaningful with an evaluator).
    """

    def __init__(self, output_dir: str, evaluator: Any, save_best_model: bool) -> None:
        super().__init__()
        self.output_dir = output_dir
        self.evaluator = evaluator
        self.save_best_model = save_best_model
        self.best_metric: float | None = None

    def is_better(self, new_metric: float) -> bool:
        """Whether ``new_metric`` beats the best one so far."""
        if self.best_metric is None:
            return True
        if getattr(self.evaluator, "greater_is_better", True):
            return new_metric > self.best_metric
        return new_metric < self.best_metric

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if self.evaluator is None or not self.save_best_model or model is None:
            return
        key = _primary_key(self.evaluator)
        for name, value in (metrics or {}).items():
            if name.endswith(key) and self.is_better(value):
                self.best_metric = value
                model.save(self.output_dir)


class SaveModelCallback(SaveBestModelCallback):
    """:class:`SaveBestModelCallback` that, without an evaluator, also saves the final model when training ends.

    Args:
        output_dir: the folder to save to.
        evaluator: the evaluator whose primary metric ranks the models, or None.
        save_best_model: save on improvement (only meaningful with an evaluator).
    """

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        if self.evaluator is None and model is not None:
            model.save(self.output_dir)


class EvaluatorCallback(TrainerCallback):
    """Runs the evaluator at the end of every epoch, as the old ``fit`` did (on top of any ``evaluation_steps``),
    and reports its metrics, prefixed ``eval_``, to the other callbacks through :attr:`trainer`.

    Args:
        evaluator: the evaluator.
        output_path: results go to ``output_path/eval`` (created now) when given.
    """

    def __init__(self, evaluator: Any, output_path: str | None = None) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.output_path = None if output_path is None else os.path.join(output_path, "eval")
        if self.output_path is not None:
            os.makedirs(self.output_path, exist_ok=True)
        self.metric_key_prefix = "eval"
        self.trainer: Any = None  # set by fit() once the trainer exists

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, model: Any = None, **kwargs: Any
    ) -> None:
        result = self.evaluator(model, output_path=self.output_path, epoch=state.epoch, steps=state.global_step)
        if not isinstance(result, dict):
            result = {"evaluator": result}
        prefix = f"{self.metric_key_prefix}_"
        metrics = {(key if key.startswith(prefix) else prefix + key): value for key, value in result.items()}
        if self.trainer is not None:
            self.trainer.callback_handler.on_evaluate(args, state, control, metrics=metrics)


class OriginalCallback(TrainerCallback):
    """Calls the old API's ``callback(score, epoch, steps)`` after each evaluation, with the evaluator's primary
    metric as the score.

    Args:
        callback: the user's function.
        evaluator: the evaluator whose primary metric is reported.
    """

    def __init__(self, callback: Callable[[float, int, int], None], evaluator: Any) -> None:
        super().__init__()
        self.callback = callback
        self.evaluator = evaluator

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        key = _primary_key(self.evaluator)
        for name, value in (metrics or {}).items():
            if name.endswith(key):
                self.callback(value, state.epoch, state.global_step)  # type: ignore[arg-type]
                return
