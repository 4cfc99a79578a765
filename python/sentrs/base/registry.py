"""Mapping between the module class paths written in ``modules.json`` and sentrs classes."""

from __future__ import annotations

import importlib
import inspect
import os
import warnings
from typing import TYPE_CHECKING, Any

from sentrs.exceptions import ModuleTypeError

if TYPE_CHECKING:
    from sentrs.base.modules.module import Module

__all__ = [
    "fullname",
    "import_from_string",
    "is_custom_type",
    "load_module",
    "module_class_for_type",
    "register_module_class",
]

# The built-in module classes by class name (and legacy alias), imported on first use.
_BUILTIN: dict[str, str] = {
    "Transformer": "sentrs.base.modules.transformer:Transformer",
    "Pooling": "sentrs.sentence_transformer.modules.pooling:Pooling",
    "Dense": "sentrs.base.modules.dense:Dense",
    "Normalize": "sentrs.base.modules.normalize:Normalize",
    "Router": "sentrs.base.modules.router:Router",
    "Asym": "sentrs.base.modules.router:Router",
    "SpladePooling": "sentrs.sparse_encoder.modules.splade_pooling:SpladePooling",
    "MLMTransformer": "sentrs.sparse_encoder.modules.mlm_transformer:MLMTransformer",
    "SparseStaticEmbedding": "sentrs.sparse_encoder.modules.sparse_static_embedding:SparseStaticEmbedding",
    "SparseAutoEncoder": "sentrs.sparse_encoder.modules.sparse_auto_encoder:SparseAutoEncoder",
    "MultiVectorMask": "sentrs.multi_vector_encoder.modules.multi_vector_mask:MultiVectorMask",
    "HierarchicalTokenPooling": "sentrs.multi_vector_encoder.modules.token_pooling:HierarchicalTokenPooling",
    "StaticEmbedding": "sentrs.sentence_transformer.modules.static_embedding:StaticEmbedding",
    "WordEmbeddings": "sentrs.sentence_transformer.modules.word_embeddings:WordEmbeddings",
    "WordWeights": "sentrs.sentence_transformer.modules.word_weights:WordWeights",
    "BoW": "sentrs.sentence_transformer.modules.bow:BoW",
    "CNN": "sentrs.sentence_transformer.modules.cnn:CNN",
    "LSTM": "sentrs.sentence_transformer.modules.lstm:LSTM",
    "LayerNorm": "sentrs.sentence_transformer.modules.layer_norm:LayerNorm",
    "Dropout": "sentrs.sentence_transformer.modules.dropout:Dropout",
    "WeightedLayerPooling": "sentrs.sentence_transformer.modules.weighted_layer_pooling:WeightedLayerPooling",
    "CLIPModel": "sentrs.sentence_transformer.modules.clip_model:CLIPModel",
    "LogitScore": "sentrs.cross_encoder.modules.logit_score:LogitScore",
}

# Module classes of other libraries whose folders the reference loads as one of its own (it rewrites the path).
_FOREIGN_ALIASES: dict[str, str] = {"pylate.models.Dense.Dense": "Dense"}

_BY_NAME: dict[str, type[Module]] = {}


def _lookup(class_name: str) -> type[Module] | None:
    cls = _BY_NAME.get(class_name)
    if cls is None and class_name in _BUILTIN:
        module_name, _, attr = _BUILTIN[class_name].partition(":")
        cls = getattr(importlib.import_module(module_name), attr)
        _BY_NAME[class_name] = cls
    return cls


def supported_module_names() -> list[str]:
    """Every class name ``modules.json`` may use."""
    return sorted(set(_BY_NAME) | set(_BUILTIN))


def register_module_class(cls: type[Module], *aliases: str) -> None:
    """Makes ``cls`` loadable under its class name and any extra ``aliases`` (class names)."""
    _BY_NAME[cls.__name__] = cls
    for alias in aliases:
        _BY_NAME[alias] = cls


def is_custom_type(type_ref: str) -> bool:
    """Whether a ``modules.json`` type names a class outside sentence-transformers, sentrs and the known aliases."""
    type_ref = _FOREIGN_ALIASES.get(type_ref, type_ref)
    return type_ref.split(".", 1)[0] not in ("sentence_transformers", "sentrs") and type_ref not in _BUILTIN


