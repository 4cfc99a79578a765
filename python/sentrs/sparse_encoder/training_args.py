"""``SparseEncoderTrainingArguments``: the training options for sparse (SPLADE-style) models.

The same fields as :class:`~sentrs.base.training_args.BaseTrainingArguments`. For inference-free models (a Router
whose query route is a ``SparseStaticEmbedding``), set ``router_mapping`` (column -> "query"/"document") and
usually a larger learning rate for the static embedding. Parameter names follow the routes
(``0.sub_modules.query.0.weight``), so the mapping is e.g. ``learning_rate_mapping={r"sub_modules\\.query\\.": 1e-3}``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sentrs.base.sampler import BatchSamplers, MultiDatasetBatchSamplers
from sentrs.base.training_args import BaseTrainingArguments

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers", "SparseEncoderTrainingArguments"]


@dataclass
class SparseEncoderTrainingArguments(BaseTrainingArguments):
    """Training arguments for :class:`~sentrs.SparseEncoderTrainer`; see
    :class:`~sentrs.base.training_args.BaseTrainingArguments`."""
