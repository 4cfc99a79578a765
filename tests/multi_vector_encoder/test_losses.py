"""The multi-vector training losses against the reference's: same value, same gradient on every parameter, same config
and citation, and clear errors for bad input.

Each case loads one reference-built tiny MultiVectorEncoder folder (random 2-layer BERT, hidden 32, + Dense(128) +
MultiVectorMask + Normalize) in both libraries, preprocesses the same texts with each library's own
``model.preprocess(texts, task=...)`` (the query column as a query, the others as documents, the task stamped on the
features as the data collator does), and runs the reference's loss on the reference model and sentrs' loss on the
sentrs model. Models are in eval mode unless a case says ``train`` (then both draw dropout masks from the same seed,
which only agree when both embed the same rows in the same passes and, for the cached loss, replay them).

Tolerances: the value to 1e-5 relative, each parameter's gradient to 1e-4 of that gradient's largest magnitude plus
1e-7 of the largest gradient of the model. Both libraries run the same float32 torch math (today the results agree
to a few ulps); the margins leave room for a different summation order (chunked scoring, another reduction), ~1e-7
relative amplified by backpropagation through two layers. The floor covers the attention key biases, whose gradient
is zero in exact math (the softmax is shift-invariant), so theirs is ~1e-11 rounding noise with no scale of its own.
A real difference in the math (a wrong scale, mask, task, positive column, dropout mask) moves the results by far
more, which ``test_comparison_detects_a_different_loss`` checks.
"""

from __future__ import annotations

import functools
import importlib
import logging
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

VALUE_RTOL = 1e-5
GRAD_SCALE_TOL = 1e-4
GRAD_FLOOR = 1e-7

QUERIES = ["who wrote hamlet?", "boiling point of water", "cats", "where do penguins live", "a b c"]
POSITIVES = [
    "Hamlet is a tragedy by William Shakespeare.",
    "Water boils at 100 degrees Celsius at sea level, a little lower in the mountains.",
    "A cat purrs.",
    "Penguins live in the southern hemisphere, mostly around Antarctica.",
    "letters",
]
NEGATIVES_1 = ["Macbeth is set in Scotland.", "Ice melts.", "Dogs bark at the mailman every day.", "birds", "x y z"]
NEGATIVES_2 = ["", "The sun rises in the east.", "A dog sleeps!", "Polar bears live in the Arctic.", "numbers 1 2 3"]
COLUMNS = [QUERIES, POSITIVES, NEGATIVES_1, NEGATIVES_2]
ROWS = len(QUERIES)
_PACKAGES = {"ref": "sentence_transformers", "ours": "sentrs"}


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    """The tiny models' tensors are far too small for a thread pool to pay off, and on busy shared cores one costs
    several times the single-threaded time; restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(tiny_bert_dir: str, out: Path, **transformer_settings: Any) -> str:
    """A reference-built MultiVectorEncoder folder; ``skiplist`` puts punctuation in the MultiVectorMask."""
    import sentence_transformers as st
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    skiplist = transformer_settings.pop("skiplist", False)
    torch.manual_seed(1)
    ref = st.MultiVectorEncoder(tiny_bert_dir, device="cpu")
    for key, value in transformer_settings.items():
        setattr(ref[0], key, value)
    if skiplist:
        mask = MultiVectorMask(skiplist_words=list(string.punctuation))
        mask.on_model_ready(ref)
        ref._modules["2"] = mask
    ref.save(str(out))
    return str(out)


#: The folders the tests build. ``plain``: the default head. ``colbert``: query expansion to 12 tokens without
#: attention (the expansion positions carry attention mask 0 but are scored), documents cut at 20 tokens, a punctuation
#: skiplist for documents. ``attend``: query expansion to 12 tokens that the encoder attends to.
FOLDER_SETTINGS: dict[str, dict[str, Any]] = {
    "plain": {},
    "colbert": {
        "query_expansion": {"strategy": "fixed", "attend": False, "length": 12},
        "document_length": 20,
        "skiplist": True,
    },
    "attend": {"query_expansion": {"strategy": "fixed", "attend": True, "length": 12}},
}


@pytest.fixture(scope="module")
def mve_folder(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """``folder(kind)``: the reference-built folder of one of :data:`FOLDER_SETTINGS`, built once per kind."""
    cache: dict[str, str] = {}

    def folder(kind: str) -> str:
        if kind not in cache:
            out = tmp_path_factory.mktemp(f"mve_{kind}") / kind
            cache[kind] = _build(tiny_bert_dir, out, **FOLDER_SETTINGS[kind])
        return cache[kind]

    return folder


@pytest.fixture(scope="module")
def model_pairs(mve_folder: Callable[[str], str]) -> Callable[[str], tuple[Any, Any]]:
    """``pairs(kind)``: (reference model, sentrs model) loaded from the same folder, once per kind."""
    cache: dict[str, tuple[Any, Any]] = {}

    def pairs(kind: str) -> tuple[Any, Any]:
        if kind not in cache:
            cache[kind] = _load_both(mve_folder(kind))
        return cache[kind]

    return pairs


def _load_both(folder: str) -> tuple[Any, Any]:
    import sentence_transformers as st

    import sentrs

    return st.MultiVectorEncoder(folder, device="cpu"), sentrs.MultiVectorEncoder(folder, device="cpu")


def _features(model: Any, n_columns: int, stamp_task: bool, rows: slice = slice(None)) -> list[dict[str, Any]]:
    """Each column's texts preprocessed by ``model``: the first as queries, the others as documents."""
    features = []
    for index, texts in enumerate(COLUMNS[:n_columns]):
        task = "query" if index == 0 else "document"
        column = model.preprocess(texts[rows], task=task)
        if stamp_task:
            column["task"] = task
        features.append(column)
    return features


