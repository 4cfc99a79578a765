"""Mapping between the module class paths written in ``modules.json`` and sentrs classes."""

from __future__ import annotations

from typing import Any

from sentrs.base.modules.module import Module
from sentrs.exceptions import ModuleTypeError

__all__ = ["load_module", "module_class_for_type", "register_module_class"]

_BY_NAME: dict[str, type[Module]] = {}


def register_module_class(cls: type[Module], *aliases: str) -> None:
    """Makes ``cls`` loadable under its class name and any extra ``aliases`` (class names)."""
    _BY_NAME[cls.__name__] = cls
    for alias in aliases:
        _BY_NAME[alias] = cls


def module_class_for_type(type_ref: str) -> type[Module]:
    """The sentrs class for a ``modules.json`` type string.

    Accepts the reference's current paths (``sentence_transformers.base.modules.transformer.Transformer``), its
    legacy ones (``sentence_transformers.models.Transformer``, ``...sparse_encoder.models.*``) and sentrs' own.
    """
    if not isinstance(type_ref, str) or not type_ref:
        raise ModuleTypeError(f"modules.json entry 'type' must be a non-empty str, got {type_ref!r}")
    root = type_ref.split(".", 1)[0]
    class_name = type_ref.rsplit(".", 1)[-1]
    if root not in ("sentence_transformers", "sentrs"):
        raise ModuleTypeError(
            f"module type {type_ref!r} is custom code from the model repository; sentrs does not run custom "
            "module code. Supported module types: " + ", ".join(sorted(_BY_NAME))
        )
    cls = _BY_NAME.get(class_name)
    if cls is None:
        raise ModuleTypeError(
            f"module type {type_ref!r} is not supported by sentrs yet. Supported module types: "
            + ", ".join(sorted(_BY_NAME))
        )
    return cls


def load_module(type_ref: str, module_dir: str, trust_remote_code: bool = False, **hub_kwargs: Any) -> Module:
    """Loads one module folder; input modules and Transformers also get the loading options (``model_kwargs`` ...)."""
    cls = module_class_for_type(type_ref)
    if getattr(cls, "takes_hub_kwargs", False):
        return cls.load(module_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
    return cls.load(module_dir, trust_remote_code=trust_remote_code)
