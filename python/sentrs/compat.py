"""Run code written for sentence-transformers on sentrs, unchanged: an opt-in import alias.

After :func:`install_as_sentence_transformers`, ``import sentence_transformers`` (and every
``sentence_transformers.<module>``) gives sentrs' modules, so libraries that import the reference (LangChain,
LlamaIndex, Haystack, KeyBERT, Chroma, SetFit, ...) run on sentrs without edits. Nothing changes unless it is called:
importing sentrs never installs it. Or run a script under it without touching the script::

    python -m sentrs.compat my_script.py --its --arguments

Limits:

* it must run before anything imports ``sentence_transformers`` (it raises otherwise: objects already created from
  the reference cannot be swapped);
* ``sentence_transformers.__version__`` reads the reference version sentrs follows (:data:`REFERENCE_VERSION`), since
  libraries compare it; ``sentence_transformers.__sentrs_version__`` is sentrs' own;
* the model classes reached through the alias are thin subclasses whose ``__module__`` is the reference's path, so
  code that recognises a model by its type's name (KeyBERT does) accepts them; they are sentrs' classes in every
  other respect (``isinstance(model, sentrs.SentenceTransformer)`` holds);
* what sentrs does not implement yet raises :class:`~sentrs.exceptions.NotYetAvailableError` as usual.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import runpy
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["REFERENCE_VERSION", "install_as_sentence_transformers", "is_installed", "uninstall"]

ALIAS = "sentence_transformers"
#: The sentence-transformers release whose API and folder format sentrs follows.
REFERENCE_VERSION = "6.2.0"

# The model classes, by the reference module that defines them.
_MODEL_CLASSES = {
    "SentenceTransformer": "sentence_transformers.sentence_transformer.model",
    "SparseEncoder": "sentence_transformers.sparse_encoder.model",
    "CrossEncoder": "sentence_transformers.cross_encoder.model",
    "MultiVectorEncoder": "sentence_transformers.multi_vector_encoder.model",
}
_SUBCLASSES: dict[str, type] = {}


def _alias_class(name: str) -> type:
    """``name`` of sentrs as a subclass whose module path is the reference's (made once)."""
    if name not in _SUBCLASSES:
        import sentrs

        base = getattr(sentrs, name)
        _SUBCLASSES[name] = type(name, (base,), {"__module__": _MODEL_CLASSES[name], "__qualname__": name})
    return _SUBCLASSES[name]


class _TopLevel(types.ModuleType):
    """``sentence_transformers`` itself: sentrs' names, the reference's version, the aliased model classes."""

    def __getattr__(self, name: str) -> Any:
        if name in _MODEL_CLASSES:
            return _alias_class(name)
        import sentrs

        return getattr(sentrs, name)

    def __dir__(self) -> list[str]:
        import sentrs

        return sorted(set(dir(sentrs)) | set(super().__dir__()))


class _SubmoduleProxy(types.ModuleType):
    """A ``sentence_transformers.<x>`` module: the sentrs module's attributes, the model class aliased."""

    def __init__(self, name: str, target: types.ModuleType) -> None:
        super().__init__(name, target.__doc__)
        object.__setattr__(self, "_target", target)
        if hasattr(target, "__path__"):
            self.__path__ = []  # a package: submodules resolve through the finder

    def __getattr__(self, name: str) -> Any:
        if name in _MODEL_CLASSES and _MODEL_CLASSES[name] == self.__name__:
            return _alias_class(name)
        return getattr(object.__getattribute__(self, "_target"), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(object.__getattribute__(self, "_target"), name, value)

    def __dir__(self) -> list[str]:
        return dir(object.__getattribute__(self, "_target"))


class _Loader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        if spec.name == ALIAS:
            import sentrs

            module = _TopLevel(ALIAS, sentrs.__doc__)
            module.__path__ = []
            module.__version__ = REFERENCE_VERSION  # type: ignore[attr-defined]
            module.__sentrs_version__ = sentrs.__version__  # type: ignore[attr-defined]
            return module
        target = importlib.import_module(self.target)
        if spec.name in _MODEL_CLASSES.values():
            return _SubmoduleProxy(spec.name, target)
        return target

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _Finder(importlib.abc.MetaPathFinder):
    """Maps ``sentence_transformers[.x]`` to ``sentrs[.x]``."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        real = "sentrs" + fullname[len(ALIAS) :]
        if fullname != ALIAS and importlib.util.find_spec(real) is None:
            return None  # the usual ModuleNotFoundError, naming the reference path
        is_package = fullname == ALIAS or hasattr(importlib.import_module(real), "__path__")
        return importlib.machinery.ModuleSpec(fullname, _Loader(real), is_package=is_package)


_FINDER = _Finder()


def is_installed() -> bool:
    """Whether the alias is active in this process."""
    return _FINDER in sys.meta_path


def install_as_sentence_transformers() -> None:
    """Makes ``import sentence_transformers`` import sentrs in this process (idempotent).

    Raises:
        RuntimeError: ``sentence_transformers`` was already imported (call this first thing instead).
    """
    if is_installed():
        return
    already = sorted(m for m in sys.modules if m == ALIAS or m.startswith(ALIAS + "."))
    if already:
        raise RuntimeError(
            "install_as_sentence_transformers() must run before anything imports sentence_transformers; "
            f"already imported: {', '.join(already[:5])}{' ...' if len(already) > 5 else ''}"
        )
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Removes the alias and the aliased modules from ``sys.modules`` (objects already made keep working)."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [m for m in sys.modules if m == ALIAS or m.startswith(ALIAS + ".")]:
        del sys.modules[name]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sentrs.compat SCRIPT [ARGS...]`` (or ``-m MODULE [ARGS...]``): runs it with the alias on."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print("usage: python -m sentrs.compat SCRIPT [ARGS...] | -m MODULE [ARGS...]", file=sys.stderr)
        return 0 if args else 2
    install_as_sentence_transformers()
    if args[0] == "-m":
        if len(args) < 2:
            print("python -m sentrs.compat: -m needs a module name", file=sys.stderr)
            return 2
        sys.argv = args[1:]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = args
        runpy.run_path(args[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    # Through the importable module, so the alias machinery is the one `sentrs.compat` names (not a __main__ copy).
    from sentrs.compat import main as _main

    sys.exit(_main())
