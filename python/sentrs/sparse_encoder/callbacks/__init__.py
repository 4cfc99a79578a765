"""Trainer callbacks for sparse models, as in the reference's ``sparse_encoder.callbacks``:
:class:`SpladeRegularizerWeightSchedulerCallback` (and its :class:`SchedulerType`), which warms up the regularizer
weights of a :class:`~sentrs.sparse_encoder.losses.SpladeLoss`. The SparseEncoderTrainer adds one by itself for a
SpladeLoss. Names load on first use (they import ``transformers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "SchedulerType": "sentrs.sparse_encoder.callbacks.splade_callbacks",
        "SpladeRegularizerWeightSchedulerCallback": "sentrs.sparse_encoder.callbacks.splade_callbacks",
    },
)

if TYPE_CHECKING:
    from sentrs.sparse_encoder.callbacks.splade_callbacks import (
        SchedulerType,
        SpladeRegularizerWeightSchedulerCallback,
    )

__all__ = ["SchedulerType", "SpladeRegularizerWeightSchedulerCallback"]
