"""MaxSim scoring (`sentrs.util.maxsim` and friends) against the reference's, on every input layout it accepts.

Tolerance: 1e-5 relative (the Rust kernel sums float32 dot products in another order than torch's einsum;
observed ~3e-7). The torch path (other dtypes, gradients) is compared the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.base import maxsim as ours

TOL = {"atol": 1e-5, "rtol": 1e-5}


def _items(lengths: list[int], dim: int = 16, seed: int = 0, normalize: bool = True) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randn(n, dim, generator=g) for n in lengths]
    return [torch.nn.functional.normalize(x, dim=-1) if normalize and n else x for x, n in zip(out, lengths)]


def _padded(items: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(items, batch_first=True)


def _reference() -> Any:
    from sentence_transformers import util

    return util


Q = _items([3, 5, 1, 4])
D = _items([7, 2, 9, 1, 12, 6], seed=1)

CASES: dict[str, Callable[[], tuple[Any, Any, dict[str, Any]]]] = {
    "lists of tensors": lambda: (Q, D, {}),
    "lists of numpy arrays": lambda: ([q.numpy() for q in Q], [d.numpy() for d in D], {}),
    "padded tensors (zero rows are padding)": lambda: (_padded(Q), _padded(D), {}),
    "padded numpy": lambda: (_padded(Q).numpy(), _padded(D).numpy(), {}),
    "single query and single document": lambda: (Q[1], D[2], {}),
    "single query against a list": lambda: (Q[0], D, {}),
    "masks as tensors": lambda: (
        _padded(Q),
        _padded(D),
        {
            "a_mask": torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [0, 1, 1, 0, 0]]),
            "b_mask": (torch.rand(6, 12, generator=torch.Generator().manual_seed(3)) > 0.3),
        },
    ),
    "masks as lists": lambda: (
        Q,
        D,
        {
            "a_mask": [torch.ones(len(q)) for q in Q],
            "b_mask": [torch.arange(len(d)) % 2 == 0 for d in D],
        },
    ),
    "a document with every token masked": lambda: (
        Q,
        D,
        {"b_mask": [torch.zeros(len(d), dtype=torch.bool) if i == 2 else torch.ones(len(d)) for i, d in enumerate(D)]},
    ),
    "a document with no tokens": lambda: (Q, [*D[:2], torch.zeros(0, 16), *D[2:]], {}),
    "a query with no tokens": lambda: ([Q[0], torch.zeros(0, 16)], D, {}),
    "float query weights": lambda: (Q[0], D, {"a_mask": torch.tensor([0.5, 1.0, 2.0])}),
    "unnormalised, all negative": lambda: (
        [-x.abs() for x in _items([3, 2], normalize=False)],
        [x.abs() for x in _items([4, 5], seed=2, normalize=False)],
        {},
    ),
    "chunked (tiny budget)": lambda: (Q, D, {"chunk_elements": 50}),
    "integer embeddings": lambda: (
        [torch.randint(-3, 4, (3, 8)), torch.randint(-3, 4, (2, 8))],
        [torch.randint(-3, 4, (5, 8))],
        {},
    ),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", ["maxsim", "mean_maxsim"])
def test_matrix_parity(case: str, name: str, caplog: pytest.LogCaptureFixture) -> None:
    a, b, kwargs = CASES[case]()
    with caplog.at_level(logging.WARNING):
        want = getattr(_reference(), name)(a, b, **kwargs)
        got = getattr(ours, name)(a, b, **kwargs)
    assert got.dtype == torch.float32 and got.shape == want.shape
    torch.testing.assert_close(got, want.float(), **TOL)


PAIR_CASES: dict[str, Callable[[], tuple[Any, Any, dict[str, Any]]]] = {
    "lists": lambda: (Q, D[:4], {}),
    "padded": lambda: (_padded(Q), _padded(D[:4]), {}),
    "masks": lambda: (Q, D[:4], {"b_mask": [torch.arange(len(d)) % 3 != 1 for d in D[:4]]}),
    "an empty document": lambda: (Q[:2], [D[0], torch.zeros(0, 16)], {}),
    "single": lambda: (Q[2], D[3], {}),
}


@pytest.mark.parametrize("case", PAIR_CASES)
@pytest.mark.parametrize("name", ["maxsim_pairwise", "mean_maxsim_pairwise"])
def test_pairwise_parity(case: str, name: str, caplog: pytest.LogCaptureFixture) -> None:
    a, b, kwargs = PAIR_CASES[case]()
    with caplog.at_level(logging.WARNING):
        want = getattr(_reference(), name)(a, b, **kwargs)
        got = getattr(ours, name)(a, b, **kwargs)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want.float(), **TOL)


def test_the_torch_path_keeps_gradients_and_matches() -> None:
    q = [x.clone().requires_grad_(True) for x in Q]
    d = [x.clone().requires_grad_(True) for x in D]
    got = ours.maxsim(q, d)
    want = _reference().maxsim([x.detach() for x in q], [x.detach() for x in d])
    torch.testing.assert_close(got.detach(), want, **TOL)
    got.sum().backward()
    assert all(x.grad is not None for x in q + d)
    ref_q = [x.detach().clone().requires_grad_(True) for x in Q]
    _reference().maxsim(ref_q, D).sum().backward()
    for mine, theirs in zip(q, ref_q):
        torch.testing.assert_close(mine.grad, theirs.grad, atol=1e-4, rtol=1e-4)


def test_half_precision_goes_through_torch_like_the_reference() -> None:
    a = [x.to(torch.bfloat16) for x in Q]
    b = [x.to(torch.bfloat16) for x in D]
    torch.testing.assert_close(ours.maxsim(a, b), _reference().maxsim(a, b), atol=1e-2, rtol=1e-2)


def test_large_ragged_batch_parity() -> None:
    """Enough tokens for several blocks of the Rust kernel on both sides."""
    g = torch.Generator().manual_seed(5)
    q = _items(torch.randint(1, 40, (70,), generator=g).tolist(), dim=48, seed=6)
    d = _items(torch.randint(0, 300, (40,), generator=g).tolist(), dim=48, seed=7)
    torch.testing.assert_close(ours.maxsim(q, d), _reference().maxsim(q, d), **TOL)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="same number of items"):
        ours.maxsim_pairwise(Q, D)
    with pytest.raises(ValueError, match="a_mask covers 2 tokens, but the padded embeddings have 5"):
        ours.maxsim(Q, D, a_mask=torch.ones(4, 2))
    with pytest.raises(TypeError, match="b_mask must be a tensor"):
        ours.maxsim(Q, D, b_mask="all")
    with pytest.raises(ValueError, match="same dimension, got 16 and 8"):
        ours.maxsim(Q, _items([3], dim=8))
    with pytest.raises(ValueError, match=r"a\[0\] must be a \(tokens, dim\) matrix"):
        ours.maxsim([torch.ones(3)], D)
    with pytest.raises(ValueError, match="chunk_elements must be a positive integer"):
        ours.maxsim(Q, D, chunk_elements=0)
    with pytest.raises(TypeError, match="must hold numbers"):
        ours.maxsim(np.array([["a"]]), D)
    empty = ours.maxsim([], D)
    assert empty.shape == (0, len(D)) and empty.dtype == torch.float32
    assert ours.maxsim_pairwise([], []).shape == (0,)


def test_public_names() -> None:
    import sentrs.util

    for name in ("maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"):
        assert getattr(sentrs.util, name) is getattr(ours, name)


@pytest.mark.parametrize("kernel", ["fp32", "amx"])
def test_every_kernel_gives_the_fp32_scores(kernel: str) -> None:
    """Each Rust kernel this CPU runs against a float64 naive MaxSim (1e-5: float32 sums of 24 maxima). The AMX
    kernel picks candidates in bf16 and rescores them in fp32, so it must agree as closely as the fp32 kernel; CPUs
    without AMX refuse it by name."""
    from sentrs import _core

    rng = np.random.default_rng(7)
    dim = 100
    q_lens, d_lens = [24, 1, 0, 33], [180, 0, 5, 16, 300, 1, 47]
    q = rng.standard_normal((sum(q_lens), dim)).astype(np.float32)
    d = rng.standard_normal((sum(d_lens), dim)).astype(np.float32)
    d[5:15] = d[4] + 1e-7  # near-equal tokens: bf16 cannot order them, the fp32 rescoring must
    q_off = np.concatenate([[0], np.cumsum(q_lens)]).astype(np.int64)
    d_off = np.concatenate([[0], np.cumsum(d_lens)]).astype(np.int64)
    if kernel == "amx" and not _core.maxsim_amx_supported():
        with pytest.raises(ValueError, match="kernel='amx' needs a CPU with AMX-BF16"):
            _core.maxsim(q, q_off, d, d_off, kernel=kernel)
        return
    got = _core.maxsim(q, q_off, d, d_off, kernel=kernel)
    want = np.zeros_like(got)
    for i in range(len(q_lens)):
        for j in range(len(d_lens)):
            qi, dj = q[q_off[i] : q_off[i + 1]].astype(np.float64), d[d_off[j] : d_off[j + 1]].astype(np.float64)
            want[i, j] = -1e9 if len(dj) == 0 else (qi @ dj.T).max(axis=1).sum() if len(qi) else 0.0
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kernel must be 'auto', 'fp32' or 'amx'"):
        _core.maxsim(q, q_off, d, d_off, kernel="bf16")


def test_one_row_masks_apply_to_every_pair() -> None:
    """A ``(1, tokens)`` mask broadcasts over the batch in pairwise scoring, as in the reference (1e-5)."""
    from sentence_transformers import util as ref_util

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(3, 4, 8, generator=g), torch.randn(3, 5, 8, generator=g)
    a_mask, b_mask = torch.ones(1, 4), torch.ones(1, 5)
    a_mask[0, 1] = 0
    b_mask[0, 4] = 0
    for kwargs in ({"a_mask": a_mask}, {"b_mask": b_mask}, {"a_mask": a_mask, "b_mask": b_mask}):
        want = ref_util.maxsim_pairwise(a, b, **kwargs)
        assert torch.allclose(ours.maxsim_pairwise(a, b, **kwargs), want, atol=1e-5)
