"""``SparseEncoderDataCollator``: the shared collator (Rust tokenization per column) for sparse models."""

from __future__ import annotations

from dataclasses import dataclass

from sentrs.base.data_collator import BaseDataCollator

__all__ = ["SparseEncoderDataCollator"]


@dataclass
class SparseEncoderDataCollator(BaseDataCollator):
    """Collates rows into ``{column}_input_ids``/... tensors plus ``label``; see
    :class:`~sentrs.base.data_collator.BaseDataCollator`."""
