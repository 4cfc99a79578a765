"""The reference's three export functions: optimised ONNX, dynamic int8 ONNX, static int8 OpenVINO.

The reference's signatures and file names, on onnxruntime's own optimiser and quantiser and on nncf, without optimum.
Configurations are the level/preset names the reference accepts, or plain dicts of the same settings.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "OPTIMIZATION_LEVELS",
    "QUANTIZATION_PRESETS",
    "QUANTIZATION_SETTINGS_KEY",
    "QUANTIZATION_TARGET_KEY",
    "dynamic_quantization_settings",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "export_static_quantized_openvino_model",
]

logger = logging.getLogger(__name__)

# O1: onnxruntime's basic graph rewrites; O2: + extended rewrites and transformer fusions; O3: + GELU approximation;
# O4: + fp16 weights (GPU only, as in the reference).
OPTIMIZATION_LEVELS: dict[str, dict[str, Any]] = {
    "O1": {"optimization_level": 1, "fusions": False, "enable_gelu_approximation": False, "fp16": False},
    "O2": {"optimization_level": 2, "fusions": True, "enable_gelu_approximation": False, "fp16": False},
    "O3": {"optimization_level": 2, "fusions": True, "enable_gelu_approximation": True, "fp16": False},
    "O4": {"optimization_level": 2, "fusions": True, "enable_gelu_approximation": True, "fp16": True},
}
#: sentrs's share of each activation channel's range moved into the weights before dynamic int8 quantisation
#: (see ``sentrs.backend.smoothing``). On MiniLM (``benches/python/bench_backends.py``, an AVX-512 VNNI CPU) it took
#: the mean cosine of the avx512_vnni model to fp32 from 0.994 to 0.996 and the WordNet-task MRR change from -4.3% to
#: -2.2%; in a one-off sweep alpha 0.5 and 0.75 gave lower cosines, 0.3 a much lower one.
DEFAULT_SMOOTHING_ALPHA = 0.6
# Dynamic int8 presets, named after the instruction sets they target (file suffix ``qint8_<name>``); activations are
# always uint8. Without VNNI, ONNX Runtime's x86 kernels multiply uint8 by int8 with VPMADDUBSW, which saturates each
# pair of products to int16; 7-bit weights (``reduce_range``) keep every pair in range (2 * 255 * 64 < 2 ** 15), so
# avx2 and avx512 files compute the same integers on every CPU. VNNI (avx512_vnni, avx_vnni) and arm64 dot products do
# not saturate: those presets keep 8-bit weights and smooth the activations first, as measured to help there. Smoothing
# raises the uint8 activations of a full-range file, and on an AVX2 CPU it measured worse (mean cosine 0.985, 0.993
# unsmoothed); with 7-bit weights it was mixed on MiniLM (cosine 0.992 -> 0.995, WordNet MRR -1.4% -> -2.2%). So the
# presets for CPUs without VNNI do not smooth unless asked to.
QUANTIZATION_PRESETS: dict[str, dict[str, Any]] = {
    "arm64": {
        "weights_dtype": "qint8",
        "per_channel": True,
        "reduce_range": False,
        "smoothing_alpha": DEFAULT_SMOOTHING_ALPHA,
    },
    "avx2": {"weights_dtype": "qint8", "per_channel": True, "reduce_range": True, "smoothing_alpha": None},
    "avx512": {"weights_dtype": "qint8", "per_channel": True, "reduce_range": True, "smoothing_alpha": None},
    "avx512_vnni": {
        "weights_dtype": "qint8",
        "per_channel": True,
        "reduce_range": False,
        "smoothing_alpha": DEFAULT_SMOOTHING_ALPHA,
    },
}
#: ONNX ``metadata_props`` of a file written by ``export_dynamic_quantized_onnx_model``: the preset it was quantised
#: for (``custom`` for a dict configuration), and its settings as JSON. The ONNX loader warns when a file with
#: full-range int8 weights runs on an x86 CPU without VNNI.
QUANTIZATION_TARGET_KEY = "sentrs.quantization_target"
QUANTIZATION_SETTINGS_KEY = "sentrs.quantization_settings"
_OPTIMIZER_MODEL_TYPES = {"bert", "bart", "gpt2", "t5", "clip", "phi", "vit", "swin"}


@contextmanager
def root_logging_kept() -> Iterator[None]:
    """Keeps the root logger as the user configured it while a dependency runs.

    onnxruntime's quantiser logs through the root logger, and ``logging.warning()`` on an unconfigured root calls
    ``basicConfig``: from then on every library's records (sentrs' included) print in the root's default format. A
    NullHandler on an empty root prevents that (such records are dropped); whatever the dependency adds is removed.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    if not handlers:
        root.addHandler(logging.NullHandler())
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _backend_model(model: Any, backend: str, function: str) -> Any:
    from sentrs.backend.onnx import ExportedModel

    inner = getattr(model, "transformers_model", None)
    if not isinstance(inner, ExportedModel) or inner.backend != backend:
        raise ValueError(
            f"{function} needs a Transformer-based SentenceTransformer, SparseEncoder or CrossEncoder loaded with "
            f"backend={backend!r}, got a model with backend {getattr(model, 'backend', None)!r}"
        )
    return inner