def _run(
    loss: nn.Module,
    model: Any,
    n_columns: int,
    labels: Any,
    stamp_task: bool,
    train: bool,
    rows: slice = slice(None),
) -> tuple[float, dict[str, torch.Tensor | None]]:
    """The loss value and every parameter's gradient after ``backward``, from a fixed random state."""
    model.zero_grad(set_to_none=True)
    model.train(train)
    try:
        features = _features(model, n_columns, stamp_task, rows)
        torch.manual_seed(0)
        value = loss(features, labels)
        value.backward()
    finally:
        model.eval()
    grads = {name: None if p.grad is None else p.grad.clone() for name, p in model.named_parameters()}
    return value.item(), grads


def _assert_same(ref: tuple[float, dict[str, Any]], ours: tuple[float, dict[str, Any]]) -> None:
    (ref_value, ref_grads), (our_value, our_grads) = ref, ours
    assert our_value == pytest.approx(ref_value, rel=VALUE_RTOL)
    assert our_grads.keys() == ref_grads.keys()
    model_scale = max(float(g.abs().max()) for g in ref_grads.values() if g is not None)
    assert model_scale > 0
    for name, ref_grad in ref_grads.items():
        our_grad = our_grads[name]
        assert (our_grad is None) == (ref_grad is None), name
        if ref_grad is None:
            continue
        atol = GRAD_SCALE_TOL * float(ref_grad.abs().max()) + GRAD_FLOOR * model_scale
        try:
            torch.testing.assert_close(our_grad, ref_grad, rtol=0.0, atol=atol)
        except AssertionError as exc:
            raise AssertionError(f"gradient of {name}: {exc}") from None


def _scoring(lib: str) -> Any:
    """The ``multi_vector_encoder.scoring`` module of the reference (``"ref"``) or of sentrs."""
    return importlib.import_module(f"{_PACKAGES[lib]}.multi_vector_encoder.scoring")


def _losses(lib: str) -> Any:
    """The ``multi_vector_encoder.losses`` module of the reference (``"ref"``) or of sentrs."""
    return importlib.import_module(f"{_PACKAGES[lib]}.multi_vector_encoder.losses")


