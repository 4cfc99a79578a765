"""Bad input gives a clear Python exception naming the problem, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sentrs
from sentrs.exceptions import ModuleTypeError


@pytest.mark.parametrize(
    ("inputs", "exc", "match"),
    [
        (None, TypeError, "got None"),
        ([1, 2], TypeError, r"inputs\[0\] must be a str, got int"),
        (["ok", None], TypeError, r"inputs\[1\] must be a str, got NoneType"),
        (42, TypeError, "got int"),
        ({"image": "x.png"}, ValueError, "Modality 'image' is not supported.*Received: dict"),
    ],
)
def test_bad_inputs(our_minilm: Any, inputs: Any, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        our_minilm.encode(inputs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": -3}, "batch_size must be a positive integer"),
        ({"precision": "float16"}, "Precision 'float16' is not supported"),
        ({"output_value": "logits"}, "output_value must be"),
        ({"prompt_name": "nope"}, "Prompt name 'nope' not found"),
        ({"truncate_dim": 0}, "truncate_dim must be a positive integer"),
        ({"unknown_kwarg": 1}, "does not use"),
    ],
)
def test_bad_encode_options(our_minilm: Any, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        our_minilm.encode(["a"], **kwargs)


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        sentrs.SentenceTransformer(str(tmp_path / "does" / "not" / "exist"), device="cpu")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(NotADirectoryError):
        sentrs.SentenceTransformer(str(f), device="cpu")


def test_unknown_hub_id_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match="not in the Hugging Face cache"):
        sentrs.SentenceTransformer("someone/no-such-model-xyz", device="cpu", cache_folder=str(tmp_path))


def test_corrupt_modules_json(make_tiny_st: Callable[..., str], copy_dir: Callable[[str], str]) -> None:
    folder = copy_dir(make_tiny_st("mean"))
    Path(folder, "modules.json").write_text("{not json")
    with pytest.raises(json.JSONDecodeError, match="modules.json"):
        sentrs.SentenceTransformer(folder, device="cpu")
    Path(folder, "modules.json").write_text("{}")
    with pytest.raises(ValueError, match="non-empty JSON list"):
        sentrs.SentenceTransformer(folder, device="cpu")


def test_unknown_module_type(make_tiny_st: Callable[..., str], copy_dir: Callable[[str], str]) -> None:
    folder = copy_dir(make_tiny_st("mean"))
    entries = json.loads(Path(folder, "modules.json").read_text())
    entries[1]["type"] = "sentence_transformers.models.FancyPooling"
    Path(folder, "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ModuleTypeError, match="FancyPooling.*not supported"):
        sentrs.SentenceTransformer(folder, device="cpu")
    entries[1]["type"] = "my_package.CustomModule"
    Path(folder, "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ModuleTypeError, match="custom code"):
        sentrs.SentenceTransformer(folder, device="cpu")


def test_path_escaping_modules_json(make_tiny_st: Callable[..., str], copy_dir: Callable[[str], str]) -> None:
    folder = copy_dir(make_tiny_st("mean"))
    entries = json.loads(Path(folder, "modules.json").read_text())
    entries[1]["path"] = "../elsewhere"
    Path(folder, "modules.json").write_text(json.dumps(entries))
    with pytest.raises(ValueError, match="relative folder without"):
        sentrs.SentenceTransformer(folder, device="cpu")


def test_invalid_pooling_mode(make_tiny_st: Callable[..., str], copy_dir: Callable[[str], str]) -> None:
    folder = copy_dir(make_tiny_st("mean"))
    Path(folder, "1_Pooling", "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": "median", "include_prompt": True})
    )
    with pytest.raises(ValueError, match="Invalid pooling mode: 'median'"):
        sentrs.SentenceTransformer(folder, device="cpu")


def test_invalid_constructor_arguments(make_tiny_st: Callable[..., str]) -> None:
    folder = make_tiny_st("mean")
    with pytest.raises(ValueError, match="similarity_fn_name must be one of"):
        sentrs.SentenceTransformer(folder, device="cpu", similarity_fn_name="jaccard")
    with pytest.raises(ValueError, match="Default prompt name 'q' not found"):
        sentrs.SentenceTransformer(folder, device="cpu", default_prompt_name="q")
    with pytest.raises(ValueError, match="modules must not be empty"):
        sentrs.SentenceTransformer(modules=[], device="cpu")
    with pytest.raises(TypeError, match="model_name_or_path must be a str"):
        sentrs.SentenceTransformer(123, device="cpu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend must be 'torch', 'onnx' or 'openvino', got 'jax'"):
        sentrs.SentenceTransformer(folder, device="cpu", backend="jax")  # type: ignore[arg-type]
