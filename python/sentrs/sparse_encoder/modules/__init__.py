"""Modules of sparse models, importable as ``sentrs.sparse_encoder.modules`` and the old path ``.models``."""

from __future__ import annotations

from sentrs.base.modules import Asym, Dense, InputModule, Module, Normalize, Router, Transformer
from sentrs.sparse_encoder.modules.mlm_transformer import MLMTransformer
from sentrs.sparse_encoder.modules.sparse_auto_encoder import SparseAutoEncoder
from sentrs.sparse_encoder.modules.sparse_static_embedding import SparseStaticEmbedding
from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

__all__ = [
    "Asym",
    "Dense",
    "InputModule",
    "MLMTransformer",
    "Module",
    "Normalize",
    "Router",
    "SparseAutoEncoder",
    "SparseStaticEmbedding",
    "SpladePooling",
    "Transformer",
]
