"""``sentrs.multi_vector_encoder.scoring`` against the reference's ``multi_vector_encoder.scoring`` on the same inputs.

Every function is run by both libraries in the same test on identical seeded tensors of a few tokens: the scores
(values, shape, dtype), the gradients of a weighted sum of them with respect to both embeddings, and the error type
on odd inputs (ours must also name the argument at fault). A handful of inputs that the reference accepts by accident
and sentrs refuses are pinned in ``test_inputs_sentrs_refuses_on_purpose``.

Tolerances: scores rtol 1e-5 / atol 1e-6 (float32 sums of a few dot products; sentrs may score float32 CPU inputs in
the Rust kernel or in other chunks, which changes the summation order only); gradients atol = rtol = 1e-4 (the same
products, accumulated by autograd in another order). Half precision inputs are compared at their own resolution.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from sentence_transformers.multi_vector_encoder import scoring as ref_scoring

import sentrs.base.maxsim
from sentrs.multi_vector_encoder import scoring as our_scoring

SCORE_TOL = {"rtol": 1e-5, "atol": 1e-6}
GRAD_TOL = {"rtol": 1e-4, "atol": 1e-4}
HALF_TOL = {"rtol": 1e-2, "atol": 1e-2}  # fp16 / bf16 token products, rounded like the reference's

GROUPED = ["colbert_scores", "mean_colbert_scores", "colbert_kd_scores", "mean_colbert_kd_scores"]
PAIRWISE = ["colbert_scores_pairwise", "mean_colbert_scores_pairwise"]
XTR = ["xtr_scores", "xtr_kd_scores"]
TOP_KS = [1, 3, 8, 40, 256]  # one token, a few, part of the pool, exactly the pool (2 * 2 * 5 * 2), beyond it

Case = tuple[tuple[Any, ...], dict[str, Any]]


@pytest.fixture(autouse=True)
def _quiet_empty_document_warnings(caplog: pytest.LogCaptureFixture) -> None:
    """Both libraries log (not warn) about documents without tokens; several cases build such documents on purpose."""
    caplog.set_level(logging.ERROR)


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _mask(*shape: int, seed: int, keep: float = 0.7) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) < keep


def _call(library: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Exception | None]:
    try:
        return getattr(library, name)(*args, **kwargs), None
    except Exception as error:  # the comparison is the point
        return None, error


def _assert_same(name: str, case: Case, names_in_error: str | None = None, tol: dict[str, float] = SCORE_TOL) -> None:
    """Both libraries give the same scores, or the same error type (ours naming ``names_in_error``)."""
    args, kwargs = case
    expected, ref_error = _call(ref_scoring, name, args, kwargs)
    got, our_error = _call(our_scoring, name, args, kwargs)
    if ref_error is not None:
        assert isinstance(our_error, type(ref_error)), f"reference raised {ref_error!r}, sentrs {our_error!r}"
        assert names_in_error is not None, f"unexpected reference error {ref_error!r}"
        assert names_in_error in str(our_error), our_error
        return
    assert our_error is None, f"sentrs raised {our_error!r}, the reference returned {expected}"
    assert names_in_error is None, "the reference was expected to raise"
    assert got.shape == expected.shape and got.dtype == expected.dtype
    torch.testing.assert_close(got, expected, **tol)


# ---------------------------------------------------------------------------------------------------------------
# grouped layouts: (Q, q_tokens, dim) queries against (Q_doc, N, d_tokens, dim) document groups


def _grouped_cases() -> dict[str, tuple[Callable[[], Case], str | None]]:
    """Each case: a builder of ``(args, kwargs)`` and the argument name our error must contain (None: no error)."""
    q, d = _randn(2, 3, 4, seed=0), _randn(2, 2, 5, 4, seed=1)
    q_mask, d_mask = _mask(2, 3, seed=2).float(), _mask(2, 2, 5, seed=3)
    zero_token_query = torch.cat([q[:, :2], torch.zeros(2, 1, 4)], dim=1)
    zero_token_docs = torch.cat([d[:, :, :3], torch.zeros(2, 2, 2, 4)], dim=2)
    all_masked_doc = d_mask.clone()
    all_masked_doc[0, 1] = False
    return {
        "plain": (lambda: ((q, d), {}), None),
        "masks": (lambda: ((q, d), {"queries_mask": q_mask, "documents_mask": d_mask}), None),
        "bool query mask": (lambda: ((q, d), {"queries_mask": q_mask.bool()}), None),
        "int query mask": (lambda: ((q, d), {"queries_mask": q_mask.long()}), None),
        "weighted query mask": (lambda: ((q, d), {"queries_mask": torch.rand(2, 3)}), None),
        "float64 query mask": (lambda: ((q, d), {"queries_mask": q_mask.double()}), None),
        "one-row query mask": (lambda: ((q, d), {"queries_mask": q_mask[:1]}), None),
        "one-group document mask": (lambda: ((q, d), {"documents_mask": d_mask[:1]}), None),
        "numpy": (lambda: ((q.numpy(), d.numpy()), {}), None),
        "numpy masks": (lambda: ((q, d), {"queries_mask": q_mask.numpy(), "documents_mask": d_mask.numpy()}), None),
        "list of tensors": (lambda: (([q[0], q[1]], [d[0], d[1]]), {}), None),
        "list of arrays": (lambda: (([q[0].numpy(), q[1].numpy()], d), {}), None),
        "nested lists": (lambda: ((q.tolist(), d.tolist()), {}), None),
        "zero rows are padding": (lambda: ((zero_token_query, zero_token_docs), {}), None),
        "all-masked query": (lambda: ((q, d), {"queries_mask": torch.tensor([[1.0, 1, 1], [0, 0, 0]])}), None),
        "all-masked document": (lambda: ((q, d), {"documents_mask": all_masked_doc}), None),
        "all-zero document": (lambda: ((q, torch.cat([d[:, :1], torch.zeros(2, 1, 5, 4)], dim=1)), {}), None),
        "zero-length queries": (lambda: ((torch.zeros(2, 0, 4), d), {}), None),
        "chunk_elements 1": (lambda: ((q, d), {"chunk_elements": 1, "documents_mask": d_mask}), None),
        "chunk_elements 0": (lambda: ((q, d), {"chunk_elements": 0}), None),
        "chunk_elements 50.5": (lambda: ((q, d), {"chunk_elements": 50.5}), None),
        "float64": (lambda: ((q.double(), d.double()), {}), None),
        "integer": (lambda: (((q * 10).int(), (d * 10).int()), {}), None),
        # errors
        "ragged list": (lambda: (([q[0], q[1, :2]], d), {}), "queries_embeddings"),
        "3-D documents": (lambda: ((q, d[:, 0]), {}), "documents_embeddings"),
        "5-D documents": (lambda: ((q, d[None]), {}), "documents_embeddings"),
        "dimension mismatch": (lambda: ((q, _randn(2, 2, 5, 3, seed=4)), {}), "documents_embeddings"),
        "no document per group": (lambda: ((q, torch.zeros(2, 0, 5, 4)), {}), "documents_embeddings"),
        "query mask too wide": (lambda: ((q, d), {"queries_mask": torch.ones(2, 4)}), "queries_mask"),
        "document mask too narrow": (lambda: ((q, d), {"documents_mask": torch.ones(2, 2, 4)}), "documents_mask"),
        "document mask for fewer documents": (lambda: ((q, d), {"documents_mask": d_mask[:, :1]}), "documents_mask"),
        "chunk_elements text": (lambda: ((q, d), {"chunk_elements": "many"}), "chunk_elements"),
    }


GROUPED_CASES = _grouped_cases()


@pytest.mark.parametrize("case", list(GROUPED_CASES))
@pytest.mark.parametrize("name", GROUPED)
def test_grouped_scores_match_the_reference(name: str, case: str) -> None:
    build, names_in_error = GROUPED_CASES[case]
    _assert_same(name, build(), names_in_error)
    args, kwargs = build()
    _assert_same(name, (args, {**kwargs, "length_normalize": not name.startswith("mean")}), names_in_error)


@pytest.mark.parametrize(
    ("name", "case", "names_in_error"),
    [
        # colbert_scores: a 1-D query mask applies to every query, but cannot give per-query token counts.
        ("colbert_scores", "1-D query mask", None),
        ("mean_colbert_scores", "1-D query mask", "queries_mask"),
        ("colbert_scores", "2-D query", None),
        ("colbert_scores", "list document mask", "documents_mask"),
        ("colbert_scores", "query mask for three queries", "queries_mask"),
        ("colbert_scores", "zero-length documents", None),
        ("colbert_scores", "no document group", "documents_embeddings"),
        ("colbert_scores", "no query and no group", "documents_embeddings"),
        ("colbert_scores", "4-D queries", "queries_embeddings"),
        ("colbert_kd_scores", "list masks", None),
        ("colbert_kd_scores", "ragged list masks", "queries_mask"),
        ("colbert_kd_scores", "1-D query mask", "queries_mask"),
        ("colbert_kd_scores", "batch mismatch", "documents_embeddings"),
        ("colbert_kd_scores", "4-D queries", "queries_embeddings"),
        ("colbert_kd_scores", "zero-length documents", None),
        ("colbert_kd_scores", "no query and no group", None),
        ("colbert_kd_scores", "dimension mismatch", "documents_embeddings"),
    ],
)
def test_grouped_layout_specifics(name: str, case: str, names_in_error: str | None) -> None:
    q, d = _randn(2, 3, 4, seed=10), _randn(2, 2, 5, 4, seed=11)
    q_mask, d_mask = _mask(2, 3, seed=12).float(), _mask(2, 2, 5, seed=13)
    cases: dict[str, Case] = {
        "1-D query mask": ((q, d), {"queries_mask": torch.tensor([1.0, 0.0, 1.0])}),
        "2-D query": ((q[0], d), {}),
        "list document mask": ((q, d), {"documents_mask": [d_mask[0], d_mask[1]]}),
        "list masks": ((q, d), {"queries_mask": [q_mask[0], q_mask[1]], "documents_mask": [d_mask[0], d_mask[1]]}),
        "ragged list masks": ((q, d), {"queries_mask": [q_mask[0], q_mask[1, :2]]}),
        "query mask for three queries": ((q, d), {"queries_mask": torch.ones(3, 3)}),
        "zero-length documents": ((q, torch.zeros(2, 2, 0, 4)), {}),
        "no document group": ((q, torch.zeros(0, 2, 5, 4)), {}),
        "no query and no group": ((torch.zeros(0, 3, 4), torch.zeros(0, 2, 5, 4)), {}),
        "4-D queries": ((q[None], d), {}),
        "batch mismatch": ((q, _randn(3, 2, 5, 4, seed=14)), {}),
        "dimension mismatch": ((q, _randn(2, 2, 5, 3, seed=15)), {}),
    }
    _assert_same(name, cases[case], names_in_error)


# ---------------------------------------------------------------------------------------------------------------
# pairwise layout: query i against document i


def _pairwise_cases() -> dict[str, tuple[Callable[[], Case], str | None]]:
    q, d = _randn(3, 3, 4, seed=20), _randn(3, 5, 4, seed=21)
    q_mask, d_mask = _mask(3, 3, seed=22).float(), _mask(3, 5, seed=23)
    ragged_q, ragged_d = [q[0], q[1, :2], q[2, :1]], [d[0, :1], d[1], d[2, :3]]
    return {
        "plain": (lambda: ((q, d), {}), None),
        "masks": (lambda: ((q, d), {"queries_mask": q_mask, "documents_mask": d_mask}), None),
        "float64 query mask": (lambda: ((q, d), {"queries_mask": q_mask.double()}), None),
        "one-row masks": (lambda: ((q, d), {"queries_mask": q_mask[:1], "documents_mask": d_mask[:1]}), None),
        "numpy": (lambda: ((q.numpy(), d.numpy()), {}), None),
        "numpy masks": (lambda: ((q, d), {"queries_mask": q_mask.numpy(), "documents_mask": d_mask.numpy()}), None),
        "ragged lists": (lambda: ((ragged_q, ragged_d), {}), None),
        "ragged lists of arrays": (lambda: (([x.numpy() for x in ragged_q], [x.numpy() for x in ragged_d]), {}), None),
        "ragged lists with list masks": (
            lambda: (
                (ragged_q, ragged_d),
                {
                    "queries_mask": [q_mask[0], q_mask[1, :2], q_mask[2, :1]],
                    "documents_mask": [d_mask[0, :1], d_mask[1], d_mask[2, :3]],
                },
            ),
            None,
        ),
        "zero-token document in a list": (lambda: (([q[0], q[1]], [d[0], d[1, :0]]), {}), None),
        "single 2-D pair": (lambda: ((q[0], d[0]), {"queries_mask": q_mask[0], "documents_mask": d_mask[0]}), None),
        "all-masked document": (
            lambda: ((q, d), {"documents_mask": torch.tensor([[1] * 5, [0] * 5, [1, 0, 0, 0, 0]]).bool()}),
            None,
        ),
        "zero rows are padding": (
            lambda: (
                (torch.cat([q[:, :2], torch.zeros(3, 1, 4)], 1), torch.cat([d[:, :3], torch.zeros(3, 2, 4)], 1)),
                {},
            ),
            None,
        ),
        "zero-length documents": (lambda: ((q, torch.zeros(3, 0, 4)), {}), None),
        "zero-length queries": (lambda: ((torch.zeros(3, 0, 4), d), {}), None),
        "no pair": (lambda: ((torch.zeros(0, 3, 4), torch.zeros(0, 5, 4)), {}), None),
        "empty lists": (lambda: (([], []), {}), None),
        "chunk_elements 1": (lambda: ((q, d), {"chunk_elements": 1}), None),
        "chunk_elements 0": (lambda: ((q, d), {"chunk_elements": 0}), None),
        "integer": (lambda: (((q * 10).int(), (d * 10).int()), {}), None),
        # errors
        "count mismatch": (lambda: ((q, d[:2]), {}), "documents_embeddings"),
        "dimension mismatch": (lambda: ((q, _randn(3, 5, 3, seed=24)), {}), "documents_embeddings"),
        "list items of different dimensions": (lambda: (([q[0], q[1, :, :3], q[2]], d), {}), "queries_embeddings[1]"),
        "4-D documents": (lambda: ((q, d[:, None]), {}), "documents_embeddings"),
        "query mask too wide": (lambda: ((q, d), {"queries_mask": torch.ones(3, 4)}), "queries_mask"),
        "document list mask too short": (
            lambda: ((ragged_q, ragged_d), {"documents_mask": [d_mask[0, :1], d_mask[1, :4], d_mask[2, :3]]}),
            "documents_mask",
        ),
        "3-D document mask": (lambda: ((q, d), {"documents_mask": d_mask[:, None]}), "documents_mask"),
    }


PAIRWISE_CASES = _pairwise_cases()


@pytest.mark.parametrize("case", list(PAIRWISE_CASES))
@pytest.mark.parametrize("name", PAIRWISE)
def test_pairwise_scores_match_the_reference(name: str, case: str) -> None:
    build, names_in_error = PAIRWISE_CASES[case]
    _assert_same(name, build(), names_in_error)
    args, kwargs = build()
    _assert_same(name, (args, {**kwargs, "length_normalize": not name.startswith("mean")}), names_in_error)


# ---------------------------------------------------------------------------------------------------------------
# XTR


def _xtr_cases() -> dict[str, tuple[Callable[[], Case], str | None]]:
    q, d = _randn(2, 3, 4, seed=30), _randn(2, 2, 5, 4, seed=31)
    q_mask, d_mask = _mask(2, 3, seed=32).float(), _mask(2, 2, 5, seed=33)
    all_masked_doc = d_mask.clone()
    all_masked_doc[1, 0] = False
    return {
        "plain": (lambda: ((q, d), {}), None),
        "masks": (lambda: ((q, d), {"queries_mask": q_mask, "documents_mask": d_mask}), None),
        "weighted query mask": (lambda: ((q, d), {"queries_mask": torch.rand(2, 3)}), None),
        "float64 query mask": (lambda: ((q, d), {"queries_mask": q_mask.double()}), None),
        "1-D query mask": (lambda: ((q, d), {"queries_mask": torch.tensor([1.0, 0.0, 1.0])}), None),
        "one-row query mask": (lambda: ((q, d), {"queries_mask": q_mask[:1]}), None),
        "flat document mask": (lambda: ((q, d), {"documents_mask": d_mask.reshape(4, 5)}), None),
        "numpy embeddings": (lambda: ((q.numpy(), d.numpy()), {}), None),
        "list of tensors": (lambda: (([q[0], q[1]], d), {}), None),
        "nested lists": (lambda: ((q.tolist(), d.tolist()), {}), None),
        "zero rows are padding": (
            lambda: (
                (torch.cat([q[:, :2], torch.zeros(2, 1, 4)], 1), torch.cat([d[:, :, :3], torch.zeros(2, 2, 2, 4)], 2)),
                {},
            ),
            None,
        ),
        "all-masked query": (lambda: ((q, d), {"queries_mask": torch.tensor([[1.0, 1, 1], [0, 0, 0]])}), None),
        "all-masked document": (lambda: ((q, d), {"documents_mask": all_masked_doc}), None),
        "zero-length queries": (lambda: ((torch.zeros(2, 0, 4), d), {}), None),
        "no query and no group": (lambda: ((torch.zeros(0, 3, 4), torch.zeros(0, 2, 5, 4)), {}), None),
        "chunk_elements 1": (lambda: ((q, d), {"chunk_elements": 1, "documents_mask": d_mask}), None),
        "chunk_elements 0": (lambda: ((q, d), {"chunk_elements": 0}), None),
        "chunk_elements 45": (lambda: ((q, d), {"chunk_elements": 45}), None),
        "float64": (lambda: ((q.double(), d.double()), {}), None),
        "integer": (lambda: (((q * 10).int(), (d * 10).int()), {}), None),
        # errors
        "ragged list": (lambda: (([q[0], q[1, :2]], d), {}), "queries_embeddings"),
        "3-D documents": (lambda: ((q, d[:, 0]), {}), "documents_embeddings"),
        "2-D query": (lambda: ((q[0], d), {}), "queries_embeddings"),
        "dimension mismatch": (lambda: ((q, _randn(2, 2, 5, 3, seed=34)), {}), "documents_embeddings"),
        "zero-length documents": (lambda: ((q, torch.zeros(2, 2, 0, 4)), {}), "documents_embeddings"),
        "document mask of another size": (lambda: ((q, d), {"documents_mask": torch.ones(2, 2, 4)}), "documents_mask"),
        "query mask too wide": (lambda: ((q, d), {"queries_mask": torch.ones(2, 4)}), "queries_mask"),
        "query mask for three queries": (lambda: ((q, d), {"queries_mask": torch.ones(3, 3)}), "queries_mask"),
        "list query mask": (lambda: ((q, d), {"queries_mask": [q_mask[0], q_mask[1]]}), "queries_mask"),
        "numpy document mask": (lambda: ((q, d), {"documents_mask": d_mask.numpy()}), "documents_mask"),
        "chunk_elements text": (lambda: ((q, d), {"chunk_elements": "many"}), "chunk_elements"),
    }


XTR_CASES = _xtr_cases()


@pytest.mark.parametrize("top_k", TOP_KS)
@pytest.mark.parametrize("case", list(XTR_CASES))
@pytest.mark.parametrize("name", XTR)
def test_xtr_scores_match_the_reference(name: str, case: str, top_k: int) -> None:
    build, names_in_error = XTR_CASES[case]
    args, kwargs = build()
    _assert_same(name, (args, {**kwargs, "top_k": top_k}), names_in_error)


@pytest.mark.parametrize("top_k", TOP_KS)
@pytest.mark.parametrize(
    ("case", "names_in_error"),
    [
        ("3-D documents", None),
        ("3-D documents, 2-D mask", None),
        ("4-D documents, one per query", None),
        ("4-D documents, two per query", None),
        ("list document mask", "documents_mask"),
        ("dimension mismatch", "documents_embeddings"),
    ],
)
def test_xtr_scores_pairwise_matches_the_reference(case: str, names_in_error: str | None, top_k: int) -> None:
    q, d = _randn(3, 3, 4, seed=40), _randn(3, 5, 4, seed=41)
    d_mask = _mask(3, 5, seed=42)
    cases: dict[str, Case] = {
        "3-D documents": ((q, d), {}),
        "3-D documents, 2-D mask": ((q, d), {"documents_mask": d_mask, "queries_mask": _mask(3, 3, seed=43)}),
        "4-D documents, one per query": ((q, d[:, None]), {"documents_mask": d_mask[:, None]}),
        "4-D documents, two per query": ((q, _randn(3, 2, 5, 4, seed=44)), {}),
        "list document mask": ((q, d), {"documents_mask": [d_mask[0], d_mask[1], d_mask[2]]}),
        "dimension mismatch": ((q, _randn(3, 5, 3, seed=45)), {}),
    }
    args, kwargs = cases[case]
    _assert_same("xtr_scores_pairwise", (args, {**kwargs, "top_k": top_k}), names_in_error)


@pytest.mark.parametrize("name", ["xtr_scores", "xtr_kd_scores", "xtr_scores_pairwise"])
@pytest.mark.parametrize(
    ("top_k", "error"),
    [(0, ValueError), (-3, ValueError), (True, ValueError), (0.0, ValueError), (1.5, TypeError), (None, TypeError)],
)
def test_xtr_top_k_must_be_a_positive_integer(name: str, top_k: Any, error: type[Exception]) -> None:
    q, d = _randn(2, 3, 4, seed=50), _randn(2, 2, 5, 4, seed=51)
    with pytest.raises(error):
        getattr(ref_scoring, name)(q, d, top_k=top_k)
    with pytest.raises(error, match="top_k must be a positive integer"):
        getattr(our_scoring, name)(q, d, top_k=top_k)


def test_xtr_mask_type_error_is_also_an_attribute_error() -> None:
    """The reference calls tensor methods on the mask (AttributeError); sentrs raises a TypeError that is both."""
    q, d = _randn(2, 3, 4, seed=52), _randn(2, 2, 5, 4, seed=53)
    with pytest.raises(TypeError, match="queries_mask must be a torch tensor") as info:
        our_scoring.xtr_scores(q, d, queries_mask=np.ones((2, 3)))
    assert isinstance(info.value, AttributeError)


@pytest.mark.parametrize("top_k", [1, 7, 256])
@pytest.mark.parametrize("chunk_elements", [None, 1, 100])
def test_xtr_callables_match_the_reference(top_k: int, chunk_elements: int | None) -> None:
    q, d = _randn(2, 3, 4, seed=60), _randn(2, 3, 4, 4, seed=61)
    masks = {"queries_mask": _mask(2, 3, seed=62), "documents_mask": _mask(2, 3, 4, seed=63)}
    for our_class, ref_class in [
        (our_scoring.XTRScores, ref_scoring.XTRScores),
        (our_scoring.XTRKDScores, ref_scoring.XTRKDScores),
    ]:
        ours, ref = our_class(top_k, chunk_elements=chunk_elements), ref_class(top_k, chunk_elements=chunk_elements)
        assert ours.get_config_dict() == ref.get_config_dict() == {"top_k": top_k, "chunk_elements": chunk_elements}
        torch.testing.assert_close(ours(q, d, **masks), ref(q, d, **masks), **SCORE_TOL)
    assert issubclass(our_scoring.XTRKDScores, our_scoring.XTRScores)
    assert our_scoring.XTRKDScores()(q, d).shape == (2, 3)
    assert our_scoring.XTRScores()(q, d).shape == (2, 6)
    with pytest.raises(TypeError):
        our_scoring.XTRScores(8, 100)  # type: ignore[misc]  # chunk_elements is keyword-only, as in the reference
    with pytest.raises(ValueError, match="top_k must be a positive integer, got 0"):
        our_scoring.XTRScores(top_k=0)(q, d)  # checked when called, as in the reference


# ---------------------------------------------------------------------------------------------------------------
# gradients


def _gradients(
    library: Any, name: str, q: torch.Tensor, d: torch.Tensor, kwargs: dict[str, Any]
) -> list[torch.Tensor]:
    """The scores and the gradients of a fixed weighted sum of the finite ones, for both embeddings."""
    queries, documents = q.clone().requires_grad_(True), d.clone().requires_grad_(True)
    scores = getattr(library, name)(queries, documents, **kwargs)
    assert scores.requires_grad
    weights = torch.linspace(-1.0, 1.0, scores.numel()).reshape(scores.shape)
    # Documents without a token score -1e9 by a constant fill; leave them out so the sum stays small.
    (torch.where(scores > -1e8, scores, 0.0) * weights).sum().backward()
    assert queries.grad is not None and documents.grad is not None
    return [scores.detach(), queries.grad, documents.grad]


def _gradient_inputs(name: str) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    q = _randn(3, 4, 8, seed=70)
    q_mask = _mask(3, 4, seed=71).float()
    if "pairwise" in name:
        d, d_mask = _randn(3, 6, 8, seed=72), _mask(3, 6, seed=73)
        d_mask[2] = False  # a document without tokens
    else:
        d, d_mask = _randn(3, 2, 6, 8, seed=74), _mask(3, 2, 6, seed=75)
        d_mask[1, 1] = False
    return q, d, {"queries_mask": q_mask, "documents_mask": d_mask}


@pytest.mark.parametrize("options", ["no masks", "masks", "weights and chunks"])
@pytest.mark.parametrize("name", GROUPED + PAIRWISE)
def test_colbert_gradients_match_the_reference(name: str, options: str) -> None:
    q, d, masks = _gradient_inputs(name)
    kwargs: dict[str, Any] = {
        "no masks": {},
        "masks": masks,
        "weights and chunks": {**masks, "queries_mask": torch.rand(3, 4), "chunk_elements": 1},
    }[options]
    for got, expected, tol in zip(
        _gradients(our_scoring, name, q, d, kwargs),
        _gradients(ref_scoring, name, q, d, kwargs),
        [SCORE_TOL, GRAD_TOL, GRAD_TOL],
    ):
        torch.testing.assert_close(got, expected, **tol)


@pytest.mark.parametrize("options", ["no masks", "masks", "weights and chunks"])
@pytest.mark.parametrize("top_k", [1, 2, 5, 12, 36, 1000])
@pytest.mark.parametrize("name", ["xtr_scores", "xtr_kd_scores", "xtr_scores_pairwise"])
def test_xtr_gradients_match_the_reference(name: str, top_k: int, options: str) -> None:
    q, d, masks = _gradient_inputs(name)
    kwargs: dict[str, Any] = {
        "no masks": {},
        "masks": masks,
        "weights and chunks": {**masks, "queries_mask": torch.rand(3, 4), "chunk_elements": 50},
    }[options]
    kwargs["top_k"] = top_k
    for got, expected, tol in zip(
        _gradients(our_scoring, name, q, d, kwargs),
        _gradients(ref_scoring, name, q, d, kwargs),
        [SCORE_TOL, GRAD_TOL, GRAD_TOL],
    ):
        torch.testing.assert_close(got, expected, **tol)


# ---------------------------------------------------------------------------------------------------------------
# dtypes, API, logging, deliberate differences


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", GROUPED + XTR)
def test_half_precision_scores_in_float32(name: str, dtype: torch.dtype) -> None:
    q, d = _randn(2, 3, 4, seed=80).to(dtype), _randn(2, 2, 5, 4, seed=81).to(dtype)
    _assert_same(name, ((q, d), {}), tol=HALF_TOL)
    assert getattr(our_scoring, name)(q, d).dtype == torch.float32


def test_names_and_signatures_match_the_reference() -> None:
    assert sorted(our_scoring.__all__) == sorted(ref_scoring.__all__)
    for name in ref_scoring.__all__:
        ours, ref = getattr(our_scoring, name), getattr(ref_scoring, name)
        if inspect.isclass(ref):
            ours, ref = ours.__init__, ref.__init__
            assert list(inspect.signature(our_scoring.XTRScores.__call__).parameters) == list(
                inspect.signature(ref_scoring.XTRScores.__call__).parameters
            )
        ours_parameters = inspect.signature(ours).parameters.values()
        ref_parameters = inspect.signature(ref).parameters.values()
        assert [(p.name, p.kind, p.default) for p in ours_parameters] == [
            (p.name, p.kind, p.default) for p in ref_parameters
        ], name


def test_xtr_logs_documents_without_tokens(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentrs.base.maxsim, "_warned_empty", False)
    q, d = _randn(2, 3, 4, seed=90), _randn(2, 2, 5, 4, seed=91)
    d_mask = torch.ones(2, 2, 5, dtype=torch.bool)
    d_mask[0, 1] = False
    with caplog.at_level(logging.WARNING, logger="sentrs.base.maxsim"):
        scores = our_scoring.xtr_scores(q, d, documents_mask=d_mask)
    assert (scores[:, 1] == -1e9).all() and (scores[:, [0, 2, 3]] > -1e8).all()
    assert any("no token to score" in record.getMessage() for record in caplog.records)


def test_scores_stay_differentiable_and_on_the_host_path_without_gradients() -> None:
    """Without gradients, float32 CPU inputs go to the Rust kernel; with them, torch. Both agree."""
    q, d = _randn(2, 3, 4, seed=95), _randn(2, 2, 5, 4, seed=96)
    plain = our_scoring.colbert_scores(q, d)
    assert not plain.requires_grad
    tracked = our_scoring.colbert_scores(q.requires_grad_(True), d)
    assert tracked.requires_grad
    torch.testing.assert_close(plain, tracked.detach(), **SCORE_TOL)


@pytest.mark.parametrize(
    ("name", "case", "error", "names_in_error"),
    [
        # The reference reads only the first N columns of a wider document mask.
        ("colbert_scores", "document mask for more documents", IndexError, "documents_mask"),
        ("colbert_kd_scores", "document mask for more documents", IndexError, "documents_mask"),
        # The reference (without length_normalize) weighs each pair by the first rows of a taller query mask.
        ("colbert_kd_scores", "query mask for three queries", RuntimeError, "queries_mask"),
        # The reference returns the scores of the first Q_doc queries only when there are fewer document groups.
        ("xtr_kd_scores", "fewer document groups", RuntimeError, "documents_embeddings"),
        ("xtr_scores_pairwise", "fewer documents", RuntimeError, "documents_embeddings"),
    ],
)
def test_inputs_sentrs_refuses_on_purpose(name: str, case: str, error: type[Exception], names_in_error: str) -> None:
    """Mismatched shapes the reference silently scores with part of its inputs."""
    q, d = _randn(2, 3, 4, seed=97), _randn(2, 2, 5, 4, seed=98)
    cases: dict[str, Case] = {
        "document mask for more documents": ((q, d), {"documents_mask": torch.ones(2, 3, 5)}),
        "query mask for three queries": ((q, d), {"queries_mask": torch.ones(3, 3)}),
        "fewer document groups": ((q, d[:1]), {}),
        "fewer documents": ((q, d[:1, 0]), {}),
    }
    args, kwargs = cases[case]
    getattr(ref_scoring, name)(*args, **kwargs)
    with pytest.raises(error, match=names_in_error):
        getattr(our_scoring, name)(*args, **kwargs)
