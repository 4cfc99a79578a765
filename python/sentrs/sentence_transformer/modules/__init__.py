"""Modules of dense models, importable as ``sentrs.sentence_transformer.modules`` and ``sentrs.models``."""

from __future__ import annotations

from sentrs.base.modules import Dense, InputModule, Module, Normalize, Transformer
from sentrs.sentence_transformer.modules.pooling import Pooling

__all__ = ["Dense", "InputModule", "Module", "Normalize", "Pooling", "Transformer"]
