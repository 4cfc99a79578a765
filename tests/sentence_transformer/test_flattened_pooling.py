"""Pooling and SpladePooling on the flattened (unpadded) token layout, against the reference.

With flash-attention unpadding the reference's Transformer feeds the pooling ``token_embeddings: (1, total, dim)``
(the sequences back to back), ``cu_seq_lens_q: (batch + 1,)`` int32 cumulative lengths, and no attention mask.
The features here are built by ``transformers.DataCollatorWithFlattening`` (the collator the reference uses) with
seeded random token embeddings, and turned into the padded layout with the reference's own
``repad_flattened_features``.

Tolerance: 1e-6 absolute and relative, on values of order 1. Both libraries compute the same float32 sums; the
order differs between the layouts and between the Rust kernels and torch (per-row loops against segment index_add),
which moves results by a few float32 ulps.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.sentence_transformer.modules.pooling import Pooling
from sentrs.sparse_encoder.modules.splade_pooling import SpladePooling

ATOL = RTOL = 1e-6
DIM = 8
VOCAB = 40
# Several lengths, length 1 among them (also first and last), unsorted.
LENGTHS = [1, 5, 3, 1, 9, 2, 4, 1]

POOLING_MODES: list[Any] = [
    "cls",
    "max",
    "mean",
    "mean_sqrt_len_tokens",
    "weightedmean",
    "lasttoken",
    ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"),
    ("lasttoken", "mean"),
]
# 3 covers the whole of several rows (lengths 1, 2 and 3): nothing left to pool there.
PROMPT_LENGTHS = [1, 2, 3]


def _flattened(lengths: list[int], width: int, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, Any]:
    """Flattened features as the reference's Transformer emits them, with random token embeddings."""
    from transformers import DataCollatorWithFlattening

    generator = torch.Generator().manual_seed(seed)
    collator = DataCollatorWithFlattening(return_seq_idx=True, return_flash_attn_kwargs=True, return_position_ids=True)
    rows = [{"input_ids": torch.randint(5, 100, (n,), generator=generator).tolist()} for n in lengths]
    features = dict(collator(rows))
    features.pop("labels", None)
    total = sum(lengths)
    features["token_embeddings"] = torch.randn(1, total, width, generator=generator, dtype=torch.float64).to(dtype)
    return features


