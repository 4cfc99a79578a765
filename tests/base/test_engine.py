"""The engine-only path: a model class running its exported file without torch modules (``sentrs.base.engine``).

A model on the engine path must give what the same class with its torch modules gives around the same backend file
(``SENTRS_TORCH_FREE=0``): the same tokenization, the same forward pass, the same pooling kernels, so equality is
expected (tolerance 1e-6 absolute, for the numpy Dense and activations against torch's). Against the torch *forward
pass* the ONNX tolerance applies (1e-4). Processes that must not import torch run in a subprocess and check
``sys.modules``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sentrs
from sentrs.base.engine.tokenizer import FolderTokenizer, NeedsTorch
from sentrs.cross_encoder import CrossEncoder
from sentrs.sentence_transformer import SentenceTransformer

TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "",
    "Émoji 🤖 and café, naïve ÀÉÎ",
    "long text " * 300,
    "   spaces   around   ",
]
PAIRS = [
    ("what causes heart disease", "The heart pumps blood through the body."),
    ("what causes heart disease", "Smoking and high blood pressure are risk factors."),
    ("capital of france", "Paris is the capital of France. " * 60),
    ("", "empty query"),
]
ATOL = 1e-6


@contextmanager
def _torch_modules_only() -> Iterator[None]:
    previous = os.environ.get("SENTRS_TORCH_FREE")
    os.environ["SENTRS_TORCH_FREE"] = "0"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["SENTRS_TORCH_FREE"]
        else:
            os.environ["SENTRS_TORCH_FREE"] = previous


def _with_torch_modules(cls: Any, folder: str, **kwargs: Any) -> Any:
    """The class with its torch modules around the backend file (the path the engine must match)."""
    with _torch_modules_only():
        model = cls(folder, device="cpu", **kwargs)
    assert not model.runs_in_engine
    return model


def _export(folder: str, cls: Any, backend: str = "onnx") -> None:
    """Exports through the torch modules (the first load of a folder without the file)."""
    _with_torch_modules(cls, folder, backend=backend)


def _run_isolated(script: str) -> str:
    """Runs ``script`` in a fresh interpreter and returns its stdout; fails with its stderr."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def minilm_exported(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    out = str(tmp_path_factory.mktemp("lite_minilm") / "model")
    shutil.copytree(minilm_path, out)
    _export(out, SentenceTransformer, "onnx")
    _export(out, SentenceTransformer, "openvino")
    return out


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_minilm_encodes_without_importing_torch(minilm_exported: str, tmp_path: Path, backend: str) -> None:
    """The issue's acceptance check: a process encoding with an exported folder never imports torch."""
    torch_model = SentenceTransformer(minilm_exported, device="cpu")
    np.save(tmp_path / "torch.npy", torch_model.encode(TEXTS))
    same_backend = _with_torch_modules(SentenceTransformer, minilm_exported, backend=backend)
    np.save(tmp_path / "backend.npy", same_backend.encode(TEXTS, normalize_embeddings=True))
    np.save(tmp_path / "binary.npy", same_backend.encode(TEXTS, precision="ubinary"))
    script = f"""
import sys, numpy as np
import sentrs
model = sentrs.SentenceTransformer({minilm_exported!r}, backend={backend!r})
assert type(model) is sentrs.SentenceTransformer and model.runs_in_engine, type(model)
from sentrs.sentence_transformer.model import SentenceTransformer
assert SentenceTransformer is sentrs.SentenceTransformer
got = model.encode({TEXTS!r})
np.testing.assert_allclose(got, np.load({str(tmp_path / "torch.npy")!r}), atol=1e-4, rtol=0)
np.testing.assert_allclose(
    model.encode({TEXTS!r}, normalize_embeddings=True, batch_size=2),
    np.load({str(tmp_path / "backend.npy")!r}), atol={ATOL}, rtol=0)
assert (model.encode({TEXTS!r}, precision="ubinary") == np.load({str(tmp_path / "binary.npy")!r})).all()
assert model.encode("one text").shape == (384,)
assert model.get_sentence_embedding_dimension() == 384 and model.max_seq_length == 256
leaked = sorted(m for m in ("torch", "transformers") if m in sys.modules)
assert not leaked, leaked
print("ok")
"""
    assert "ok" in _run_isolated(script)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"pooling_mode": "cls", "normalize": True},
        {"pooling_mode": ("mean", "max"), "dense": True},
        {"pooling_mode": "lasttoken", "include_prompt": False, "prompts": {"query": "query: ", "doc": "passage: "}},
        {"pooling_mode": "weightedmean", "prompts": {"query": "query: "}},
    ],
)
def test_tiny_models_match_the_torch_class(
    make_tiny_st: Callable[..., str], tmp_path: Path, options: dict[str, Any]
) -> None:
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(**options), folder)
    _export(folder, SentenceTransformer)
    lite = sentrs.SentenceTransformer(folder, backend="onnx")
    full = _with_torch_modules(SentenceTransformer, folder, backend="onnx")
    assert lite.runs_in_engine
    assert lite.get_embedding_dimension() == full.get_embedding_dimension()
    assert lite.prompts == full.prompts and lite.similarity_fn_name == full.similarity_fn_name
    for kwargs in ({}, {"batch_size": 1}, {"prompt_name": "query"} if "prompts" in options else {"prompt": "x: "}):
        np.testing.assert_allclose(lite.encode(TEXTS, **kwargs), full.encode(TEXTS, **kwargs), atol=ATOL, rtol=0)
    np.testing.assert_allclose(lite.encode_query(TEXTS), full.encode_query(TEXTS), atol=ATOL, rtol=0)
    np.testing.assert_allclose(lite.encode_document(TEXTS), full.encode_document(TEXTS), atol=ATOL, rtol=0)
    for precision in ("int8", "binary"):
        assert (lite.encode(TEXTS, precision=precision) == full.encode(TEXTS, precision=precision)).all()
    np.testing.assert_allclose(
        lite.encode(TEXTS, truncate_dim=8, normalize_embeddings=True),
        full.encode(TEXTS, truncate_dim=8, normalize_embeddings=True),
        atol=ATOL,
        rtol=0,
    )
    lite.max_seq_length = full.max_seq_length = 7
    np.testing.assert_allclose(lite.encode(TEXTS), full.encode(TEXTS), atol=ATOL, rtol=0)
    capped = {"processing_kwargs": {"text": {"max_length": 5}}}
    np.testing.assert_allclose(lite.encode(TEXTS, **capped), full.encode(TEXTS, **capped), atol=ATOL, rtol=0)


