"""``MultiVectorEncoderTrainingArguments``: the training options for multi-vector (late-interaction) models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from sentrs.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
from sentrs.base.training_args import BaseTrainingArguments

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "MultiVectorEncoderTrainingArguments"]


@dataclass
class MultiVectorEncoderTrainingArguments(BaseTrainingArguments):
    """Training arguments for :class:`~sentrs.MultiVectorEncoderTrainer`; the fields of
    :class:`~sentrs.base.training_args.BaseTrainingArguments` plus:

    Args:
        max_length: a token limit for training (and evaluation-loss) batches only, leaving the model's own lengths
            for inference, evaluators and the saved folder: one int for every column, or a dict from task
            (``"query"``, ``"document"``) to a length. Queries with a ``fixed`` query expansion keep its length;
            with ``min`` the limit is raised to at least the expansion length.
    """

    _VALID_DICT_FIELDS = [*BaseTrainingArguments._VALID_DICT_FIELDS, "max_length"]  # noqa: RUF012

    # The reference's order of the union (transformers' argument parser reads it).
    max_length: Union[int, None, dict[str, int]] = field(  # noqa: UP007, RUF036
        default=None,
        metadata={
            "help": "Token limit for training batches: an int for every column, or a mapping of tasks ('query', "
            "'document') to limits. Inference, evaluators and the saved model keep the model's own lengths."
        },
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.max_length
        if isinstance(value, dict):
            bad = {k: v for k, v in value.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
            if bad or not all(isinstance(k, str) for k in value):
                raise ValueError(f"max_length must map task names to positive ints, got {value!r}")
        elif value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"max_length must be a positive int, a dict of task -> int, or None, got {value!r}")
