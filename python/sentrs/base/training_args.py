"""``BaseTrainingArguments``: the transformers training arguments plus the options every sentrs trainer reads.

The fields added on top of :class:`transformers.TrainingArguments` (``prompts``, ``batch_sampler``,
``multi_dataset_batch_sampler``, ``router_mapping``, ``learning_rate_mapping``) keep the reference's names, types
and defaults, so argument files and ``HfArgumentParser`` command lines written for sentence-transformers work here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

from transformers import TrainingArguments as _HFTrainingArguments
from transformers.training_args import ParallelMode

from sentrs.base.sampler import (
    BatchSamplers,
    DefaultBatchSampler,
    MultiDatasetBatchSamplers,
    MultiDatasetDefaultBatchSampler,
)

logger = logging.getLogger(__name__)

__all__ = ["BaseTrainingArguments"]


def _parse_json_dict(name: str, value: Any, what: str) -> dict[str, Any]:
    """``None`` -> ``{}``; a JSON string -> its dict; a dict as is; anything else raises naming ``name``."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"`{name}` must be a dict mapping {what} (a JSON string of one also works); got {value!r}"
            ) from exc
    if not isinstance(value, dict):
        raise ValueError(f"`{name}` must be a dict mapping {what}; got {type(value).__name__}: {value!r}")
    return value


def _enum_or_custom(name: str, value: Any, enum: type[Any], base: type[Any]) -> Any:
    """A string becomes a member of ``enum`` (a clear error lists the choices); classes and callables pass."""
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        try:
            return enum(value)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in enum)
            raise ValueError(
                f"`{name}` must be one of {choices}, a {base.__name__} subclass or a callable; got {value!r}"
            ) from None
    if callable(value):
        return value
    raise ValueError(
        f"`{name}` must be one of {[m.value for m in enum]}, a {base.__name__} subclass or a callable; "
        f"got {type(value).__name__}"
    )


@dataclass
class BaseTrainingArguments(_HFTrainingArguments):
    """Training arguments shared by the sentrs trainers; see :class:`transformers.TrainingArguments` for the rest.

    Args:
        prompts: a prompt for every column (``str``), per column (``{column: prompt}``), per dataset
            (``{dataset: prompt}``) or per dataset and column (``{dataset: {column: prompt}}``). A JSON string is
            parsed. The collator prepends it to the texts before tokenizing.
        batch_sampler: a :class:`~sentrs.base.sampler.BatchSamplers` value (or its string), a
            :class:`~sentrs.base.sampler.DefaultBatchSampler` subclass, or a callable building a batch sampler.
        multi_dataset_batch_sampler: how batches of several datasets interleave: a
            :class:`~sentrs.base.sampler.MultiDatasetBatchSamplers` value, a subclass or a callable.
        router_mapping: column -> Router route (``{"question": "query", "answer": "document"}``), or per dataset.
        learning_rate_mapping: parameter-name regex -> learning rate, e.g. ``{r"SparseStaticEmbedding\\.*": 1e-3}``.
        warmup_ratio: kept for old argument files; transformers 5 takes the ratio as a float ``warmup_steps``.
    """

    _VALID_DICT_FIELDS = [  # noqa: RUF012 - transformers reads this class attribute
        "accelerator_config",
        "fsdp_config",
        "deepspeed",
        "gradient_checkpointing_kwargs",
        "lr_scheduler_kwargs",
        "learning_rate_mapping",
        "prompts",
        "router_mapping",
    ]

    prompts: Union[str, dict[str, str], dict[str, dict[str, str]], None] = field(  # noqa: UP007
        default=None,
        metadata={"help": "Prompts: one string, per column, per dataset, or per dataset and column."},
    )
    batch_sampler: Union[BatchSamplers, str, DefaultBatchSampler, Callable[..., DefaultBatchSampler]] = field(  # noqa: UP007
        default=BatchSamplers.BATCH_SAMPLER, metadata={"help": "The batch sampler."}
    )
    multi_dataset_batch_sampler: Union[  # noqa: UP007
        MultiDatasetBatchSamplers, str, MultiDatasetDefaultBatchSampler, Callable[..., MultiDatasetDefaultBatchSampler]
    ] = field(default=MultiDatasetBatchSamplers.PROPORTIONAL, metadata={"help": "The multi-dataset batch sampler."})
    router_mapping: Union[str, dict[str, str], dict[str, dict[str, str]], None] = field(  # noqa: UP007
        default_factory=dict,
        metadata={"help": "Column -> Router route, or dataset -> (column -> route)."},
    )
    learning_rate_mapping: Union[str, dict[str, float], None] = field(  # noqa: UP007
        default_factory=dict,
        metadata={"help": "Parameter-name regex -> learning rate."},
    )
    warmup_ratio: float | None = field(
        default=None,
        metadata={"help": "Deprecated: pass the ratio as a float `warmup_steps` instead."},
    )

    def __post_init__(self) -> None:
        if self.warmup_ratio is not None and self.warmup_steps == 0:
            logger.warning(
                "`warmup_ratio` is deprecated with transformers 5: pass the ratio as a float `warmup_steps`. "
                "Using warmup_steps=%s.",
                self.warmup_ratio,
            )
            self.warmup_steps = self.warmup_ratio
            self.warmup_ratio = None
        super().__post_init__()

        self.batch_sampler = _enum_or_custom("batch_sampler", self.batch_sampler, BatchSamplers, DefaultBatchSampler)
        self.multi_dataset_batch_sampler = _enum_or_custom(
            "multi_dataset_batch_sampler",
            self.multi_dataset_batch_sampler,
            MultiDatasetBatchSamplers,
            MultiDatasetDefaultBatchSampler,
        )
        if isinstance(self.prompts, str):
            try:
                self.prompts = json.loads(self.prompts)
            except json.JSONDecodeError:
                pass  # a plain prompt string
        elif self.prompts is not None and not isinstance(self.prompts, dict):
            raise ValueError(
                f"`prompts` must be a string, a dict of column or dataset names to prompts, or None; "
                f"got {type(self.prompts).__name__}"
            )
        self.learning_rate_mapping = _parse_json_dict(
            "learning_rate_mapping", self.learning_rate_mapping, "parameter-name regexes to learning rates"
        )
        self.router_mapping = _parse_json_dict(
            "router_mapping", self.router_mapping, "column names to Router routes (or dataset names to such dicts)"
        )

        # The losses return no logits; the eval loop only needs the loss.
        self.prediction_loss_only = True
        # Buffers are not changed by the forward pass; broadcasting them costs time under DDP.
        self.ddp_broadcast_buffers = False
        if self.parallel_mode == ParallelMode.DISTRIBUTED and not self.dataloader_drop_last:
            if self.output_dir != "unused":
                logger.warning(
                    "Under DDP an uneven last batch can hang the ranks: setting `dataloader_drop_last=True`."
                )
            self.dataloader_drop_last = True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = super().to_dict()
        for key in ("batch_sampler", "multi_dataset_batch_sampler"):
            if callable(out.get(key)):
                del out[key]
        return out
