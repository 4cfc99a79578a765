"""The reference's ``base.modules.input_module`` path: :class:`InputModule`, the first module of a model, which
tokenizes. It is defined beside :class:`~sentrs.base.modules.module.Module` in :mod:`sentrs.base.modules.module`."""

from __future__ import annotations

from sentrs.base.modules.module import InputModule

__all__ = ["InputModule"]
