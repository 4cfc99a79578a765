"""The reference's ``sentence_transformers.losses`` import path. Training losses are not implemented yet."""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr

__all__: list[str] = []
__getattr__ = unavailable_getattr(__name__, "training losses")
