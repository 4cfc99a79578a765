"""What every model type shares."""

from __future__ import annotations

from sentrs.base.model import BaseModel
from sentrs.base.registry import register_module_class

__all__ = ["BaseModel", "register_module_class"]
