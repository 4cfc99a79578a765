"""Modules of cross-encoders, importable as ``sentrs.cross_encoder.modules``.

A cross-encoder is a :class:`~sentrs.base.modules.Transformer` with a classification head, optionally followed by
the shared modules of :mod:`sentrs.base.modules`, which are here too, as in the reference. Its ``LogitScore`` module
is not implemented yet and raises :class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base.modules import Asym, Dense, InputModule, Module, Router, Transformer

__all__ = ["Asym", "Dense", "InputModule", "Module", "Router", "Transformer"]

__getattr__ = unavailable_getattr(__name__, {"LogitScore": "the {name} module"})
