"""The ``sentrs encode`` command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentrs.cli import main


def test_encode_lines(tmp_path: Path, minilm_path: str, our_minilm: Any) -> None:
    src = tmp_path / "in.txt"
    src.write_text("A man is eating food.\nA man is riding a horse.\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    assert main(["encode", minilm_path, str(src), "-o", str(out), "-q", "--device", "cpu"]) == 0
    emb = np.load(out)
    assert emb.shape == (2, 384)
    np.testing.assert_allclose(
        emb, our_minilm.encode(["A man is eating food.", "A man is riding a horse."]), atol=1e-6
    )


def test_encode_jsonl_with_options(tmp_path: Path, minilm_path: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"body": t}) for t in ["one", "two", "three"]) + "\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    args = [
        "encode",
        minilm_path,
        str(src),
        "-o",
        str(out),
        "--field",
        "body",
        "--truncate-dim",
        "8",
        "--precision",
        "ubinary",
        "-q",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    emb = np.load(out)
    assert emb.shape == (3, 1) and emb.dtype == np.uint8


def test_encode_bad_jsonl(tmp_path: Path, minilm_path: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": 1}\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="expected an object with a string field 'text'"):
        main(["encode", minilm_path, str(src), "-o", str(tmp_path / "o.npy"), "-q"])


def test_missing_input_file(tmp_path: Path, minilm_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", minilm_path, str(tmp_path / "nope.txt"), "-o", str(tmp_path / "o.npy"), "-q"]) == 2
    assert "input file not found" in capsys.readouterr().err


def test_console_entry_point_runs(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sentrs", "--help"], capture_output=True, text=True, check=True)
    assert "encode" in proc.stdout


def test_search_prints_ranked_hits(tmp_path: Path, minilm_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("A man is eating food.\nA man is riding a horse.\nThe sky is blue.\n", encoding="utf-8")
    emb = tmp_path / "corpus.npy"
    assert main(["encode", minilm_path, str(corpus), "-o", str(emb), "-q", "--device", "cpu"]) == 0
    args = [
        "search",
        minilm_path,
        str(emb),
        "-q",
        "someone eats a meal",
        "--texts",
        str(corpus),
        "-k",
        "2",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "query: someone eats a meal"
    assert out[1].strip().startswith("1.") and "A man is eating food." in out[1]
    assert len(out) == 3


def test_search_errors(tmp_path: Path, minilm_path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", minilm_path, str(tmp_path / "missing.npy"), "-q", "x"]) == 2
    assert "not found" in capsys.readouterr().err
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 3), dtype=np.int64))
    assert main(["search", minilm_path, str(bad), "-q", "x"]) == 2
    assert "2-D float array" in capsys.readouterr().err
    wrong_dim = tmp_path / "wrong.npy"
    np.save(wrong_dim, np.zeros((2, 3), dtype=np.float32))
    assert main(["search", minilm_path, str(wrong_dim), "-q", "x", "--device", "cpu"]) == 2
    assert "384-d embeddings" in capsys.readouterr().err


def test_encode_with_onnx_backend(tmp_path: Path, minilm_path: str, our_minilm: Any) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(minilm_path, folder)
    src = tmp_path / "in.txt"
    src.write_text("A man is eating food.\nA man is riding a horse.\n", encoding="utf-8")
    out = tmp_path / "out.npy"
    args = ["encode", str(folder), str(src), "-o", str(out), "-q", "--device", "cpu", "--backend", "onnx"]
    assert main(args) == 0
    assert (folder / "onnx" / "model.onnx").is_file()
    np.testing.assert_allclose(
        np.load(out), our_minilm.encode(["A man is eating food.", "A man is riding a horse."]), atol=1e-4
    )
    assert main([*args, "--file-name", "onnx/model.onnx"]) == 0
    with pytest.raises(SystemExit, match="--file-name needs --backend onnx"):
        main(["encode", str(folder), str(src), "-o", str(out), "-q", "--file-name", "onnx/model.onnx"])
