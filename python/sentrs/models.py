"""The reference's legacy import path ``sentence_transformers.models``: the module classes."""

from __future__ import annotations

from sentrs.sentence_transformer.modules import (
    Asym,
    Dense,
    InputModule,
    Module,
    Normalize,
    Pooling,
    Router,
    Transformer,
)

__all__ = ["Asym", "Dense", "InputModule", "Module", "Normalize", "Pooling", "Router", "Transformer"]
