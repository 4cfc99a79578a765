"""``sentrs.SentenceTransformer``, ``sentrs.CrossEncoder`` and ``sentrs.SparseEncoder`` as importable names that
do not import torch.

Each is a stand-in class whose metaclass decides at construction time which implementation to build:

- ``backend="onnx"`` or ``"openvino"`` on a folder that already holds the exported file, with no option that needs
  the torch classes: the torch-free model of :mod:`sentrs.backend.lite.models` (SentenceTransformer and CrossEncoder);
- anything else: the torch model class (``sentrs.sentence_transformer.SentenceTransformer``, ...), which handles
  every folder and option, exporting what is missing.

``isinstance(model, sentrs.SentenceTransformer)`` holds for both. Subclassing the stand-in subclasses the torch class,
and class attributes resolve on the torch class. ``SENTRS_TORCH_FREE=0`` turns the torch-free path off.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from sentrs.backend.lite.tokenizer import NotLite

__all__ = ["CrossEncoder", "SentenceTransformer", "SparseEncoder"]

logger = logging.getLogger(__name__)

# Constructor arguments the torch-free models take; any other (modules, processor_kwargs, ...) needs torch.
_COMMON = {
    "model_name_or_path",
    "device",
    "prompts",
    "default_prompt_name",
    "cache_folder",
    "trust_remote_code",
    "revision",
    "local_files_only",
    "token",
    "use_auth_token",
    "model_kwargs",
    "backend",
}
_ST_ONLY = {"similarity_fn_name", "truncate_dim"}


def _split(target: str) -> tuple[str, str]:
    module_name, _, attr = target.partition(":")
    return module_name, attr


class _ModelMeta(type):
    """Builds the torch-free model when it can, the torch model class otherwise (see the module docstring)."""

    _torch_target: str
    _lite_target: str | None
    _lite_loader: Callable[[tuple[Any, ...], dict[str, Any]], Any] | None

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any) -> Any:
        if namespace.get("_is_stand_in"):
            return super().__new__(mcs, name, bases, namespace)
        # A user subclass: derive from the torch classes the stand-ins stand for.
        real_bases = tuple(b._torch_class() if isinstance(b, _ModelMeta) else b for b in bases)
        meta = type(real_bases[0]) if real_bases else type
        return meta(name, real_bases, namespace, **kwargs)

    def _torch_class(cls) -> type:
        module_name, attr = _split(cls._torch_target)
        real: type = getattr(importlib.import_module(module_name), attr)
        return real

    def _loaded(cls, target: str | None) -> type | None:
        """The class at ``target`` if its module was already imported (an instance needs it imported)."""
        if target is None:
            return None
        module_name, attr = _split(target)
        module = sys.modules.get(module_name)
        return None if module is None else getattr(module, attr, None)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls._lite_loader is not None and os.environ.get("SENTRS_TORCH_FREE", "1") != "0":
            model = cls._lite_loader(args, kwargs)
            if model is not None:
                return model
        return cls._torch_class()(*args, **kwargs)

    def __instancecheck__(cls, obj: Any) -> bool:
        return any(
            c is not None and isinstance(obj, c)
            for c in (cls._loaded(cls._torch_target), cls._loaded(cls._lite_target))
        )

    def __subclasscheck__(cls, sub: type) -> bool:
        if sub is cls:
            return True
        return any(
            c is not None and issubclass(sub, c)
            for c in (cls._loaded(cls._torch_target), cls._loaded(cls._lite_target))
        )

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(cls._torch_class(), name)

    @property
    def __signature__(cls) -> inspect.Signature:
        return inspect.signature(cls._torch_class())


def _model_config(model_dir: str) -> dict[str, Any]:
    path = os.path.join(model_dir, "config_sentence_transformers.json")
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise NotLite(f"config_sentence_transformers.json unreadable: {exc}") from exc
    if not isinstance(config, dict):
        raise NotLite("config_sentence_transformers.json is not an object")
    return config


def _load_lite(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    model_type: str,
    allowed: set[str],
    organization: str,
    default_task: str,
    factory: Callable[..., Any],
) -> Any:
    """The torch-free model for these constructor arguments, or None when they need the torch class."""
    backend = kwargs.get("backend", "torch")
    if backend not in ("onnx", "openvino") or len(args) > 1:
        return None
    if any(value is not None and key not in allowed for key, value in kwargs.items()):
        return None
    name = args[0] if args else kwargs.get("model_name_or_path")
    if name is None or kwargs.get("device") not in (None, "cpu"):
        return None
    if not isinstance(name, (str, os.PathLike)):
        return None
    from sentrs.base.hub import resolve_model_dir

    try:
        model_dir = resolve_model_dir(
            name,
            default_organization=organization,
            cache_folder=kwargs.get("cache_folder"),
            revision=kwargs.get("revision"),
            token=kwargs.get("token", kwargs.get("use_auth_token")),
            local_files_only=bool(kwargs.get("local_files_only", False)),
            backend=backend,
            model_kwargs=kwargs.get("model_kwargs"),
        )
        config = _model_config(model_dir)
        if config.get("model_type", "SentenceTransformer") != model_type and (
            os.path.isfile(os.path.join(model_dir, "modules.json")) or "model_type" in config
        ):
            raise NotLite(f"a {config.get('model_type')} folder")
        from sentrs.backend.lite.pipeline import load_pipeline

        pipeline = load_pipeline(model_dir, backend, kwargs.get("model_kwargs"), default_task)
        extra = {key: kwargs[key] for key in _ST_ONLY if key in kwargs}
        return factory(
            pipeline,
            model_name_or_path=os.fspath(name),
            model_config=config,
            backend=backend,
            prompts=kwargs.get("prompts"),
            default_prompt_name=kwargs.get("default_prompt_name"),
            init_args=(args, dict(kwargs)),
            **extra,
        )
    except NotLite as exc:
        logger.debug("Loading %s with the torch classes: %s", name, exc)
        return None


def _load_sentence_transformer(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    truncate_dim = kwargs.get("truncate_dim")
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)):
        return None  # the torch class raises the error
    from sentrs.backend.lite.models import LiteSentenceTransformer

    return _load_lite(
        args,
        kwargs,
        model_type="SentenceTransformer",
        allowed=_COMMON | _ST_ONLY,
        organization="sentence-transformers",
        default_task="feature-extraction",
        factory=LiteSentenceTransformer,
    )


def _load_cross_encoder(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    from sentrs.backend.lite.models import LiteCrossEncoder

    return _load_lite(
        args,
        kwargs,
        model_type="CrossEncoder",
        allowed=_COMMON,
        organization="cross-encoder",
        default_task="sequence-classification",
        factory=LiteCrossEncoder,
    )


class SentenceTransformer(metaclass=_ModelMeta):
    """Maps sentences to dense vectors; see :class:`sentrs.sentence_transformer.SentenceTransformer`."""

    _is_stand_in = True
    _torch_target = "sentrs.sentence_transformer.model:SentenceTransformer"
    _lite_target = "sentrs.backend.lite.models:LiteSentenceTransformer"
    _lite_loader = staticmethod(_load_sentence_transformer)


class CrossEncoder(metaclass=_ModelMeta):
    """Scores text pairs jointly; see :class:`sentrs.cross_encoder.CrossEncoder`."""

    _is_stand_in = True
    _torch_target = "sentrs.cross_encoder.model:CrossEncoder"
    _lite_target = "sentrs.backend.lite.models:LiteCrossEncoder"
    _lite_loader = staticmethod(_load_cross_encoder)


class SparseEncoder(metaclass=_ModelMeta):
    """Sparse (SPLADE-style) embeddings; see :class:`sentrs.sparse_encoder.SparseEncoder`.

    Always the torch class: its ``encode`` returns torch sparse tensors by definition.
    """

    _is_stand_in = True
    _torch_target = "sentrs.sparse_encoder.model:SparseEncoder"
    _lite_target = None
    _lite_loader = None
