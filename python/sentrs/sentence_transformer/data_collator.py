"""``SentenceTransformerDataCollator``: the shared collator (Rust tokenization per column) for dense models."""

from __future__ import annotations

from dataclasses import dataclass

from sentrs.base.data_collator import BaseDataCollator

__all__ = ["SentenceTransformerDataCollator"]


@dataclass
class SentenceTransformerDataCollator(BaseDataCollator):
    """Collates rows into ``{column}_input_ids``/``_attention_mask``/... tensors plus ``label``; see
    :class:`~sentrs.base.data_collator.BaseDataCollator`."""
