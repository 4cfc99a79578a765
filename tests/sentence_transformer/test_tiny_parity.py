"""Parity with the reference on tiny random BERT folders, one per pooling configuration.

The folders are saved by the reference and loaded by both libraries. Tolerance: 1e-5 absolute (same weights, same
ids; only float summation order and padding length differ).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.conftest import TEXTS

ATOL = 1e-5

POOLINGS: list[Any] = [
    "cls",
    "max",
    "mean",
    "mean_sqrt_len_tokens",
    "weightedmean",
    "lasttoken",
    ("cls", "mean", "max"),
]


def _pair(folder: str) -> tuple[Any, Any]:
    import sentence_transformers

    import sentrs

    return sentrs.SentenceTransformer(folder, device="cpu"), sentence_transformers.SentenceTransformer(
        folder, device="cpu"
    )


@pytest.mark.parametrize("pooling_mode", POOLINGS, ids=str)
def test_pooling_modes(make_tiny_st: Callable[..., str], pooling_mode: Any) -> None:
    ours, ref = _pair(make_tiny_st(pooling_mode))
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    for batch_size in (2, 32):
        np.testing.assert_allclose(ours.encode(TEXTS, batch_size=batch_size), ref.encode(TEXTS), atol=ATOL)


@pytest.mark.parametrize("pooling_mode", ["mean", "cls", "lasttoken", "weightedmean", "max"])
def test_include_prompt_false(make_tiny_st: Callable[..., str], pooling_mode: str) -> None:
    ours, ref = _pair(make_tiny_st(pooling_mode, include_prompt=False, prompts={"query": "query: a long prompt "}))
    for kwargs in ({"prompt_name": "query"}, {"prompt": "Represent this: "}, {}):
        np.testing.assert_allclose(ours.encode(TEXTS, **kwargs), ref.encode(TEXTS, **kwargs), atol=ATOL)
    np.testing.assert_allclose(ours.encode_query(TEXTS), ref.encode_query(TEXTS), atol=ATOL)


def test_dense_and_normalize(make_tiny_st: Callable[..., str]) -> None:
    ours, ref = _pair(make_tiny_st("mean", dense=True, normalize=True))
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 16
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)


def test_plain_transformers_folder_gets_mean_pooling(tiny_bert_dir: str) -> None:
    ours, ref = _pair(tiny_bert_dir)
    assert [type(m).__name__ for m in ours] == ["Transformer", "Pooling"]
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)


def test_torch_pooling_path_matches_rust_path(make_tiny_st: Callable[..., str]) -> None:
    """The torch implementation (CUDA and autograd path) gives what the Rust one gives."""
    import torch

    for mode in POOLINGS:
        ours, _ = _pair(make_tiny_st(mode))
        pooling = ours[1]
        features = ours.preprocess(TEXTS)
        with torch.no_grad():
            features = ours[0](features)
        tokens = features["token_embeddings"].clone().requires_grad_(True)
        with torch.enable_grad():
            torch_out = torch.cat(pooling._pool_torch(tokens, features["attention_mask"], {}, 3), -1)
        rust_out = (
            pooling({**features, "prompt_length": 3})["sentence_embedding"] if not pooling.include_prompt else None
        )
        pooling.include_prompt = False
        rust_out = pooling({**features, "prompt_length": 3})["sentence_embedding"]
        pooling.include_prompt = True
        torch.testing.assert_close(torch_out.detach(), rust_out, atol=1e-6, rtol=1e-6)
