"""Hub downloads with a backend fetch only the requested exported file (no network: huggingface_hub is faked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest

from sentrs.base.hub import backend_file_candidates, resolve_model_dir


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """A repository with modules.json (a root Transformer and a Router route in a subfolder) and many exports."""
    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "x"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "y"},
            ]
        )
    )
    repo_files = {
        "onnx/model.onnx",
        "onnx/model_qint8_avx512_vnni.onnx",
        "onnx/model_O3.onnx",
        "openvino/openvino_model.xml",
        "openvino/openvino_model.bin",
        "1_Pooling/onnx/model.onnx",
    }
    record: dict[str, Any] = {"snapshot": [], "files": []}

    def snapshot_download(**kwargs: Any) -> str:
        record["snapshot"].append(kwargs)
        return str(snapshot)

    def hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
        if filename not in repo_files:
            raise huggingface_hub.errors.EntryNotFoundError(filename)
        record["files"].append(filename)
        return str(snapshot / filename)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    return record


def test_only_the_requested_onnx_file_is_fetched(fake_hub: dict[str, Any]) -> None:
    folder = resolve_model_dir("org/model", backend="onnx", model_kwargs={"file_name": "model_qint8_avx512_vnni.onnx"})
    assert Path(folder).name == "snapshot"
    ignore = fake_hub["snapshot"][0]["ignore_patterns"]
    assert {"onnx/*", "openvino/*", "*.onnx"} <= set(ignore)
    assert fake_hub["files"] == ["onnx/model_qint8_avx512_vnni.onnx"]


def test_default_files_per_backend(fake_hub: dict[str, Any]) -> None:
    resolve_model_dir("org/model", backend="onnx")
    assert fake_hub["files"] == ["onnx/model.onnx", "1_Pooling/onnx/model.onnx"]
    fake_hub["files"].clear()
    resolve_model_dir("org/model", backend="openvino")
    assert fake_hub["files"] == [
        "openvino/openvino_model.xml",
        "openvino/openvino_model.bin",
        "onnx/model.onnx",
        "1_Pooling/onnx/model.onnx",
    ]
    fake_hub["files"].clear()
    resolve_model_dir("org/model")  # torch: no exported file at all
    assert fake_hub["files"] == []


def test_candidates_follow_file_name_and_subfolder() -> None:
    assert backend_file_candidates("onnx", {"file_name": "onnx/model_O3.onnx"}) == [
        "onnx/model_O3.onnx",
        "onnx/model_O3.onnx_data",
        "onnx/onnx/model_O3.onnx",
        "onnx/onnx/model_O3.onnx_data",
    ]
    assert backend_file_candidates("onnx", {"subfolder": "sub"})[:2] == ["sub/model.onnx", "sub/model.onnx_data"]
    assert backend_file_candidates("torch", {}) == []