def test_output_types_follow_the_torch_class(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    import torch

    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    _export(folder, SentenceTransformer)
    lite = sentrs.SentenceTransformer(folder, backend="onnx")
    full = _with_torch_modules(SentenceTransformer, folder, backend="onnx")
    for kwargs in (
        {"convert_to_tensor": True},
        {"convert_to_numpy": False},
        {"output_value": "token_embeddings"},
        {"output_value": None},
    ):
        a, b = lite.encode(TEXTS[:3], **kwargs), full.encode(TEXTS[:3], **kwargs)
        assert type(a) is type(b), kwargs
        if isinstance(a, torch.Tensor):
            torch.testing.assert_close(a, b, atol=ATOL, rtol=0)
        elif isinstance(a, list) and isinstance(a[0], torch.Tensor):
            for x, y in zip(a, b):
                torch.testing.assert_close(x, y, atol=ATOL, rtol=0)
    empty = lite.encode([])
    assert isinstance(empty, np.ndarray) and empty.shape == full.encode([]).shape
    assert lite.encode("single").shape == full.encode("single").shape
    assert lite.encode([("a", "b")]).shape == (1, 32)  # pairs tokenized together, as the torch class does
    sims = lite.similarity(lite.encode(TEXTS[:2]), lite.encode(TEXTS[:3]))
    torch.testing.assert_close(sims, full.similarity(full.encode(TEXTS[:2]), full.encode(TEXTS[:3])))


def test_errors_match_the_torch_class(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    _export(folder, SentenceTransformer)
    lite = sentrs.SentenceTransformer(folder, backend="onnx")
    with pytest.raises(ValueError, match="batch_size"):
        lite.encode(TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="Precision"):
        lite.encode(TEXTS, precision="int4")
    with pytest.raises(ValueError, match="keyword arguments"):
        lite.encode(TEXTS, bogus=1)
    with pytest.raises(TypeError, match=r"inputs\[1\] must be a str"):
        lite.encode(["ok", 3])
    with pytest.raises(ValueError, match="Prompt name 'nope'"):
        lite.encode(TEXTS, prompt_name="nope")
    with pytest.raises(ValueError, match="max_seq_length"):
        lite.max_seq_length = 0
    with pytest.raises(ValueError, match="similarity_fn_name"):
        lite.similarity_fn_name = "hamming"


def test_engine_model_attributes_and_save(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    _export(folder, SentenceTransformer)
    lite = sentrs.SentenceTransformer(folder, backend="onnx", prompts={"query": "q: "})
    lite.max_seq_length = 9
    assert lite.tokenizer is not None  # the folder's transformers tokenizer, loaded on demand
    assert len(lite) == 2 and type(lite[1]).__name__ == "HostPooling"
    with pytest.raises(AttributeError):
        lite.no_such_attribute  # noqa: B018 - a typo must not build anything
    with pytest.raises(TypeError, match="backend='torch'"):
        lite({"input_ids": None})
    out = str(tmp_path / "saved")
    lite.save(out)
    assert os.path.isfile(os.path.join(out, "onnx", "model.onnx"))
    again = sentrs.SentenceTransformer(out, backend="onnx")
    assert again.runs_in_engine and again.prompts["query"] == "q: " and again.max_seq_length == 9
    np.testing.assert_allclose(again.encode(TEXTS), lite.encode(TEXTS), atol=ATOL, rtol=0)


def test_when_the_torch_modules_load(make_tiny_st: Callable[..., str], tmp_path: Path, monkeypatch: Any) -> None:
    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    # No exported file yet: the torch modules export it, then the engine runs it.
    first = sentrs.SentenceTransformer(folder, backend="onnx")
    assert first.runs_in_engine
    assert os.path.isfile(os.path.join(folder, "onnx", "model.onnx"))
    assert not sentrs.SentenceTransformer(folder).runs_in_engine
    options: list[dict[str, Any]] = [
        {"model_kwargs": {"export": True}},
        {"model_kwargs": {"file_name": "model.onnx", "dtype": "float32"}},
        {"processor_kwargs": {"model_max_length": 8}},
    ]
    for kwargs in options:
        model = sentrs.SentenceTransformer(folder, backend="onnx", **kwargs)
        assert not model.runs_in_engine, kwargs
    with pytest.raises(ValueError, match="cuda"):
        sentrs.SentenceTransformer(folder, backend="onnx").encode(["x"], device="cuda")
    monkeypatch.setenv("SENTRS_TORCH_FREE", "0")
    assert not sentrs.SentenceTransformer(folder, backend="onnx").runs_in_engine
    monkeypatch.delenv("SENTRS_TORCH_FREE")
    # The legacy module path of Pooling is still a Pooling.
    modules = json.loads(Path(folder, "modules.json").read_text())
    modules[1]["type"] = "sentence_transformers.models.Pooling"
    Path(folder, "modules.json").write_text(json.dumps(modules))
    assert sentrs.SentenceTransformer(folder, backend="onnx").runs_in_engine
    with pytest.raises(FileNotFoundError, match="file_name"):
        sentrs.SentenceTransformer(folder, backend="onnx", model_kwargs={"file_name": "missing.onnx"})


def test_one_class_whatever_the_backend(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    import inspect

    import torch

    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    _export(folder, SentenceTransformer)

    class Mine(sentrs.SentenceTransformer):
        pass

    assert sentrs.SentenceTransformer is SentenceTransformer and sentrs.CrossEncoder is CrossEncoder
    for model in (Mine(folder, backend="onnx"), Mine(folder, device="cpu")):
        assert type(model) is Mine and isinstance(model, torch.nn.Module)
    assert issubclass(Mine, torch.nn.Sequential) and not issubclass(CrossEncoder, SentenceTransformer)
    assert "similarity_fn_name" in inspect.signature(sentrs.SentenceTransformer).parameters
    assert "encode" in dir(sentrs.SentenceTransformer)


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_cross_encoder_without_torch(
    make_ce: Callable[[int], str], tmp_path: Path, num_labels: int, backend: str
) -> None:
    folder = str(tmp_path / "ce")
    shutil.copytree(make_ce(num_labels), folder)
    _export(folder, CrossEncoder, backend)
    full = _with_torch_modules(CrossEncoder, folder, backend=backend)
    lite = sentrs.CrossEncoder(folder, backend=backend)
    assert lite.runs_in_engine and type(lite) is type(full) is sentrs.CrossEncoder
    assert lite.num_labels == full.num_labels == num_labels
    np.testing.assert_allclose(lite.predict(PAIRS), full.predict(PAIRS), atol=ATOL, rtol=0)
    np.testing.assert_allclose(lite.predict(PAIRS[0]), full.predict(PAIRS[0]), atol=ATOL, rtol=0)
    np.testing.assert_allclose(
        lite.predict(PAIRS, apply_softmax=True, batch_size=1),
        full.predict(PAIRS, apply_softmax=True, batch_size=1),
        atol=ATOL,
        rtol=0,
    )
    np.save(tmp_path / "want.npy", full.predict(PAIRS))
    ranking = None
    if num_labels == 1:
        ranking = full.rank(PAIRS[0][0], [d for _, d in PAIRS], top_k=3, return_documents=True)
        got = lite.rank(PAIRS[0][0], [d for _, d in PAIRS], top_k=3, return_documents=True)
        assert [r["corpus_id"] for r in got] == [r["corpus_id"] for r in ranking]
        np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in ranking], atol=ATOL)
    else:
        with pytest.raises(ValueError, match="num_labels=1"):
            lite.rank("q", ["d"])
    script = f"""
import sys, numpy as np
import sentrs
model = sentrs.CrossEncoder({folder!r}, backend={backend!r})
np.testing.assert_allclose(model.predict({PAIRS!r}), np.load({str(tmp_path / "want.npy")!r}), atol={ATOL}, rtol=0)
if model.num_labels == 1:
    print([r["corpus_id"] for r in model.rank({PAIRS[0][0]!r}, {[d for _, d in PAIRS]!r}, top_k=3)])
leaked = sorted(m for m in ("torch", "transformers") if m in sys.modules)
assert not leaked, leaked
print("ok")
"""
    out = _run_isolated(script)
    assert "ok" in out
    if ranking is not None:
        assert str([r["corpus_id"] for r in ranking]) in out


def test_cross_encoder_custom_activation(make_ce: Callable[[int], str], tmp_path: Path) -> None:
    import torch

    folder = str(tmp_path / "ce")
    shutil.copytree(make_ce(1), folder)
    _export(folder, CrossEncoder)
    lite = sentrs.CrossEncoder(folder, backend="onnx")
    full = _with_torch_modules(CrossEncoder, folder, backend="onnx")
    identity = torch.nn.Identity()
    np.testing.assert_allclose(
        lite.predict(PAIRS, activation_fn=identity), full.predict(PAIRS, activation_fn=identity), atol=ATOL
    )
    lite.activation_fn = full.activation_fn = torch.nn.Tanh()
    np.testing.assert_allclose(lite.predict(PAIRS), full.predict(PAIRS), atol=ATOL)
    assert isinstance(lite.predict(PAIRS, convert_to_tensor=True), torch.Tensor)


def test_tokenizer_settings_match_transformers(tmp_path: Path, minilm_path: str) -> None:
    """FolderTokenizer reads the same settings transformers applies: ids and masks equal on several tokenizers."""
    from transformers import AutoTokenizer

    from tests.sentence_transformer.test_other_tokenizers import _roberta_folder, _unigram_folder

    folders = {"bert": minilm_path, "roberta": _roberta_folder(tmp_path), "unigram": _unigram_folder(tmp_path)}
    for name, folder in folders.items():
        hf = AutoTokenizer.from_pretrained(folder)
        for max_length in (None, 6):
            lite = FolderTokenizer(folder, max_seq_length=max_length)
            limit = max_length if max_length is not None else min(hf.model_max_length, 10**6)
            want = hf(TEXTS, padding=True, truncation="longest_first", max_length=limit, return_tensors="np")
            ids, mask, _ = lite.encode(TEXTS).pad()
            np.testing.assert_array_equal(ids, want["input_ids"], err_msg=name)
            np.testing.assert_array_equal(mask, want["attention_mask"], err_msg=name)
            assert lite.padding_side == hf.padding_side and lite.pad_token_id == hf.pad_token_id, name


def test_lowercasing_and_pipeline_flags(tmp_path: Path, minilm_path: str) -> None:
    folder = str(tmp_path / "tok")
    shutil.copytree(minilm_path, folder)
    spec = json.loads(Path(folder, "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "NFC"}  # a cased tokenizer
    Path(folder, "tokenizer.json").write_text(json.dumps(spec))
    cased, lowered = FolderTokenizer(folder), FolderTokenizer(folder, do_lower_case=True)
    assert cased.encode(["HELLO"]).ids(0) != lowered.encode(["HELLO"]).ids(0)
    assert lowered.encode(["HELLO"]).ids(0) == lowered.encode(["hello"]).ids(0)
    config = json.loads(Path(folder, "tokenizer_config.json").read_text())
    Path(folder, "tokenizer_config.json").write_text(json.dumps({**config, "add_eos_token": True}))
    with pytest.raises(NeedsTorch, match="add_eos_token"):
        FolderTokenizer(folder)


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_streams_and_threads(make_tiny_st: Callable[..., str], tmp_path: Path, backend: str) -> None:
    """One single-threaded stream per core by default; concurrent callers and split batches give the same numbers."""
    from concurrent.futures import ThreadPoolExecutor

    from sentrs.backend.onnx import available_cores

    folder = str(tmp_path / "st")
    shutil.copytree(make_tiny_st(), folder)
    _export(folder, SentenceTransformer, backend)
    lite = sentrs.SentenceTransformer(folder, backend=backend)
    assert lite.runs_in_engine
    model = lite[0].model
    assert model.streams == available_cores() or (backend == "openvino" and model.streams >= 1)
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 20)]
    want = _with_torch_modules(SentenceTransformer, folder, backend=backend).encode(texts, batch_size=4)
    np.testing.assert_allclose(lite.encode(texts, batch_size=4), want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(lite.encode(texts[:3], batch_size=64), want[:3], atol=ATOL, rtol=0)  # split batch
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda _: lite.encode(texts, batch_size=8), range(3)))
    for got in results:
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
    if backend == "onnx":
        single = sentrs.SentenceTransformer(folder, backend=backend, model_kwargs={"threads": 1})
        assert single[0].model.streams == 1
        np.testing.assert_allclose(single.encode(texts, batch_size=4), want, atol=ATOL, rtol=0)
