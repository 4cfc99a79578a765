"""The reference's legacy import path ``sentence_transformers.models``: the module classes."""

from __future__ import annotations

from sentrs.sentence_transformer.modules import Dense, InputModule, Module, Normalize, Pooling, Transformer

__all__ = ["Dense", "InputModule", "Module", "Normalize", "Pooling", "Transformer"]
