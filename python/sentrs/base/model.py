"""What every model type shares: construction from modules or a folder, prompts, devices, saving and loading.

A model runs in one of two ways, decided at construction and the same class either way:

- **torch modules** (the default, and whatever needs autograd or a device): ``nn.Sequential`` of the folder's modules;
- **engine only**: ``backend="onnx"``/``"openvino"`` on a folder whose modules all have host steps
  (:mod:`sentrs.base.engine.steps`): the exported file runs in ONNX Runtime / OpenVINO with one stream per core, and
  nothing imports torch until something asks for a torch object.

Either way inference goes through :mod:`sentrs.base.engine` (tokenize once, plan, pad, forward, rows back).
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn, TypedDict

import numpy as np
import numpy.typing as npt

from sentrs.base.formats import module_folder
from sentrs.base.hub import resolve_model_dir
from sentrs.base.inputs import as_batch_list, is_single_text_input, prepare_text_inputs, split_pairs
from sentrs.base.modality import (
    describe_input_types,
    folder_has_processor,
    infer_batch_modality,
    infer_modality,
    is_message_dict,
    is_non_text_pair,
    is_pil_image,
    may_name_media,
    raise_unsupported_modality_error,
)
from sentrs.base.peft_mixin import PeftAdapterMixin
from sentrs.base.prompts import QueryDocumentMixin, check_default_prompt_name, merge_prompts, resolve_prompt
from sentrs.base.registry import load_module
from sentrs.base.torch_layer import TorchLayer, attach_torch, register_torch_free, torch_attached
from sentrs.exceptions import InputTypeError
from sentrs.util.decorators import save_to_hub_args_decorator
from sentrs.util.environment import fit_torch_threads_to_cpu_quota

if TYPE_CHECKING:
    import torch
    from torch import nn

    from sentrs.base.engine.steps import HostPipeline
    from sentrs.base.evaluation import BaseEvaluator

    _ModelBase = nn.Sequential
else:
    _ModelBase = TorchLayer

__all__ = ["BaseModel", "ModelOptions", "QueryDocumentMixin", "with_model_options"]

logger = logging.getLogger(__name__)

REFERENCE_FORMAT_VERSION = "6.2.0"
# Settings the engine-only path cannot honour: they need the transformers tokenizer or config objects.
_TORCH_ONLY_OPTIONS = ("processor_kwargs", "tokenizer_kwargs", "config_kwargs")


class ModelOptions(TypedDict, total=False):
    """The constructor options every model type shares (see :class:`BaseModel`); a type's own ``__init__`` takes
    them as ``**options: Unpack[ModelOptions]`` and hands them on, so they are declared once, here."""

    modules: list[nn.Module] | OrderedDict[str, nn.Module] | None
    device: str | None
    prompts: dict[str, str | None] | None
    default_prompt_name: str | None
    cache_folder: str | None
    trust_remote_code: bool
    revision: str | None
    local_files_only: bool
    token: bool | str | None
    use_auth_token: bool | str | None
    model_kwargs: dict[str, Any] | None
    processor_kwargs: dict[str, Any] | None
    tokenizer_kwargs: dict[str, Any] | None
    config_kwargs: dict[str, Any] | None
    model_card_data: Any
    backend: Literal["torch", "onnx", "openvino"]


class ClassOnAccess:
    """A class attribute naming a class as ``"module:Name"``, imported the first time it is read (so that the model
    classes import without their model card module)."""

    def __init__(self, ref: str) -> None:
        self.ref = ref

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        module, _, name = self.ref.partition(":")
        return getattr(importlib.import_module(module), name)


def with_model_options(cls: type[BaseModel]) -> type[BaseModel]:
    """Gives ``cls.__init__`` the full signature (``inspect.signature``, ``help``): its own parameters with
    :class:`ModelOptions` spelled out, as keyword-only parameters with :class:`BaseModel`'s defaults, before the
    type's own keyword-only ones (the reference's order)."""
    own = inspect.signature(cls.__init__)
    shared = [
        p
        for name, p in inspect.signature(BaseModel.__init__).parameters.items()
        if name in ModelOptions.__annotations__
    ]
    params = [
        p for p in own.parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
    ]
    params += shared
    params += [p for p in own.parameters.values() if p.kind is p.KEYWORD_ONLY]
    params += [p for p in own.parameters.values() if p.kind is p.VAR_KEYWORD and p.name != "options"]
    cls.__init__.__signature__ = own.replace(parameters=params)  # type: ignore[attr-defined]
    return cls


def default_device() -> str:
    """``cuda`` when available, then ``mps``, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


# A README.md above this size is not read (model cards are kilobytes; a hostile folder may hold gigabytes).
_MAX_MODEL_CARD_BYTES = 16 * 1024 * 1024


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise json.JSONDecodeError(f"{path} is not valid JSON: {exc.msg}", exc.doc, exc.pos) from exc


def engine_allowed() -> bool:
    """``SENTRS_TORCH_FREE=0`` makes every model load its torch modules (to compare the two paths, or debug)."""
    return os.environ.get("SENTRS_TORCH_FREE", "1") != "0"


