"""The reference's legacy import path ``sentence_transformers.sparse_encoder.models``."""

from __future__ import annotations

from sentrs.sparse_encoder.modules import MLMTransformer, SpladePooling

__all__ = ["MLMTransformer", "SpladePooling"]
