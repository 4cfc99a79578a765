"""Cross-encoder folders built once per session with the reference (no pretrained cross-encoder ships on PyPI)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch


@pytest.fixture(scope="session")
def make_ce(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Callable[[int], str]:
    """MiniLM backbone + a seeded classification head with ``num_labels`` outputs, saved by the reference."""
    cache: dict[int, str] = {}

    def build(num_labels: int) -> str:
        if num_labels not in cache:
            from sentence_transformers import CrossEncoder

            torch.manual_seed(num_labels)
            ce = CrossEncoder(minilm_path, num_labels=num_labels, device="cpu")
            with torch.no_grad():  # a head with real spread, so rankings are meaningful
                ce.model.classifier.weight.normal_(0, 0.5)
            out = tmp_path_factory.mktemp(f"ce{num_labels}")
            ce.save(str(out))
            cache[num_labels] = str(out)
        return cache[num_labels]

    return build
