"""A model folder's modules as numpy steps around an ONNX Runtime or OpenVINO session: no torch anywhere.

:func:`load_host_pipeline` reads ``modules.json`` and builds one step per module. It supports the modules an exported
inference model is made of: the Transformer (its exported file, which must already exist), Pooling, Dense (with
safetensors weights and a plain activation), Normalize. Anything else raises :class:`NeedsTorch`, and the caller loads
the model classes load the torch modules instead, which handle every folder (and export what is missing).
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.base.engine.tokenizer import FolderTokenizer, NeedsTorch
from sentrs.base.formats import (
    TRANSFORMER_CONFIG_FILES,
    TRANSFORMER_TASKS,
    file_named_in_errors,
    folder_has_chat_template,
    legacy_pooling_config,
    module_folder,
    read_json_object,
)

__all__ = [
    "HostPipeline",
    "HostTransformer",
    "NeedsExport",
    "NeedsTorch",
    "load_host_pipeline",
    "num_labels",
    "read_module_entries",
]

# modules.json class names (the reference's current and legacy paths end in these) per step type.
_TRANSFORMER_NAMES = {"Transformer", "MLMTransformer"}
_BACKEND_KWARGS = {"file_name", "subfolder", "export", "provider", "threads", "ov_config"}


class NeedsExport(NeedsTorch):
    """The folder has no exported file yet: the torch modules export it, then the engine can run it."""


def _tanh(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.tanh(x)


def _relu(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return np.maximum(x, 0)


def _sigmoid(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


def _identity(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    return x


# torch activation class paths (as saved in configs) with an exact numpy counterpart.
ACTIVATIONS = {
    "torch.nn.modules.activation.Tanh": _tanh,
    "torch.nn.modules.activation.ReLU": _relu,
    "torch.nn.modules.activation.Sigmoid": _sigmoid,
    "torch.nn.modules.linear.Identity": _identity,
}


def read_module_entries(model_dir: str) -> list[tuple[str, str]]:
    """``(class name, folder)`` per ``modules.json`` entry; NeedsTorch for anything the torch loader should judge."""
    path = os.path.join(model_dir, "modules.json")
    try:
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
    except (OSError, ValueError) as exc:
        raise NeedsTorch(f"modules.json unreadable: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise NeedsTorch("modules.json is not a non-empty list")
    result = []
    for entry in entries:
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("type"), str)
            or not isinstance(entry.get("path"), str)
        ):
            raise NeedsTorch("modules.json entry without type and path")
        type_ref, sub = entry["type"], entry["path"]
        if type_ref.split(".", 1)[0] not in ("sentence_transformers", "sentrs"):
            raise NeedsTorch(f"custom module type {type_ref}")
        try:
            folder = module_folder(model_dir, sub, path)
        except ValueError as exc:  # the torch loader raises it
            raise NeedsTorch(f"module path {sub!r}") from exc
        result.append((type_ref.rsplit(".", 1)[-1], folder))
    return result


class HostTransformer:
    """The input step: Rust tokenization and the exported model (ONNX Runtime or OpenVINO)."""

    def __init__(
        self,
        folder: str,
        backend: str,
        model_kwargs: dict[str, Any] | None,
        default_task: str = "feature-extraction",
    ) -> None:
        settings: dict[str, Any] = {}
        for name in TRANSFORMER_CONFIG_FILES:
            if os.path.isfile(os.path.join(folder, name)):
                settings = read_json_object(os.path.join(folder, name))
                break
        for key in ("model_args", "tokenizer_args", "config_args", "processing_kwargs", "tokenizer_name_or_path"):
            if settings.get(key):
                raise NeedsTorch(f"Transformer setting {key}")
        task = settings.get("transformer_task", default_task)
        if task not in ("feature-extraction", "sequence-classification", "fill-mask"):
            raise NeedsTorch(f"transformer_task {task!r}")
        _, output_name, default_key = TRANSFORMER_TASKS[task]
        modality = settings.get("modality_config")
        if modality is not None:
            text = modality.get("text") if isinstance(modality, dict) else None
            if not isinstance(text, dict) or text.get("method", "forward") != "forward":
                raise NeedsTorch("modality_config")
            if text.get("method_output_name") != output_name:
                raise NeedsTorch("modality_config output")
            if set(modality) != {"text"}:
                raise NeedsTorch("chat-template (message) inputs")
        elif not settings and folder_has_chat_template(folder):
            # The torch Transformer of a plain folder renders its inputs through the tokenizer's chat template.
            raise NeedsTorch("a plain folder whose tokenizer has a chat template")
        self.folder = folder
        self.task = task
        self.output_name = output_name
        self.module_output_name = settings.get("module_output_name") or default_key
        config_path = os.path.join(folder, "config.json")
        if not os.path.isfile(config_path):
            raise NeedsTorch(f"{folder} has no config.json")
        self.config = read_json_object(config_path)
        archs = self.config.get("architectures") or []
        if (
            not settings
            and default_task == "sequence-classification"
            and archs
            and str(archs[0]).endswith("ForCausalLM")
        ):
            # A plain causal LM folder is a CrossEncoder LLM reranker (text-generation + LogitScore): torch only.
            raise NeedsTorch("a causal LM checkpoint (an LLM reranker)")
        max_pos = self.config.get("max_position_embeddings")
        self.tokenizer = FolderTokenizer(
            folder,
            max_seq_length=settings.get("max_seq_length"),
            do_lower_case=bool(settings.get("do_lower_case", False)),
            max_position_embeddings=max_pos if isinstance(max_pos, int) else None,
        )
        self.model = _load_backend(folder, backend, model_kwargs, self.config)
        self.auto_model = self.model  # the reference's name for the Transformer module's model
        allowed = {"input_ids", "attention_mask", "token_type_ids"}
        if not set(self.model.input_names) <= allowed or "input_ids" not in self.model.input_names:
            raise NeedsTorch(f"exported model inputs {self.model.input_names}")
        if output_name not in self.model.output_names:
            raise NeedsTorch(f"exported model has no {output_name} output")
        self.input_names = list(self.model.input_names)

    def features(self, encoding: ops.Encoding, rows: list[int] | None) -> dict[str, Any]:
        input_ids, attention_mask, token_type_ids = encoding.pad(rows)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        outputs = self.model.run({name: features[name] for name in self.input_names})
        features[self.module_output_name] = outputs[self.output_name]
        return features

    def get_embedding_dimension(self) -> int | None:
        if self.task == "fill-mask":
            return _int_or_none(self.config.get("vocab_size"))
        if self.task == "sequence-classification":
            return num_labels(self.config)
        hidden = self.config.get("hidden_size")
        if hidden is None and isinstance(self.config.get("text_config"), dict):
            hidden = self.config["text_config"].get("hidden_size")
        return _int_or_none(hidden)


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def num_labels(config: dict[str, Any]) -> int:
    """Labels of a sequence-classification config, as transformers counts them (``id2label``, default 2)."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    value = config.get("num_labels")
    return int(value) if isinstance(value, int) and value > 0 else 2


