"""Dynamic int8 for the CPU that runs it: the preset's weight range and smoothing, the target recorded in the file, the
preset for a CPU, and the warning when a file made for VNNI runs on a CPU without it.

The CPU is forced through ``sentrs.backend.onnx.cpu_features``, so both sides run on any machine. The quality of each
preset on the real MiniLM is in test_onnx_openvino.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnx
import pytest

import sentrs
from sentrs.backend import export_dynamic_quantized_onnx_model
from sentrs.backend.export import (
    DEFAULT_SMOOTHING_ALPHA,
    QUANTIZATION_PRESETS,
    QUANTIZATION_SETTINGS_KEY,
    QUANTIZATION_TARGET_KEY,
    dynamic_quantization_settings,
)
from sentrs.backend.files import BackendFile
from sentrs.backend.onnx import CpuFeatures, OnnxRuntimeModel, _cpu_flags, int8_preset_for_cpu

AVX2 = CpuFeatures("x86_64", frozenset({"sse4_2", "avx", "avx2", "fma"}))  # e.g. AMD Zen 2/3
AVX512 = CpuFeatures("x86_64", AVX2.flags | {"avx512f", "avx512bw"})  # Skylake-SP
AVX512_VNNI = CpuFeatures("x86_64", AVX512.flags | {"avx512_vnni"})  # Cascade Lake and later, Zen 4
AVX_VNNI = CpuFeatures("x86_64", AVX2.flags | {"avx_vnni"})  # Alder Lake
ARM64 = CpuFeatures("aarch64", frozenset({"fp", "asimd", "asimddp"}))
UNKNOWN_X86 = CpuFeatures("x86_64", frozenset())  # /proc/cpuinfo unreadable
WARNING = "may lose accuracy"


def _use_cpu(monkeypatch: pytest.MonkeyPatch, cpu: CpuFeatures) -> None:
    monkeypatch.setattr("sentrs.backend.onnx.cpu_features", lambda: cpu)


# ---------------------------------------------------------------------------------------------- settings per target
@pytest.mark.parametrize(
    ("config", "reduce_range", "alpha", "target"),
    [
        ("arm64", False, DEFAULT_SMOOTHING_ALPHA, "arm64"),
        ("avx2", True, None, "avx2"),
        ("avx512", True, None, "avx512"),
        ("avx512_vnni", False, DEFAULT_SMOOTHING_ALPHA, "avx512_vnni"),
        ({}, False, DEFAULT_SMOOTHING_ALPHA, "custom"),  # a dict starts from avx512_vnni ...
        ({"reduce_range": True}, True, None, "custom"),  # ... or from avx2 when it asks for 7-bit weights
        ({"reduce_range": True, "smoothing_alpha": 0.5}, True, 0.5, "custom"),  # explicit smoothing wins
        ({"smoothing_alpha": None}, False, None, "custom"),
        ({"smoothing_alpha": 0}, False, None, "custom"),
    ],
)
def test_smoothing_and_weight_range_follow_the_target(
    config: Any, reduce_range: bool, alpha: float | None, target: str
) -> None:
    settings, got_target = dynamic_quantization_settings(config)
    assert (settings["reduce_range"], settings["smoothing_alpha"], got_target) == (reduce_range, alpha, target)
    assert settings["weights_dtype"] == "qint8" and settings["per_channel"] is True


def test_dynamic_settings_check_their_values() -> None:
    with pytest.raises(ValueError, match="smoothing_alpha must be a number in \\[0, 1\\] or None, got 2"):
        dynamic_quantization_settings({"smoothing_alpha": 2})
    with pytest.raises(ValueError, match="smoothing_alpha must be a number"):
        dynamic_quantization_settings({"smoothing_alpha": True})
    with pytest.raises(ValueError, match="quantization_config must be one of"):
        dynamic_quantization_settings("avx9000")


# ---------------------------------------------------------------------------------------------- the CPU
@pytest.mark.parametrize(
    ("cpu", "preset"),
    [
        (AVX2, "avx2"),
        (AVX512, "avx512"),
        (AVX512_VNNI, "avx512_vnni"),
        (AVX_VNNI, "avx512_vnni"),
        (ARM64, "arm64"),
        (UNKNOWN_X86, "avx2"),
    ],
)
def test_preset_for_cpu(cpu: CpuFeatures, preset: str) -> None:
    assert int8_preset_for_cpu(cpu) == preset
    # The CPUs known to saturate are given 7-bit weights (and an unknown x86 CPU too, to be safe).
    assert cpu.saturates_u8s8 == (QUANTIZATION_PRESETS[preset]["reduce_range"] and cpu != UNKNOWN_X86)


def test_preset_for_this_cpu_follows_cpu_features(monkeypatch: pytest.MonkeyPatch) -> None:
    assert int8_preset_for_cpu() in QUANTIZATION_PRESETS
    _use_cpu(monkeypatch, AVX2)
    assert int8_preset_for_cpu() == "avx2"
    _use_cpu(monkeypatch, ARM64)
    assert int8_preset_for_cpu() == "arm64"


def test_cpu_flags_from_proc_cpuinfo(tmp_path: Path) -> None:
    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert _cpu_flags(str(x86)) == {"fpu", "avx2", "avx512f", "avx512_vnni"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n")
    assert _cpu_flags(str(arm)) == {"fp", "asimd", "asimddp"}
    assert _cpu_flags(str(tmp_path / "missing")) == frozenset()


def test_cpuid_overrides_proc_cpuinfo(monkeypatch: pytest.MonkeyPatch) -> None:
    """cpuid (what this process runs on, also under an emulator whose /proc/cpuinfo is the host's) wins over
    /proc/cpuinfo for the flags the Rust core detects; other cpuinfo flags are kept."""
    from sentrs import _core
    from sentrs.backend.onnx import _with_cpuid_flags

    host = frozenset({"fpu", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile"})
    avx2_only = [
        ("avx2", True),
        ("fma", True),
        ("avx_vnni", False),
        ("avx512f", False),
        ("avx512_vnni", False),
        ("amx", False),
    ]
    monkeypatch.setattr(_core, "cpu_features", lambda: avx2_only)
    assert _with_cpuid_flags(host) == {"fpu", "avx2", "fma", "amx_tile"}
    monkeypatch.setattr("sentrs.backend.onnx._cpu_flags", lambda _path: host)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert int8_preset_for_cpu() == "avx2"
    monkeypatch.setattr(_core, "cpu_features", lambda: [("avx2", True), ("avx_vnni", True)])
    assert int8_preset_for_cpu() == "avx512_vnni"


# ---------------------------------------------------------------------------------------------- the load-time warning
def _tagged_model(path: Path, metadata: dict[str, str]) -> BackendFile:
    """A one-node ONNX graph (``input_ids`` -> float ``last_hidden_state``) carrying ``metadata``."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Cast", ["input_ids"], ["last_hidden_state"], to=TensorProto.FLOAT)],
        "tagged",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "seq"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=9)
    helper.set_model_props(model, metadata)
    onnx.save(model, path)
    return BackendFile(str(path), "onnx", path.name, False)


