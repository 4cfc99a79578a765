"""The reference's deprecated import paths (``sentrs.models``, ``sentrs.losses``, ``sentrs.quantization``, ...).

The reference moved its modules in 5.4 and keeps the old paths importable through an import hook that emits a
``DeprecationWarning``; ``import sentrs`` installs the same kind of hook for every old path whose new home sentrs
implements. An old path is the very module object of its new one (``sentrs.models`` is
``sentrs.sentence_transformer.modules``), so classes and ``isinstance`` checks agree. An old path whose new home
sentrs lacks fails as any missing module does.

Three kinds of old path resolve:

- renamed modules, :data:`DEPRECATED_MODULE_PATHS`;
- renamed packages, :data:`DEPRECATED_PACKAGE_PATHS`, and the modules below them (``sentrs.models.pooling``);
- the one-class-per-file modules of old releases, ``<package>.<ClassName>`` under the packages of
  :data:`CLASS_FILE_PACKAGES` (``sentrs.models.Transformer``), which resolve to the module that defines the class
  now. The package keeps the class as its attribute: after ``import sentrs.models.Transformer``,
  ``sentrs.models.Transformer`` is still the class, as in the reference.

Old ``modules.json`` files name classes by such paths (``sentence_transformers.models.Transformer``); loading
does not import them (see :mod:`sentrs.base.registry`), so this hook only serves user code.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

from sentrs import _lazy

__all__ = [
    "CLASS_FILE_PACKAGES",
    "DEPRECATED_MODULE_PATHS",
    "DEPRECATED_PACKAGE_PATHS",
    "deprecated_path_target",
    "setup_deprecated_module_imports",
]

DEPRECATED_MODULE_PATHS: dict[str, str] = {
    "sentrs.LoggingHandler": "sentrs.util.logging",
    "sentrs.SentenceTransformer": "sentrs.sentence_transformer.model",
    "sentrs.cross_encoder.CrossEncoder": "sentrs.cross_encoder.model",
    "sentrs.sparse_encoder.SparseEncoder": "sentrs.sparse_encoder.model",
    "sentrs.model_card": "sentrs.sentence_transformer.model_card",
    "sentrs.quantization": "sentrs.util.quantization",
    "sentrs.sampler": "sentrs.base.sampler",
    "sentrs.similarity_functions": "sentrs.util.similarity",
    "sentrs.trainer": "sentrs.sentence_transformer.trainer",
    "sentrs.training_args": "sentrs.sentence_transformer.training_args",
    "sentrs.sentence_transformer.modules.normalize": "sentrs.base.modules.normalize",
    "sentrs.peft_mixin": "sentrs.base.peft_mixin",
    "sentrs.models.tokenizer.WhitespaceTokenizer": "sentrs.sentence_transformer.modules.tokenizer.whitespace",
    "sentrs.models.tokenizer.PhraseTokenizer": "sentrs.sentence_transformer.modules.tokenizer.phrase",
    "sentrs.models.tokenizer.WordTokenizer": "sentrs.sentence_transformer.modules.tokenizer.word",
}
"""Old module path -> the module now at its place."""

DEPRECATED_PACKAGE_PATHS: dict[str, str] = {
    "sentrs.datasets": "sentrs.sentence_transformer.datasets",
    "sentrs.evaluation": "sentrs.sentence_transformer.evaluation",
    "sentrs.losses": "sentrs.sentence_transformer.losses",
    "sentrs.models": "sentrs.sentence_transformer.modules",
    "sentrs.readers": "sentrs.sentence_transformer.readers",
    "sentrs.sparse_encoder.models": "sentrs.sparse_encoder.modules",
}
"""Old package path -> the package now at its place; modules below it move along."""

CLASS_FILE_PACKAGES: frozenset[str] = frozenset(
    {
        *DEPRECATED_PACKAGE_PATHS,
        "sentrs.cross_encoder.evaluation",
        "sentrs.cross_encoder.losses",
        "sentrs.sparse_encoder.evaluation",
        "sentrs.sparse_encoder.losses",
    }
)
"""Packages whose classes each lived in a module named after the class (``losses/MSELoss.py``)."""

# Frames the warning skips to point at the user's import statement: the import system and sentrs' own lookups.
_INTERNAL_FILES = frozenset({__file__, importlib.__file__, _lazy.__file__})

# Package name -> attribute names that keep their (non-module) value when the submodule of that name is imported.
_KEPT: dict[str, set[str]] = {}


def deprecated_path_target(fullname: str) -> str | None:
    """The module an old import path stands for, or None when ``fullname`` is no deprecated path sentrs serves.

    Raises:
        NotYetAvailableError: ``fullname`` is ``<package>.<ClassName>`` for a class sentrs does not implement yet.
    """
    if fullname in DEPRECATED_MODULE_PATHS:
        return DEPRECATED_MODULE_PATHS[fullname]
    if fullname in DEPRECATED_PACKAGE_PATHS:
        return DEPRECATED_PACKAGE_PATHS[fullname]
    parent, _, child = fullname.rpartition(".")
    if parent in CLASS_FILE_PACKAGES and child[:1].isupper():
        package = sys.modules.get(parent) or importlib.import_module(parent)
        try:
            value = getattr(package, child)
        except AttributeError:
            value = None
        if isinstance(value, type):
            return value.__module__
    if parent in DEPRECATED_PACKAGE_PATHS:
        new_name = f"{DEPRECATED_PACKAGE_PATHS[parent]}.{child}"
        if new_name in DEPRECATED_MODULE_PATHS:
            return DEPRECATED_MODULE_PATHS[new_name]
        package = sys.modules.get(parent) or importlib.import_module(parent)
        path = getattr(package, "__path__", None)
        if path is not None and importlib.machinery.PathFinder.find_spec(new_name, list(path)) is not None:
            return new_name
    return None


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system a module that is already loaded, without running it again."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module
        self._spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__spec__ = self._spec  # the module keeps describing its real location


class _DeprecatedPathFinder(importlib.abc.MetaPathFinder):
    """Resolves the deprecated paths to their modules, with a ``DeprecationWarning`` on the first import."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("sentrs."):
            return None
        new_name = deprecated_path_target(fullname)
        if new_name is None:
            return None
        _warn(f"importing {fullname!r} is deprecated, as in sentence-transformers; import {new_name!r} instead")
        module = importlib.import_module(new_name)
        parent_name, _, child = fullname.rpartition(".")
        if child[:1].isupper():  # a class-file path: the parent's attribute of that name is the class
            _keep_attribute(sys.modules[parent_name], child)
        return importlib.util.spec_from_loader(fullname, _AliasLoader(module))


