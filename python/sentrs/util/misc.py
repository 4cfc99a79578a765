"""Small helpers for class paths and names."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["fullname", "import_from_string"]


def fullname(o: Any) -> str:
    """``module.ClassName`` of an object or class, as written into config files."""
    cls = o if isinstance(o, type) else o.__class__
    module = cls.__module__
    if module is None or module == str.__module__:
        return cls.__name__
    return f"{module}.{cls.__name__}"


def import_from_string(dotted_path: str) -> Any:
    """Imports ``package.module.Name`` and returns ``Name``; raises ImportError naming the path."""
    try:
        module_path, class_name = dotted_path.rsplit(".", 1)
    except ValueError as exc:
        raise ImportError(f"{dotted_path!r} is not a dotted path of the form 'module.Name'") from exc
    try:
        module = importlib.import_module(module_path)
    except ImportError:
        module = importlib.import_module(dotted_path)
        return module
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"module {module_path!r} has no attribute {class_name!r}") from exc
