"""Forward-pass backends besides torch: ONNX Runtime and OpenVINO, with export, optimisation and quantisation.

Nothing here needs optimum. Heavy imports (onnxruntime, openvino, onnx, nncf) happen on first use.
"""

from __future__ import annotations

import logging
import os
import tempfile
from typing import Any

from sentrs.backend.export import (
    export_dynamic_quantized_onnx_model,
    export_optimized_onnx_model,
    export_static_quantized_openvino_model,
)
from sentrs.backend.files import BackendFile, resolve_backend_file, writable_target
from sentrs.backend.onnx import ExportedModel

__all__ = [
    "ExportedModel",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "export_static_quantized_openvino_model",
    "load_backend_model",
]

logger = logging.getLogger(__name__)


def _existing_onnx(model_dir: str) -> BackendFile | None:
    """The folder's fp32 ``model.onnx`` (``onnx/`` or root), if it has one."""
    try:
        return resolve_backend_file(model_dir, "onnx", {"file_name": "model.onnx"})
    except FileNotFoundError:
        return None


def load_backend_model(
    model_dir: str,
    backend: str,
    task: str,
    config: Any,
    input_names: list[str],
    model_kwargs: dict[str, Any] | None = None,
) -> ExportedModel:
    """The ONNX Runtime or OpenVINO model of a Transformer folder, exporting it first when no file is there.

    Args:
        model_dir: the Transformer's folder (config.json, weights, tokenizer, ``onnx/``, ``openvino/``).
        backend: ``onnx`` or ``openvino``.
        task: the Transformer's ``transformer_task`` (decides the exported output).
        config: the transformers config of the model.
        input_names: the tokenizer inputs the model takes (``input_ids``, ``attention_mask``, ...).
        model_kwargs: ``file_name``, ``subfolder``, ``export``, ``provider`` and ``threads`` (onnx: intra-op threads,
            default one per physical core), ``ov_config`` (openvino).
    """
    kwargs = dict(model_kwargs or {})
    file = resolve_backend_file(model_dir, backend, kwargs)
    if backend == "onnx":
        from sentrs.backend.onnx import OnnxRuntimeModel, export_onnx

        if file.export:
            file = export_onnx(model_dir, task, config, input_names, writable_target(model_dir, file), kwargs)
        return OnnxRuntimeModel(config, file, provider=kwargs.get("provider"), threads=kwargs.get("threads"))
    from sentrs.backend.onnx import export_onnx
    from sentrs.backend.openvino import OpenVINOModel, convert_onnx_to_openvino

    if file.export:
        target = writable_target(model_dir, file)
        existing = _existing_onnx(model_dir)
        if existing is not None:  # an fp32 ONNX export is already there: convert it
            convert_onnx_to_openvino(existing.path, target.path)
        else:
            with tempfile.TemporaryDirectory(prefix="sentrs-ov-") as tmp:
                onnx_file = BackendFile(os.path.join(tmp, "model.onnx"), "", "model.onnx", True)
                export_onnx(model_dir, task, config, input_names, onnx_file, kwargs)
                convert_onnx_to_openvino(onnx_file.path, target.path)
        file = BackendFile(target.path, target.subfolder, target.file_name, False)
    if "provider" in kwargs:
        raise ValueError("model_kwargs['provider'] is an ONNX Runtime setting; backend='openvino' does not take it")
    return OpenVINOModel(config, file, ov_config=kwargs.get("ov_config"))
