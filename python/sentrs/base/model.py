"""What every model type shares: construction from modules or a folder, prompts, devices, saving and loading."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from sentrs.base.hub import resolve_model_dir
from sentrs.base.inputs import is_single_text_input
from sentrs.base.modules.module import InputModule
from sentrs.base.prompts import QueryDocumentMixin, check_default_prompt_name, merge_prompts, resolve_prompt
from sentrs.base.registry import load_module

__all__ = ["BaseModel", "QueryDocumentMixin"]

logger = logging.getLogger(__name__)

REFERENCE_FORMAT_VERSION = "6.2.0"


def default_device() -> str:
    """``cuda`` when available, then ``mps``, else ``cpu``."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as exc:
            raise json.JSONDecodeError(f"{path} is not valid JSON: {exc.msg}", exc.doc, exc.pos) from exc


class BaseModel(nn.Sequential):
    """A sequence of modules with the reference's construction, prompt, device and save/load behaviour."""

    model_type: ClassVar[str] = ""
    default_huggingface_organization: ClassVar[str | None] = None
    _default_prompts: ClassVar[dict[str, str | None]] = {}

    def __init__(
        self,
        model_name_or_path: str | None = None,
        *,
        modules: list[nn.Module] | OrderedDict[str, nn.Module] | None = None,
        device: str | None = None,
        prompts: dict[str, str] | None = None,
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
        backend: str = "torch",
    ) -> None:
        if token is None and use_auth_token is not None:
            token = use_auth_token
        if tokenizer_kwargs is not None:
            processor_kwargs = {**tokenizer_kwargs, **(processor_kwargs or {})}
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}")
        self.prompts: dict[str, str] = {}
        self.default_prompt_name = default_prompt_name
        self.trust_remote_code = trust_remote_code
        self.model_card_data = model_card_data
        self.backend = backend
        self._model_config: dict[str, Any] = {}
        self.model_name_or_path = model_name_or_path
        self.cache_folder = cache_folder

        if model_name_or_path is not None and modules is not None:
            logger.warning("Both model_name_or_path and modules were given; modules is ignored")
            modules = None
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
            hub_kwargs = {
                "model_kwargs": model_kwargs,
                "processor_kwargs": processor_kwargs,
                "config_kwargs": config_kwargs,
                "backend": backend,
            }
            saved_config = self._read_model_config(model_dir)
            saved_type = saved_config.get("model_type", "SentenceTransformer")
            if os.path.exists(os.path.join(model_dir, "modules.json")) and saved_type == self.model_type:
                self._model_config = saved_config
                modules = self._load_modules(model_dir, trust_remote_code=trust_remote_code, **hub_kwargs)
            else:
                if saved_type == self.model_type:
                    self._model_config = saved_config  # a plain transformers folder with our metadata beside it
                elif os.path.exists(os.path.join(model_dir, "modules.json")):
                    # A folder of another model type: keep its transformer, build this type's default head.
                    logger.warning("Converting %s model %s to %s", saved_type, model_name_or_path, self.model_type)
                self._model_dir = model_dir
                if saved_type != self.model_type and os.path.exists(os.path.join(model_dir, "modules.json")):
                    modules = self._load_converted_modules(
                        model_dir, saved_type, trust_remote_code=trust_remote_code, **hub_kwargs
                    )
                else:
                    modules = self._load_default_modules(model_dir, **hub_kwargs)
        super().__init__(modules or OrderedDict())

        self.prompts = merge_prompts(self._default_prompts, self._model_config.get("prompts"), prompts)
        if default_prompt_name is None:
            self.default_prompt_name = self._model_config.get("default_prompt_name")
        check_default_prompt_name(self.default_prompt_name, self.prompts)
        self._parse_model_config(self._model_config)
        self.to(device if device is not None else default_device())

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
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
                raise ValueError(f"{path}: entry {i} must be an object with 'type' and 'path' keys, got {entry!r}")
            sub = entry["path"]
            if not isinstance(sub, str) or os.path.isabs(sub) or ".." in sub.replace("\\", "/").split("/"):
                raise ValueError(f"{path}: entry {i} path must be a relative folder without '..', got {sub!r}")
            module = load_module(
                entry["type"], os.path.join(model_dir, sub), trust_remote_code=trust_remote_code, **hub_kwargs
            )
            modules[str(entry.get("name", i))] = module
        return modules

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        """The device of the first parameter (cpu for a model without parameters)."""
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for p in self.parameters():
            return p.dtype
        return torch.float32

    def _first_module(self) -> nn.Module:
        module = self._modules[next(iter(self._modules))]
        assert module is not None
        return module

    def _last_module(self) -> nn.Module:
        module = self._modules[next(reversed(self._modules))]
        assert module is not None
        return module

    @property
    def tokenizer(self) -> Any:
        """The tokenizer of the input module."""
        return getattr(self._first_module(), "tokenizer", None)

    @tokenizer.setter
    def tokenizer(self, value: Any) -> None:
        self._first_module().tokenizer = value

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length of the input module in tokens (special tokens included)."""
        return getattr(self._first_module(), "max_seq_length", None)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        first = self._first_module()
        if not hasattr(first, "max_seq_length"):
            raise AttributeError(f"{type(first).__name__} has no max_seq_length to set")
        setattr(first, "max_seq_length", value)  # noqa: B010 - not every module declares it

    @property
    def transformers_model(self) -> Any:
        """The transformers model inside the first Transformer module, if any."""
        for module in self._modules.values():
            if hasattr(module, "auto_model"):
                return module.auto_model
        return None

    def get_max_seq_length(self) -> int | None:
        """Deprecated: use ``max_seq_length``."""
        return self.max_seq_length

    def get_backend(self) -> str:
        return self.backend

    def get_model_kwargs(self) -> list[str]:
        """Extra keyword arguments ``encode`` accepts (forward kwargs of the modules)."""
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
        """A str (or one pair tuple) is a single input; lists and arrays are batches."""
        return is_single_text_input(inputs)

    def preprocess(self, inputs: Any, prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenizes with the first module."""
        first = self._first_module()
        if not isinstance(first, InputModule):
            raise TypeError(f"the first module must be an input module with preprocess(), got {type(first).__name__}")
        return first.preprocess(inputs, prompt=prompt, **kwargs)

    def tokenize(self, inputs: Any, **kwargs: Any) -> dict[str, Any]:
        """Deprecated alias of :meth:`preprocess`."""
        return self.preprocess(inputs, **kwargs)

    def forward(self, input: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Runs the modules in order on a features dict; each gets only the kwargs it declares (a Router all)."""
        return _run_modules(list(self._modules.values()), input, None, kwargs)

    def _inference_modules(self, task: str | None = None) -> list[nn.Module]:
        """The modules an input of ``task`` goes through: a leading Router is replaced by the modules of its route."""
        from sentrs.base.modules.router import Router

        modules = list(self._modules.values())
        if isinstance(modules[0], Router):
            return modules[0].route_modules(task, "text") + modules[1:]
        return modules

    def _batched_forward(
        self,
        inputs: list[Any],
        prompt: str | None,
        batch_size: int,
        show_progress_bar: bool,
        device: str | None = None,
        stop_before: nn.Module | None = None,
        **kwargs: Any,
    ) -> Iterator[tuple[npt.NDArray[np.int64], dict[str, Any]]]:
        """Tokenizes every input once (Rust), runs length-sorted batches, yields ``(input rows, output features)``.

        Texts of similar token counts share a batch, so padding stays small; callers put results back by row.
        With ``stop_before``, that module and the ones after it are left to the caller.
        """
        from tqdm.autonotebook import tqdm

        from sentrs import ops
        from sentrs.base.modules.tokenized_input import TokenizedTextInput

        if device is not None:
            self.to(device)
        self.eval()
        model_device = self.device
        modules = self._inference_modules(kwargs.get("task"))
        first = modules[0]
        if not isinstance(first, TokenizedTextInput):
            raise TypeError(f"the first module must be a text input module, got {type(first).__name__}")
        encoding = first.encode_texts(inputs, prompt=prompt, **kwargs)
        _, batches = ops.plan_batches(encoding.lengths(), batch_size)
        prompt_length = first.prompt_length(prompt) if prompt else None
        forward_kwargs = {k: v for k, v in kwargs.items() if k != "processing_kwargs"}
        for rows in tqdm(batches, desc="Batches", disable=not show_progress_bar):
            features = first.features_from_encoding(encoding, rows)
            if prompt_length is not None:
                features["prompt_length"] = prompt_length
            features["modality"] = "text"
            if "task" in kwargs:
                features["task"] = kwargs["task"]
            if model_device.type != "cpu":
                features = {k: (v.to(model_device) if isinstance(v, torch.Tensor) else v) for k, v in features.items()}
            yield rows, _run_modules(modules, features, stop_before, forward_kwargs)

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        return resolve_prompt(self.prompts, self.default_prompt_name, prompt, prompt_name)

    # ------------------------------------------------------------------ saving
    def _config_for_save(self) -> dict[str, Any]:
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
        path: str,
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
        if path is None:
            raise ValueError("path must be a folder path, got None")
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

    def save_pretrained(self, path: str, **kwargs: Any) -> None:
        """Alias of :meth:`save`."""
        self.save(path, **kwargs)

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
            module.save(folder, safe_serialization=safe_serialization)  # type: ignore[operator]
            type_ref = getattr(module, "reference_type", "") or f"{type(module).__module__}.{type(module).__name__}"
            entries.append({"idx": idx, "name": name, "path": sub, "type": type_ref})
        with open(os.path.join(path, "modules.json"), "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
        if create_model_card:
            from sentrs.base.model_card import write_model_card

            write_model_card(self, path, model_name=model_name, train_datasets=train_datasets)


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


def _swap_into_place(tmp: str, target: str) -> None:
    """Moves the finished folder ``tmp`` to ``target``, keeping files of an old ``target`` that it lacks."""
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
    backup = tempfile.mkdtemp(prefix=f".{os.path.basename(target)}.old-", dir=os.path.dirname(target))
    os.rmdir(backup)
    os.replace(target, backup)
    try:
        os.replace(tmp, target)
    except BaseException:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)
