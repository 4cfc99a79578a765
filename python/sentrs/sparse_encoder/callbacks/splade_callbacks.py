"""``SpladeRegularizerWeightSchedulerCallback``: raise a SpladeLoss's regularizer weights from 0 to their targets
over the first part of training."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from sentrs.sparse_encoder.losses.splade import SpladeLoss

__all__ = ["SchedulerType", "SpladeRegularizerWeightSchedulerCallback"]

logger = logging.getLogger(__name__)


class SchedulerType(Enum):
    """How the weights grow during the warmup: in proportion to the progress, or to its square."""

    LINEAR = "linear"
    QUADRATIC = "quadratic"


class SpladeRegularizerWeightSchedulerCallback(TrainerCallback):
    """Warms up ``document_regularizer_weight`` and ``query_regularizer_weight`` of a :class:`SpladeLoss`.

    At the start of training both weights are set to 0; before each step they become
    ``target * (step / warmup_steps)`` (linear) or ``target * (step / warmup_steps) ** 2`` (quadratic), where the
    targets are the weights the loss had when the callback was built and ``warmup_steps`` is
    ``int(warmup_ratio * total_steps)`` (at least 1). From ``warmup_steps`` on the targets hold. A strong
    regularizer from the first step would zero the embeddings before the ranking loss shapes them. The current
    weights are added to the training logs.

    Args:
        loss: the SpladeLoss (or CachedSpladeLoss) whose weights to schedule.
        scheduler_type: ``"linear"``/``"quadratic"`` or a :class:`SchedulerType`; an unknown name logs a warning and
            uses quadratic.
        warmup_ratio: the share of the training steps to reach the targets, in (0, 1]; anything else logs a
            warning and uses 1/3.

    Raises:
        ValueError: ``loss`` is not a SpladeLoss.
    """

    def __init__(
        self,
        loss: SpladeLoss,
        scheduler_type: str | SchedulerType = SchedulerType.QUADRATIC,
        warmup_ratio: float = 1 / 3,
    ) -> None:
        super().__init__()
        if isinstance(scheduler_type, str):
            try:
                scheduler_type = SchedulerType(scheduler_type.lower())
            except ValueError:
                logger.warning(
                    "Invalid scheduler_type: %s. Using default: %s", scheduler_type, SchedulerType.QUADRATIC.value
                )
                scheduler_type = SchedulerType.QUADRATIC
        if not 0 < warmup_ratio <= 1:
            logger.warning("warmup_ratio should be between 0 and 1, got %s. Setting to default 1/3.", warmup_ratio)
            warmup_ratio = 1 / 3
        if not isinstance(loss, SpladeLoss):
            raise ValueError(
                f"SpladeRegularizerWeightSchedulerCallback schedules the weights of a SpladeLoss, got "
                f"{type(loss).__name__}"
            )
        self.scheduler_type = scheduler_type
        self.loss = loss
        self.warmup_ratio = warmup_ratio
        self.max_document_regularizer_weight = loss.document_regularizer_weight
        self.max_query_regularizer_weight = loss.query_regularizer_weight
        self._current_document_regularizer_weight: float | None = 0.0
        self._current_query_regularizer_weight: float | None = (
            0.0 if self.max_query_regularizer_weight is not None else None
        )
        self.total_steps: int | None = None
        self.warmup_steps: int | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Works out the warmup length from the trainer's step count and sets both weights to 0."""
        if getattr(state, "max_steps", 0) > 0:
            self.total_steps = int(state.max_steps)
        elif hasattr(state, "num_train_epochs") and hasattr(state, "num_update_steps_per_epoch"):
            self.total_steps = int(state.num_update_steps_per_epoch * state.num_train_epochs)
        else:
            logger.warning("Cannot determine total steps from TrainerState. Weight scheduling may not work properly.")
            return
        self.warmup_steps = max(int(self.total_steps * self.warmup_ratio), 1)
        self.loss.query_regularizer_weight = self._current_query_regularizer_weight
        self.loss.document_regularizer_weight = self._current_document_regularizer_weight  # type: ignore[assignment]

    def _calculate_weight_value(self, step: int, max_value: float | None) -> float | None:
        """The weight at ``step`` for the target ``max_value`` (None stays None)."""
        if self.warmup_steps is None or max_value is None or step >= self.warmup_steps:
            return max_value
        ratio = step / max(self.warmup_steps, 1)
        if self.scheduler_type == SchedulerType.LINEAR:
            return max_value * ratio
        return max_value * ratio**2

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Sets the weights of the coming step."""
        if self.total_steps is None or self.warmup_steps is None:
            return
        query_weight = self._calculate_weight_value(state.global_step, self.max_query_regularizer_weight)
        document_weight = self._calculate_weight_value(state.global_step, self.max_document_regularizer_weight)
        if (
            query_weight != self._current_query_regularizer_weight
            or document_weight != self._current_document_regularizer_weight
        ):
            self.loss.query_regularizer_weight = query_weight
            self.loss.document_regularizer_weight = document_weight  # type: ignore[assignment]
            self._current_query_regularizer_weight = query_weight
            self._current_document_regularizer_weight = document_weight

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Adds the current weights to the logged values."""
        if logs is None:
            return
        logs["document_regularizer_weight"] = self._current_document_regularizer_weight
        if self._current_query_regularizer_weight is not None:
            logs["query_regularizer_weight"] = self._current_query_regularizer_weight
