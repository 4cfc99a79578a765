"""Import paths of the reference whose contents sentrs does not provide yet.

Accessing a public name there raises :class:`NotYetAvailableError`, an ``ImportError``, so
``from sentrs.losses import X`` fails with a message that names what is missing. Private names raise a plain
``AttributeError`` as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["NotYetAvailableError", "unavailable_getattr"]


class NotYetAvailableError(ImportError):
    """A reference name that sentrs has not implemented yet."""


NotYetAvailableError.__module__ = "sentrs.exceptions"


def unavailable_getattr(module: str, what: str) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that refuses every public name with a clear message."""

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        raise NotYetAvailableError(
            f"{module}.{name} is not available: sentrs does not implement {what} yet. "
            "Use sentence_transformers for this part until it lands."
        )

    return __getattr__
