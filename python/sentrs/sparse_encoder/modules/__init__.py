"""Modules of sparse models, importable as ``sentrs.sparse_encoder.modules`` (and the legacy ``.models``)."""

from __future__ import annotations

from sentrs.base.modules import Dense, Normalize, Transformer
from sentrs.sparse_encoder.modules.mlm_transformer import MLMTransformer
from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

__all__ = ["Dense", "MLMTransformer", "Normalize", "SpladePooling", "Transformer"]
