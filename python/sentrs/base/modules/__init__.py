"""Modules shared by every model type."""

from __future__ import annotations

from sentrs.base.modules.dense import Dense
from sentrs.base.modules.module import InputModule, Module
from sentrs.base.modules.normalize import Normalize
from sentrs.base.modules.router import Asym, Router
from sentrs.base.modules.transformer import Transformer

__all__ = ["Asym", "Dense", "InputModule", "Module", "Normalize", "Router", "Transformer"]