def _settings_json(config: Any) -> str:
    return json.dumps(dynamic_quantization_settings(config)[0])


def _tags(target: str, config: Any = None) -> dict[str, str]:
    """The metadata the exporter writes for ``config`` (default: the preset ``target``)."""
    settings = dynamic_quantization_settings(target if config is None else config)[0]
    return {QUANTIZATION_TARGET_KEY: target, QUANTIZATION_SETTINGS_KEY: json.dumps(settings)}


@pytest.mark.parametrize(
    ("metadata", "cpu", "recommended"),
    [
        # full-range int8 weights on x86 without VNNI: warn, and name the preset of this CPU
        (_tags("avx512_vnni"), AVX2, "avx2"),
        ({QUANTIZATION_TARGET_KEY: "avx512_vnni"}, AVX512, "avx512"),  # no settings entry: by the preset name
        (_tags("arm64"), AVX2, "avx2"),
        (_tags("custom", {}), AVX2, "avx2"),
        # no warning: CPUs that do not saturate, 7-bit files, files sentrs did not quantise, unknown CPUs
        (_tags("avx512_vnni"), AVX512_VNNI, None),
        (_tags("avx512_vnni"), AVX_VNNI, None),
        (_tags("avx512_vnni"), ARM64, None),
        (_tags("avx512_vnni"), UNKNOWN_X86, None),
        (_tags("avx2"), AVX2, None),
        (_tags("custom", {"reduce_range": True}), AVX2, None),
        (_tags("custom", {"weights_dtype": "quint8"}), AVX2, None),
        ({}, AVX2, None),
    ],
)
def test_loading_warns_when_the_cpu_lacks_vnni(
    metadata: dict[str, str],
    cpu: CpuFeatures,
    recommended: str | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    file = _tagged_model(tmp_path / "model_qint8.onnx", metadata)
    _use_cpu(monkeypatch, cpu)
    with caplog.at_level(logging.WARNING, logger="sentrs.backend.onnx"):
        model = OnnxRuntimeModel(SimpleNamespace(), file, provider="CPUExecutionProvider", threads=1)
    assert model.run({"input_ids": np.ones((1, 2), dtype=np.int64)})["last_hidden_state"].shape == (1, 2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if recommended is None:
        assert warnings == []
        return
    assert len(warnings) == 1, warnings
    target = metadata[QUANTIZATION_TARGET_KEY]
    assert f"model_qint8.onnx was quantised for {target} (full-range int8 weights)" in warnings[0]
    assert "this CPU has no VNNI" in warnings[0] and WARNING in warnings[0]
    assert f"export with quantization_config='{recommended}' for this CPU instead" in warnings[0]


# ---------------------------------------------------------------------------------------------- real exports
@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> Any:
    """The tiny random BERT loaded with backend="onnx" (exported into a copy of its folder)."""
    folder = tmp_path_factory.mktemp("tiny_int8") / "model"
    shutil.copytree(tiny_bert_dir, folder)
    return sentrs.SentenceTransformer(str(folder), backend="onnx", device="cpu")


def test_exported_files_record_their_target(tiny_onnx: Any, tmp_path: Path) -> None:
    """Every preset writes its name and settings into the file, and smooths (inserts ``.../smooth`` Mul nodes) exactly
    when its settings say so; a dict is recorded as ``custom``."""
    for config in [*QUANTIZATION_PRESETS, {"reduce_range": True, "smoothing_alpha": 0.6}]:
        suffix = config if isinstance(config, str) else "mine"
        export_dynamic_quantized_onnx_model(tiny_onnx, config, str(tmp_path), file_suffix=f"qint8_{suffix}")
        model = onnx.load(str(tmp_path / "onnx" / f"model_qint8_{suffix}.onnx"))
        props = {p.key: p.value for p in model.metadata_props}
        settings, target = dynamic_quantization_settings(config)
        assert props[QUANTIZATION_TARGET_KEY] == target == (config if isinstance(config, str) else "custom")
        assert json.loads(props[QUANTIZATION_SETTINGS_KEY]) == settings
        smooth_nodes = [n for n in model.graph.node if n.op_type == "Mul" and n.name.endswith("/smooth")]
        assert bool(smooth_nodes) == (settings["smoothing_alpha"] is not None), config
        int8_weights = [onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.data_type == 3]
        assert int8_weights, config
        # 7-bit weights when the target saturates (|w| <= 64 keeps 2 * 255 * |w| within int16), 8-bit otherwise
        peak = max(int(np.abs(w.astype(np.int32)).max()) for w in int8_weights)
        assert peak <= 64 if settings["reduce_range"] else peak > 64, (config, peak)


def test_vnni_file_on_a_cpu_without_vnni_warns(
    tiny_onnx: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The exporter and the loader together: an avx512_vnni file warns on AVX2, not on AVX-512 VNNI; avx2 never."""
    folder = tmp_path / "m"
    shutil.copytree(Path(tiny_onnx.transformers_model.file_path).parent.parent, folder)
    for preset in ("avx512_vnni", "avx2"):
        export_dynamic_quantized_onnx_model(tiny_onnx, preset, str(folder))

    def load_warnings(preset: str, cpu: CpuFeatures) -> list[str]:
        _use_cpu(monkeypatch, cpu)
        caplog.clear()
        kwargs = {"file_name": f"onnx/model_qint8_{preset}.onnx"}
        with caplog.at_level(logging.WARNING, logger="sentrs.backend.onnx"):
            sentrs.SentenceTransformer(str(folder), backend="onnx", device="cpu", model_kwargs=kwargs).encode(["a b"])
        return [r.getMessage() for r in caplog.records if r.name == "sentrs.backend.onnx"]

    warnings = load_warnings("avx512_vnni", AVX2)
    assert warnings and all("quantised for avx512_vnni" in w and "quantization_config='avx2'" in w for w in warnings)
    assert load_warnings("avx512_vnni", AVX512_VNNI) == []
    assert load_warnings("avx2", AVX2) == []


def test_quantising_leaves_the_root_logger_alone() -> None:
    """onnxruntime's quantiser logs through the root logger; the export must not leave it configured (which would
    change the format of every later log line, sentrs' own included)."""
    import logging

    from sentrs.backend.export import root_logging_kept

    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    with root_logging_kept():
        logging.warning("a dependency logging through the root logger")
        root.setLevel(logging.DEBUG)
    assert (list(root.handlers), root.level) == before
