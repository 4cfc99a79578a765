"""The padded-token helpers against the reference on the same inputs.

``stack_padded_token_embeddings``, ``cat_padded_token_embeddings`` and ``repad_flattened_features`` (``util.tensor``)
and ``all_gather_padded`` (``util.distributed``; without a process group, and in a one-process ``gloo`` group whose
token-length reduction is stubbed to exercise the padding). Tensors of a few values.

Tolerance: exact (rtol = atol = 0). These helpers only move, pad and concatenate values, so both libraries must give
the same bits, gradients included.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch
from sentence_transformers.util import distributed as ref_distributed
from sentence_transformers.util import tensor as ref_tensor
from transformers.utils import logging as transformers_logging

from sentrs.util import distributed as our_distributed
from sentrs.util import tensor as our_tensor

EXACT = {"rtol": 0.0, "atol": 0.0}


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _lengths_mask(lengths: list[int], width: int, dtype: torch.dtype = torch.bool) -> torch.Tensor:
    return (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).to(dtype)


def _columns(widths: list[int], batch: int = 2, dim: int = 3, mask_dtype: torch.dtype = torch.bool) -> Any:
    embeddings = [_randn(batch, width, dim, seed=i) for i, width in enumerate(widths)]
    masks = [_lengths_mask([max(width - row, 0) for row in range(batch)], width, mask_dtype) for width in widths]
    return embeddings, masks


def _assert_same_with_gradients(
    ours: Any, ref: Any, embeddings: list[torch.Tensor], masks: list[torch.Tensor]
) -> None:
    """Same outputs, and the same gradients into every column after the same weighted sum."""
    results, gradients = [], []
    for function in (ours, ref):
        leaves = [tensor.clone().requires_grad_(True) for tensor in embeddings]
        stacked, stacked_mask = function(leaves, masks)
        weights = torch.linspace(-1.0, 1.0, stacked.numel()).reshape(stacked.shape)
        (stacked * weights).sum().backward()
        results.append((stacked.detach(), stacked_mask))
        gradients.append([leaf.grad for leaf in leaves])
    (got, got_mask), (expected, expected_mask) = results
    assert got.shape == expected.shape and got_mask.dtype == expected_mask.dtype
    torch.testing.assert_close(got, expected, **EXACT)
    torch.testing.assert_close(got_mask, expected_mask, **EXACT)
    for got_gradient, expected_gradient in zip(*gradients):
        torch.testing.assert_close(got_gradient, expected_gradient, **EXACT)


# ---------------------------------------------------------------------------------------------------------------
# stack_padded_token_embeddings / cat_padded_token_embeddings


@pytest.mark.parametrize("mask_dtype", [torch.bool, torch.int64, torch.float32])
@pytest.mark.parametrize("widths", [[4], [4, 4], [2, 5, 3], [0, 3], [0, 0]])
def test_stack_matches_the_reference(widths: list[int], mask_dtype: torch.dtype) -> None:
    embeddings, masks = _columns(widths, mask_dtype=mask_dtype)
    _assert_same_with_gradients(
        our_tensor.stack_padded_token_embeddings, ref_tensor.stack_padded_token_embeddings, embeddings, masks
    )
    stacked, stacked_mask = our_tensor.stack_padded_token_embeddings(embeddings, masks)
    assert stacked.shape == (2, len(widths), max(widths), 3) and stacked_mask.shape == (2, len(widths), max(widths))


@pytest.mark.parametrize("widths", [[4], [4, 4], [2, 5, 3], [0, 3]])
def test_cat_matches_the_reference(widths: list[int]) -> None:
    embeddings = [_randn(i + 1, width, 3, seed=10 + i) for i, width in enumerate(widths)]
    masks = [_lengths_mask([width] * (i + 1), width) for i, width in enumerate(widths)]
    _assert_same_with_gradients(
        our_tensor.cat_padded_token_embeddings, ref_tensor.cat_padded_token_embeddings, embeddings, masks
    )


def test_cat_promotes_mixed_mask_dtypes_like_the_reference() -> None:
    embeddings, masks = _columns([2, 4])
    masks[1] = masks[1].long()
    ours = our_tensor.cat_padded_token_embeddings(embeddings, masks)
    ref = ref_tensor.cat_padded_token_embeddings(embeddings, masks)
    assert ours[1].dtype == ref[1].dtype == torch.int64
    torch.testing.assert_close(ours[1], ref[1], **EXACT)


def test_equal_widths_are_stacked_without_padding() -> None:
    embeddings, masks = _columns([3, 3])
    stacked, _ = our_tensor.stack_padded_token_embeddings(embeddings, masks)
    torch.testing.assert_close(stacked[:, 1], embeddings[1], **EXACT)


@pytest.mark.parametrize("helper", ["stack_padded_token_embeddings", "cat_padded_token_embeddings"])
@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("no column", ValueError, "embeddings must hold at least one"),
        ("different dims", RuntimeError, "embeddings must all have the same"),
    ],
)
def test_errors_match_the_reference(helper: str, case: str, error: type[Exception], match: str) -> None:
    cases = {
        "no column": ([], []),
        "different dims": ([_randn(2, 3, 4, seed=0), _randn(2, 5, 3, seed=1)], _columns([3, 5])[1]),
    }
    embeddings, masks = cases[case]
    with pytest.raises(error):
        getattr(ref_tensor, helper)(embeddings, masks)
    with pytest.raises(error, match=match):
        getattr(our_tensor, helper)(embeddings, masks)


def test_stack_refuses_columns_of_different_batch_sizes_like_the_reference() -> None:
    embeddings = [_randn(2, 3, 4, seed=0), _randn(3, 5, 4, seed=1)]
    masks = [torch.ones(2, 3), torch.ones(3, 5)]
    with pytest.raises(RuntimeError):
        ref_tensor.stack_padded_token_embeddings(embeddings, masks)
    with pytest.raises(RuntimeError, match="batch size and dimension"):
        our_tensor.stack_padded_token_embeddings(embeddings, masks)


@pytest.mark.parametrize("helper", ["stack_padded_token_embeddings", "cat_padded_token_embeddings"])
@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("fewer masks", "masks must hold one mask per embeddings tensor, got 1 and 2"),
        ("mask of another width", r"masks\[0\] must have the shape \(batch, tokens\) = \(2, 2\)"),
        ("2-D embeddings", r"embeddings\[0\] must be a \(batch, tokens, dim\) tensor"),
    ],
)
def test_mismatched_masks_are_refused_on_purpose(helper: str, case: str, match: str) -> None:
    """The reference pads or stacks such masks regardless, returning a mask that does not describe the embeddings."""
    embeddings, masks = _columns([2, 4])
    cases = {
        "fewer masks": (embeddings, masks[:1]),
        "mask of another width": (embeddings, [masks[1][:, :3], masks[1]]),
        "2-D embeddings": ([embeddings[0][0], embeddings[0][1]], [masks[0][0], masks[0][1]]),
    }
    arguments = cases[case]
    getattr(ref_tensor, helper)(*arguments)
    with pytest.raises(ValueError, match=match):
        getattr(our_tensor, helper)(*arguments)


# ---------------------------------------------------------------------------------------------------------------
# repad_flattened_features


def _flattened(lengths: list[int], dim: int = 3) -> dict[str, Any]:
    total = sum(lengths)
    bounds = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    bounds[1:] = torch.cumsum(torch.tensor(lengths), 0)
    return {
        "token_embeddings": _randn(1, total, dim, seed=len(lengths)),
        "input_ids": torch.arange(1, total + 1)[None],
        "position_ids": torch.cat([torch.arange(length) for length in lengths])[None],
        "seq_idx": torch.repeat_interleave(torch.arange(len(lengths), dtype=torch.int32), torch.tensor(lengths))[None],
        "cu_seq_lens_q": bounds,
        "cu_seq_lens_k": bounds.clone(),
        "max_length_q": max(lengths),
        "max_length_k": max(lengths),
        "sentence_embedding": _randn(len(lengths), dim, seed=99),
    }


@pytest.mark.parametrize("lengths", [[3], [2, 5, 1], [4, 0, 2], [0, 0]])
def test_repad_matches_the_reference(lengths: list[int]) -> None:
    flat = _flattened(lengths)
    results, gradients = [], []
    for repad in (our_tensor.repad_flattened_features, ref_tensor.repad_flattened_features):
        features = copy.deepcopy(flat)
        leaf = features["token_embeddings"].requires_grad_(True)
        padded = repad(features)
        assert padded is features  # in place
        weights = torch.linspace(-1.0, 1.0, padded["token_embeddings"].numel()).reshape(
            padded["token_embeddings"].shape
        )
        (padded["token_embeddings"] * weights).sum().backward()
        results.append(padded)
        gradients.append(leaf.grad)
    ours, ref = results
    assert sorted(ours) == sorted(ref) == ["attention_mask", "input_ids", "sentence_embedding", "token_embeddings"]
    for key in ("token_embeddings", "input_ids", "attention_mask", "sentence_embedding"):
        assert ours[key].dtype == ref[key].dtype, key
        torch.testing.assert_close(ours[key].detach(), ref[key].detach(), **EXACT)
    torch.testing.assert_close(gradients[0], gradients[1], **EXACT)
    assert ours["attention_mask"].sum(dim=1).tolist() == lengths


@pytest.mark.parametrize(
    ("case", "error", "match"),
    [
        ("no cu_seq_lens_q", KeyError, "cu_seq_lens_q"),
        ("no input_ids", KeyError, "input_ids"),
        ("no sequence", RuntimeError, "cu_seq_lens_q must hold at least one sequence"),
    ],
)
def test_repad_errors_match_the_reference(case: str, error: type[Exception], match: str) -> None:
    features = _flattened([2, 3])
    if case == "no cu_seq_lens_q":
        del features["cu_seq_lens_q"]
    elif case == "no input_ids":
        del features["input_ids"]
    else:
        features["cu_seq_lens_q"] = torch.tensor([0], dtype=torch.int32)
    with pytest.raises(error):
        ref_tensor.repad_flattened_features(copy.deepcopy(features))
    with pytest.raises(error, match=match):
        our_tensor.repad_flattened_features(copy.deepcopy(features))


@pytest.mark.parametrize(
    ("bounds", "match"),
    [([0, 2, 7], "cu_seq_lens_q ends at token 7, but the flattened batch holds 5 tokens"), ([0, 3, 2], "decrease")],
)
def test_repad_refuses_boundaries_outside_the_tokens_on_purpose(bounds: list[int], match: str) -> None:
    """The reference pads such batches regardless, with masks that claim tokens that are not there."""
    features = _flattened([2, 3])
    features["cu_seq_lens_q"] = torch.tensor(bounds, dtype=torch.int32)
    ref_tensor.repad_flattened_features(copy.deepcopy(features))
    with pytest.raises(ValueError, match=match):
        our_tensor.repad_flattened_features(copy.deepcopy(features))


def test_helpers_are_public_in_util_tensor() -> None:
    for name in ("stack_padded_token_embeddings", "cat_padded_token_embeddings", "repad_flattened_features"):
        assert name in our_tensor.__all__
        assert callable(getattr(our_tensor, name))
    assert "all_gather_padded" in our_distributed.__all__


# ---------------------------------------------------------------------------------------------------------------
# all_gather_padded


@pytest.fixture
def process_group(tmp_path: Path) -> Iterator[None]:
    """A one-process ``gloo`` group (file rendezvous, so no port is taken), destroyed after the test."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _reference_gather_warning(with_grad: bool) -> Any:
    """The reference gathers with gradients through ``torch.distributed.nn.all_gather``, deprecated in recent torch."""
    if not with_grad:
        return nullcontext()
    return pytest.warns(FutureWarning, match="torch.distributed.nn.functional.all_gather is deprecated")