def _load_backend(folder: str, backend: str, model_kwargs: dict[str, Any] | None, config: dict[str, Any]) -> Any:
    from sentrs.backend.files import resolve_backend_file

    kwargs = dict(model_kwargs or {})
    if set(kwargs) - _BACKEND_KWARGS:
        raise NeedsTorch(f"model_kwargs {sorted(set(kwargs) - _BACKEND_KWARGS)}")
    if kwargs.get("export"):
        raise NeedsTorch("export=True")
    try:
        file = resolve_backend_file(folder, backend, kwargs, warn_export=False)
    except FileNotFoundError as exc:
        raise NeedsTorch(str(exc)) from exc
    if file.export:
        raise NeedsExport(f"no exported {backend} file yet")
    namespace = SimpleNamespace(**config)
    if backend == "onnx":
        from sentrs.backend.onnx import OnnxRuntimeModel, available_cores

        threads = kwargs.get("threads")
        if threads is None:  # one single-threaded run per core: small batches scale better side by side
            return OnnxRuntimeModel(
                namespace, file, provider=kwargs.get("provider"), threads=1, streams=available_cores()
            )
        return OnnxRuntimeModel(namespace, file, provider=kwargs.get("provider"), threads=threads)
    if "provider" in kwargs:
        raise NeedsTorch("provider with openvino")
    from sentrs.backend.openvino import OpenVINOModel

    return OpenVINOModel(namespace, file, ov_config=kwargs.get("ov_config"), throughput=True)