def _warn(message: str) -> None:
    """``DeprecationWarning`` attributed to the first frame outside the import system and sentrs' lookups."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and (
        frame.f_code.co_filename in _INTERNAL_FILES or frame.f_code.co_filename.startswith("<frozen importlib")
    ):
        frame = frame.f_back
    if frame is None:
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return
    warnings.warn_explicit(
        message,
        DeprecationWarning,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", frame.f_code.co_filename),
        registry=frame.f_globals.setdefault("__warningregistry__", {}),
    )


class _PackageKeepingAttributes(types.ModuleType):
    """A package whose attributes listed in ``_KEPT`` survive the import of a submodule of the same name.

    The import system sets ``package.child = <module>`` after loading ``package.child``; for an old class-file path
    that would replace the class ``package.child`` with a module.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, types.ModuleType) and name in _KEPT.get(self.__name__, ()):
            return
        super().__setattr__(name, value)


def _keep_attribute(package: types.ModuleType, name: str) -> None:
    """Keeps ``package.name`` when it is something other than a module (a class, mostly)."""
    try:
        value = getattr(package, name)
    except (AttributeError, ImportError):
        return
    if isinstance(value, types.ModuleType):
        return
    if type(package) is types.ModuleType:
        package.__class__ = _PackageKeepingAttributes
    if isinstance(package, _PackageKeepingAttributes):
        _KEPT.setdefault(package.__name__, set()).add(name)


def setup_deprecated_module_imports() -> None:
    """Installs the import hook for the deprecated paths (idempotent; ``import sentrs`` calls it)."""
    if not any(isinstance(finder, _DeprecatedPathFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeprecatedPathFinder())
