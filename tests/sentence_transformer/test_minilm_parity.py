"""Parity with sentence-transformers 6.2 on the real all-MiniLM-L6-v2 model.

Tolerance: 1e-5 absolute on embeddings. Both libraries run the same torch model on the same token ids; the only
differences are batch composition (padding length) and float summation order, which move values by ~1e-7.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import TEXTS

ATOL = 1e-5


def test_known_similarities(our_minilm: Any) -> None:
    emb = our_minilm.encode(["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."])
    sims = our_minilm.similarity(emb[:1], emb[1:])
    assert sims[0, 0].item() == pytest.approx(0.7553, abs=1e-4)
    assert sims[0, 1].item() == pytest.approx(0.2474, abs=1e-4)


def test_token_ids_identical(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.preprocess(TEXTS)
    ref = ref_minilm.preprocess(TEXTS)
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours[key], ref[key]), key
    assert ours["input_ids"].shape[1] == 256  # the long text is cut at max_seq_length, not tokenizer.json's 128


def test_max_seq_length_matches(our_minilm: Any, ref_minilm: Any) -> None:
    assert our_minilm.max_seq_length == ref_minilm.max_seq_length == 256
    assert our_minilm.get_embedding_dimension() == ref_minilm.get_embedding_dimension() == 384


def test_default_encode(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode(TEXTS)
    ref = ref_minilm.encode(TEXTS)
    assert isinstance(ours, np.ndarray) and ours.dtype == np.float32 and ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=ATOL)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_batch_sizes_and_orders(our_minilm: Any, ref_minilm: Any, batch_size: int) -> None:
    ref = ref_minilm.encode(TEXTS)
    ours = our_minilm.encode(TEXTS, batch_size=batch_size)
    reversed_ours = our_minilm.encode(TEXTS[::-1], batch_size=batch_size)[::-1]
    np.testing.assert_allclose(ours, ref, atol=ATOL)
    np.testing.assert_allclose(reversed_ours, ref, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"normalize_embeddings": True},
        {"truncate_dim": 32},
        {"truncate_dim": 32, "normalize_embeddings": True},
        {"prompt": "query: "},
        {"precision": "int8"},
        {"precision": "uint8"},
        {"precision": "binary"},
        {"precision": "ubinary"},
    ],
    ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()),
)
def test_encode_options(our_minilm: Any, ref_minilm: Any, kwargs: dict[str, Any]) -> None:
    ours = our_minilm.encode(TEXTS, **kwargs)
    ref = ref_minilm.encode(TEXTS, **kwargs)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    if ours.dtype == np.float32:
        np.testing.assert_allclose(ours, ref, atol=ATOL)
    else:
        # Quantised values may differ by one bucket where a float sits on a bucket edge (1e-7 apart).
        diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
        if kwargs["precision"].endswith("binary"):
            assert (diff == 0).mean() > 0.999
        else:
            assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_convert_to_tensor(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode(TEXTS, convert_to_tensor=True)
    ref = ref_minilm.encode(TEXTS, convert_to_tensor=True)
    assert isinstance(ours, torch.Tensor) and ours.shape == ref.shape and ours.dtype == ref.dtype
    torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


def test_list_of_tensors(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode(TEXTS, convert_to_numpy=False)
    ref = ref_minilm.encode(TEXTS, convert_to_numpy=False)
    assert isinstance(ours, list) and len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert isinstance(a, torch.Tensor) and a.shape == b.shape
        torch.testing.assert_close(a, b, atol=ATOL, rtol=0)


def test_token_embeddings(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode(TEXTS, output_value="token_embeddings")
    ref = ref_minilm.encode(TEXTS, output_value="token_embeddings")
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


def test_output_value_none(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode(TEXTS[:3], output_value=None)
    ref = ref_minilm.encode(TEXTS[:3], output_value=None)
    for a, b in zip(ours, ref):
        assert {"input_ids", "attention_mask", "token_embeddings", "sentence_embedding"} <= set(a)
        torch.testing.assert_close(a["sentence_embedding"], b["sentence_embedding"], atol=ATOL, rtol=0)


def test_single_string_and_empty(our_minilm: Any, ref_minilm: Any) -> None:
    ours = our_minilm.encode("A man is eating food.")
    ref = ref_minilm.encode("A man is eating food.")
    assert ours.shape == ref.shape == (384,)
    np.testing.assert_allclose(ours, ref, atol=ATOL)
    assert our_minilm.encode("x", convert_to_tensor=True).shape == (384,)
    for kwargs in ({}, {"convert_to_tensor": True}, {"convert_to_numpy": False}):
        a, b = our_minilm.encode([], **kwargs), ref_minilm.encode([], **kwargs)
        assert type(a) is type(b) and len(a) == len(b) == 0


def test_encode_query_and_document(our_minilm: Any, ref_minilm: Any) -> None:
    np.testing.assert_allclose(our_minilm.encode_query(TEXTS[:3]), ref_minilm.encode_query(TEXTS[:3]), atol=ATOL)
    np.testing.assert_allclose(our_minilm.encode_document(TEXTS[:3]), ref_minilm.encode_document(TEXTS[:3]), atol=ATOL)


def test_sentences_keyword_alias(our_minilm: Any) -> None:
    np.testing.assert_allclose(our_minilm.encode(sentences=["a b"]), our_minilm.encode(["a b"]), atol=0)


def test_numpy_string_array_input(our_minilm: Any, ref_minilm: Any) -> None:
    arr = np.array(TEXTS[:3])
    np.testing.assert_allclose(our_minilm.encode(arr), ref_minilm.encode(arr), atol=ATOL)


@pytest.mark.parametrize("name", ["cosine", "dot", "euclidean", "manhattan"])
def test_similarity_functions(minilm_path: str, name: str) -> None:
    import sentence_transformers

    import sentrs

    ours = sentrs.SentenceTransformer(minilm_path, device="cpu", similarity_fn_name=name)
    ref = sentence_transformers.SentenceTransformer(minilm_path, device="cpu", similarity_fn_name=name)
    emb = ref.encode(TEXTS)
    torch.testing.assert_close(ours.similarity(emb, emb), ref.similarity(emb, emb), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(
        ours.similarity_pairwise(emb, emb[::-1].copy()),
        ref.similarity_pairwise(emb, emb[::-1].copy()),
        atol=1e-4,
        rtol=1e-5,
    )


def test_device_path_without_rust_kernels(our_minilm: Any, ref_minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The code path used for CUDA tensors (torch pooling, torch normalisation, reordering on the device) gives
    the reference's results too. Forced here by making every tensor look non-host."""
    import sentrs.base.tensors as tensor_module
    import sentrs.sentence_transformer.modules.pooling as pooling_module

    for module in (pooling_module, tensor_module):
        monkeypatch.setattr(module, "host_float32", lambda t: None)
    for kwargs in ({"convert_to_tensor": True}, {"convert_to_tensor": True, "normalize_embeddings": True}):
        ours = our_minilm.encode(TEXTS, batch_size=3, **kwargs)
        ref = ref_minilm.encode(TEXTS, **kwargs)
        torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)
    np.testing.assert_allclose(our_minilm.encode(TEXTS, batch_size=4), ref_minilm.encode(TEXTS), atol=ATOL)
