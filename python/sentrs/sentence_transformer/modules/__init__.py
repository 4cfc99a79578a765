"""Modules of dense models, importable as ``sentrs.sentence_transformer.modules`` and ``sentrs.models``."""

from __future__ import annotations

from sentrs.base.modules import Asym, Dense, InputModule, Module, Normalize, Router, Transformer
from sentrs.sentence_transformer.modules.pooling import Pooling

__all__ = ["Asym", "Dense", "InputModule", "Module", "Normalize", "Pooling", "Router", "Transformer"]
