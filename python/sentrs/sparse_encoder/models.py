"""The reference's legacy import path ``sentence_transformers.sparse_encoder.models``."""

from __future__ import annotations

from sentrs.sparse_encoder.modules import (
    Asym,
    Dense,
    InputModule,
    MLMTransformer,
    Module,
    Router,
    SparseAutoEncoder,
    SparseStaticEmbedding,
    SpladePooling,
    Transformer,
)

__all__ = [
    "Asym",
    "Dense",
    "InputModule",
    "MLMTransformer",
    "Module",
    "Router",
    "SparseAutoEncoder",
    "SparseStaticEmbedding",
    "SpladePooling",
    "Transformer",
]
