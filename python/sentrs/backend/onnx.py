"""ONNX Runtime: our own exporter (``torch.onnx``, no optimum) and the session that runs exported files.

The exporter writes the inputs and outputs the reference's optimum exports use (``input_ids``, ``attention_mask``
[, ``token_type_ids``] -> ``last_hidden_state`` or ``logits``, dynamic batch and sequence axes), so folders exported
by either library load in the other. Every export is checked against the torch model before it is kept.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import logging
import os
import platform
import shutil
import tempfile
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from sentrs.backend.export import QUANTIZATION_SETTINGS_KEY, QUANTIZATION_TARGET_KEY
from sentrs.backend.files import BackendFile

__all__ = ["CpuFeatures", "OnnxRuntimeModel", "cpu_features", "export_onnx", "int8_preset_for_cpu", "session_options"]

logger = logging.getLogger(__name__)

# transformer_task -> (transformers auto class, output name)
TASK_OUTPUTS = {
    "feature-extraction": ("AutoModel", "last_hidden_state"),
    "fill-mask": ("AutoModelForMaskedLM", "logits"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits"),
}
EXPORT_ATOL = 1e-3


def _require_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("backend='onnx' needs onnxruntime: pip install onnxruntime") from exc
    return onnxruntime


def available_cores() -> int:
    """Physical CPU cores this process may use (SMT siblings count once), capped by the cgroup's CPU quota (a
    container limited to 2 CPUs on a 64-core host gets 2): the intra-op thread count that keeps every core busy
    without two threads fighting over one core's vector units."""
    from sentrs.util.environment import cgroup_cpu_limit

    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)
    cores = max(1, _physical_cores(cpus) or len(cpus))
    limit = cgroup_cpu_limit()
    return cores if limit is None else max(1, min(cores, limit))


def _physical_cores(cpus: set[int], cpuinfo: str = "/proc/cpuinfo") -> int | None:
    """Distinct (physical id, core id) pairs among ``cpus`` per ``/proc/cpuinfo``; None when it can't be read."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    cores = set()
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "processor" not in fields or "core id" not in fields:
            continue
        if int(fields["processor"]) in cpus:
            cores.add((fields.get("physical id", "0"), fields["core id"]))
    return len(cores) or None


#: ``/proc/cpuinfo`` flags of x86 dot-product instructions that multiply uint8 by int8 without saturating.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})


@dataclasses.dataclass(frozen=True)
class CpuFeatures:
    """What int8 quantisation needs to know about a CPU.

    Attributes:
        machine: ``platform.machine()``, e.g. ``x86_64`` or ``aarch64``.
        flags: the instruction-set flags of ``/proc/cpuinfo`` (x86 ``flags``, arm64 ``Features``); empty when they
            could not be read.
    """

    machine: str
    flags: frozenset[str]

    @property
    def is_arm(self) -> bool:
        return self.machine.lower() in ("aarch64", "arm64")

    @property
    def is_x86(self) -> bool:
        return self.machine.lower() in ("x86_64", "amd64", "i386", "i686")

    @property
    def saturates_u8s8(self) -> bool:
        """Whether ONNX Runtime's uint8 x int8 kernels saturate here: an x86 CPU known to lack VNNI."""
        return self.is_x86 and bool(self.flags) and not self.flags & VNNI_FLAGS


def cpu_features() -> CpuFeatures:
    """This machine's :class:`CpuFeatures` (tests monkeypatch this to take other CPUs' code paths).

    On x86 the flags the Rust core reads from ``cpuid`` override ``/proc/cpuinfo``'s for the instructions it knows:
    ``cpuid`` is what this process runs on (and what ONNX Runtime dispatches on), also under an emulator or in a
    container whose ``/proc/cpuinfo`` is the host's.
    """
    machine = platform.machine()
    flags = _cpu_flags("/proc/cpuinfo")
    if machine.lower() in ("x86_64", "amd64"):
        flags = _with_cpuid_flags(flags)
    return CpuFeatures(machine, flags)


