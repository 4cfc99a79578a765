"""Corrupt or hostile model files give a clear error naming the file (or bounded work), never a crash, a hang or a
silently wrong model.

Each case copies a tiny reference-saved model (``make_tiny_st``), breaks one thing, loads it, and checks the exception
class and that its message names the broken file. The "2 GB" files are sparse (a short prefix, then
``truncate(2 GiB)``): nothing is written to disk beyond the prefix, and the tests check that they are not read.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import struct
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors import SafetensorError

import sentrs
from sentrs.exceptions import ModuleTypeError, TokenizerError

TWO_GIB = 2 * 1024**3
Mutation = Callable[[Path], None]


def _write(rel: str, data: str | bytes) -> Mutation:
    def mutate(folder: Path) -> None:
        path = folder / rel
        if path.is_dir():
            shutil.rmtree(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)

    return mutate


def _truncate(rel: str, size: int) -> Mutation:
    def mutate(folder: Path) -> None:
        path = folder / rel
        path.write_bytes(path.read_bytes()[:size])

    return mutate


def _header_length(rel: str, length: int) -> Mutation:
    """Overwrites the 8-byte little-endian header length of a safetensors file."""

    def mutate(folder: Path) -> None:
        path = folder / rel
        data = path.read_bytes()
        path.write_bytes(struct.pack("<Q", length) + data[8:])

    return mutate


def _as_folder(rel: str) -> Mutation:
    def mutate(folder: Path) -> None:
        (folder / rel).unlink()
        (folder / rel).mkdir()

    return mutate


def _as_file(rel: str) -> Mutation:
    def mutate(folder: Path) -> None:
        shutil.rmtree(folder / rel)
        (folder / rel).write_text("a file where a folder should be")

    return mutate


def _sparse(rel: str, prefix: bytes = b"hello ") -> Mutation:
    def mutate(folder: Path) -> None:
        with open(folder / rel, "wb") as f:
            f.write(prefix)
            f.truncate(TWO_GIB)

    return mutate


ST = "model.safetensors"
DENSE_ST = "2_Dense/model.safetensors"
MODULES = "modules.json"
ST_CONFIG = "config_sentence_transformers.json"
# (case id, mutation, exception class, text the message must contain: the broken file)
CASES: list[tuple[str, Mutation, type[BaseException], str]] = [
    # safetensors: the transformer's weights (read by transformers) and a Dense module's (read by sentrs)
    ("st_empty", _write(ST, b""), SafetensorError, ST),
    ("st_truncated_4_bytes", _truncate(ST, 4), SafetensorError, ST),
    ("st_truncated_in_header", _truncate(ST, 100), SafetensorError, ST),
    ("st_truncated_in_data", _truncate(ST, 50_000), SafetensorError, ST),
    ("st_header_2_pow_62", _header_length(ST, 2**62), SafetensorError, ST),
    ("st_header_past_end", _header_length(ST, 10**8), SafetensorError, ST),
    ("st_header_not_json", _write(ST, struct.pack("<Q", 16) + b"{not json at all" + bytes(64)), SafetensorError, ST),
    ("st_sparse_2gib", _sparse(ST, struct.pack("<Q", 2**30)), SafetensorError, ST),
    ("st_is_a_folder", _as_folder(ST), OSError, "model.safetensors"),
    ("dense_st_truncated", _truncate(DENSE_ST, 60), SafetensorError, DENSE_ST),
    ("dense_st_header_huge", _header_length(DENSE_ST, 2**40), SafetensorError, DENSE_ST),
    ("dense_st_empty", _write(DENSE_ST, b""), SafetensorError, DENSE_ST),
    # tokenizer files
    ("tokenizer_json_broken", _write("tokenizer.json", "{broken"), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_truncated", _truncate("tokenizer.json", 1000), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_empty", _write("tokenizer.json", ""), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_a_list", _write("tokenizer.json", "[]"), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_binary", _write("tokenizer.json", b"\xff\xfe\x00\x01"), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_is_a_folder", _as_folder("tokenizer.json"), TokenizerError, "tokenizer.json"),
    ("tokenizer_json_sparse_2gib", _sparse("tokenizer.json", b'{"version": "'), TokenizerError, "tokenizer.json"),
    ("tokenizer_config_broken", _write("tokenizer_config.json", "{x"), TokenizerError, "tokenizer_config.json"),
    ("tokenizer_config_a_list", _write("tokenizer_config.json", "[1]"), TokenizerError, "tokenizer_config.json"),
    ("vocab_txt_sparse_2gib", _sparse("vocab.txt"), TokenizerError, "vocab.txt"),
    # modules.json
    ("modules_json_broken", _write("modules.json", "[{"), json.JSONDecodeError, "modules.json"),
    ("modules_json_empty", _write("modules.json", ""), json.JSONDecodeError, "modules.json"),
    ("modules_json_object", _write("modules.json", "{}"), ValueError, "modules.json"),
    ("modules_json_entry_not_object", _write("modules.json", "[1]"), ValueError, "modules.json"),
    ("modules_json_type_not_str", _write("modules.json", '[{"type": 5, "path": ""}]'), ModuleTypeError, "5"),
    (
        "modules_json_path_not_str",
        _write("modules.json", '[{"type": "Pooling", "path": 5}]'),
        ValueError,
        "modules.json",
    ),
    ("modules_json_is_a_folder", _as_folder("modules.json"), IsADirectoryError, "modules.json"),
    # config.json of the transformer (read by transformers)
    ("config_json_broken", _write("config.json", "{oops"), OSError, "config.json"),
    ("config_json_empty", _write("config.json", ""), OSError, "config.json"),
    ("config_json_a_list", _write("config.json", "[1]"), ValueError, "config.json"),
    ("config_json_no_model_type", _write("config.json", "{}"), ValueError, "config.json"),
    ("config_json_is_a_folder", _as_folder("config.json"), ValueError, "config.json"),
    # the other configs
    ("pooling_config_broken", _write("1_Pooling/config.json", "{"), ValueError, "1_Pooling/config.json"),
    ("pooling_config_a_list", _write("1_Pooling/config.json", "[]"), ValueError, "1_Pooling/config.json"),
    ("dense_config_broken", _write("2_Dense/config.json", "{"), ValueError, "2_Dense/config.json"),
    ("st_config_broken", _write("config_sentence_transformers.json", "{"), ValueError, "config_sentence_transformers"),
    (
        "st_config_a_list",
        _write("config_sentence_transformers.json", "[]"),
        ValueError,
        "config_sentence_transformers",
    ),
    ("sbert_config_broken", _write("sentence_bert_config.json", "{"), ValueError, "sentence_bert_config.json"),
    ("sbert_config_is_a_folder", _as_folder("sentence_bert_config.json"), IsADirectoryError, "sentence_bert_config"),
    # a file where a folder should be
    ("pooling_folder_is_a_file", _as_file("1_Pooling"), NotADirectoryError, "1_Pooling"),
    ("dense_folder_is_a_file", _as_file("2_Dense"), NotADirectoryError, "2_Dense"),
]
CATEGORIES = {
    "st_": "safetensors",
    "dense_st": "safetensors",
    "tokenizer": "tokenizer files",
    "vocab": "tokenizer files",
    "modules_json": "modules.json",
    "config_json": "config.json",
    "pooling_config": "module configs",
    "dense_config": "module configs",
    "st_config": "module configs",
    "sbert": "module configs",
    "pooling_folder": "file for a folder",
    "dense_folder": "file for a folder",
}


@pytest.fixture(scope="module")
def dense_model(make_tiny_st: Callable[..., str]) -> str:
    """The tiny model with a Dense module (Transformer, Pooling, Dense): weights in the root and in a module."""
    return make_tiny_st("mean", dense=True)


@pytest.mark.parametrize(("mutate", "exc_type", "names"), [pytest.param(m, e, n, id=i) for i, m, e, n in CASES])
def test_corrupt_file_raises_a_clear_error(
    mutate: Mutation, exc_type: type[BaseException], names: str, dense_model: str, tmp_path: Path
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(dense_model, folder)
    mutate(folder)
    start = time.perf_counter()
    with pytest.raises(exc_type) as info:
        sentrs.SentenceTransformer(str(folder), device="cpu")
    elapsed = time.perf_counter() - start
    assert names in str(info.value), f"the error does not name {names}: {info.value!r}"
    assert elapsed < 20, f"{elapsed:.1f}s to refuse a {names} (bounded work expected)"


def test_every_case_has_a_category() -> None:
    """The report's per-category counts come from this table."""
    counts: dict[str, int] = {}
    for case_id, *_ in CASES:
        category = next(c for prefix, c in CATEGORIES.items() if case_id.startswith(prefix))
        counts[category] = counts.get(category, 0) + 1
    assert sum(counts.values()) == len(CASES) >= 40


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{broken", "not valid JSON"),
        ("[]", "must hold a JSON object"),
        ("{}", "could not parse the tokenizer JSON"),
        ('{"model": 5}', "could not parse the tokenizer JSON"),
    ],
)
def test_engine_tokenizer_names_a_broken_tokenizer_json(
    spec: str, message: str, dense_model: str, tmp_path: Path
) -> None:
    """The torch-free pipeline reads tokenizer.json itself (Rust): its errors name the file too."""
    from sentrs.base.engine.tokenizer import FolderTokenizer

    folder = tmp_path / "model"
    shutil.copytree(dense_model, folder)
    (folder / "tokenizer.json").write_text(spec)
    with pytest.raises(TokenizerError, match=message) as info:
        FolderTokenizer(str(folder))
    assert "tokenizer.json" in str(info.value)