def _padded_to_flattened(lengths_list: list[int], seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A right-padded batch built first, and the same batch flattened by hand (the collator's layout)."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths_list)
    mask = (torch.arange(int(lengths.max())) < lengths[:, None]).to(torch.int64)
    tokens = torch.randn(len(lengths_list), int(lengths.max()), DIM, generator=generator)
    tokens = tokens * mask.unsqueeze(-1)
    ids = torch.randint(5, 100, tuple(mask.shape), generator=generator) * mask
    keep = mask.bool()
    cu = torch.zeros(len(lengths_list) + 1, dtype=torch.int32)
    cu[1:] = torch.cumsum(lengths, 0)
    flat = {
        "input_ids": ids[keep][None],
        "position_ids": (torch.arange(mask.shape[1]).expand_as(mask))[keep][None],
        "seq_idx": torch.repeat_interleave(torch.arange(len(lengths_list), dtype=torch.int32), lengths)[None],
        "cu_seq_lens_q": cu,
        "cu_seq_lens_k": cu.clone(),
        "max_length_q": int(lengths.max()),
        "max_length_k": int(lengths.max()),
        "token_embeddings": tokens[keep][None],
    }
    return {"input_ids": ids, "attention_mask": mask, "token_embeddings": tokens}, flat


def _repadded(flat: dict[str, Any]) -> dict[str, Any]:
    from sentence_transformers.util import repad_flattened_features

    padded = repad_flattened_features(copy.deepcopy(flat))
    padded["attention_mask"] = padded["attention_mask"].to(torch.int64)
    return padded


def _pair(mode: Any, prompt_length: int | None) -> tuple[Pooling, Any]:
    from sentence_transformers.sentence_transformer.modules.pooling import Pooling as RefPooling

    include_prompt = prompt_length is None
    return Pooling(DIM, pooling_mode=mode, include_prompt=include_prompt), RefPooling(
        DIM, pooling_mode=mode, include_prompt=include_prompt
    )


def _pool(module: Any, features: dict[str, Any], prompt_length: int | None) -> torch.Tensor:
    features = dict(features)
    if prompt_length is not None:
        features["prompt_length"] = prompt_length
    return module(features)["sentence_embedding"]


def _close(ours: torch.Tensor, ref: torch.Tensor) -> None:
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    torch.testing.assert_close(ours.detach(), ref.detach(), atol=ATOL, rtol=RTOL)


# ---------------------------------------------------------------------------------------------------------- Pooling
@pytest.mark.parametrize("prompt_length", [None, *PROMPT_LENGTHS])
@pytest.mark.parametrize("mode", POOLING_MODES, ids=str)
def test_pooling_flattened_matches_reference(mode: Any, prompt_length: int | None) -> None:
    ours, ref = _pair(mode, prompt_length)
    for seed, lengths in ((0, LENGTHS), (1, [1]), (2, [4, 1, 7])):
        flat = _flattened(lengths, DIM, seed)
        # Inference on CPU float32, then under autograd (the gradient must reach the tokens).
        _close(_pool(ours, flat, prompt_length), _pool(ref, flat, prompt_length))
        tracked = dict(flat, token_embeddings=flat["token_embeddings"].clone().requires_grad_(True))
        out = _pool(ours, tracked, prompt_length)
        assert out.requires_grad
        _close(out, _pool(ref, flat, prompt_length))


@pytest.mark.parametrize("prompt_length", [None, 2])
@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("mode", POOLING_MODES[:-1], ids=str)
def test_pooling_flattened_other_dtypes(mode: Any, dtype: torch.dtype, prompt_length: int | None) -> None:
    """Non-float32 tokens take the torch path; bfloat16 is compared at its own resolution (2**-8 relative)."""
    ours, ref = _pair(mode, prompt_length)
    flat = _flattened(LENGTHS, DIM, 3, dtype=dtype)
    got, want = _pool(ours, flat, prompt_length), _pool(ref, flat, prompt_length)
    assert got.dtype == want.dtype == dtype
    tol = 1e-2 if dtype == torch.bfloat16 else ATOL
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


@pytest.mark.parametrize("prompt_length", [None, 1])
@pytest.mark.parametrize("mode", POOLING_MODES, ids=str)
def test_pooling_flattened_equals_padded(mode: Any, prompt_length: int | None) -> None:
    """The same batch gives the same sentrs embeddings flattened and padded, both ways of building it.

    The prompt is shorter than every row here: when it covers a whole row the reference's own flattened and padded
    lasttoken differ (last token vs zeros), and sentrs follows the reference in each layout.
    """
    ours, ref = _pair(mode, prompt_length)
    lengths = LENGTHS if prompt_length is None else [n + prompt_length for n in LENGTHS]
    padded, flat = _padded_to_flattened(lengths, 4)
    flat_out = _pool(ours, flat, prompt_length)
    _close(flat_out, _pool(ours, padded, prompt_length))
    _close(flat_out, _pool(ref, flat, prompt_length))
    collated = _flattened(lengths, DIM, 5)
    _close(_pool(ours, collated, prompt_length), _pool(ours, _repadded(collated), prompt_length))
    # The padded path itself still matches the reference.
    _close(_pool(ours, padded, prompt_length), _pool(ref, padded, prompt_length))


def test_pooling_flattened_whole_row_prompt_lasttoken() -> None:
    """A prompt covering the whole row: flattened lasttoken reads the row's last token, as in the reference."""
    ours, ref = _pair(("mean", "lasttoken"), 3)
    flat = _flattened([1, 3, 6], DIM, 6)
    got = _pool(ours, flat, 3)
    _close(got, _pool(ref, flat, 3))
    tokens = flat["token_embeddings"][0]
    torch.testing.assert_close(got[:2, DIM:], tokens[[0, 3]], atol=0, rtol=0)
    torch.testing.assert_close(got[:2, :DIM], torch.zeros(2, DIM), atol=0, rtol=0)


def test_pooling_flattened_cls_token_embeddings() -> None:
    ours, ref = _pair(("cls", "mean"), None)
    flat = _flattened(LENGTHS, DIM, 7)
    flat["cls_token_embeddings"] = torch.randn(len(LENGTHS), DIM, generator=torch.Generator().manual_seed(8))
    got = _pool(ours, flat, None)
    _close(got, _pool(ref, flat, None))
    torch.testing.assert_close(got[:, :DIM], flat["cls_token_embeddings"], atol=0, rtol=0)


def test_pooling_flattened_gradient_matches_reference() -> None:
    ours, ref = _pair(("max", "mean", "weightedmean"), 1)
    flat = _flattened(LENGTHS, DIM, 9)
    grads = []
    for module in (ours, ref):
        tokens = flat["token_embeddings"].clone().requires_grad_(True)
        _pool(module, dict(flat, token_embeddings=tokens), 1).sum().backward()
        grads.append(tokens.grad)
    _close(grads[0], grads[1])


@pytest.mark.parametrize(
    ("cu", "match"),
    [
        ([0, 3, 3, 10], r"cu_seq_lens_q must rise from 0 in steps of at least 1 to the number of flattened tokens"),
        ([0, 4, 9], r"\(10\), got \[0, 4, 9\]"),
        ([1, 4, 10], r"got \[1, 4, 10\]"),
    ],
)
def test_pooling_flattened_bad_bounds(cu: list[int], match: str) -> None:
    features = {"token_embeddings": torch.zeros(1, 10, DIM), "cu_seq_lens_q": torch.tensor(cu, dtype=torch.int32)}
    with pytest.raises(ValueError, match=match):
        Pooling(DIM)(features)


def test_pooling_flattened_bad_shape() -> None:
    features = {"token_embeddings": torch.zeros(2, 5, DIM), "cu_seq_lens_q": torch.tensor([0, 5, 10])}
    with pytest.raises(ValueError, match=r"flattened token_embeddings must have shape \(1, total_tokens, hidden\)"):
        Pooling(DIM)(features)


# ----------------------------------------------------------------------------------------------------- SpladePooling
SPLADE = [(strategy, act) for strategy in ("max", "sum") for act in ("relu", "log1p_relu")]


def _splade_pair(strategy: Any, activation: Any) -> tuple[SpladePooling, Any]:
    from sentence_transformers.sparse_encoder.modules.splade_pooling import SpladePooling as RefSpladePooling

    ref = RefSpladePooling(pooling_strategy=strategy, activation_function=activation)
    ref.eval()
    return SpladePooling(pooling_strategy=strategy, activation_function=activation), ref


def _csr_dense(csr: tuple[np.ndarray, np.ndarray, np.ndarray], width: int) -> torch.Tensor:
    indptr, indices, values = csr
    dense = np.zeros((len(indptr) - 1, width), dtype=np.float32)
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    dense[rows, indices] = values
    return torch.from_numpy(dense)


@pytest.mark.parametrize(("strategy", "activation"), SPLADE)
def test_splade_flattened_matches_reference(strategy: str, activation: str) -> None:
    from sentence_transformers.util import select_max_active_dims

    ours, ref = _splade_pair(strategy, activation)
    for seed, lengths in ((10, LENGTHS), (11, [1]), (12, [6, 1, 2])):
        flat = _flattened(lengths, VOCAB, seed)
        want = _pool(ref, flat, None)
        _close(_pool(ours, flat, None), want)
        assert ours.get_embedding_dimension() == VOCAB
        # The Rust path used by SparseEncoder.encode, with and without pruning.
        for k in (None, 5):
            csr = ours.pool_to_csr(dict(flat), k)
            assert csr is not None
            _close(_csr_dense(csr, VOCAB), select_max_active_dims(want, k) if k else want)
        # Under autograd the CSR path steps aside and forward runs in torch.
        tracked = dict(flat, token_embeddings=flat["token_embeddings"].clone().requires_grad_(True))
        assert ours.pool_to_csr(tracked, None) is None
        out = _pool(ours, tracked, None)
        assert out.requires_grad
        _close(out, want)


@pytest.mark.parametrize(("strategy", "activation"), SPLADE)
def test_splade_flattened_equals_padded(strategy: str, activation: str) -> None:
    ours, ref = _splade_pair(strategy, activation)
    flat = _flattened(LENGTHS, VOCAB, 13)
    padded = _repadded(flat)
    flat_out = _pool(ours, flat, None)
    _close(flat_out, _pool(ours, padded, None))
    _close(flat_out, _pool(ref, padded, None))
    flat_csr, padded_csr = ours.pool_to_csr(dict(flat), 7), ours.pool_to_csr(dict(padded), 7)
    assert flat_csr is not None and padded_csr is not None
    for a, b in zip(flat_csr, padded_csr):
        np.testing.assert_array_equal(a, b)  # the same kernel on the same tokens: bit for bit


def test_splade_flattened_bad_bounds() -> None:
    features = {"token_embeddings": torch.zeros(1, 6, VOCAB), "cu_seq_lens_q": torch.tensor([0, 2, 5])}
    with pytest.raises(ValueError, match=r"number of flattened tokens \(6\), got \[0, 2, 5\]"):
        SpladePooling()(features)
    with pytest.raises(ValueError, match=r"number of flattened tokens \(6\), got \[0, 2, 5\]"):
        SpladePooling().pool_to_csr(features, None)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("mode", [POOLING_MODES[6]], ids=str)
def test_flattened_on_cuda(mode: Any) -> None:
    """The torch segment path on a CUDA device (cu_seq_lens_q stays on the device, as the collator leaves it)."""
    ours, ref = _pair(mode, 2)
    flat = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in _flattened(LENGTHS, DIM, 14).items()}
    got = _pool(ours, flat, 2)
    assert got.device.type == "cuda"
    _close(got, _pool(ref, flat, 2))
    splade, ref_splade = _splade_pair("max", "relu")
    logits = {k: (v.cuda() if isinstance(v, torch.Tensor) else v) for k, v in _flattened(LENGTHS, VOCAB, 15).items()}
    assert splade.pool_to_csr(dict(logits), None) is None
    _close(_pool(splade, logits, None), _pool(ref_splade, logits, None))