def _with_cpuid_flags(flags: frozenset[str]) -> frozenset[str]:
    """``flags`` with the Rust core's ``cpuid`` answers for the instructions it detects (unchanged without it)."""
    try:
        from sentrs import _core

        detected = dict(_core.cpu_features())
    except (ImportError, AttributeError):  # pragma: no cover - the extension is always built with the package
        return flags
    detected.pop("amx", None)  # /proc/cpuinfo names AMX's parts (amx_tile, amx_bf16, amx_int8)
    return frozenset({flag for flag in flags if flag not in detected} | {name for name, on in detected.items() if on})


@functools.lru_cache(maxsize=4)
def _cpu_flags(cpuinfo: str) -> frozenset[str]:
    """The flags of the first processor in ``cpuinfo``; empty when it can't be read."""
    try:
        with open(cpuinfo, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() in ("flags", "Features"):
                    return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def int8_preset_for_cpu(cpu: CpuFeatures | None = None) -> str:
    """The ``export_dynamic_quantized_onnx_model`` preset for ``cpu`` (default: this machine's).

    ``arm64`` on ARM, ``avx512_vnni`` on x86 with VNNI (AVX-512 VNNI or AVX-VNNI), ``avx512`` on AVX-512 without VNNI,
    and ``avx2`` otherwise, including CPUs whose flags could not be read: its 7-bit weights are exact everywhere.
    """
    cpu = cpu or cpu_features()
    if cpu.is_arm:
        return "arm64"
    if cpu.flags & VNNI_FLAGS:
        return "avx512_vnni"
    return "avx512" if "avx512f" in cpu.flags else "avx2"


def _quantized_for_vnni(metadata: dict[str, str]) -> str | None:
    """The target of a sentrs dynamic int8 file with full-range int8 weights (which saturate on x86 without VNNI),
    from its ONNX metadata; None for any other file."""
    target = metadata.get(QUANTIZATION_TARGET_KEY)
    if target is None:
        return None
    try:
        settings = json.loads(metadata.get(QUANTIZATION_SETTINGS_KEY, ""))
    except ValueError:
        settings = None
    if isinstance(settings, dict):
        full_range = settings.get("weights_dtype") == "qint8" and not settings.get("reduce_range")
    else:  # settings missing or unreadable: go by the preset name
        full_range = target in ("arm64", "avx512_vnni")
    return target if full_range else None


def session_options(threads: int | None = None) -> Any:
    """Session options for batch inference: every graph optimisation, one intra-op thread per core."""
    ort = _require_onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return options


class ExportedModel(ABC):
    """What a Transformer module needs from its model: ``config``, call with tensors, ``save_pretrained``."""

    backend = ""

    def __init__(self, config: Any, file: BackendFile) -> None:
        self.config = config
        self.file = file
        self.input_names: list[str] = []
        self.output_names: list[str] = []
        #: Batches that may run at once, each from its own Python thread (``run`` is thread-safe).
        self.streams = 1

    @property
    def file_path(self) -> str:
        return self.file.path

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Output name -> array for int64 input arrays."""

    def __call__(self, return_dict: bool = True, **inputs: Any) -> dict[str, Any]:
        import torch

        feed = {}
        for name in self.input_names:
            if name not in inputs:
                raise ValueError(f"the {self.backend} model needs input {name!r}; got {sorted(inputs)}")
            value = inputs[name]
            array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
            feed[name] = np.ascontiguousarray(array, dtype=np.int64)
        return {name: torch.from_numpy(value) for name, value in self.run(feed).items()}

    def eval(self) -> ExportedModel:
        return self

    def to(self, *args: Any, **kwargs: Any) -> ExportedModel:
        return self

    def _model_files(self) -> list[str]:
        """The file and the files beside it that it needs (external data, .bin weights)."""
        return [self.file.path]

    def save_pretrained(self, output_path: str, **kwargs: Any) -> None:
        """Writes ``config.json`` into ``output_path`` and the model file(s) into ``output_path/<subfolder>``."""
        self.config.save_pretrained(output_path)
        subfolder = self.file.subfolder or self.backend
        target = os.path.join(output_path, subfolder)
        os.makedirs(target, exist_ok=True)
        for path in self._model_files():
            shutil.copy2(path, os.path.join(target, os.path.basename(path)))


class OnnxRuntimeModel(ExportedModel):
    """An ONNX Runtime session over an exported file (``provider`` as in the reference's ``model_kwargs``)."""

    backend = "onnx"

    def __init__(
        self,
        config: Any,
        file: BackendFile,
        provider: str | None = None,
        threads: int | None = None,
        streams: int = 1,
    ):
        """``threads`` intra-op threads per run (default one per core); ``streams`` concurrent runs the caller may
        make (``session.run`` is thread-safe), for example one single-threaded run per core."""
        super().__init__(config, file)
        if isinstance(streams, bool) or not isinstance(streams, int) or streams < 1:
            raise ValueError(f"streams must be a positive integer, got {streams!r}")
        self.streams = streams
        ort = _require_onnxruntime()
        available = ort.get_available_providers()
        if provider is None:
            provider = available[0]
        if provider not in available:
            raise ValueError(f"model_kwargs['provider'] must be one of {available}, got {provider!r}")
        self.provider = provider
        try:
            self.session = ort.InferenceSession(file.path, sess_options=session_options(threads), providers=[provider])
        except Exception as exc:
            raise ValueError(f"{file.path} is not a valid ONNX model: {exc}") from exc
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._check_int8_target()

    def _check_int8_target(self) -> None:
        """Warns when the file's int8 arithmetic was chosen for a CPU with VNNI and this CPU lacks it."""
        target = _quantized_for_vnni(dict(self.session.get_modelmeta().custom_metadata_map))
        if target is None:
            return
        cpu = cpu_features()
        if cpu.saturates_u8s8:
            logger.warning(
                "%s was quantised for %s (full-range int8 weights), but this CPU has no VNNI (neither avx512_vnni "
                "nor avx_vnni in /proc/cpuinfo): ONNX Runtime's uint8 x int8 products can saturate here and results "
                "may lose accuracy; export with quantization_config=%r for this CPU instead",
                self.file.path,
                target,
                int8_preset_for_cpu(cpu),
            )

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.output_names, inputs)
        return dict(zip(self.output_names, values))

    def _model_files(self) -> list[str]:
        import onnx

        files = [self.file.path]
        folder = os.path.dirname(self.file.path)
        model = onnx.load(self.file.path, load_external_data=False)
        locations = set()
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    locations.add(entry.value)
        files.extend(os.path.join(folder, loc) for loc in sorted(locations))
        return files


# ---------------------------------------------------------------------------------------------- export
def _dummy_inputs(input_names: list[str], batch: int, seq: int, vocab: int, seed: int) -> dict[str, Any]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(5, vocab - 1), max(6, min(vocab, 1000)), (batch, seq), generator=generator)
    mask = torch.ones_like(ids)
    mask[-1, seq // 2 :] = 0  # one padded row, so the masking path is part of the graph
    out: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
    if "token_type_ids" in input_names:
        out["token_type_ids"] = torch.zeros_like(ids)
    return {k: out[k] for k in input_names if k in out}


def _torch_model(model_dir: str, task: str, config: Any, model_kwargs: dict[str, Any]) -> Any:
    import transformers

    auto_name, _ = TASK_OUTPUTS[task]
    kwargs = {k: v for k, v in model_kwargs.items() if k in ("revision", "token", "cache_dir", "trust_remote_code")}
    model = getattr(transformers, auto_name).from_pretrained(model_dir, config=config, **kwargs)
    return model.eval()


def export_onnx(
    model_dir: str,
    task: str,
    config: Any,
    input_names: list[str],
    file: BackendFile,
    model_kwargs: dict[str, Any] | None = None,
    opset: int = 18,
) -> BackendFile:
    """Exports the torch weights of ``model_dir`` to ONNX at ``file.path`` (written atomically).

    The export is run against torch on a second, differently shaped padded batch; it is kept only when the outputs of
    attended positions agree within ``1e-3``.
    """
    import torch

    if task not in TASK_OUTPUTS:
        raise ValueError(f"cannot export transformer_task {task!r} to ONNX; supported: {sorted(TASK_OUTPUTS)}")
    output_name = TASK_OUTPUTS[task][1]
    model = _torch_model(model_dir, task, config, model_kwargs or {})
    import inspect

    accepted = inspect.signature(model.forward).parameters
    names: list[str] = [
        n for n in ("input_ids", "attention_mask", "token_type_ids") if n in input_names and n in accepted
    ]

    if names[:2] != ["input_ids", "attention_mask"]:
        raise ValueError(f"cannot export a model whose inputs are {names}; expected input_ids and attention_mask")

    class _Wrapper(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
        ) -> torch.Tensor:
            inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
            if token_type_ids is not None:
                inputs["token_type_ids"] = token_type_ids
            return self.inner(**inputs, return_dict=True)[output_name]

    vocab = int(getattr(config, "vocab_size", 1000) or 1000)
    example = _dummy_inputs(names, 2, 16, vocab, seed=0)
    batch_dim = torch.export.Dim("batch_size")
    seq_dim = torch.export.Dim("sequence_length")
    dynamic = {name: {0: batch_dim, 1: seq_dim} for name in names}
    n_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    external = n_bytes > 1_800_000_000

    target_dir = os.path.dirname(file.path)
    os.makedirs(target_dir, exist_ok=True)
    final_path = os.path.join(target_dir, file.file_name)
    tmp_dir = tempfile.mkdtemp(prefix=".onnx-export-", dir=target_dir)
    try:
        tmp_path = os.path.join(tmp_dir, file.file_name)
        wrapper = _Wrapper(model).eval()
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                wrapper,
                tuple(example[n] for n in names),
                tmp_path,
                input_names=names,
                output_names=[output_name],
                dynamic_shapes=dynamic,
                opset_version=opset,
                dynamo=True,
                external_data=external,
                verbose=False,
            )
        _check_export(model, tmp_path, names, output_name, vocab)
        for entry in os.listdir(tmp_dir):
            os.replace(os.path.join(tmp_dir, entry), os.path.join(target_dir, entry))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info("Exported %s to %s", model_dir, final_path)
    return BackendFile(final_path, file.subfolder, file.file_name, False)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silences the exporter's progress prints, warnings and torch.onnx log lines (errors still raise)."""
    torch_logger = logging.getLogger("torch.onnx")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        torch_logger.setLevel(level)


def _check_export(model: Any, path: str, names: list[str], output_name: str, vocab: int) -> None:
    import torch

    ort = _require_onnxruntime()
    session = ort.InferenceSession(path, sess_options=session_options(), providers=["CPUExecutionProvider"])
    inputs = _dummy_inputs(names, 3, 11, vocab, seed=1)
    got = session.run([output_name], {k: v.numpy() for k, v in inputs.items()})[0]
    with torch.no_grad():
        want = model(**inputs, return_dict=True)[output_name].float().numpy()
    if got.shape != want.shape:
        raise RuntimeError(f"ONNX export check failed: output shape {got.shape}, torch gives {want.shape}")
    if got.ndim == 3:  # token outputs: padded positions are free to differ
        keep = inputs["attention_mask"].numpy().astype(bool)
        got, want = got[keep], want[keep]
    err = float(np.max(np.abs(got - want))) if got.size else 0.0
    if not np.isfinite(err) or err > EXPORT_ATOL:
        raise RuntimeError(f"ONNX export check failed: max |onnx - torch| = {err:.3g} > {EXPORT_ATOL}")
