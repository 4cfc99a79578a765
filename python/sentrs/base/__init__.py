"""What every model type shares. Names load on first use, so the torch-free engine can import from here.

The batch samplers (:mod:`sentrs.base.sampler`) import torch on first use. The other training names the reference
exports here (``BaseTrainer``, ...) raise :class:`~sentrs.exceptions.NotYetAvailableError` until they land.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

_NOT_YET = {
    **{
        name: "training"
        for name in (
            "BaseDataCollator",
            "BaseTrainer",
            "BaseTrainingArguments",
        )
    },
}

# Importing any of these imports torch.
_SAMPLER_NAMES = (
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
)

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    {
        "BaseModel": "sentrs.base.model",
        "PeftAdapterMixin": "sentrs.base.peft_mixin",
        "register_module_class": "sentrs.base.registry",
        **dict.fromkeys(_SAMPLER_NAMES, "sentrs.base.sampler"),
    },
    missing=unavailable_getattr(__name__, _NOT_YET),
)

if TYPE_CHECKING:
    from sentrs.base.model import BaseModel
    from sentrs.base.peft_mixin import PeftAdapterMixin
    from sentrs.base.registry import register_module_class
    from sentrs.base.sampler import (
        BatchSamplers,
        DefaultBatchSampler,
        GroupByLabelBatchSampler,
        MultiDatasetBatchSamplers,
        MultiDatasetDefaultBatchSampler,
        NoDuplicatesBatchSampler,
        ProportionalBatchSampler,
        RoundRobinBatchSampler,
    )

__all__ = [
    "BaseModel",
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "PeftAdapterMixin",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
    "register_module_class",
]