class HostPooling:
    """``Pooling`` in the Rust core."""

    def __init__(self, folder: str) -> None:
        try:
            config = legacy_pooling_config(read_json_object(os.path.join(folder, "config.json")))
        except ValueError as exc:
            raise NeedsTorch(f"Pooling config: {exc}") from exc
        config.setdefault("pooling_mode", "mean")
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
        if not modes or any(m not in ops.POOLING_MODES for m in modes):
            raise NeedsTorch(f"pooling_mode {mode!r}")
        dim = config.get("embedding_dimension")
        if not isinstance(dim, int):
            raise NeedsTorch("Pooling without embedding_dimension")
        self.modes = modes
        self.include_prompt = bool(config.get("include_prompt", True))
        self.dimension = dim * len(modes)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        skip = 0 if self.include_prompt else int(features.get("prompt_length") or 0)
        features["sentence_embedding"] = ops.pool(
            features["token_embeddings"], features["attention_mask"], self.modes, skip
        )
        return features

    def get_embedding_dimension(self) -> int:
        return self.dimension


class HostDense:
    """``Dense``: ``activation(x W^T + b)`` in numpy (float32), from ``model.safetensors``."""

    def __init__(self, folder: str) -> None:
        config = read_json_object(os.path.join(folder, "config.json"))
        if config.get("use_residual"):
            raise NeedsTorch("Dense use_residual")
        input_name = config.get("module_input_name") or "sentence_embedding"
        output_name = config.get("module_output_name") or input_name
        if (input_name, output_name) != ("sentence_embedding", "sentence_embedding"):
            raise NeedsTorch("Dense on another feature than sentence_embedding")
        activation = config.get("activation_function")
        if activation is None:
            self.activation = _identity
        elif activation in ACTIVATIONS:
            self.activation = ACTIVATIONS[activation]
        else:
            raise NeedsTorch(f"Dense activation {activation!r}")
        weights_path = os.path.join(folder, "model.safetensors")
        if not os.path.isfile(weights_path):
            raise NeedsTorch("Dense without model.safetensors")
        from safetensors.numpy import load_file

        with file_named_in_errors(weights_path):
            weights = load_file(weights_path)
        weight = weights.get("linear.weight")
        if weight is None or weight.shape != (config.get("out_features"), config.get("in_features")):
            raise NeedsTorch("Dense weights do not match the config")
        self.weight_t = np.ascontiguousarray(weight.astype(np.float32).T)
        bias = weights.get("linear.bias")
        self.bias = None if bias is None else bias.astype(np.float32)
        if bool(config.get("bias", True)) != (bias is not None):
            raise NeedsTorch("Dense bias does not match the config")
        self.out_features = int(self.weight_t.shape[1])

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        x = np.asarray(features["sentence_embedding"], dtype=np.float32)
        out = x @ self.weight_t
        if self.bias is not None:
            out += self.bias
        features["sentence_embedding"] = self.activation(out).astype(np.float32, copy=False)
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_features


class HostNormalize:
    """``Normalize``: L2 rows in the Rust core."""

    def __init__(self, folder: str) -> None:
        pass

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        features["sentence_embedding"] = ops.normalize(features["sentence_embedding"])
        return features

    def get_embedding_dimension(self) -> None:
        return None


