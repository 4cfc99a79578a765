"""What every model type shares. Names load on first use, so the torch-free pipeline can import from here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

__getattr__, __dir__ = lazy_module_attrs(
    __name__, {"BaseModel": "sentrs.base.model", "register_module_class": "sentrs.base.registry"}
)

if TYPE_CHECKING:
    from sentrs.base.model import BaseModel
    from sentrs.base.registry import register_module_class

__all__ = ["BaseModel", "register_module_class"]