def _compare(
    model_pairs: Callable[[str], tuple[Any, Any]],
    loss_name: str,
    make_kwargs: Callable[[Any], dict[str, Any]],
    *,
    kind: str = "plain",
    n_columns: int = 3,
    labels: Any = None,
    stamp_task: bool = True,
    train: bool = False,
    our_overrides: dict[str, Any] | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Runs ``loss_name`` of the reference on the reference model and ours on ours, the loss arguments built by
    ``make_kwargs(scoring_module)`` from each library's scorers, and compares config, citation, value, gradients."""
    ref_model, our_model = model_pairs(kind)
    ref_loss = getattr(_losses("ref"), loss_name)(ref_model, **make_kwargs(_scoring("ref")))
    our_loss = getattr(_losses("ours"), loss_name)(
        our_model, **{**make_kwargs(_scoring("ours")), **(our_overrides or {})}
    )
    if not our_overrides:
        assert our_loss.get_config_dict() == ref_loss.get_config_dict()
    assert our_loss.citation == ref_loss.citation
    _assert_same(
        _run(ref_loss, ref_model, n_columns, labels, stamp_task, train),
        _run(our_loss, our_model, n_columns, labels, stamp_task, train),
    )
    return ref_loss, our_loss


def _teacher(n_candidates: int, seed: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(ROWS, n_candidates, generator=generator) * 3


# ------------------------------------------------------------------ MultiVectorMultipleNegativesRankingLoss

MNRL_CASES: list[tuple[str, Callable[[Any], dict[str, Any]], dict[str, Any]]] = [
    ("defaults-pairs", lambda s: {}, {"n_columns": 2}),
    ("scale-hard-negative", lambda s: {"scale": 2.5}, {}),
    ("mean-maxsim-two-negatives", lambda s: {"similarity_fct": s.mean_colbert_scores, "scale": 5.0}, {"n_columns": 4}),
    ("xtr-configured", lambda s: {"similarity_fct": s.XTRScores(top_k=8)}, {}),
    ("xtr-function", lambda s: {"similarity_fct": s.xtr_scores}, {"n_columns": 2}),
    ("colbert-partial", lambda s: {"similarity_fct": functools.partial(s.colbert_scores, chunk_elements=4000)}, {}),
    ("mini-batches", lambda s: {"mini_batch_size": 2, "score_mini_batch_size": 2}, {"n_columns": 4}),
    ("query-expansion", lambda s: {}, {"kind": "colbert"}),
    ("query-expansion-mini-batches", lambda s: {"mini_batch_size": 3}, {"kind": "colbert", "n_columns": 4}),
    ("query-expansion-attended", lambda s: {"scale": 3.0}, {"kind": "attend"}),
    ("task-not-stamped", lambda s: {}, {"kind": "colbert", "stamp_task": False}),
    ("train-mode-dropout", lambda s: {}, {"train": True, "n_columns": 4}),
]


@pytest.mark.parametrize(
    ("make_kwargs", "options"), [case[1:] for case in MNRL_CASES], ids=[case[0] for case in MNRL_CASES]
)
def test_mnrl_matches_reference(
    model_pairs: Callable[[str], tuple[Any, Any]], make_kwargs: Callable[[Any], dict[str, Any]], options: dict
) -> None:
    _compare(model_pairs, "MultiVectorMultipleNegativesRankingLoss", make_kwargs, **options)


def test_mnrl_gather_across_devices_outside_a_job_is_the_local_loss(
    model_pairs: Callable[[str], tuple[Any, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        _compare(model_pairs, "MultiVectorMultipleNegativesRankingLoss", lambda s: {"gather_across_devices": True})


#: The rows of each rank in the distributed test: the same count (a gather needs it) of texts of other lengths, so
#: that each rank pads its columns to another width and the gather has to pad them to the widest first.
RANK_ROWS = [slice(0, 2), slice(2, 4)]
DISTRIBUTED_LOSSES: list[tuple[str, dict[str, Any]]] = [
    ("MultiVectorMultipleNegativesRankingLoss", {}),
    ("CachedMultiVectorMultipleNegativesRankingLoss", {"mini_batch_size": 1}),
]


def _distributed_worker(rank: int, folder: str, rendezvous: str, results: Any) -> None:
    """One process of :func:`test_gather_across_devices_in_a_two_process_job`: both libraries' losses with gathering,
    and ours without, on this rank's rows."""
    import warnings

    import torch.distributed as dist

    torch.set_num_threads(1)  # one core per process: two processes with a thread pool each would contend
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=len(RANK_ROWS))
    seen: dict[str, Any] = {}
    try:
        models = dict(zip(("ref", "ours"), _load_both(folder)))
        for name, kwargs in DISTRIBUTED_LOSSES:
            for lib, model in models.items():
                loss = getattr(_losses(lib), name)(model, gather_across_devices=True, **kwargs)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # the reference's deprecated torch gather
                    value, grads = _run(loss, model, 3, None, True, False, RANK_ROWS[rank])
                seen[f"{name} {lib}"] = (value, {k: None if g is None else g.numpy() for k, g in grads.items()})
            local = getattr(_losses("ours"), name)(models["ours"], **kwargs)
            seen[f"{name} local"] = _run(local, models["ours"], 3, None, True, False, RANK_ROWS[rank])[0]
    except Exception as exc:
        seen["error"] = repr(exc)
    finally:
        dist.destroy_process_group()
    results.put((rank, seen))


@pytest.mark.slow
def test_gather_across_devices_in_a_two_process_job(mve_folder: Callable[[str], str], tmp_path: Path) -> None:
    """A real job of 2 ``gloo`` processes (spawned; ~30 s on 2 busy cores), ranks with different token widths: each
    rank's loss and gradients match the reference's (same tolerances), and differ from the loss without
    gathering (the other rank's documents are negatives too)."""
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    results = context.Queue()
    args = (mve_folder("colbert"), str(tmp_path / "rendezvous"), results)
    processes = [context.Process(target=_distributed_worker, args=(rank, *args)) for rank in range(len(RANK_ROWS))]
    for process in processes:
        process.start()
    seen = dict(results.get(timeout=180) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    for rank in range(len(RANK_ROWS)):
        assert "error" not in seen[rank], seen[rank]
        for name, _ in DISTRIBUTED_LOSSES:
            ref_value, ref_grads = seen[rank][f"{name} ref"]
            our_value, our_grads = seen[rank][f"{name} ours"]
            as_tensors = {k: None if g is None else torch.from_numpy(g) for k, g in ref_grads.items()}
            _assert_same(
                (ref_value, as_tensors),
                (our_value, {k: None if g is None else torch.from_numpy(g) for k, g in our_grads.items()}),
            )
            assert our_value != pytest.approx(seen[rank][f"{name} local"], rel=1e-3), (rank, name)


def test_mnrl_honours_column_merging_disabled(model_pairs: Callable[[str], tuple[Any, Any]]) -> None:
    """With merging off, every document column gets its own pass in both libraries (dropout draws per pass)."""
    from sentence_transformers.base.losses.merged_forward import column_merging_disabled as ref_disabled

    from sentrs.sentence_transformer.losses import _inputs

    with ref_disabled(), _inputs.column_merging_disabled():
        _compare(model_pairs, "MultiVectorMultipleNegativesRankingLoss", lambda s: {}, n_columns=4, train=True)


def test_comparison_detects_a_different_loss(model_pairs: Callable[[str], tuple[Any, Any]]) -> None:
    """The comparison is sensitive: a 2% different scale, or the query column embedded as a document (which drops
    query expansion), fails it."""
    name = "MultiVectorMultipleNegativesRankingLoss"
    with pytest.raises(AssertionError):
        _compare(model_pairs, name, lambda s: {"scale": 1.0}, our_overrides={"scale": 1.02})
    ref_model, our_model = model_pairs("colbert")
    ref = _run(getattr(_losses("ref"), name)(ref_model), ref_model, 3, None, True, False)
    features = _features(our_model, 3, stamp_task=True)
    features[0]["task"] = "document"
    value = _losses("ours").MultiVectorMultipleNegativesRankingLoss(our_model)(features)
    assert value.item() != pytest.approx(ref[0], rel=VALUE_RTOL)


# ------------------------------------------------------------------ CachedMultiVectorMultipleNegativesRankingLoss

CACHED_CASES: list[tuple[str, Callable[[Any], dict[str, Any]], dict[str, Any]]] = [
    ("ragged-mini-batches", lambda s: {"mini_batch_size": 2}, {}),
    (
        "score-chunks-scale",
        lambda s: {"mini_batch_size": 2, "score_mini_batch_size": 3, "scale": 3.0},
        {"n_columns": 2},
    ),
    ("token-budget", lambda s: {"mini_batch_num_tokens": 14}, {}),
    ("xtr", lambda s: {"mini_batch_size": 2, "similarity_fct": s.XTRScores(top_k=16)}, {}),
    ("mean-maxsim", lambda s: {"mini_batch_size": 4, "similarity_fct": s.mean_colbert_scores}, {"n_columns": 4}),
    ("query-expansion", lambda s: {"mini_batch_size": 2}, {"kind": "colbert"}),
    ("query-expansion-attended", lambda s: {"mini_batch_size": 3}, {"kind": "attend", "n_columns": 4}),
    ("task-not-stamped", lambda s: {"mini_batch_size": 2}, {"kind": "colbert", "stamp_task": False}),
    ("train-mode-dropout-replay", lambda s: {"mini_batch_size": 2}, {"train": True}),
]


@pytest.mark.parametrize(
    ("make_kwargs", "options"), [case[1:] for case in CACHED_CASES], ids=[case[0] for case in CACHED_CASES]
)
def test_cached_mnrl_matches_reference(
    model_pairs: Callable[[str], tuple[Any, Any]], make_kwargs: Callable[[Any], dict[str, Any]], options: dict
) -> None:
    _compare(model_pairs, "CachedMultiVectorMultipleNegativesRankingLoss", make_kwargs, **options)


def test_cached_mnrl_equals_the_uncached_loss_and_works_without_gradients(
    model_pairs: Callable[[str], tuple[Any, Any]],
) -> None:
    ref_model, our_model = model_pairs("colbert")
    losses = _losses("ours")
    plain = _run(losses.MultiVectorMultipleNegativesRankingLoss(our_model), our_model, 3, None, True, False)
    cached_loss = losses.CachedMultiVectorMultipleNegativesRankingLoss(our_model, mini_batch_size=2)
    cached = _run(cached_loss, our_model, 3, None, True, False)
    _assert_same(plain, cached)
    ref_loss = _losses("ref").CachedMultiVectorMultipleNegativesRankingLoss(ref_model, mini_batch_size=2)
    with torch.no_grad():
        ours = cached_loss(_features(our_model, 3, stamp_task=True))
        ref = ref_loss(_features(ref_model, 3, stamp_task=True))
    assert not ours.requires_grad
    assert ours.item() == pytest.approx(ref.item(), rel=VALUE_RTOL)
    assert ours.item() == pytest.approx(plain[0], rel=VALUE_RTOL)


# ------------------------------------------------------------------ MultiVectorDistillKLDivLoss

KD_CASES: list[tuple[str, Callable[[Any], dict[str, Any]], dict[str, Any]]] = [
    ("defaults", lambda s: {}, {}),
    ("temperature-three-candidates", lambda s: {"temperature": 0.5}, {"n_columns": 4}),
    ("separate-temperatures", lambda s: {"student_temperature": 2.0, "teacher_temperature": 0.5}, {}),
    ("mean-maxsim", lambda s: {"similarity_fct": s.mean_colbert_kd_scores}, {"n_columns": 4}),
    ("xtr-configured", lambda s: {"similarity_fct": s.XTRKDScores(top_k=8)}, {}),
    ("xtr-function", lambda s: {"similarity_fct": s.xtr_kd_scores}, {"n_columns": 4}),
    ("mini-batches", lambda s: {"mini_batch_size": 2}, {"n_columns": 4}),
    ("query-expansion", lambda s: {"temperature": 2.0}, {"kind": "colbert"}),
    ("query-expansion-attended-unstamped", lambda s: {}, {"kind": "attend", "stamp_task": False}),
]


@pytest.mark.parametrize(
    ("make_kwargs", "options"), [case[1:] for case in KD_CASES], ids=[case[0] for case in KD_CASES]
)
def test_distill_kl_div_matches_reference(
    model_pairs: Callable[[str], tuple[Any, Any]], make_kwargs: Callable[[Any], dict[str, Any]], options: dict
) -> None:
    labels = _teacher(options.get("n_columns", 3) - 1)
    _compare(model_pairs, "MultiVectorDistillKLDivLoss", make_kwargs, labels=labels, **options)


def test_distill_kl_div_warns_once_when_the_teacher_softmax_underflows(
    model_pairs: Callable[[str], tuple[Any, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    labels = _teacher(2) * 1000
    with caplog.at_level(logging.WARNING, logger="sentrs"):
        _compare(model_pairs, "MultiVectorDistillKLDivLoss", lambda s: {"teacher_temperature": 0.5}, labels=labels)
    assert sum("underflows" in r.getMessage() for r in caplog.records if r.name.startswith("sentrs")) == 1


# ------------------------------------------------------------------ MultiVectorMarginMSELoss

MARGIN_CASES: list[tuple[str, Callable[[Any], dict[str, Any]], dict[str, Any]]] = [
    ("flat-margins", lambda s: {}, {"labels": _teacher(1, seed=4)[:, 0]}),
    ("raw-scores-one-negative", lambda s: {}, {"labels": _teacher(2, seed=5)}),
    ("margins-two-negatives", lambda s: {}, {"n_columns": 4, "labels": _teacher(2, seed=6)}),
    ("raw-scores-two-negatives", lambda s: {}, {"n_columns": 4, "labels": _teacher(3, seed=7)}),
    ("mean-maxsim", lambda s: {"similarity_fct": s.mean_colbert_scores_pairwise}, {"labels": _teacher(1)}),
    ("xtr", lambda s: {"similarity_fct": s.xtr_scores_pairwise}, {"n_columns": 4, "labels": _teacher(2)}),
    (
        "xtr-top-k",
        lambda s: {"similarity_fct": functools.partial(s.xtr_scores_pairwise, top_k=4)},
        {"labels": _teacher(1)},
    ),
    ("mini-batches", lambda s: {"mini_batch_size": 2}, {"n_columns": 4, "labels": _teacher(3)}),
    ("query-expansion", lambda s: {}, {"kind": "colbert", "labels": _teacher(1)}),
    (
        "query-expansion-attended-unstamped",
        lambda s: {},
        {"kind": "attend", "stamp_task": False, "labels": _teacher(1)},
    ),
]


@pytest.mark.parametrize(
    ("make_kwargs", "options"), [case[1:] for case in MARGIN_CASES], ids=[case[0] for case in MARGIN_CASES]
)
def test_margin_mse_matches_reference(
    model_pairs: Callable[[str], tuple[Any, Any]], make_kwargs: Callable[[Any], dict[str, Any]], options: dict
) -> None:
    _compare(model_pairs, "MultiVectorMarginMSELoss", make_kwargs, **options)


# ------------------------------------------------------------------ defaults and errors


def test_defaults_and_lazy_package() -> None:
    import inspect

    losses = _losses("ours")
    for name in losses.__all__:
        ours = inspect.signature(getattr(losses, name).__init__).parameters
        ref = inspect.signature(getattr(_losses("ref"), name).__init__).parameters
        assert [(p.name, p.kind, p.default) for p in ours.values()] == [
            (p.name, p.kind, p.default) for p in ref.values()
        ], name
    assert losses.CachedMultiVectorMultipleNegativesRankingLoss.uses_gradient_cache is True


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("MultiVectorMultipleNegativesRankingLoss", {"scale": 0.0}, r"scale must be a positive number, got 0\.0"),
        ("MultiVectorMultipleNegativesRankingLoss", {"scale": float("nan")}, r"scale must be a positive number"),
        ("MultiVectorMultipleNegativesRankingLoss", {"mini_batch_size": 0}, r"mini_batch_size must be a positive"),
        (
            "MultiVectorMultipleNegativesRankingLoss",
            {"score_mini_batch_size": 2.5},
            r"score_mini_batch_size must be a positive integer or None, got 2\.5",
        ),
        (
            "MultiVectorMultipleNegativesRankingLoss",
            {"similarity_fct": "maxsim"},
            r"similarity_fct must be a scoring callable .* got str",
        ),
        ("CachedMultiVectorMultipleNegativesRankingLoss", {"scale": -1.0}, r"scale must be a positive number, got -1"),
        (
            "CachedMultiVectorMultipleNegativesRankingLoss",
            {"mini_batch_size": 0},
            r"mini_batch_size must be a positive integer, got 0",
        ),
        (
            "CachedMultiVectorMultipleNegativesRankingLoss",
            {"mini_batch_num_tokens": 0},
            r"mini_batch_num_tokens must be a positive integer or None, got 0",
        ),
        ("MultiVectorDistillKLDivLoss", {"temperature": 0.0}, r"temperature must be a positive finite number, got 0"),
        (
            "MultiVectorDistillKLDivLoss",
            {"student_temperature": float("inf")},
            r"student_temperature must be a positive finite number, got inf",
        ),
        ("MultiVectorDistillKLDivLoss", {"teacher_temperature": -2.0}, r"teacher_temperature must be a positive"),
        ("MultiVectorMarginMSELoss", {"mini_batch_size": -1}, r"mini_batch_size must be a positive integer or None"),
    ],
)
def test_bad_arguments(model_pairs: Callable[[str], tuple[Any, Any]], name: str, kwargs: dict, match: str) -> None:
    _, model = model_pairs("plain")
    with pytest.raises(ValueError, match=match):
        getattr(_losses("ours"), name)(model, **kwargs)


@pytest.mark.parametrize(
    ("name", "n_columns", "labels", "match"),
    [
        (
            "MultiVectorMultipleNegativesRankingLoss",
            1,
            None,
            r"expects at least 2 input columns \(query, positive\[, negatives...\]\), got 1",
        ),
        (
            "CachedMultiVectorMultipleNegativesRankingLoss",
            1,
            None,
            r"expects at least 2 input columns .*, got 1",
        ),
        ("MultiVectorDistillKLDivLoss", 2, _teacher(1), r"expects at least 3 input columns .* with N >= 2, got 2"),
        ("MultiVectorDistillKLDivLoss", 3, None, r"expects the teacher's scores as labels, .* \(5, 2\), got NoneType"),
        (
            "MultiVectorDistillKLDivLoss",
            3,
            _teacher(3),
            r"expects teacher scores of shape \(batch_size, N\) = \(5, 2\) .* got \(5, 3\)",
        ),
        ("MultiVectorDistillKLDivLoss", 3, torch.full((ROWS, 2), float("nan")), r"teacher scores contain NaN"),
        ("MultiVectorMarginMSELoss", 2, _teacher(1), r"expects at least 3 input columns .*, got 2"),
        ("MultiVectorMarginMSELoss", 3, None, r"expects labels holding the teacher's margins.*got NoneType"),
        (
            "MultiVectorMarginMSELoss",
            4,
            _teacher(1)[:, 0],
            r"shape \(5, 2\), or its scores of every document, shape \(5, 3\) for 2 negative column\(s\); "
            r"got labels of shape \(5,\)",
        ),
        (
            "MultiVectorMarginMSELoss",
            3,
            _teacher(4),
            r"shape \(5, 1\) or \(5,\), or its scores .* shape \(5, 2\) for 1 negative column\(s\); got labels of "
            r"shape \(5, 4\)",
        ),
    ],
)
def test_bad_inputs(
    model_pairs: Callable[[str], tuple[Any, Any]], name: str, n_columns: int, labels: Any, match: str
) -> None:
    _, model = model_pairs("plain")
    loss = getattr(_losses("ours"), name)(model)
    with pytest.raises(ValueError, match=match):
        loss(_features(model, n_columns, stamp_task=True), labels)


@pytest.mark.parametrize(
    "name",
    [
        "MultiVectorMultipleNegativesRankingLoss",
        "CachedMultiVectorMultipleNegativesRankingLoss",
        "MultiVectorDistillKLDivLoss",
        "MultiVectorMarginMSELoss",
    ],
)
def test_columns_with_different_row_counts(model_pairs: Callable[[str], tuple[Any, Any]], name: str) -> None:
    _, model = model_pairs("plain")
    features = _features(model, 3, stamp_task=True)
    features[2] = model.preprocess(NEGATIVES_1[:3], task="document")
    with pytest.raises(ValueError, match=r"expects the same number of rows in every input column, got \[5, 5, 3\]"):
        getattr(_losses("ours"), name)(model)(features, _teacher(2))