class HostSpladePooling:
    """``SpladePooling`` in the Rust core: CSR rows straight from the MLM logits (``max_active_dims`` per call)."""

    def __init__(self, folder: str | None) -> None:
        config = read_json_object(os.path.join(folder, "config.json")) if folder is not None else {}
        self.pooling_strategy = config.get("pooling_strategy", "max")
        self.activation_function = config.get("activation_function", "relu")
        if self.pooling_strategy not in ("max", "sum") or self.activation_function not in ("relu", "log1p_relu"):
            raise NeedsTorch(f"SpladePooling {self.pooling_strategy}/{self.activation_function}")
        dim = config.get("embedding_dimension", config.get("word_embedding_dimension"))
        self.embedding_dimension = _int_or_none(dim)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        logits = np.asarray(features["token_embeddings"], dtype=np.float32)
        if self.embedding_dimension is None:
            self.embedding_dimension = int(logits.shape[-1])
        features["sparse_rows"] = ops.splade_pool(
            logits,
            np.asarray(features["attention_mask"], dtype=np.int64),
            self.pooling_strategy,
            self.activation_function,
            features.get("max_active_dims"),
        )
        return features

    def get_embedding_dimension(self) -> int | None:
        return self.embedding_dimension


_STEPS: dict[str, Any] = {
    "Pooling": HostPooling,
    "Dense": HostDense,
    "Normalize": HostNormalize,
    "SpladePooling": HostSpladePooling,
}


class HostPipeline:
    """The input step and the steps after it."""

    def __init__(self, transformer: HostTransformer, steps: list[Any]) -> None:
        self.transformer = transformer
        self.steps = steps

    @property
    def streams(self) -> int:
        """How many batches the backend model runs side by side (one single-threaded stream per core)."""
        return int(getattr(self.transformer.model, "streams", 1))

    def tokenize(
        self, texts: list[str], pairs: list[str | None] | None, prompt: str | None, max_length: int | None = None
    ) -> ops.Encoding:
        """Tokenizes every input once (the prompt prepended to each text)."""
        if prompt:
            texts = [prompt + t for t in texts]
        return self.transformer.tokenizer.encode(texts, pairs, max_length=max_length)

    def run_rows(
        self,
        encoding: ops.Encoding,
        rows: npt.NDArray[np.int64],
        prompt_length: int | None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Pads ``rows`` of ``encoding`` and runs every step on them (``extra``: per-call settings for the steps)."""
        features = self.transformer.features(encoding, [int(r) for r in rows])
        if prompt_length is not None:
            features["prompt_length"] = prompt_length
        features.update(extra or {})
        return self.run(features)

    def run(self, features: dict[str, Any]) -> dict[str, Any]:
        features = self.transformer.forward(features)
        for step in self.steps:
            features = step.forward(features)
        return features

    def get_embedding_dimension(self) -> int | None:
        for step in reversed([self.transformer, *self.steps]):
            dim = step.get_embedding_dimension()
            if dim is not None:
                return int(dim)
        return None


def load_host_pipeline(
    model_dir: str, backend: str, model_kwargs: dict[str, Any] | None, default_task: str = "feature-extraction"
) -> HostPipeline:
    """The pipeline of a folder with ``modules.json`` (or a plain transformers folder for ``default_task``
    ``sequence-classification``); NeedsTorch when any part needs the torch classes."""
    plain_mlm = False
    if os.path.isfile(os.path.join(model_dir, "modules.json")):
        entries = read_module_entries(model_dir)
    elif default_task == "sequence-classification":
        entries = [("Transformer", model_dir)]
    elif default_task == "fill-mask":  # a plain masked-LM folder: Transformer + SpladePooling(max, relu)
        entries = [("Transformer", model_dir)]
        plain_mlm = True
    else:
        raise NeedsTorch("no modules.json")
    name, folder = entries[0]
    if name not in _TRANSFORMER_NAMES:
        raise NeedsTorch(f"first module {name}")
    transformer = HostTransformer(folder, backend, model_kwargs, default_task)
    steps: list[Any] = []
    if plain_mlm:
        archs = transformer.config.get("architectures") or []
        if not any(isinstance(a, str) and a.endswith("ForMaskedLM") for a in archs):
            raise NeedsTorch("not a masked-LM checkpoint")
        steps.append(HostSpladePooling(None))
    for name, folder in entries[1:]:
        if name not in _STEPS:
            raise NeedsTorch(f"module {name}")
        steps.append(_STEPS[name](folder))
    return HostPipeline(transformer, steps)