class BaseModel(_ModelBase, PeftAdapterMixin):
    """A sequence of modules with the reference's construction, prompt, device and save/load behaviour."""

    model_type: ClassVar[str] = ""
    default_huggingface_organization: ClassVar[str | None] = None
    #: The model card data a model gets when the constructor is given none.
    model_card_data_class: ClassVar[Any] = ClassOnAccess("sentrs.base.model_card:BaseModelCardData")
    _default_prompts: ClassVar[dict[str, str | None]] = {}
    #: Set on rank 0 by :func:`sentrs.util.distributed.distributed_evaluation` while an evaluator runs in a
    #: ``torch.distributed`` job: ``encode`` then shares its inference with the job's other processes.
    _distributed_inference: Callable[..., Any] | None = None

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: list[nn.Module] | OrderedDict[str, nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str | None] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        use_auth_token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: Any = None,
        backend: Literal["torch", "onnx", "openvino"] = "torch",
    ) -> None:
        if use_auth_token is not None:
            warnings.warn(
                "use_auth_token is deprecated and will be removed; pass token instead", FutureWarning, stacklevel=3
            )
            if token is not None:
                raise ValueError("Both token and use_auth_token were given; pass only token")
            token = use_auth_token
        if tokenizer_kwargs is not None:
            processor_kwargs = {**tokenizer_kwargs, **(processor_kwargs or {})}
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}")
        fit_torch_threads_to_cpu_quota()
        self.prompts: dict[str, str] = {}
        self.default_prompt_name = default_prompt_name
        self.trust_remote_code = trust_remote_code
        if model_card_data is None:
            model_card_data = self.model_card_data_class(local_files_only=local_files_only)
        self.model_card_data = model_card_data
        # The README of the loaded folder, saved again as it is unless the model is trained (see _create_model_card).
        self._model_card_text: str | None = None
        self.backend = backend
        self._model_config: dict[str, Any] = {}
        self.model_name_or_path = model_name_or_path
        self.cache_folder = cache_folder

        self._engine: HostPipeline | None = None
        self._model_dir: str | None = None

        if model_name_or_path is not None and modules is not None:
            logger.warning("Both model_name_or_path and modules were given; modules is ignored")
            modules = None
        hub_kwargs = {
            "model_kwargs": model_kwargs,
            "processor_kwargs": processor_kwargs,
            "config_kwargs": config_kwargs,
            "backend": backend,
        }
        if modules is not None:
            if isinstance(modules, (list, tuple)):
                if len(modules) == 0:
                    raise ValueError("modules must not be empty")
                modules = OrderedDict((str(i), m) for i, m in enumerate(modules))
            elif not isinstance(modules, OrderedDict) or not modules:
                raise ValueError(f"modules must be a non-empty list or OrderedDict of modules, got {modules!r}")
        elif model_name_or_path is not None:
            model_dir = resolve_model_dir(
                model_name_or_path,
                default_organization=self.default_huggingface_organization,
                cache_folder=cache_folder,
                revision=revision,
                token=token,
                local_files_only=local_files_only,
                backend=backend,
                model_kwargs=model_kwargs,
            )
            self._model_dir = model_dir
            saved_config = self._read_model_config(model_dir)
            self._read_model_card(model_name_or_path, model_dir, saved_config, revision, local_files_only)
            use_engine = (
                backend != "torch"
                and engine_allowed()
                and device in (None, "cpu")
                and all(hub_kwargs.get(k) is None for k in _TORCH_ONLY_OPTIONS)
                and tokenizer_kwargs is None
                and self._engine_options_ok()
                and not folder_has_processor(model_dir)  # image, audio or video inputs: the torch modules
            )
            if use_engine:
                self._engine = self._load_engine(model_dir, saved_config, backend, model_kwargs)
            if self._engine is None:
                attach_torch()
                modules = self._load_folder_modules(model_dir, saved_config, trust_remote_code, hub_kwargs)
                if use_engine and backend != "torch":
                    # The first load of a folder without the exported file exports it through the torch modules;
                    # from then on the engine can run it.
                    self._engine = self._load_engine(model_dir, saved_config, backend, model_kwargs)
                    if self._engine is not None:
                        modules = None
            if self._engine is not None:
                self._model_config = saved_config
        if self._engine is not None:
            super().__init__()  # an empty nn.Sequential once torch is attached
            if not torch_attached():
                register_torch_free(self)
        else:
            attach_torch()
            super().__init__(modules or OrderedDict())

        self.prompts = merge_prompts(self._default_prompts, self._model_config.get("prompts"), prompts)
        if default_prompt_name is None:
            self.default_prompt_name = self._model_config.get("default_prompt_name")
        check_default_prompt_name(self.default_prompt_name, self.prompts)
        self._parse_model_config(self._model_config)
        if self._engine is None:
            self.to(device if device is not None else default_device())
        self.model_card_data.register_model(self)

    def _read_model_card(
        self,
        model_name_or_path: str | os.PathLike[str],
        model_dir: str,
        saved_config: dict[str, Any],
        revision: str | None,
        local_files_only: bool,
    ) -> None:
        """Keeps the README of a folder of this model type, and records a Hub model as the base model (from the
        snapshot it resolved to, without asking the Hub)."""
        from sentrs.base.model_card import hub_snapshot

        same_type = saved_config.get("model_type", "SentenceTransformer") == self.model_type
        readme = os.path.join(model_dir, "README.md")
        if same_type and os.path.isfile(os.path.join(model_dir, "modules.json")) and os.path.isfile(readme):
            try:
                if os.path.getsize(readme) > _MAX_MODEL_CARD_BYTES:
                    raise OSError(f"larger than {_MAX_MODEL_CARD_BYTES} bytes, not read")
                with open(readme, encoding="utf-8") as f:
                    self._model_card_text = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                logger.warning("Could not read %s (%s); the saved model gets a new model card", readme, exc)
        local = os.path.isdir(os.path.expanduser(os.fspath(model_name_or_path)))
        snapshot = None if local else hub_snapshot(model_dir)
        if snapshot is not None and not local_files_only:
            repo_id, commit = snapshot
            if self.model_card_data.set_base_model(repo_id, revision=commit) and revision not in (None, "main"):
                self.model_card_data.base_model_revision = revision

    def _load_folder_modules(
        self, model_dir: str, saved_config: dict[str, Any], trust_remote_code: bool, hub_kwargs: dict[str, Any]
    ) -> OrderedDict[str, nn.Module]:
        """The torch modules of a model folder (or this type's default modules for a plain transformers folder)."""
        saved_type = saved_config.get("model_type", "SentenceTransformer")
        has_modules = os.path.exists(os.path.join(model_dir, "modules.json"))
        if has_modules and saved_type == self.model_type:
            self._model_config = saved_config
            return self._load_modules(model_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
        if saved_type == self.model_type:
            self._model_config = saved_config  # a plain transformers folder with our metadata beside it
        elif has_modules:
            # A folder of another model type: keep its transformer, build this type's default head.
            logger.warning("Converting %s model %s to %s", saved_type, self.model_name_or_path, self.model_type)
            return self._load_converted_modules(
                model_dir, saved_type, trust_remote_code=trust_remote_code, **hub_kwargs
            )
        return self._load_default_modules(model_dir, **hub_kwargs)

    # ------------------------------------------------------------------ the engine-only path
    def _engine_options_ok(self) -> bool:
        """Whether this type's own constructor options allow the engine-only path (subclasses refine)."""
        return type(self)._engine_task is not None

    _engine_task: ClassVar[str | None] = None
    #: Per-call settings the engine's host steps read from the features (SparseEncoder: ``max_active_dims``).
    _engine_call_settings: ClassVar[tuple[str, ...]] = ()

    def _load_engine(
        self, model_dir: str, saved_config: dict[str, Any], backend: str, model_kwargs: dict[str, Any] | None
    ) -> HostPipeline | None:
        """The host pipeline of an exported folder, or None (logged) when the folder needs the torch modules."""
        from sentrs.base.engine.steps import NeedsTorch, load_host_pipeline

        task = type(self)._engine_task
        assert task is not None
        previous_config = self._model_config
        try:
            saved_type = saved_config.get("model_type", "SentenceTransformer")
            if saved_type != self.model_type and (
                os.path.isfile(os.path.join(model_dir, "modules.json")) or "model_type" in saved_config
            ):
                raise NeedsTorch(f"a {saved_type} folder")
            pipeline = load_host_pipeline(model_dir, backend, model_kwargs, task)
            self._model_config = saved_config  # the type's checks may read it
            self._check_engine(pipeline)
        except NeedsTorch as exc:
            self._model_config = previous_config
            logger.debug("Loading %s with the torch modules: %s", model_dir, exc)
            return None
        return pipeline

    def _check_engine(self, pipeline: HostPipeline) -> None:
        """Raises NeedsTorch when this type cannot run ``pipeline`` (subclasses refine)."""

    def _inference_context(self) -> AbstractContextManager[Any]:
        """No autograd while inferring with the torch modules; nothing to switch off on the engine path."""
        if self._engine is not None:
            return nullcontext()
        import torch

        return torch.inference_mode()

    @property
    def runs_in_engine(self) -> bool:
        """True when the model runs its exported file without torch modules (see the module docstring)."""
        return self._engine is not None

    def _need_torch_modules(self, what: str) -> None:
        if self._engine is not None:
            raise TypeError(
                f"{what} needs the torch modules, and this {type(self).__name__} runs its exported "
                f"{self.backend} file without them; load it with backend='torch' (or set SENTRS_TORCH_FREE=0 to "
                "load the torch modules around the exported file)"
            )

    # ------------------------------------------------------------------ hooks for subclasses
    def _load_default_modules(self, model_dir: str, **hub_kwargs: Any) -> OrderedDict[str, nn.Module]:
        raise TypeError(f"{type(self).__name__} does not define default modules for a plain transformers folder")

    def _load_converted_modules(
        self, model_dir: str, saved_type: str, trust_remote_code: bool = False, **hub_kwargs: Any
    ) -> OrderedDict[str, nn.Module]:
        """Modules for a folder saved as another model type; the default keeps only its transformer."""
        return self._load_default_modules(model_dir, **hub_kwargs)

    def _parse_model_config(self, model_config: dict[str, Any]) -> None:
        """Reads type-specific keys of ``config_sentence_transformers.json``."""

    def _get_model_config(self) -> dict[str, Any]:
        """Type-specific keys written into ``config_sentence_transformers.json``."""
        return {}

    # ------------------------------------------------------------------ loading
    def _read_model_config(self, model_dir: str) -> dict[str, Any]:
        path = os.path.join(model_dir, "config_sentence_transformers.json")
        if not os.path.exists(path):
            return {}
        config = _read_json(path)
        if not isinstance(config, dict):
            raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
        return config

    def _load_modules(
        self, model_dir: str, trust_remote_code: bool = False, **hub_kwargs: Any
    ) -> OrderedDict[str, nn.Module]:
        path = os.path.join(model_dir, "modules.json")
        entries = _read_json(path)
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path} must hold a non-empty JSON list of modules, got {entries!r}")
        folders = []  # every path is checked before any module (custom code included) is loaded
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
                raise ValueError(f"{path}: entry {i} must be an object with 'type' and 'path' keys, got {entry!r}")
            folders.append(module_folder(model_dir, entry["path"], f"{path}: entry {i}"))
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for i, (entry, folder) in enumerate(zip(entries, folders)):
            module = load_module(
                entry["type"], folder, trust_remote_code=trust_remote_code, model_dir=model_dir, **hub_kwargs
            )
            modules[str(entry.get("name", i))] = module
        return modules

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """The device of the first parameter (cpu for a model without parameters, and for the engine-only path)."""
        import torch

        if self._engine is None:
            for p in self.parameters():
                return p.device
            for b in self.buffers():
                return b.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the first parameter (float32 for a model without parameters)."""
        import torch

        if self._engine is None:
            for p in self.parameters():
                return p.dtype
        return torch.float32

    def __getitem__(self, idx: Any) -> Any:
        if self._engine is not None:
            return [self._engine.transformer, *self._engine.steps][idx]
        return super().__getitem__(idx)

    def __len__(self) -> int:
        if self._engine is not None:
            return 1 + len(self._engine.steps)
        return super().__len__()

    def __iter__(self) -> Iterator[Any]:
        if self._engine is not None:
            return iter([self._engine.transformer, *self._engine.steps])
        return super().__iter__()

    def _first_module(self) -> Any:
        if self._engine is not None:
            return self._engine.transformer
        module = self._modules[next(iter(self._modules))]
        assert module is not None
        return module

    def _last_module(self) -> Any:
        if self._engine is not None:
            return ([self._engine.transformer, *self._engine.steps])[-1]
        module = self._modules[next(reversed(self._modules))]
        assert module is not None
        return module

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the input module (a transformers tokenizer; loaded from the folder on the engine path)."""
        if self._engine is not None:
            if getattr(self, "_hf_tokenizer", None) is None:
                from transformers import AutoTokenizer

                object.__setattr__(
                    self, "_hf_tokenizer", AutoTokenizer.from_pretrained(self._engine.transformer.folder)
                )
            return self._hf_tokenizer
        return getattr(self._first_module(), "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._need_torch_modules("setting the tokenizer")
        self._first_module().tokenizer = value

    @property
    def processor(self) -> Any:
        """The processor of the input module (``AutoProcessor``: a CLIPProcessor, ...; the tokenizer of a text
        model)."""
        if self._engine is not None:
            return self.tokenizer
        first = self._first_module()
        return getattr(first, "processor", None) or getattr(first, "tokenizer", None)

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length of the input module in tokens (special tokens included)."""
        if self._engine is not None:
            return self._engine.transformer.tokenizer.max_seq_length
        return getattr(self._first_module(), "max_seq_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if self._engine is not None:
            self._engine.transformer.tokenizer.max_seq_length = value
            return
        first = self._first_module()
        if not hasattr(first, "max_seq_length"):
            raise AttributeError(f"{type(first).__name__} has no max_seq_length to set")
        setattr(first, "max_seq_length", value)  # noqa: B010 - not every module declares it

    @property
    def transformers_model(self) -> Any:
        """The transformers model inside the first Transformer module, if any (on the engine path: the exported
        model the engine runs, as the reference's ONNX/OpenVINO models hold theirs)."""
        if self._engine is not None:
            return self._engine.transformer.model
        for module in self._modules.values():
            if hasattr(module, "auto_model"):
                return module.auto_model
        return None

    @property
    def modalities(self) -> list[Any]:
        """The input modalities the model takes, those of its input module: ``["text"]``, ``["text", "image"]``
        (CLIP), ``["text", "message"]`` (a chat-template model), ..."""
        return list(getattr(self._first_module(), "modalities", None) or ["text"])

    def supports(self, modality: Any) -> bool:
        """Whether the model takes inputs of ``modality``: one of :attr:`modalities`, or a tuple such as
        ``("image", "text")`` (one input combining them) whose parts it takes when it also takes ``"message"``
        inputs, which is how such inputs are combined."""
        supported = self.modalities
        if modality in supported:
            return True
        if isinstance(modality, tuple) and "message" in supported:
            return all(part in supported for part in modality)
        return False

    def _raise_unsupported(self, inputs: Sequence[Any], modality: Any) -> NoReturn:
        """The reference's unsupported-modality ``ValueError``, naming the types received."""
        try:
            raise_unsupported_modality_error(inputs, modality, self.modalities, f"{type(self).__name__} model")
        except ValueError as exc:
            raise ValueError(f"{exc} Received: {describe_input_types(inputs)}.") from None

    def _check_modality(self, inputs: Sequence[Any]) -> None:
        """Raises when a batch's modality is one the model does not take (inputs of no known modality are left to
        the input module, as in the reference)."""
        try:
            modality = infer_batch_modality(inputs, supported_modalities=self.modalities)
        except (ValueError, TypeError):
            return
        if not self.supports(modality):
            self._raise_unsupported(inputs, modality)

    def _prepare_inputs(self, inputs: Any) -> tuple[list[Any], bool]:
        """The inputs of ``encode`` as ``(batch, single)``.

        Texts and (text, text) pairs are checked as :func:`~sentrs.base.inputs.prepare_text_inputs` does. Anything
        else must be an input of a modality the model takes (an image for CLIP, a conversation for a chat-template
        model), and is kept as it is; otherwise the error names what was received and what the model takes. A batch
        that mixes modalities the model takes one by one is checked batch by batch, as the reference does.
        """
        try:
            batch, single = prepare_text_inputs(inputs)
        except InputTypeError as exc:
            not_text = exc
        else:
            if not self.supports("text"):  # an image-only model, say (strings may name its images)
                self._check_modality(batch)
            return batch, single
        single = is_single_text_input(inputs)
        batch = [inputs] if single else as_batch_list(inputs)
        supported = self.modalities
        try:
            modality = infer_batch_modality(batch, supported_modalities=supported)
        except ValueError as exc:
            if self.supports("message") and any(is_non_text_pair(x) for x in batch):
                return batch, single  # (text, video) pairs, say: the input module makes them query/document messages
            if set(supported) <= {"text", "message"}:
                raise not_text from None
            raise InputTypeError(_unknown_input_message(batch, supported, single) or str(exc)) from None
        if modality == "text":
            raise not_text from None  # text-like, but not text (e.g. {"text": 1})
        if not self.supports(modality):
            if modality == "message" and "message" not in supported:
                per_input = {infer_modality(x, supported_modalities=supported) for x in batch}
                if "message" not in per_input and all(self.supports(m) for m in per_input):
                    return batch, single  # mixed: every batch of it is checked on its own
            self._raise_unsupported(batch, modality)
        return batch, single

    def get_max_seq_length(self) -> int | None:
        """Deprecated: use ``max_seq_length``."""
        return self.max_seq_length

    def get_backend(self) -> str:
        return self.backend

    def get_model_kwargs(self) -> list[str]:
        """Extra keyword arguments ``encode`` accepts (forward kwargs of the modules)."""
        if self._engine is not None:
            return []
        from sentrs.base.modules.router import Router

        names: set[str] = set()
        pending = list(self._modules.values())
        while pending:
            module = pending.pop()
            if isinstance(module, Router):
                for route in module.sub_modules.values():
                    pending.extend(route.children())
            names |= set(getattr(module, "forward_kwargs", set()))
        return sorted(names)

    def is_singular_input(self, inputs: Any) -> bool:
        """Whether ``inputs`` is one input rather than a batch: a list, a tuple or a str/object numpy array is a
        batch, except a list of chat messages (one conversation); anything else (a str, an image, a dict) is one."""
        return is_single_text_input(inputs)

    def preprocess(self, inputs: Any, prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turns a batch into model inputs with the first module (tokenizing texts; images and other modalities
        through the processor), after checking the model takes the batch's modality."""
        from sentrs.base.modules.module import InputModule

        self._need_torch_modules("preprocess()")
        first = self._first_module()
        if not isinstance(first, InputModule):
            raise TypeError(f"the first module must be an input module with preprocess(), got {type(first).__name__}")
        if isinstance(inputs, list) and inputs:
            self._check_modality(inputs)
        return first.preprocess(inputs, prompt=prompt, **kwargs)

    def tokenize(self, inputs: Any, **kwargs: Any) -> dict[str, Any]:
        """Deprecated alias of :meth:`preprocess`."""
        return self.preprocess(inputs, **kwargs)

    def forward(self, input: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Runs the modules in order on a features dict; each gets only the kwargs it declares (a Router all)."""
        self._need_torch_modules("forward()")
        return _run_modules(list(self._modules.values()), input, None, kwargs)

    def _inference_modules(self, task: str | None = None, modality: Any = "text") -> list[nn.Module]:
        """The modules an input of ``task`` and ``modality`` goes through: a leading Router is replaced by the modules
        of its route (kept when ``modality`` is None: it then routes each batch itself)."""
        from sentrs.base.modules.router import Router

        modules = list(self._modules.values())
        if isinstance(modules[0], Router) and modality is not None:
            return modules[0].route_modules(task, modality) + modules[1:]
        return modules

    def _batch_modality(self, inputs: list[Any]) -> Any:
        """The modality of all of ``inputs`` for routing: ``"text"`` for a model without image, audio or video
        inputs (and for inputs of no known modality, which the text path reports), None for inputs that mix
        modalities (each batch is routed on its own then)."""
        media = {"image", "audio", "video"}
        if not any(part in media for m in self.modalities for part in (m if isinstance(m, tuple) else (m,))):
            return "text"
        if all(type(x) is str and not may_name_media(x) for x in inputs):
            return "text"
        try:
            found = {infer_modality(x, supported_modalities=self.modalities) for x in inputs}
        except ValueError:
            return "text"
        return found.pop() if len(found) == 1 else None

    def _batched_forward(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        device: str | None = None,
        stop_before: nn.Module | None = None,
        host_path: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[npt.NDArray[np.int64], dict[str, Any]]]:
        """Tokenizes every input once (Rust), runs length-sorted batches, yields ``(input rows, output features)``.

        Texts of similar token counts share a batch, so padding stays small; callers put results back by row. On the
        engine path the features are numpy arrays (and batches may come back out of order, one stream per core);
        with the torch modules they are tensors. With ``stop_before``, that module and the ones after it are left to
        the caller (torch modules only).
        """
        from sentrs.base.engine import plan_units, run_batches

        engine = self._engine
        if engine is not None:
            if device is not None and str(device) != "cpu":
                raise ValueError(
                    f"device must be 'cpu' (or None) for a model running its exported {self.backend} file in the "
                    f"engine, "
                    f"got {device!r}; load the model with device={device!r} to run it there"
                )
            extra = {key: kwargs[key] for key in self._engine_call_settings if key in kwargs}
            unknown = set(kwargs) - {"task", "processing_kwargs"} - set(self._engine_call_settings)
            if unknown:
                raise TypeError(f"encode() got unexpected keyword arguments {sorted(unknown)} for this model")
            processing_kwargs = kwargs.get("processing_kwargs")
            text_kwargs = processing_kwargs.get("text", {}) if isinstance(processing_kwargs, dict) else {}
            texts, pairs = split_pairs(inputs)
            encoding = engine.tokenize(texts, pairs, prompt, max_length=text_kwargs.get("max_length"))
            prompt_length = engine.transformer.tokenizer.prompt_length(prompt) if prompt else None
            streams = engine.streams
            units = plan_units(encoding.lengths(), batch_size, streams)
            yield from run_batches(
                units, lambda rows: engine.run_rows(encoding, rows, prompt_length, extra), streams, show_progress_bar
            )
            return
        import torch

        from sentrs.base.modules.tokenized_input import TokenizedTextInput

        if device is not None:
            self.to(device)
        self.eval()
        model_device = self.device
        modality = self._batch_modality(inputs)
        modules = self._inference_modules(kwargs.get("task"), modality)
        first = modules[0]
        forward_kwargs = {k: v for k, v in kwargs.items() if k != "processing_kwargs"}
        if (
            modality == "text"
            and host_path
            and stop_before is None
            and model_device.type == "cpu"
            and not self._has_hooks(modules)
        ):
            can_run_on_host = getattr(first, "can_run_on_host", None)
            if can_run_on_host is not None and can_run_on_host():
                # A module whose whole forward pass runs in the Rust core (StaticEmbedding): large chunks, one call
                # each, no torch until the modules after it.
                chunk = max(batch_size, 8192)
                units = [np.arange(i, min(i + chunk, len(inputs))) for i in range(0, len(inputs), chunk)]

                host_features: Callable[..., dict[str, Any]] = getattr(first, "host_features")  # noqa: B009

                def run_host(rows: npt.NDArray[np.int64]) -> dict[str, Any]:
                    features: dict[str, Any] = host_features([inputs[int(r)] for r in rows], prompt)
                    return _run_modules(modules[1:], features, None, forward_kwargs)

                yield from run_batches(units, run_host, 1, show_progress_bar)
                return
        reads_as_text = getattr(first, "reads_as_text", None)
        if not isinstance(first, TokenizedTextInput) or (callable(reads_as_text) and not reads_as_text(inputs)):
            yield from self._preprocessed_batches(
                modules, inputs, prompt, batch_size, show_progress_bar, model_device, stop_before, kwargs
            )
            return
        encoding = first.encode_texts(inputs, prompt=prompt, **kwargs)
        prompt_length = first.prompt_length(prompt) if prompt else None

        def run(rows: npt.NDArray[np.int64]) -> dict[str, Any]:
            features = first.features_from_encoding(encoding, rows, task=kwargs.get("task"))
            if prompt_length is not None:
                features["prompt_length"] = prompt_length
            features["modality"] = "text"
            if "task" in kwargs:
                features["task"] = kwargs["task"]
            if model_device.type != "cpu":
                features = {k: (v.to(model_device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
            if stop_before is None:
                # Through nn.Module.__call__, as the reference: forward hooks and model.compile() apply.
                out: dict[str, Any] = self(features, **forward_kwargs)
                return out
            return _run_modules(modules, features, stop_before, forward_kwargs)

        yield from run_batches(plan_units(encoding.lengths(), batch_size), run, 1, show_progress_bar)

    def _has_hooks(self, modules: list[nn.Module]) -> bool:
        """Whether forward hooks sit on the model or its modules (a host fast path would skip them)."""
        return any(m._forward_hooks or m._forward_pre_hooks for m in [self, *modules])

    def _preprocessed_batches(
        self,
        modules: list[nn.Module],
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        model_device: Any,
        stop_before: nn.Module | None,
        kwargs: dict[str, Any],
    ) -> Iterator[tuple[npt.NDArray[np.int64], dict[str, Any]]]:
        """Batches for an input module with its own ``preprocess`` (word embeddings, bag of words, ...) and for inputs
        that are not text (images, audio, ... through the processor): inputs sorted by length, longest first, as the
        reference does, and each batch checked against the model's modalities and preprocessed by the module."""
        import torch

        from sentrs.base.engine import run_batches

        first = modules[0]
        if not callable(getattr(first, "preprocess", None)) and not callable(getattr(first, "tokenize", None)):
            raise TypeError(f"the first module must be an input module with preprocess(), got {type(first).__name__}")
        # Plain text needs no check (the input module reports what it cannot read, as before).
        check_modality = not all(type(x) is str for x in inputs) or self._batch_modality(inputs) != "text"
        lengths = np.array([input_length(x) for x in inputs], dtype=np.int64)
        order = np.argsort(-lengths, kind="stable")
        units = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        forward_kwargs = {k: v for k, v in kwargs.items() if k != "processing_kwargs"}

        def run(rows: npt.NDArray[np.int64]) -> dict[str, Any]:
            batch = [inputs[int(r)] for r in rows]
            if check_modality:
                self._check_modality(batch)
            features = call_preprocess(first, batch, prompt, kwargs)
            if model_device.type != "cpu":
                features = {k: (v.to(model_device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
            if stop_before is None:
                out: dict[str, Any] = self(features, **forward_kwargs)
                return out
            return _run_modules(modules, features, stop_before, forward_kwargs)

        yield from run_batches(units, run, 1, show_progress_bar)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    # ------------------------------------------------------------------ saving
    def _config_for_save(self) -> dict[str, Any]:
        import torch
        import transformers

        from sentrs import __version__

        config: dict[str, Any] = {
            "__version__": {
                "sentence_transformers": REFERENCE_FORMAT_VERSION,
                "transformers": transformers.__version__,
                "pytorch": torch.__version__,
                "sentrs": __version__,
            },
            "model_type": self.model_type,
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
        }
        config.update(self._get_model_config())
        return config

    def save(
        self,
        path: str | None,
        model_name: str | None = None,
        create_model_card: bool = True,
        train_datasets: list[str] | None = None,
        safe_serialization: bool = True,
    ) -> None:
        """Saves the model folder in the reference's format.

        The folder is written in a temporary sibling and moved into place only once complete, so a failure never
        leaves a half-written folder over a good one. Files already in ``path`` that this save does not produce
        (an ``onnx/`` export, say) are kept.
        """
        if path is None:  # the reference's save(None) writes nothing
            return
        if self._engine is not None:
            self._torch_twin().save(path, model_name, create_model_card, train_datasets, safe_serialization)
            return
        path = os.fspath(path)
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.tmp-", dir=parent)
        try:
            self._write_folder(tmp, model_name, create_model_card, train_datasets, safe_serialization)
            _swap_into_place(tmp, os.path.abspath(path))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _torch_twin(self) -> BaseModel:
        """This model with its torch modules around the same exported file and this object's settings (for saving)."""
        assert self._model_dir is not None
        previous = os.environ.get("SENTRS_TORCH_FREE")
        os.environ["SENTRS_TORCH_FREE"] = "0"
        try:
            twin = self._twin_class()(self._model_dir, backend=self.backend, device="cpu", **self._twin_kwargs())
        finally:
            if previous is None:
                del os.environ["SENTRS_TORCH_FREE"]
            else:
                os.environ["SENTRS_TORCH_FREE"] = previous
        twin.prompts = dict(self.prompts)
        twin.default_prompt_name = self.default_prompt_name
        twin.max_seq_length = self.max_seq_length
        twin.model_card_data = self.model_card_data
        twin._model_card_text = self._model_card_text
        self._sync_twin(twin)
        return twin

    def _twin_class(self) -> type[BaseModel]:
        return type(self)

    def _twin_kwargs(self) -> dict[str, Any]:
        return {}

    def _sync_twin(self, twin: Any) -> None:
        """Copies type-specific settings onto the torch twin (subclasses extend)."""

    @save_to_hub_args_decorator
    def save_to_hub(
        self,
        repo_id: str,
        organization: str | None = None,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str = "Add new model.",
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
    ) -> str:
        """Deprecated: :meth:`push_to_hub` with the old ``organization`` argument (``repo_id="org/name"`` now)."""
        logger.warning("`save_to_hub` is deprecated; use `push_to_hub` instead.")
        if organization:
            if "/" not in repo_id:
                logger.warning('`organization=` is deprecated: pass repo_id="%s/%s" instead.', organization, repo_id)
                repo_id = f"{organization}/{repo_id}"
            elif repo_id.split("/")[0] != organization:
                raise ValueError(
                    f"`organization` {organization!r} does not match the organization in `repo_id` {repo_id!r}; "
                    "`organization` is deprecated: pass only repo_id='org/name'"
                )
            else:
                logger.warning('`organization=` is deprecated: pass repo_id="%s" alone.', repo_id)
        return self.push_to_hub(
            repo_id=repo_id,
            token=token,
            private=private,
            safe_serialization=safe_serialization,
            commit_message=commit_message,
            local_model_path=local_model_path,
            exist_ok=exist_ok,
            replace_model_card=replace_model_card,
            train_datasets=train_datasets,
        )

    def push_to_hub(
        self,
        repo_id: str,
        token: str | None = None,
        private: bool | None = None,
        safe_serialization: bool = True,
        commit_message: str | None = None,
        local_model_path: str | None = None,
        exist_ok: bool = False,
        replace_model_card: bool = False,
        train_datasets: list[str] | None = None,
        revision: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Saves the model (or uploads ``local_model_path`` as it is) to the Hub repository ``repo_id``.

        Creates the repository (and the ``revision`` branch) when needed; returns the commit URL (the pull request's
        with ``create_pr``). With ``HF_HUB_OFFLINE=1`` huggingface_hub refuses to connect, with its own error.
        """
        from huggingface_hub import HfApi

        if not isinstance(repo_id, str) or not repo_id:
            raise ValueError(f"repo_id must be a non-empty str like 'user/model', got {repo_id!r}")
        api = HfApi(token=token)
        repo = api.create_repo(repo_id=repo_id, private=private, repo_type=None, exist_ok=exist_ok or create_pr)
        repo_id = repo.repo_id
        if revision is not None:
            api.create_branch(repo_id=repo_id, branch=revision, exist_ok=True)
        if commit_message is None:
            suffix = "" if self.backend == "torch" else f" with an {self.backend} backend"
            commit_message = f"Add new {type(self).__name__} model{suffix}"

        def upload(folder: str) -> str:
            info = api.upload_folder(
                repo_id=repo_id,
                folder_path=folder,
                commit_message=commit_message,
                revision=revision,
                create_pr=create_pr,
            )
            url = info.pr_url if create_pr else info.commit_url
            return str(url)

        if local_model_path is not None:
            return upload(local_model_path)
        with tempfile.TemporaryDirectory(prefix="sentrs-push-") as tmp:
            create_card = replace_model_card or not api.file_exists(repo_id, "README.md", revision=revision)
            self.save(
                tmp,
                model_name=repo_id,
                create_model_card=create_card,
                train_datasets=train_datasets,
                safe_serialization=safe_serialization,
            )
            return upload(tmp)

    def save_pretrained(self, path: str, **kwargs: Any) -> None:
        """Alias of :meth:`save`."""
        self.save(path, **kwargs)

    # ------------------------------------------------------------------ multi-process pools
    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling (a pool's worker process receives the model so) attaches torch first: the class must be an
        ``nn.Sequential`` again before the module state is restored."""
        attach_torch()
        from torch import nn

        nn.Module.__setstate__(self, state)

    def start_multi_process_pool(self, target_devices: list[str] | None = None) -> dict[str, Any]:
        """Starts one worker process per device (``["cpu", "cpu"]``, ``["cuda:0", "cuda:1"]``; default: every CUDA
        device, else four CPU workers) for ``encode``/``predict``/``rank`` with ``pool=``.

        The model moves to the CPU and into shared memory; each worker gets it once. CPU workers share the CPUs this
        process may use between them (torch, Rust-core and tokenizer threads alike). Stop the pool with
        :meth:`stop_multi_process_pool`.

        Returns:
            ``{"input": queue, "output": queue, "processes": [...]}``, as the reference.
        """
        from sentrs.base.multi_process import start_pool

        return start_pool(self, target_devices)

    @staticmethod
    def stop_multi_process_pool(pool: dict[str, Any]) -> None:
        """Terminates the workers of a pool from :meth:`start_multi_process_pool` and closes its queues."""
        from sentrs.base.multi_process import stop_pool

        stop_pool(pool)

    def evaluate(self, evaluator: BaseEvaluator, output_path: str | None = None) -> dict[str, float] | float:
        """Runs ``evaluator`` on this model and returns its result (usually a dict of metrics).

        Args:
            evaluator: the evaluator.
            output_path: a folder (created if missing) where the evaluator may write its results.
        """
        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)
        result: dict[str, float] | float = evaluator(self, output_path)
        return result

    def _write_folder(
        self,
        path: str,
        model_name: str | None,
        create_model_card: bool,
        train_datasets: list[str] | None,
        safe_serialization: bool,
    ) -> None:
        with open(os.path.join(path, "config_sentence_transformers.json"), "w", encoding="utf-8") as f:
            json.dump(self._config_for_save(), f, indent=2, sort_keys=True)
        entries = []
        for idx, (name, module) in enumerate(self._modules.items()):
            assert module is not None
            if idx == 0 and getattr(module, "save_in_root", False):
                sub = ""
            else:
                sub = f"{idx}_{type(module).__name__}"
            folder = os.path.join(path, sub)
            os.makedirs(folder, exist_ok=True)
            try:
                module.save(folder, safe_serialization=safe_serialization)  # type: ignore[operator]
            except TypeError as exc:  # a custom module whose save() predates safe_serialization
                if "safe_serialization" not in str(exc):
                    raise
                module.save(folder)  # type: ignore[operator]
            type_ref = getattr(module, "reference_type", "") or _custom_type_ref(module, folder)
            entries.append({"idx": idx, "name": name, "path": sub, "type": type_ref})
        with open(os.path.join(path, "modules.json"), "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
        if create_model_card:
            self._create_model_card(path, model_name, train_datasets)

    def _create_model_card(
        self, path: str, model_name: str | None = None, train_datasets: list[str] | None = None
    ) -> None:
        """Writes ``README.md`` into ``path``: the loaded folder's own README when the model was not trained since
        (its placeholder model id replaced by ``model_card_data.model_id``), else a card generated from
        ``model_card_data``. A failure to generate is logged and leaves the folder without a README.

        Args:
            path: the folder being saved.
            model_name: the Hub id the model is saved for (it becomes ``model_card_data.model_id`` when that is
                unset and ``model_name`` is not a local path).
            train_datasets: Hub dataset ids to list in the card's metadata.
        """
        from sentrs.base.model_card import generate_model_card

        card = self.model_card_data
        if model_name and not os.path.exists(model_name) and not card.model_id:
            card.model_id = model_name
        for dataset_id in train_datasets or []:
            if dataset_id not in card.datasets:
                card.datasets.append(dataset_id)
        card.save_dir = path
        if self._model_card_text and "generated_from_trainer" not in card.tags:
            text = self._model_card_text
            placeholder = getattr(card, "_snippet_default_model_id", "sentence_transformers_model_id")
            if card.model_id:
                call = f"model = {type(self).__name__}("
                text = text.replace(f'{call}"{placeholder}"', f'{call}"{card.model_id}"')
        else:
            described = card.model
            card.model = self  # on the engine path this is the torch twin that saves: its modules are shown
            try:
                text = generate_model_card(self)
            except Exception:
                logger.error(
                    "Error while generating the model card; saving without README.md:\n%s", traceback.format_exc()
                )
                return
            finally:
                card.model = described
        with open(os.path.join(path, "README.md"), "w", encoding="utf-8") as f:
            f.write(text)


def input_length(sample: Any) -> int:
    """A size estimate of one input for length-sorted batching (the reference's): characters of a text (summed over
    a pair, a conversation or a multimodal dict), elements of an array, pixels of an image."""
    if isinstance(sample, str):
        return len(sample)
    if isinstance(sample, (tuple, list)) and sample and not is_message_dict(sample[0]):
        return sum(input_length(s) for s in sample)
    if isinstance(sample, dict):
        if "array" in sample:
            return input_length(sample["array"])
        if "content" in sample:
            content = sample["content"]
            if isinstance(content, str):
                return len(content)
            if isinstance(content, list):
                return sum(len(str(part.get("text", ""))) for part in content if isinstance(part, dict))
            return 1
        return sum(input_length(v) for v in sample.values())
    if isinstance(sample, list) and sample and isinstance(sample[0], dict):
        return sum(input_length(message) for message in sample)
    if isinstance(sample, np.ndarray):
        return int(sample.size)
    if hasattr(sample, "nelement") and callable(sample.nelement):
        return int(sample.nelement())
    if is_pil_image(sample):
        return int(sample.size[0] * sample.size[1])
    return 1


def _unknown_input_message(batch: list[Any], supported: list[Any], single: bool) -> str | None:
    """The reference's unknown-input message for the first input of no known modality, saying where it is."""
    for i, item in enumerate(batch):
        try:
            infer_modality(item, supported_modalities=supported)
        except ValueError as exc:
            return str(exc) if single else f"{exc} (inputs[{i}])"
    return None


def call_preprocess(module: Any, inputs: list[Any], prompt: str | None, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``module.preprocess(inputs, prompt=prompt, **kwargs)``; a module whose ``preprocess`` (or legacy
    ``tokenize``) takes no prompt or keywords gets the prompt prepended to each text instead, as in the reference."""

    def prompted() -> list[Any]:
        if not prompt:
            return inputs
        return [(prompt + x[0], *x[1:]) if isinstance(x, tuple) else prompt + x for x in inputs]

    preprocess = getattr(module, "preprocess", None)
    if callable(preprocess):
        try:
            return dict(preprocess(inputs, prompt=prompt, **kwargs))
        except TypeError:
            return dict(preprocess(prompted()))
    tokenize = module.tokenize
    try:
        return dict(tokenize(prompted(), **kwargs))
    except TypeError:
        return dict(tokenize(prompted()))


def _run_modules(
    modules: list[nn.Module], features: dict[str, Any], stop_before: nn.Module | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Applies ``modules`` in order (up to ``stop_before``); each gets the kwargs it declares, a Router all of them."""
    from sentrs.base.modules.router import Router

    for module in modules:
        if module is stop_before:
            break
        if isinstance(module, Router):
            accepted = kwargs
        else:
            accepted = {k: v for k, v in kwargs.items() if k in getattr(module, "forward_kwargs", set())}
        features = module(features, **accepted)
    return features


def _custom_type_ref(module: Any, folder: str) -> str:
    """The ``modules.json`` type of a module outside sentrs. A class loaded from a model folder's ``.py`` file
    (``transformers_modules.<folder>.<hash>.<file>``) gets that file, and the files it imports, copied into
    ``folder`` and is written as ``<file>.<Class>``, as the reference does."""
    module_name = type(module).__module__
    if not module_name.startswith("transformers_modules."):
        return f"{module_name}.{type(module).__name__}"
    from transformers.dynamic_module_utils import get_relative_import_files

    class_file = sys.modules[module_name].__file__
    assert class_file is not None
    for source in [class_file, *get_relative_import_files(class_file)]:
        shutil.copy(source, os.path.join(folder, os.path.basename(source)))
    return f"{module_name.rsplit('.', 1)[-1]}.{type(module).__name__}"


def _exchange_paths(a: str, b: str) -> bool:
    """Swaps two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``); False where the platform
    or file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import errno

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # no libc symbol (glibc < 2.28, musl)
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), a, None, b)


def _swap_into_place(tmp: str, target: str) -> None:
    """Moves the finished folder ``tmp`` to ``target``, keeping files of an old ``target`` that it lacks.

    The old folder is replaced in one atomic step where the system can swap two paths (Linux), so a process killed
    at any point leaves either the old folder or the new one at ``target``; elsewhere the old folder is renamed aside
    for the instant between two renames."""
    if not os.path.exists(target):
        os.replace(tmp, target)
        return
    if not os.path.isdir(target):
        raise NotADirectoryError(f"cannot save a model folder over the file {target!r}")
    for entry in os.listdir(target):
        if not os.path.exists(os.path.join(tmp, entry)):
            src, dst = os.path.join(target, entry), os.path.join(tmp, entry)
            if os.path.isdir(src):
                shutil.copytree(src, dst)
            else:
                shutil.copy2(src, dst)
    if _exchange_paths(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        return
    backup = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(target))
    os.rmdir(backup)
    os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
