"""OpenVINO: runs ``openvino/openvino_model.xml`` (+ ``.bin``), and converts our ONNX export into that format."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
from typing import Any

import numpy as np

from sentrs.backend.files import BackendFile
from sentrs.backend.onnx import ExportedModel, available_cores

__all__ = ["OpenVINOModel", "convert_onnx_to_openvino"]

logger = logging.getLogger(__name__)


def _require_openvino() -> Any:
    try:
        import openvino
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("backend='openvino' needs openvino: pip install openvino") from exc
    return openvino


def read_ov_config(ov_config: Any, throughput: bool = False) -> dict[str, Any]:
    """``model_kwargs['ov_config']``: a dict or a JSON file path; fp32 inference unless it says otherwise.

    Without a performance hint of the caller's, ``throughput=True`` asks for one single-threaded stream per core
    (batches run side by side), otherwise one stream using every core.
    """
    if ov_config is None:
        config: dict[str, Any] = {}
    elif isinstance(ov_config, dict):
        config = dict(ov_config)
    elif isinstance(ov_config, (str, os.PathLike)):
        with open(ov_config, encoding="utf-8") as f:
            config = json.load(f)
        if not isinstance(config, dict):
            raise ValueError(f"ov_config file {ov_config} must hold a JSON object")
    else:
        raise ValueError(
            f"model_kwargs['ov_config'] must be a dict or a JSON file path, got {type(ov_config).__name__}"
        )
    config.setdefault("INFERENCE_PRECISION_HINT", "f32")  # CPUs with bf16 would otherwise drop precision silently
    cores = available_cores()
    if throughput and "PERFORMANCE_HINT" not in config and "NUM_STREAMS" not in config:
        config["PERFORMANCE_HINT"] = "THROUGHPUT"
        config["NUM_STREAMS"] = str(cores)
    config.setdefault("PERFORMANCE_HINT", "LATENCY")
    config.setdefault("INFERENCE_NUM_THREADS", str(cores))
    return {str(k): str(v) for k, v in config.items()}


class OpenVINOModel(ExportedModel):
    """A compiled OpenVINO model on the CPU (``ov_config`` as in the reference's ``model_kwargs``)."""

    backend = "openvino"

    def __init__(
        self, config: Any, file: BackendFile, ov_config: Any = None, device: str = "CPU", throughput: bool = False
    ) -> None:
        """``throughput=True`` compiles one stream per core (see :func:`read_ov_config`) and sets ``streams`` to
        the number of requests that keep them busy; each calling thread then gets its own infer request."""
        super().__init__(config, file)
        ov = _require_openvino()
        self.ov_config = read_ov_config(ov_config, throughput=throughput)
        core = ov.Core()
        try:
            model = core.read_model(file.path)
        except Exception as exc:
            raise ValueError(f"{file.path} is not a valid OpenVINO model: {exc}") from exc
        self.input_names = [port.get_any_name() for port in model.inputs]
        self.output_names = [port.get_any_name() for port in model.outputs]
        self.compiled = core.compile_model(model, device, self.ov_config)
        self.request = self.compiled.create_infer_request()
        if throughput:
            self.streams = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._local = threading.local()
        self._local.request = self.request  # the constructing thread's

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # One request per calling thread, whatever the streams: requests are not thread-safe, and a model shared by
        # threads (a Transformer module's, or the engine's called from several threads) runs them at once.
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer(inputs)
        return {name: np.array(request.get_tensor(name).data, copy=True) for name in self.output_names}

    def _model_files(self) -> list[str]:
        return [self.file.path, os.path.splitext(self.file.path)[0] + ".bin"]


def convert_onnx_to_openvino(onnx_path: str, xml_path: str) -> None:
    """Converts an ONNX file into ``xml_path`` + ``.bin`` (fp32 weights), written atomically."""
    ov = _require_openvino()
    target_dir = os.path.dirname(xml_path)
    os.makedirs(target_dir, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=".ov-export-", dir=target_dir)
    try:
        tmp_xml = os.path.join(tmp_dir, os.path.basename(xml_path))
        ov.save_model(ov.convert_model(onnx_path), tmp_xml, compress_to_fp16=False)
        for entry in os.listdir(tmp_dir):
            os.replace(os.path.join(tmp_dir, entry), os.path.join(target_dir, entry))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