@pytest.mark.parametrize(
    ("backend", "rel", "data"),
    [
        ("onnx", "onnx/model.onnx", b"not a protobuf"),
        ("onnx", "onnx/model.onnx", b""),
        ("openvino", "openvino/openvino_model.xml", b"<net><broken"),
        ("openvino", "openvino/openvino_model.xml", b""),
    ],
)
def test_corrupt_exported_model_names_the_file(
    backend: str, rel: str, data: bytes, make_tiny_st: Callable[..., str], tmp_path: Path
) -> None:
    pytest.importorskip("onnxruntime" if backend == "onnx" else "openvino")
    folder = tmp_path / "model"
    shutil.copytree(make_tiny_st("mean"), folder)
    _write(rel, data)(folder)
    if backend == "openvino":
        (folder / "openvino" / "openvino_model.bin").write_bytes(bytes(16))
    with pytest.raises(ValueError, match=f"{rel}.*is not a valid") as info:
        sentrs.SentenceTransformer(str(folder), device="cpu", backend=backend)
    assert str(folder) in str(info.value)


# ---------------------------------------------------------------------------------------- bounded work
def test_two_gib_readme_is_not_read(dense_model: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "model"
    shutil.copytree(dense_model, folder)
    _sparse("README.md", b"# a model card\n")(folder)
    tracemalloc.start()
    try:
        with caplog.at_level(logging.WARNING, logger="sentrs"):
            model = sentrs.SentenceTransformer(str(folder), device="cpu")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024**2, f"peak Python allocations {peak / 1e6:.0f} MB while loading"
    assert model._model_card_text is None
    assert "README.md" in caplog.text and "not read" in caplog.text


def _bounded_peak(fn: Callable[[], object]) -> tuple[BaseException | None, int, float]:
    tracemalloc.start()
    start = time.perf_counter()
    error: BaseException | None = None
    try:
        fn()
    except BaseException as exc:  # SystemExit from the CLI reader
        error = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return error, peak, time.perf_counter() - start


@pytest.mark.parametrize("name", ["texts.txt", "texts.jsonl"])
def test_two_gib_line_in_a_streamed_input_is_refused_early(name: str, tmp_path: Path) -> None:
    """``encode_to_disk`` / ``sentrs encode FILE`` read inputs through ``iter_inputs``: a 2 GiB line without a
    newline is refused after reading 64 MiB of it, with the file and line number."""
    from sentrs.streaming import MAX_LINE_BYTES, iter_inputs

    path = tmp_path / name
    with open(path, "wb") as f:
        f.write(b'"first line"\n' if name.endswith(".jsonl") else b"first line\n")
        f.truncate(TWO_GIB)
    error, peak, elapsed = _bounded_peak(lambda: list(iter_inputs(path)))
    assert isinstance(error, ValueError) and f"{path}:2: a line longer than" in str(error)
    assert peak < 3 * MAX_LINE_BYTES + 32 * 1024**2, f"peak {peak / 1e6:.0f} MB"
    assert elapsed < 20


def test_two_gib_line_on_the_cli_stdin_reader_is_refused_early(tmp_path: Path) -> None:
    """The CLI reads stdin (and --texts / --queries-file / passages files) through ``_read_texts``."""
    from sentrs.cli import _MAX_LINE_CHARS, _read_texts

    path = tmp_path / "stdin.jsonl"
    with open(path, "wb") as f:
        f.write(b'{"text": "one"}\n')
        f.truncate(TWO_GIB)
    with open(path, encoding="utf-8") as stream:
        error, peak, elapsed = _bounded_peak(lambda: _read_texts(stream, "<stdin>.jsonl", "text"))
    assert isinstance(error, SystemExit) and "<stdin>.jsonl:2: a line longer than" in str(error)
    assert peak < 6 * _MAX_LINE_CHARS + 32 * 1024**2, f"peak {peak / 1e6:.0f} MB"  # str: up to 4 bytes a char
    assert elapsed < 20
    ok = _read_texts(io.StringIO('{"text": "a"}\n"b"\n\n'), "x.jsonl", "text")
    assert ok == ["a", "b"]


def _fill(folder: Path, count: int) -> None:
    for i in range(count):
        os.close(os.open(folder / f"f{i:07d}", os.O_CREAT | os.O_WRONLY, 0o644))


def test_sentrs_does_not_list_a_model_folder_while_loading(
    dense_model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading opens known file names only: no sentrs code lists or walks the model folder (a folder of a million
    files costs sentrs nothing; transformers' tokenizer and weights lookups list it, once each, see the slow test)."""

    folder = tmp_path / "model"
    shutil.copytree(dense_model, folder)
    _fill(folder, 2000)
    listed: list[str] = []
    real_listdir, real_scandir, real_walk = os.listdir, os.scandir, os.walk
    package = str(Path(sentrs.__file__).parent)

    def from_sentrs() -> bool:  # the caller of the listing function is sentrs code (not transformers, say)
        return sys._getframe(2).f_code.co_filename.startswith(package)

    def listdir(path: str = ".") -> list[str]:
        if from_sentrs():
            listed.append(f"listdir {path}")
        return real_listdir(path)

    def scandir(path: str = ".") -> object:
        if from_sentrs():
            listed.append(f"scandir {path}")
        return real_scandir(path)

    def walk(top: str, *args: object, **kwargs: object) -> object:
        if from_sentrs():
            listed.append(f"walk {top}")
        return real_walk(top, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "listdir", listdir)
    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "walk", walk)
    model = sentrs.SentenceTransformer(str(folder), device="cpu")
    monkeypatch.undo()
    assert [entry for entry in listed if str(folder) in entry] == []
    assert model.encode(["still works"]).shape == (1, 16)


@pytest.mark.slow
def test_a_folder_of_a_million_empty_files_loads_in_bounded_time(dense_model: str, tmp_path: Path) -> None:
    """1,000,000 empty files beside the model: loading lists the folder once (transformers' sharded-checkpoint
    lookup), about linear and a few seconds; sentrs itself neither lists nor stats them (test above)."""
    folder = tmp_path / "model"
    shutil.copytree(dense_model, folder)
    reference_start = time.perf_counter()
    sentrs.SentenceTransformer(str(folder), device="cpu")
    plain = time.perf_counter() - reference_start
    _fill(folder, 1_000_000)
    start = time.perf_counter()
    model = sentrs.SentenceTransformer(str(folder), device="cpu")
    elapsed = time.perf_counter() - start
    assert model.encode(["still works"]).shape == (1, 16)
    assert elapsed < plain + 30, f"{elapsed:.1f}s to load beside a million files (plain folder: {plain:.1f}s)"