def _settings(
    argument: str, config: Any, presets: dict[str, dict[str, Any]], base: str, known: set[str]
) -> tuple[dict[str, Any], str | None]:
    """``(settings, preset name)`` for a preset name or a dict of overrides on top of preset ``base``."""
    if isinstance(config, str):
        if config not in presets:
            raise ValueError(f"{argument} must be one of {sorted(presets)} or a dict, got {config!r}")
        return dict(presets[config]), config
    if isinstance(config, dict):
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown {argument} keys {sorted(unknown)}; known: {sorted(known)}")
        return {**presets[base], **config}, None
    raise ValueError(f"{argument} must be a str or a dict, got {type(config).__name__}")


def _save_or_push(
    write: Callable[[str], None],
    files: list[str],
    model_name_or_path: str,
    push_to_hub: bool,
    create_pr: bool,
    function: str,
) -> None:
    """Runs ``write(folder)`` into a temporary folder, then moves ``files`` (relative paths) into the model folder
    or uploads them to the Hub repository ``model_name_or_path``."""
    if not isinstance(model_name_or_path, (str, os.PathLike)) or not os.fspath(model_name_or_path):
        raise ValueError(
            f"model_name_or_path must be a folder path or a Hub repository id, got {model_name_or_path!r}"
        )
    with tempfile.TemporaryDirectory(prefix="sentrs-export-") as tmp:
        write(tmp)
        if push_to_hub:
            from huggingface_hub import CommitOperationAdd, HfApi

            operations = [
                CommitOperationAdd(path_in_repo=rel, path_or_fileobj=os.path.join(tmp, rel)) for rel in files
            ]
            HfApi().create_commit(
                repo_id=os.fspath(model_name_or_path),
                operations=operations,
                commit_message=f"Add {', '.join(files)} exported with sentrs {function}",
                create_pr=create_pr,
            )
            return
        for rel in files:
            dst = os.path.join(os.fspath(model_name_or_path), rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.move(os.path.join(tmp, rel), dst)


def export_optimized_onnx_model(
    model: Any,
    optimization_config: str | dict[str, Any],
    model_name_or_path: str,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> None:
    """Writes ``onnx/model_{file_suffix}.onnx``: the model's ONNX graph optimised by onnxruntime.

    Args:
        model: a model loaded with ``backend="onnx"``.
        optimization_config: ``"O1"`` ... ``"O4"`` or a dict with ``optimization_level`` (0-2), ``fusions``,
            ``enable_gelu_approximation`` and ``fp16``.
        model_name_or_path: the folder (or Hub repository with ``push_to_hub``) to write into.
        file_suffix: defaults to the level name, or ``optimized`` for a dict.
    """
    onnx_model = _backend_model(model, "onnx", "export_optimized_onnx_model")
    settings, preset = _settings(
        "optimization_config", optimization_config, OPTIMIZATION_LEVELS, "O2", set(OPTIMIZATION_LEVELS["O1"])
    )
    file_suffix = file_suffix or preset or "optimized"
    if settings["fp16"] and "CUDAExecutionProvider" not in getattr(onnx_model, "provider", ""):
        raise ValueError("fp16 optimisation (O4) is for GPUs: load the model with provider='CUDAExecutionProvider'")
    name = f"model_{file_suffix}.onnx"
    source = onnx_model.file_path

    def write(folder: str) -> None:
        from onnxruntime.transformers import optimizer
        from onnxruntime.transformers.fusion_options import FusionOptions

        model_type = getattr(onnx_model.config, "model_type", "bert")
        optimizer_type = model_type if model_type in _OPTIMIZER_MODEL_TYPES else "bert"
        options = FusionOptions(optimizer_type)
        options.enable_gelu_approximation = bool(settings["enable_gelu_approximation"])
        optimized = optimizer.optimize_model(
            source,
            model_type=optimizer_type,
            num_heads=0,
            hidden_size=0,
            optimization_options=options,
            opt_level=int(settings["optimization_level"]),
            use_gpu=bool(settings["fp16"]),
            only_onnxruntime=not settings["fusions"],
        )
        if settings["fp16"]:
            optimized.convert_float_to_float16(keep_io_types=True)
        os.makedirs(os.path.join(folder, "onnx"), exist_ok=True)
        optimized.save_model_to_file(os.path.join(folder, "onnx", name))

    _save_or_push(write, [f"onnx/{name}"], model_name_or_path, push_to_hub, create_pr, "export_optimized_onnx_model")


def dynamic_quantization_settings(quantization_config: str | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``(settings, target)`` that ``export_dynamic_quantized_onnx_model`` uses for ``quantization_config``.

    ``settings`` has every key, ``smoothing_alpha`` included (None: no smoothing); ``target`` is the preset name, or
    ``custom`` for a dict. A dict overrides the avx512_vnni preset, or the avx2 preset when it sets ``reduce_range``,
    so its default smoothing follows its weight range like the presets' does.
    """
    known = {"weights_dtype", "per_channel", "reduce_range", "operators_to_quantize", "smoothing_alpha"}
    seven_bit = isinstance(quantization_config, dict) and bool(quantization_config.get("reduce_range"))
    base = "avx2" if seven_bit else "avx512_vnni"
    settings, preset = _settings("quantization_config", quantization_config, QUANTIZATION_PRESETS, base, known)
    if settings["weights_dtype"] not in ("qint8", "quint8"):
        raise ValueError(f"weights_dtype must be 'qint8' or 'quint8', got {settings['weights_dtype']!r}")
    alpha = settings["smoothing_alpha"]
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1):
        raise ValueError(f"smoothing_alpha must be a number in [0, 1] or None, got {alpha!r}")
    settings["smoothing_alpha"] = float(alpha) if alpha else None
    return settings, preset or "custom"


def _record_quantization(path: str, target: str, settings: dict[str, Any]) -> None:
    """Adds the target and settings to the ONNX file's ``metadata_props`` (other entries are kept)."""
    import onnx

    model = onnx.load(path)
    props = {p.key: p.value for p in model.metadata_props}
    props[QUANTIZATION_TARGET_KEY] = target
    props[QUANTIZATION_SETTINGS_KEY] = json.dumps(settings, sort_keys=True, default=str)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, path)


def export_dynamic_quantized_onnx_model(
    model: Any,
    quantization_config: str | dict[str, Any],
    model_name_or_path: str,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> None:
    """Writes ``onnx/model_{file_suffix}.onnx``: dynamic int8 quantisation (no calibration data) of the model's graph.

    Pick the preset of the CPU that will run the file (``sentrs.backend.onnx.int8_preset_for_cpu()`` names the one
    for this machine): full-range int8 weights (arm64, avx512_vnni) lose accuracy on x86 CPUs without VNNI, where
    loading such a file logs a warning. The file records its preset and settings in its ONNX metadata
    (``sentrs.quantization_target``, ``sentrs.quantization_settings``).

    Args:
        model: a model loaded with ``backend="onnx"``.
        quantization_config: ``"arm64"``, ``"avx2"``, ``"avx512"``, ``"avx512_vnni"`` or a dict with
            ``weights_dtype`` (``qint8``/``quint8``), ``per_channel``, ``reduce_range`` and optionally
            ``operators_to_quantize`` and ``smoothing_alpha`` (sentrs: activation smoothing in ``(0, 1]``, ``None``
            or ``0`` for none). Smoothing is on (``0.6``) for arm64 and avx512_vnni and off for avx2 and avx512; a
            dict without ``smoothing_alpha`` smooths unless it sets ``reduce_range``.
        model_name_or_path: the folder (or Hub repository with ``push_to_hub``) to write into.
        file_suffix: defaults to ``qint8_<preset>`` (e.g. ``model_qint8_avx512_vnni.onnx``) or ``<dtype>_quantized``.
    """
    onnx_model = _backend_model(model, "onnx", "export_dynamic_quantized_onnx_model")
    settings, target = dynamic_quantization_settings(quantization_config)
    alpha = settings["smoothing_alpha"]
    preset = target if isinstance(quantization_config, str) else "quantized"
    file_suffix = file_suffix or f"{settings['weights_dtype']}_{preset}"
    name = f"model_{file_suffix}.onnx"
    source = onnx_model.file_path
    tokenizer = getattr(model, "tokenizer", None) if alpha else None
    if alpha and tokenizer is None:
        raise ValueError("smoothing needs the model's tokenizer; pass smoothing_alpha=None to quantise without it")

    def write(folder: str) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        os.makedirs(os.path.join(folder, "onnx"), exist_ok=True)
        graph = source
        if alpha:
            from sentrs.backend.smoothing import calibration_inputs, smooth_onnx_model

            graph = os.path.join(folder, "smoothed", "model.onnx")
            os.makedirs(os.path.dirname(graph))
            feeds = calibration_inputs(tokenizer, onnx_model.input_names)
            smoothed = smooth_onnx_model(source, graph, feeds, alpha)
            logger.info("smoothed the inputs of %d MatMul groups before quantising (alpha %s)", smoothed, alpha)
        path = os.path.join(folder, "onnx", name)
        with root_logging_kept():
            quantize_dynamic(
                graph,
                path,
                op_types_to_quantize=settings.get("operators_to_quantize") or ["MatMul", "Gemm", "Attention"],
                per_channel=bool(settings["per_channel"]),
                reduce_range=bool(settings["reduce_range"]),
                weight_type=QuantType.QInt8 if settings["weights_dtype"] == "qint8" else QuantType.QUInt8,
            )
        _record_quantization(path, target, settings)

    _save_or_push(
        write, [f"onnx/{name}"], model_name_or_path, push_to_hub, create_pr, "export_dynamic_quantized_onnx_model"
    )


def export_static_quantized_openvino_model(
    model: Any,
    quantization_config: dict[str, Any] | None,
    model_name_or_path: str,
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    dataset_split: str | None = None,
    column_name: str | None = None,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str = "qint8_quantized",
    calibration_texts: list[str] | None = None,
) -> None:
    """Writes ``openvino/openvino_model_{file_suffix}.xml`` + ``.bin``: post-training static int8 (nncf).

    Calibration texts come from ``calibration_texts`` (a sentrs extension), or from the ``column_name`` column of a
    ``datasets`` dataset (all four dataset arguments, or none for the reference's default ``nyu-mll/glue``/``sst2``
    train ``sentence``, which needs the Hub).

    Args:
        model: a model loaded with ``backend="openvino"``.
        quantization_config: None or a dict with ``num_samples`` (default 300) and ``preset`` (``performance`` or
            ``mixed``).
    """
    ov_model = _backend_model(model, "openvino", "export_static_quantized_openvino_model")
    settings: dict[str, Any] = {"num_samples": 300, "preset": "performance"}
    if quantization_config is not None:
        if not isinstance(quantization_config, dict):
            raise ValueError(f"quantization_config must be None or a dict, got {type(quantization_config).__name__}")
        unknown = set(quantization_config) - set(settings)
        if unknown:
            raise ValueError(f"unknown quantization_config keys {sorted(unknown)}; known: {sorted(settings)}")
        settings.update(quantization_config)
    dataset_args = [dataset_name, dataset_config_name, dataset_split, column_name]
    if any(a is not None for a in dataset_args) and not all(a is not None for a in dataset_args):
        raise ValueError(
            "give all of dataset_name, dataset_config_name, dataset_split and column_name, or none of them"
        )
    num_samples = int(settings["num_samples"])
    if calibration_texts is None:
        try:
            import datasets
        except ImportError as exc:
            raise ImportError("calibration from a dataset needs datasets: pip install datasets") from exc
        data = datasets.load_dataset(
            dataset_name or "nyu-mll/glue", dataset_config_name or "sst2", split=dataset_split or "train"
        )
        texts = list(data[column_name or "sentence"][:num_samples])
    else:
        if not isinstance(calibration_texts, list) or not all(isinstance(t, str) for t in calibration_texts):
            raise TypeError("calibration_texts must be a list of str")
        texts = calibration_texts[:num_samples]
    if not texts:
        raise ValueError("calibration needs at least one text")
    name = f"openvino_model_{file_suffix}.xml"
    tokenizer = model.tokenizer
    max_length = min(384, int(getattr(model, "max_seq_length", None) or 384))

    def write(folder: str) -> None:
        import nncf
        import openvino as ov

        core = ov.Core()
        source = core.read_model(ov_model.file_path)
        batches = []
        for text in texts:
            enc = tokenizer([text], padding="max_length", max_length=max_length, truncation=True, return_tensors="np")
            batches.append({k: enc[k].astype("int64") for k in ov_model.input_names if k in enc})
        preset = (
            nncf.QuantizationPreset.MIXED if settings["preset"] == "mixed" else nncf.QuantizationPreset.PERFORMANCE
        )
        with root_logging_kept():
            quantized = nncf.quantize(
                source,
                nncf.Dataset(batches),
                preset=preset,
                subset_size=len(batches),
                model_type=nncf.ModelType.TRANSFORMER,
            )
        os.makedirs(os.path.join(folder, "openvino"), exist_ok=True)
        ov.save_model(quantized, os.path.join(folder, "openvino", name), compress_to_fp16=False)

    files = [f"openvino/{name}", f"openvino/{os.path.splitext(name)[0]}.bin"]
    _save_or_push(write, files, model_name_or_path, push_to_hub, create_pr, "export_static_quantized_openvino_model")
