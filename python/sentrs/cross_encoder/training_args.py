"""``CrossEncoderTrainingArguments``: the training options for cross-encoders.

The fields of :class:`~sentrs.base.training_args.BaseTrainingArguments`, except that a cross-encoder's columns
are joined into pairs, so ``prompts`` and ``router_mapping`` are one value or one value per dataset, never per
column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from sentrs.base.training_args import BaseTrainingArguments

__all__ = ["CrossEncoderTrainingArguments"]


@dataclass
class CrossEncoderTrainingArguments(BaseTrainingArguments):
    """Training arguments for :class:`~sentrs.CrossEncoderTrainer`.

    Args:
        prompts: one prompt for every pair, or dataset name -> prompt.
        router_mapping: dataset name -> Router task (a cross-encoder's inputs are pairs, not columns).
    """

    prompts: Union[str, dict[str, str], None] = field(  # noqa: UP007
        default=None, metadata={"help": "One prompt, or dataset name -> prompt."}
    )
    router_mapping: Union[str, dict[str, str], None] = field(  # noqa: UP007
        default_factory=dict, metadata={"help": "Dataset name -> Router task."}
    )
