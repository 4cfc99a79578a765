"""Loading never runs code from a model folder unless ``trust_remote_code=True``, and never reads outside it.

Each test builds a hostile folder from a tiny reference-saved model (``make_tiny_st``) and checks that sentrs refuses
it with an exception naming the file, or (custom module classes, with ``trust_remote_code=True``) loads it exactly
as the reference does. Code that would run shows itself by writing a marker file, whose absence is asserted.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs.exceptions import ModuleTypeError

TEXTS = ["a small test sentence", "another one, a bit longer than the first"]


def _edit_modules(folder: str, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    path = Path(folder, "modules.json")
    entries = json.loads(path.read_text())
    edit(entries)
    path.write_text(json.dumps(entries))


def _outside_pooling(tmp_path: Path, folder: str) -> Path:
    """A valid Pooling folder outside the model folder: loading it would succeed if the path check were missing."""
    outside = tmp_path / "outside_pool"
    shutil.copytree(Path(folder, "1_Pooling"), outside)
    return outside


# ---------------------------------------------------------------------------------------- modules.json paths
ESCAPING_PATHS = [
    "../outside_pool",
    "1_Pooling/../../outside_pool",
    "ABSOLUTE",  # replaced by the absolute path of the outside folder
    "C:\\outside_pool",
    "\\\\server\\share\\outside_pool",
    "..\\outside_pool",
    "1_Pooling\x00",
]


@pytest.mark.parametrize("bad_path", ESCAPING_PATHS)
def test_modules_json_path_leaving_the_folder_is_refused(
    bad_path: str, make_tiny_st: Callable[..., str], tmp_path: Path
) -> None:
    folder = str(tmp_path / "model")
    shutil.copytree(make_tiny_st("mean"), folder)
    outside = _outside_pooling(tmp_path, folder)
    sub = str(outside) if bad_path == "ABSOLUTE" else bad_path

    def edit(entries: list[dict[str, Any]]) -> None:
        entries[1]["path"] = sub

    _edit_modules(folder, edit)
    with pytest.raises(ValueError, match="relative folder without '..'") as info:
        sentrs.SentenceTransformer(folder, device="cpu")
    assert "modules.json" in str(info.value) and repr(sub) in str(info.value)


def test_symlinked_module_folder_pointing_outside_is_refused(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(make_tiny_st("mean"), folder)
    outside = _outside_pooling(tmp_path, str(folder))
    shutil.rmtree(folder / "1_Pooling")
    (folder / "1_Pooling").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="outside the model folder") as info:
        sentrs.SentenceTransformer(str(folder), device="cpu")
    message = str(info.value)
    assert "modules.json" in message and str(outside) in message


def test_symlink_inside_the_folder_and_a_symlinked_model_folder_still_load(
    make_tiny_st: Callable[..., str], tmp_path: Path, ref_folder_embeddings: Callable[[str], np.ndarray]
) -> None:
    """The check follows symlinks but only refuses targets outside: a module folder linked to a sibling inside the
    model folder, and a model folder that is itself a symlink (as in some caches), load with identical output."""
    real = tmp_path / "real_model"
    shutil.copytree(make_tiny_st("mean"), real)
    (real / "1_Pooling").rename(real / "pool_store")
    (real / "1_Pooling").symlink_to("pool_store", target_is_directory=True)
    link = tmp_path / "linked_model"
    link.symlink_to(real, target_is_directory=True)
    expected = ref_folder_embeddings(make_tiny_st("mean"))
    for folder in (real, link):
        got = sentrs.SentenceTransformer(str(folder), device="cpu").encode(TEXTS)
        np.testing.assert_allclose(got, expected, atol=1e-6)  # same weights, same kernels: float noise only


def test_module_folder_that_is_a_file_names_it(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    folder = tmp_path / "model"
    shutil.copytree(make_tiny_st("mean"), folder)
    shutil.rmtree(folder / "1_Pooling")
    (folder / "1_Pooling").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="1_Pooling"):
        sentrs.SentenceTransformer(str(folder), device="cpu")


def test_router_route_folder_symlinked_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside_norm"
    outside.mkdir()
    router_dir = tmp_path / "router"
    router_dir.mkdir()
    (router_dir / "query_0_Normalize").symlink_to(outside, target_is_directory=True)
    config = {
        "types": {"query_0_Normalize": "sentence_transformers.models.Normalize"},
        "structure": {"query": ["query_0_Normalize"]},
    }
    (router_dir / "router_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="outside the model folder"):
        sentrs.models.Router.load(str(router_dir))


def test_engine_module_entries_refuse_a_symlink_outside(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """The torch-free pipeline reads modules.json on its own: an escaping folder sends it to the torch loader,
    which refuses it (NeedsTorch is the engine's "let the torch path judge" signal)."""
    from sentrs.base.engine.steps import read_module_entries
    from sentrs.base.engine.tokenizer import NeedsTorch

    folder = tmp_path / "model"
    shutil.copytree(make_tiny_st("mean"), folder)
    outside = _outside_pooling(tmp_path, str(folder))
    assert [name for name, _ in read_module_entries(str(folder))] == ["Transformer", "Pooling"]
    shutil.rmtree(folder / "1_Pooling")
    (folder / "1_Pooling").symlink_to(outside, target_is_directory=True)
    with pytest.raises(NeedsTorch, match="1_Pooling"):
        read_module_entries(str(folder))


# ---------------------------------------------------------------------------------------- custom module classes
CUSTOM_MODULE = """
import json
import os

import torch

with open(os.environ["SENTRS_TEST_MARKER"], "a") as marker:
    marker.write("imported\\n")


class Scale(torch.nn.Module):
    def __init__(self, factor: float = 2.0) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, features):
        features["sentence_embedding"] = features["sentence_embedding"] * self.factor
        return features

    def save(self, path):
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump({"factor": self.factor}, f)

    @staticmethod
    def load(path):
        with open(os.path.join(path, "config.json")) as f:
            return Scale(**json.load(f))
"""


@pytest.fixture
def ref_folder_embeddings() -> Callable[[str], np.ndarray]:
    def embed(folder: str, **kwargs: Any) -> np.ndarray:
        import sentence_transformers

        model = sentence_transformers.SentenceTransformer(folder, device="cpu", **kwargs)
        return np.asarray(model.encode(TEXTS))

    return embed


@pytest.fixture
def custom_folder(make_tiny_st: Callable[..., str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model plus a ``custom_scale.Scale`` module whose import writes the marker file."""
    folder = tmp_path / "custom_model"
    shutil.copytree(make_tiny_st("mean"), folder)
    # a per-test comment gives the file its own hash, so transformers imports it afresh (and writes the marker)
    (folder / "custom_scale.py").write_text(f"{CUSTOM_MODULE}\n# {tmp_path}\n")
    (folder / "2_Scale").mkdir()
    (folder / "2_Scale" / "config.json").write_text(json.dumps({"factor": 3.0}))

    def edit(entries: list[dict[str, Any]]) -> None:
        entries.append({"idx": 2, "name": "2", "path": "2_Scale", "type": "custom_scale.Scale"})

    _edit_modules(str(folder), edit)
    monkeypatch.setenv("SENTRS_TEST_MARKER", str(tmp_path / "marker"))
    return folder


def test_custom_module_type_needs_trust_remote_code(custom_folder: Path, tmp_path: Path) -> None:
    import sentence_transformers

    with pytest.raises(ModuleTypeError, match="trust_remote_code=True") as info:
        sentrs.SentenceTransformer(str(custom_folder), device="cpu")
    assert "'custom_scale.Scale'" in str(info.value) and str(custom_folder) in str(info.value)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="trust_remote_code=True"):  # the reference refuses it the same way
        sentence_transformers.SentenceTransformer(str(custom_folder), device="cpu")
    assert not (tmp_path / "marker").exists()


def test_custom_module_type_with_trust_remote_code_matches_the_reference(
    custom_folder: Path, tmp_path: Path, ref_folder_embeddings: Callable[..., np.ndarray]
) -> None:
    model = sentrs.SentenceTransformer(str(custom_folder), device="cpu", trust_remote_code=True)
    assert (tmp_path / "marker").exists()
    expected = ref_folder_embeddings(str(custom_folder), trust_remote_code=True)
    got = model.encode(TEXTS)
    np.testing.assert_allclose(got, expected, atol=1e-6)  # same weights and modules: float noise only
    assert type(model[2]).__name__ == "Scale" and model[2].factor == 3.0

    # Saved as the reference saves it: the class's file copied beside its config, the short type in modules.json.
    saved = tmp_path / "saved"
    model.save(str(saved))
    entries = json.loads((saved / "modules.json").read_text())
    assert entries[2]["type"] == "custom_scale.Scale"
    assert (saved / "2_Scale" / "custom_scale.py").read_text() == (custom_folder / "custom_scale.py").read_text()
    with pytest.raises(ModuleTypeError, match="trust_remote_code=True"):
        sentrs.SentenceTransformer(str(saved), device="cpu")
    reloaded = sentrs.SentenceTransformer(str(saved), device="cpu", trust_remote_code=True)
    np.testing.assert_allclose(reloaded.encode(TEXTS), expected, atol=1e-6)


def test_custom_module_type_that_cannot_be_imported_names_it(custom_folder: Path) -> None:
    def edit(entries: list[dict[str, Any]]) -> None:
        entries[2]["type"] = "no_such_package_xyz.Thing"

    _edit_modules(str(custom_folder), edit)
    with pytest.raises(ModuleTypeError, match="cannot import the custom module type 'no_such_package_xyz.Thing'"):
        sentrs.SentenceTransformer(str(custom_folder), device="cpu", trust_remote_code=True)


def test_installed_package_class_is_custom_code_too(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """A class of an installed package (not sentence-transformers, not sentrs) also needs trust_remote_code: naming
    ``os.system``-like callables in modules.json must not reach them."""
    folder = str(tmp_path / "model")
    shutil.copytree(make_tiny_st("mean"), folder)

    def edit(entries: list[dict[str, Any]]) -> None:
        entries[1]["type"] = "torch.nn.Identity"

    _edit_modules(folder, edit)
    with pytest.raises(ModuleTypeError, match="'torch.nn.Identity'.*trust_remote_code=True"):
        sentrs.SentenceTransformer(folder, device="cpu")


# ---------------------------------------------------------------------------------------- pickled weights
class _Payload:
    """Unpickling this runs ``os.mkdir(marker)``: the weights-only unpickler must refuse the global."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def _write_evil_pickle(path: Path, marker: Path) -> None:
    torch.save({"linear.weight": _Payload(str(marker))}, str(path))


@pytest.mark.parametrize("where", ["dense", "transformer"])
def test_pickle_that_runs_code_is_refused_naming_the_file(
    where: str, make_tiny_st: Callable[..., str], tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(make_tiny_st("mean", dense=True), folder)
    target = folder / "2_Dense" if where == "dense" else folder
    (target / "model.safetensors").unlink()
    marker = tmp_path / "pwned"
    _write_evil_pickle(target / "pytorch_model.bin", marker)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed") as info:
        sentrs.SentenceTransformer(str(folder), device="cpu")
    assert "pytorch_model.bin" in str(info.value) and str(target) in str(info.value)
    assert not marker.exists()


def test_pickled_dense_weights_load_weights_only(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """A plain tensor pickle (the reference's ``safe_serialization=False``) still loads, with the same output."""
    folder = make_tiny_st("mean", dense=True)
    expected = sentrs.SentenceTransformer(folder, device="cpu").encode(TEXTS)
    copy = tmp_path / "model"
    shutil.copytree(folder, copy)
    from safetensors.torch import load_file

    state = load_file(str(copy / "2_Dense" / "model.safetensors"))
    (copy / "2_Dense" / "model.safetensors").unlink()
    torch.save(state, str(copy / "2_Dense" / "pytorch_model.bin"))
    got = sentrs.SentenceTransformer(str(copy), device="cpu").encode(TEXTS)
    np.testing.assert_array_equal(got, expected)


def test_no_unsafe_deserialisation_in_the_package() -> None:
    """Every ``torch.load`` in sentrs passes ``weights_only=True``, no ``np.load`` passes ``allow_pickle=True`` (its
    default is False), and nothing calls ``pickle.load``/``pickle.loads`` on file contents, ``joblib.load``, ``eval``
    or ``exec``."""
    import re

    root = Path(sentrs.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(([^)]*)\)", text):
            if "weights_only=True" not in match.group(1):
                offenders.append(f"{path}: {match.group(0)}")
        offenders += [f"{path}: {m.group(0)}" for m in re.finditer(r"allow_pickle=True", text)]
        for pattern in (r"pickle\.load\(", r"joblib\.load\(", r"(?<![\w.])(?<!def )eval\(", r"(?<![\w.])exec\("):
            offenders += [f"{path}: {m.group(0)}" for m in re.finditer(pattern, text)]
        # pickle.loads only on bytes the process made itself (checking an exception pickles): allowed by name
        for match in re.finditer(r"pickle\.loads\(([^)]*)\)", text):
            if not match.group(1).startswith("pickle.dumps("):
                offenders.append(f"{path}: {match.group(0)}")
    assert offenders == []


def test_marker_pickle_would_run_without_weights_only(tmp_path: Path) -> None:
    """The payload above is live: a plain unpickle runs it (so the refusals above are meaningful)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    _write_evil_pickle(path, marker)
    torch.load(str(path), weights_only=False)
    assert marker.is_dir()
