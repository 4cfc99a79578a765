"""``SentenceTransformerTrainingArguments``: the training options for dense embedding models.

The arguments come with the trainer, in a later issue; until then ``SentenceTransformerTrainingArguments`` raises
:class:`~sentrs.exceptions.NotYetAvailableError`. The choices of its ``batch_sampler`` and
``multi_dataset_batch_sampler`` options, :class:`BatchSamplers` and :class:`MultiDatasetBatchSamplers`, are here
already (from :mod:`sentrs.base.sampler`, which imports torch on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

__getattr__, __dir__ = lazy_module_attrs(
    __name__,
    dict.fromkeys(("BatchSamplers", "MultiDatasetBatchSamplers"), "sentrs.base.sampler"),
    missing=unavailable_getattr(__name__, {"SentenceTransformerTrainingArguments": "training"}),
)

if TYPE_CHECKING:
    from sentrs.base.sampler import BatchSamplers, MultiDatasetBatchSamplers

__all__ = ["BatchSamplers", "MultiDatasetBatchSamplers"]
