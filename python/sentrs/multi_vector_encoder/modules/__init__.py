"""Modules of multi-vector (late-interaction) models."""

from __future__ import annotations

from sentrs.base.modules import Dense, InputModule, Module, Normalize, Router, Transformer
from sentrs.multi_vector_encoder.modules.multi_vector_mask import MultiVectorMask
from sentrs.multi_vector_encoder.modules.token_pooling import (
    BaseTokenPooling,
    HierarchicalTokenPooling,
    LambdaTokenPooling,
)

__all__ = [
    "BaseTokenPooling",
    "Dense",
    "HierarchicalTokenPooling",
    "InputModule",
    "LambdaTokenPooling",
    "Module",
    "MultiVectorMask",
    "Normalize",
    "Router",
    "Transformer",
]
