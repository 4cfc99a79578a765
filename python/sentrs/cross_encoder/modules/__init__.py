"""Modules of cross-encoders, importable as ``sentrs.cross_encoder.modules``.

A cross-encoder is a :class:`~sentrs.base.modules.Transformer` with a classification head, or a causal LM
(``transformer_task="text-generation"``) followed by :class:`LogitScore`, optionally followed by the shared modules of
:mod:`sentrs.base.modules`, which are here too, as in the reference.
"""

from __future__ import annotations

from sentrs.base.modules import Asym, Dense, InputModule, Module, Router, Transformer
from sentrs.cross_encoder.modules.logit_score import LogitScore

__all__ = ["Asym", "Dense", "InputModule", "LogitScore", "Module", "Router", "Transformer"]