@pytest.mark.parametrize("with_grad", [False, True])
def test_all_gather_padded_without_process_group(
    with_grad: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(our_distributed, "_warned_not_distributed", False)
    transformers_logging.warning_once.cache_clear()
    tensor, mask = _randn(2, 3, 4, seed=0).requires_grad_(True), torch.ones(2, 3, dtype=torch.bool)
    with caplog.at_level(logging.WARNING):
        ours = our_distributed.all_gather_padded(tensor, mask, with_grad=with_grad)
        ref = ref_distributed.all_gather_padded(tensor, mask, with_grad=with_grad)
    assert ours[0] is tensor and ours[1] is mask
    assert ref[0] is tensor and ref[1] is mask
    assert any(record.name == "sentrs.util.distributed" for record in caplog.records)


@pytest.mark.usefixtures("process_group")
@pytest.mark.parametrize("longest_elsewhere", [None, 6])
@pytest.mark.parametrize("with_grad", [False, True])
def test_all_gather_padded_in_process_group(
    with_grad: bool, longest_elsewhere: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process gathers its own rows. ``longest_elsewhere`` stands in for another process with longer sequences:
    the token-length reduction reports it, so both libraries pad before gathering."""
    import torch.distributed as dist

    if longest_elsewhere is not None:
        real_all_reduce = dist.all_reduce

        def all_reduce(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            result = real_all_reduce(tensor, *args, **kwargs)
            if tensor.dim() == 0 and not tensor.is_floating_point():  # the token-length reduction, not a gradient
                tensor.fill_(max(int(tensor), longest_elsewhere))
            return result

        monkeypatch.setattr(dist, "all_reduce", all_reduce)
    base, mask = _randn(2, 3, 4, seed=1), _lengths_mask([3, 1], 3)
    results = []
    for gather in (our_distributed.all_gather_padded, ref_distributed.all_gather_padded):
        tensor = base.clone().requires_grad_(True)
        with _reference_gather_warning(with_grad and gather is ref_distributed.all_gather_padded):
            gathered, gathered_mask = gather(tensor, mask, with_grad=with_grad)
        assert gathered.requires_grad
        weights = torch.linspace(-1.0, 1.0, gathered.numel()).reshape(gathered.shape)
        (gathered * weights).sum().backward()
        results.append((gathered.detach(), gathered_mask, tensor.grad))
    (ours, our_mask, our_grad), (ref, ref_mask, ref_grad) = results
    width = longest_elsewhere or 3
    assert ours.shape == (2, width, 4) and our_mask.shape == (2, width) and our_mask.dtype == torch.bool
    torch.testing.assert_close(ours, ref, **EXACT)
    torch.testing.assert_close(our_mask, ref_mask, **EXACT)
    torch.testing.assert_close(our_grad, ref_grad, **EXACT)
