"""Streaming encode (``sentrs.streaming.encode_to_disk`` and ``sentrs encode``): outputs equal ``model.encode``,
resumed runs are byte-identical to uninterrupted ones, and bad arguments are clear errors.

The fast cases use a seeded StaticEmbedding model (its embeddings do not depend on batching, so chunked and whole
outputs are bit-identical); the MiniLM case compares at 1e-5 (batches differ in padding between chunking and not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.streaming import count_inputs, encode_to_disk, iter_inputs


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    from tokenizers import Tokenizer

    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    torch.manual_seed(0)
    static = StaticEmbedding(Tokenizer.from_file(os.path.join(minilm_path, "tokenizer.json")), embedding_dim=16)
    folder = tmp_path_factory.mktemp("static")
    sentrs.SentenceTransformer(modules=[static]).save(str(folder))
    return str(folder)


@pytest.fixture(scope="module")
def static_model(static_dir: str) -> Any:
    import sentrs

    return sentrs.SentenceTransformer(static_dir, device="cpu")


def _texts(n: int) -> list[str]:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "caf\u00e9", "x"]
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(i % 13)) + f" {i}" for i in range(n)]


def _lines_file(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    return path


def test_lines_to_npy_equals_encode(tmp_path: Path, static_model: Any) -> None:
    texts = _texts(1000)
    src = _lines_file(tmp_path / "in.txt", texts)
    out = encode_to_disk(static_model, src, tmp_path / "out.npy", chunk_size=128, show_progress_bar=False)
    np.testing.assert_array_equal(np.load(out), static_model.encode(texts))
    assert not (tmp_path / "out.npy.progress.json").exists() and not (tmp_path / "out.npy.partial").exists()


def test_minilm_chunks_equal_one_call(tmp_path: Path, our_minilm: Any) -> None:
    texts = _texts(150)
    out = encode_to_disk(
        our_minilm, _lines_file(tmp_path / "in.txt", texts), tmp_path / "o.npy", chunk_size=64, show_progress_bar=False
    )
    np.testing.assert_allclose(np.load(out), our_minilm.encode(texts), atol=1e-5)


@pytest.mark.parametrize("output_format", ["npy-shards", "parquet-shards"])
def test_shards(tmp_path: Path, static_model: Any, output_format: str) -> None:
    texts = _texts(300)
    folder = encode_to_disk(
        static_model,
        texts,
        tmp_path / "shards",
        output_format=output_format,  # type: ignore[arg-type]
        chunk_size=100,
        show_progress_bar=False,
        normalize_embeddings=True,
    )
    parts = sorted(p.name for p in folder.iterdir())
    suffix = ".npy" if output_format == "npy-shards" else ".parquet"
    assert parts == [f"part-0000{i}{suffix}" for i in range(3)]
    if output_format == "npy-shards":
        got = np.concatenate([np.load(folder / p) for p in parts])
    else:
        import pyarrow.parquet as pq

        got = np.concatenate([np.stack(pq.read_table(folder / p).column("embedding").to_pylist()) for p in parts])
    np.testing.assert_allclose(got, static_model.encode(texts, normalize_embeddings=True), atol=1e-7)


def test_jsonl_and_parquet_inputs(tmp_path: Path, static_model: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = _texts(257)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps({"body": t}) for t in texts) + "\n\n", encoding="utf-8")
    parquet_dir = tmp_path / "pq"
    parquet_dir.mkdir()
    pq.write_table(pa.table({"body": texts[:200], "n": list(range(200))}), parquet_dir / "a.parquet")
    pq.write_table(pa.table({"body": texts[200:], "n": list(range(57))}), parquet_dir / "b.parquet")
    expected = static_model.encode(texts)
    for source in (jsonl, parquet_dir):
        assert count_inputs(source, field="body") == 257
        assert list(iter_inputs(source, field="body")) == texts
        out = encode_to_disk(
            static_model, source, tmp_path / f"{source.name}.npy", field="body", chunk_size=64, show_progress_bar=False
        )
        np.testing.assert_array_equal(np.load(out), expected)


class _Interrupt(Exception):
    pass


class _FailingAfter:
    """Wraps a model; ``encode`` raises on its ``n``-th call (an interruption mid-run)."""

    def __init__(self, model: Any, n: int) -> None:
        self.model, self.n, self.calls = model, n, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def encode(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.n:
            raise _Interrupt
        return self.model.encode(*args, **kwargs)


@pytest.mark.parametrize("output_format", ["npy", "npy-shards"])
def test_interrupted_run_resumes_byte_identical(tmp_path: Path, static_model: Any, output_format: str) -> None:
    src = _lines_file(tmp_path / "in.txt", _texts(1000))
    kwargs: dict[str, Any] = {"chunk_size": 100, "show_progress_bar": False, "output_format": output_format}
    clean = encode_to_disk(static_model, src, tmp_path / "clean.npy", **kwargs)
    wrapper = _FailingAfter(static_model, 5)
    with pytest.raises(_Interrupt):
        encode_to_disk(wrapper, src, tmp_path / "resumed.npy", **kwargs)
    # The second run encodes only the chunks the first did not finish.
    counter = _FailingAfter(static_model, 10**9)
    resumed = encode_to_disk(counter, src, tmp_path / "resumed.npy", **kwargs)
    assert counter.calls == 6
    if output_format == "npy":
        assert resumed.read_bytes() == clean.read_bytes()
    else:
        for part in sorted(clean.iterdir()):
            assert (resumed / part.name).read_bytes() == part.read_bytes()


def test_changed_options_start_over(tmp_path: Path, static_model: Any) -> None:
    src = _lines_file(tmp_path / "in.txt", _texts(300))
    with pytest.raises(_Interrupt):
        encode_to_disk(
            _FailingAfter(static_model, 2), src, tmp_path / "o.npy", chunk_size=100, show_progress_bar=False
        )
    counter = _FailingAfter(static_model, 10**9)
    out = encode_to_disk(
        counter, src, tmp_path / "o.npy", chunk_size=100, show_progress_bar=False, normalize_embeddings=True
    )
    assert counter.calls == 3  # the normalised run shares nothing with the interrupted one
    np.testing.assert_allclose(np.load(out), static_model.encode(_texts(300), normalize_embeddings=True), atol=1e-7)


def test_killed_cli_process_resumes_byte_identical(tmp_path: Path, static_dir: str) -> None:
    """A ``sentrs encode`` process killed hard mid-run (``os._exit`` in its third chunk) resumes to the same bytes."""
    src = _lines_file(tmp_path / "in.txt", _texts(2000))
    clean, resumed = tmp_path / "clean.npy", tmp_path / "resumed.npy"
    args = ["encode", static_dir, str(src), "--chunk-size", "400", "-q", "--device", "cpu"]
    from sentrs.cli import main

    assert main([*args, "-o", str(clean)]) == 0
    killer = (
        "import os, sys; import sentrs; from sentrs.cli import main; "
        "orig = sentrs.SentenceTransformer.encode; calls = [0]\n"
        "def encode(self, *a, **k):\n"
        "    calls[0] += 1\n"
        "    if calls[0] == 3: os._exit(9)\n"
        "    return orig(self, *a, **k)\n"
        "sentrs.SentenceTransformer.encode = encode\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", killer, *args, "-o", str(resumed)], capture_output=True)
    assert proc.returncode == 9
    progress = json.loads((tmp_path / "resumed.npy.progress.json").read_text())
    assert progress["done"] == [0, 1]
    assert main([*args, "-o", str(resumed)]) == 0
    assert resumed.read_bytes() == clean.read_bytes()


def test_cli_shards_and_parquet(tmp_path: Path, static_dir: str, static_model: Any) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sentrs.cli import main

    texts = _texts(50)
    pq.write_table(pa.table({"text": texts}), tmp_path / "in.parquet")
    out = tmp_path / "shards"
    assert main(["encode", static_dir, str(tmp_path / "in.parquet"), "-o", str(out), "--format", "npy-shards"]) == 0
    np.testing.assert_array_equal(np.load(out / "part-00000.npy"), static_model.encode(texts))


def test_empty_input(tmp_path: Path, static_model: Any) -> None:
    src = tmp_path / "empty.txt"
    src.write_text("", encoding="utf-8")
    out = encode_to_disk(static_model, src, tmp_path / "o.npy", show_progress_bar=False)
    assert np.load(out).shape == (0, 0)


def test_bad_arguments(tmp_path: Path, static_model: Any) -> None:
    with pytest.raises(ValueError, match="chunk_size must be a positive int, got 0"):
        encode_to_disk(static_model, ["a"], tmp_path / "o.npy", chunk_size=0)
    with pytest.raises(ValueError, match="output_format must be"):
        encode_to_disk(static_model, ["a"], tmp_path / "o.npy", output_format="csv")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass total="):
        encode_to_disk(static_model, iter(["a", "b"]), tmp_path / "o.npy")
    with pytest.raises(FileNotFoundError, match="input not found"):
        encode_to_disk(static_model, tmp_path / "missing.txt", tmp_path / "o.npy")
    with pytest.raises(ValueError, match="convert_to_tensor"):
        encode_to_disk(static_model, ["a"], tmp_path / "o.npy", convert_to_tensor=True)
    with pytest.raises(TypeError, match="encodes texts"):
        encode_to_disk(static_model, ["a", 3], tmp_path / "o.npy", show_progress_bar=False)  # type: ignore[list-item]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:2: expected an object with a string field 'text'"):
        encode_to_disk(static_model, bad, tmp_path / "o.npy")
    # An iterable with total= works for a single .npy.
    out = encode_to_disk(static_model, iter(["a", "b"]), tmp_path / "ok.npy", total=2, show_progress_bar=False)
    assert np.load(out).shape == (2, 16)