def module_class_for_type(
    type_ref: str, trust_remote_code: bool = False, model_dir: str | None = None, module_dir: str | None = None
) -> type[Module]:
    """The class for a ``modules.json`` type string.

    Accepts the reference's current paths (``sentence_transformers.base.modules.transformer.Transformer``), its
    legacy ones (``sentence_transformers.models.Transformer``, ``...sparse_encoder.models.*``) and sentrs' own. A
    class outside those (custom code: ``modeling_custom.MyModule`` beside the model, or an installed package's class)
    is imported only with ``trust_remote_code=True``, as the reference requires; otherwise ModuleTypeError (a
    ValueError) names the type and the folder.

    Args:
        type_ref: the ``type`` of a ``modules.json`` entry (or of a router config).
        trust_remote_code: allow importing a custom class (this runs code chosen by the model folder).
        model_dir: the model folder, where a custom class's ``.py`` file is looked up first.
        module_dir: the module's own folder, looked up next (a saved custom module keeps its ``.py`` file there).
    """
    if not isinstance(type_ref, str) or not type_ref:
        raise ModuleTypeError(f"modules.json entry 'type' must be a non-empty str, got {type_ref!r}")
    if is_custom_type(type_ref):
        where = f" in {model_dir}" if model_dir else ""
        if not trust_remote_code:
            raise ModuleTypeError(
                f"module type {type_ref!r}{where} is custom code, not part of sentence-transformers or sentrs; "
                "importing it runs code chosen by the model folder. Inspect that code, then pass "
                "trust_remote_code=True to allow it. Supported module types: " + ", ".join(supported_module_names())
            )
        return _import_custom_class(type_ref, [d for d in (model_dir, module_dir) if d])
    type_ref = _FOREIGN_ALIASES.get(type_ref, type_ref)
    class_name = type_ref.rsplit(".", 1)[-1]
    cls = _lookup(class_name)
    if cls is None:
        raise ModuleTypeError(
            f"module type {type_ref!r} is not supported by sentrs yet. Supported module types: "
            + ", ".join(supported_module_names())
        )
    return cls


def _import_custom_class(type_ref: str, folders: list[str]) -> Any:
    """A trusted custom class: from a ``.py`` file of the first of ``folders`` that has it (transformers' dynamic
    modules, as the reference), else from an installed package."""
    module_file = type_ref.rsplit(".", 1)[0].replace(".", os.sep) + ".py"
    for folder in folders:
        if os.path.isfile(os.path.join(folder, module_file)):
            from transformers.dynamic_module_utils import get_class_from_dynamic_module

            return get_class_from_dynamic_module(type_ref, folder, local_files_only=True)
    try:
        return import_from_string(type_ref)
    except ImportError as exc:
        where = f" (no {module_file} in {' or '.join(dict.fromkeys(folders))})" if folders else ""
        raise ModuleTypeError(f"cannot import the custom module type {type_ref!r}{where}: {exc}") from exc


def load_module(
    type_ref: str,
    module_dir: str,
    trust_remote_code: bool = False,
    model_dir: str | None = None,
    **hub_kwargs: Any,
) -> Module:
    """Loads one module folder; input modules and Transformers also get the loading options (``model_kwargs`` ...).

    ``model_dir`` is the model folder holding ``modules.json`` (where custom code is looked up); it defaults to
    ``module_dir``.
    """
    cls = module_class_for_type(
        type_ref, trust_remote_code=trust_remote_code, model_dir=model_dir or module_dir, module_dir=module_dir
    )
    if is_custom_type(type_ref):
        return _load_custom_module(cls, module_dir, trust_remote_code, hub_kwargs)
    if getattr(cls, "takes_hub_kwargs", False):
        return cls.load(module_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
    return cls.load(module_dir, trust_remote_code=trust_remote_code)


def _load_custom_module(cls: Any, module_dir: str, trust_remote_code: bool, hub_kwargs: dict[str, Any]) -> Any:
    """Calls a custom class's ``load`` the way the reference does: ``load(path)`` for an old one-argument ``load``,
    else its current keyword API (``subfolder``, ``local_files_only``, the loading options)."""
    load = getattr(cls, "load", None)
    if load is None:
        raise ModuleTypeError(f"custom module class {fullname(cls)} has no load() method to read {module_dir}")
    if len(inspect.signature(load).parameters) == 1:
        return load(module_dir)
    return load(module_dir, subfolder="", local_files_only=True, trust_remote_code=trust_remote_code, **hub_kwargs)


def fullname(o: Any) -> str:
    """``module.ClassName`` of an object or class, as written into config files."""
    cls = o if isinstance(o, type) else o.__class__
    module = cls.__module__
    if module is None or module == str.__module__:
        return cls.__name__
    return f"{module}.{cls.__name__}"


def import_from_string(dotted_path: str) -> Any:
    """Imports ``package.module.Name`` and returns ``Name``; raises ImportError naming the path.

    Paths come from model configs, not from the user's code, so an old path imports without a DeprecationWarning.
    """
    try:
        module_path, class_name = dotted_path.rsplit(".", 1)
    except ValueError as exc:
        raise ImportError(f"{dotted_path!r} is not a dotted path of the form 'module.Name'") from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            module = importlib.import_module(module_path)
        except ImportError:
            return importlib.import_module(dotted_path)
    try:
        return getattr(module, class_name)
    except AttributeError as exc:
        raise ImportError(f"module {module_path!r} has no attribute {class_name!r}") from exc
