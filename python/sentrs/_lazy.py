"""Lazy attributes for packages (PEP 562) and a torch check that never imports torch.

``import sentrs`` must stay cheap and must not import torch: a process that only encodes with an exported ONNX or
OpenVINO model never needs it. Packages list their public names here and import the defining module on first use.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["is_tensor", "lazy_module_attrs"]


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor; False without importing torch when torch was never imported."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def lazy_module_attrs(
    package: str, names: dict[str, str], missing: Callable[[str], Any] | None = None
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``names[attr]`` (a module path, or
    ``module:attribute`` when the attribute has another name there) on first access and cache the result.

    Any other attribute goes to ``missing`` (usually :func:`sentrs._unavailable.unavailable_getattr`, for the
    reference's names sentrs lacks), or raises ``AttributeError``.
    """

    def __getattr__(attr: str) -> Any:
        target = names.get(attr)
        if target is None:
            if missing is not None:
                return missing(attr)
            raise AttributeError(f"module {package!r} has no attribute {attr!r}")
        module_name, _, inner = target.partition(":")
        module = importlib.import_module(module_name)
        value = module if inner == "-" else getattr(module, inner or attr)
        setattr(sys.modules[package], attr, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
