"""CrossEncoder on ONNX Runtime and OpenVINO: sequence-classification export, scores equal to torch within 1e-4."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import sentrs

PAIRS = [
    ("what causes heart disease", "The heart pumps blood through the body."),
    ("what causes heart disease", "Smoking and high blood pressure are risk factors."),
    ("capital of france", "Paris is the capital of France."),
    ("", "empty query"),
]


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_backend_scores_match_torch(
    make_ce: Callable[[int], str], tmp_path: Path, num_labels: int, backend: str
) -> None:
    folder = str(tmp_path / "ce")
    shutil.copytree(make_ce(num_labels), folder)
    exported = sentrs.CrossEncoder(folder, backend=backend, device="cpu")
    torch_model = sentrs.CrossEncoder(folder, device="cpu")
    np.testing.assert_allclose(exported.predict(PAIRS), torch_model.predict(PAIRS), atol=1e-4, rtol=0)
    if num_labels == 1:
        a = exported.rank(PAIRS[0][0], [d for _, d in PAIRS])
        b = torch_model.rank(PAIRS[0][0], [d for _, d in PAIRS])
        assert [r["corpus_id"] for r in a] == [r["corpus_id"] for r in b]
    sub = "onnx/model.onnx" if backend == "onnx" else "openvino/openvino_model.xml"
    assert os.path.isfile(os.path.join(folder, sub))
