"""Names of the reference that sentrs does not provide yet.

A module whose reference counterpart defines names sentrs lacks sets ``__getattr__ = unavailable_getattr(...)``:
accessing such a name raises :class:`NotYetAvailableError`, an ``ImportError``, so ``from sentrs.losses import X``
fails with a message that names the missing feature instead of pretending the name exists. Private names, and
names the reference does not define either, raise a plain ``AttributeError`` as usual.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["NotYetAvailableError", "unavailable_getattr"]


class NotYetAvailableError(ImportError):
    """A reference name that sentrs has not implemented yet."""


NotYetAvailableError.__module__ = "sentrs.exceptions"


def unavailable_getattr(module: str, what: str | Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that refuses the reference's names with a clear message.

    Args:
        module: the module's ``__name__``.
        what: the missing feature, when sentrs implements nothing of the module yet: every public name is refused,
            except the name of a submodule that exists, which the import system then loads. Or a mapping from each
            name the reference defines there (and sentrs does not) to its feature; other names are plain
            ``AttributeError``. A feature may contain ``{name}``: ``{"BoW": "the {name} module"}``.
    """

    def __getattr__(name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        if isinstance(what, str):
            feature = what
            if _is_submodule(module, name):
                raise AttributeError(f"module {module!r} has no attribute {name!r}")
        elif name in what:
            feature = what[name]
        else:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        raise NotYetAvailableError(
            f"{module}.{name} is not available: sentrs does not implement {feature.format(name=name)} yet. "
            "Use sentence_transformers for this part until it lands.",
            name=module,
        )

    return __getattr__


def _is_submodule(package: str, name: str) -> bool:
    """Whether ``package.name`` is a module file of the package (found without importing or running hooks)."""
    path = getattr(sys.modules.get(package), "__path__", None)
    return path is not None and importlib.machinery.PathFinder.find_spec(f"{package}.{name}", list(path)) is not None
