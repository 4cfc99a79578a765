"""``SentenceTransformerTrainingArguments``: the training options for dense embedding models.

The same fields as :class:`~sentrs.base.training_args.BaseTrainingArguments` (the transformers arguments plus
``prompts``, ``batch_sampler``, ``multi_dataset_batch_sampler``, ``router_mapping``, ``learning_rate_mapping``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sentrs.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
from sentrs.base.training_args import BaseTrainingArguments

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SentenceTransformerTrainingArguments"]


@dataclass
class SentenceTransformerTrainingArguments(BaseTrainingArguments):
    """Training arguments for :class:`~sentrs.SentenceTransformerTrainer`; see
    :class:`~sentrs.base.training_args.BaseTrainingArguments` for the sentrs fields and
    :class:`transformers.TrainingArguments` for the rest (``output_dir``, ``num_train_epochs``,
    ``per_device_train_batch_size``, ``learning_rate``, ``eval_strategy``, ``save_strategy``, ...)."""
