"""The training helpers of ``sentrs.util`` against the reference on the same inputs.

``resolve_ids`` (``util.dataset``), the gathers ``all_gather``/``all_gather_with_grad`` and ``distributed_evaluation``
(``util.distributed``; without a process group, and in a one-process ``gloo`` group built per test),
``check_teacher_targets`` (``util.misc``) and the old ``ModelCardTemplate``. Everything is tiny: datasets of a few
rows built in the test, tensors of a few values, and the session's tiny random BERT.
"""

from __future__ import annotations

import logging
import pickle
import re
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from sentence_transformers.sentence_transformer import deprecated_model_card_templates as ref_templates
from sentence_transformers.util import dataset as ref_dataset
from sentence_transformers.util import distributed as ref_distributed
from sentence_transformers.util import misc as ref_misc
from transformers.utils import logging as transformers_logging

import sentrs
import sentrs.util
from sentrs.sentence_transformer import deprecated_model_card_templates as our_templates
from sentrs.util import dataset as our_dataset
from sentrs.util import distributed as our_distributed
from sentrs.util import misc as our_misc

ResolveIds = Callable[..., Callable[[dict[str, Any]], dict[str, Any]]]
BOTH: list[ResolveIds] = [our_dataset.resolve_ids, ref_dataset.resolve_ids]


def _queries(ids: list[Any] | None = None) -> Dataset:
    ids = ids if ids is not None else ["q1", "q2", "q3"]
    return Dataset.from_dict({"query_id": ids, "text": [f"query {i}" for i in range(len(ids))]})


def _documents(ids: list[Any] | None = None) -> Dataset:
    ids = ids if ids is not None else [f"d{i}" for i in range(6)]
    return Dataset.from_dict({"doc_id": ids, "text": [f"document {i}" for i in range(len(ids))]})


def _resolve_both(train: Dataset, build: Callable[[ResolveIds], Any]) -> tuple[Any, Any]:
    """Every row of ``train`` read through the transform each library builds (``set_transform``, lazily)."""
    ours, ref = (train.with_transform(build(resolve_ids))[:] for resolve_ids in BOTH)
    return ours, ref


def _raise_both(run: Callable[[ResolveIds], Any]) -> tuple[BaseException, BaseException]:
    """The exceptions ``run`` raises with each library's ``resolve_ids``; both must be of the same type."""
    caught: list[BaseException] = []
    for resolve_ids in BOTH:
        with pytest.raises(Exception) as info:
            run(resolve_ids)
        caught.append(info.value)
    ours, ref = caught
    assert type(ours) is type(ref), (ours, ref)
    return ours, ref


# ---------------------------------------------------------------------------------------------------------------
# resolve_ids


def test_resolve_ids_is_public_where_the_reference_has_it() -> None:
    import sentence_transformers

    assert sentrs.resolve_ids is sentrs.util.resolve_ids is our_dataset.resolve_ids
    assert sentence_transformers.resolve_ids is ref_dataset.resolve_ids
    assert our_dataset.DEFAULT_LABEL_COLUMNS == ref_dataset.DEFAULT_LABEL_COLUMNS


def test_resolve_single_ids_drops_other_columns_and_keeps_labels() -> None:
    queries, documents = _queries(), _documents()
    train = Dataset.from_dict(
        {
            "query_id": ["q2", "q1", "q3"],
            "positive_id": ["d0", "d3", "d5"],
            "negative_id": ["d1", "d1", "d4"],
            "extra": ["x", "y", "z"],
            "label": [1.0, 0.5, 0.0],
        }
    )
    ours, ref = _resolve_both(
        train,
        lambda resolve_ids: resolve_ids({"query_id": queries, "positive_id": documents, "negative_id": documents}),
    )
    assert ours == ref
    assert list(ours) == ["query", "positive", "negative", "label"]
    assert ours["positive"] == ["document 0", "document 3", "document 5"]


@pytest.mark.parametrize(
    "doc_ids",
    [
        [f"d{i}" for i in range(6)],  # short strings: sorted numpy index
        [10, 3, 7, 1, 8, 2],  # ints: sorted numpy index
        [f"document-with-a-rather-long-identifier-number-{i}" for i in range(6)],  # long strings: dict index
        [0.5, 1.5, 2.5, 3.5, 4.5, 5.5],  # floats
    ],
    ids=["short-str", "int", "long-str", "float"],
)
def test_resolve_id_types(doc_ids: list[Any]) -> None:
    documents = _documents(doc_ids)
    train = Dataset.from_dict({"document_ids": [[doc_ids[5], doc_ids[0]], [doc_ids[2], doc_ids[2]]]})
    ours, ref = _resolve_both(train, lambda resolve_ids: resolve_ids({"document_ids": documents}))
    assert ours == ref == {"document_1": ["document 5", "document 2"], "document_2": ["document 0", "document 2"]}


@pytest.mark.parametrize("output_format", ["columns", "lists"])
@pytest.mark.parametrize("max_list_length", [None, 2])
def test_resolve_id_lists(output_format: str, max_list_length: int | None) -> None:
    queries, documents = _queries(), _documents()
    train = Dataset.from_dict(
        {
            "query_id": ["q1", "q3"],
            "document_ids": [["d0", "d1", "d2"], ["d5", "d4", "d3"]],
            "scores": [[3.0, 2.0, 1.0], [0.5, 0.25, 0.125]],
            "label": [1, 0],
        }
    )
    ours, ref = _resolve_both(
        train,
        lambda resolve_ids: resolve_ids(
            {"query_id": queries, "document_ids": documents},
            max_list_length=max_list_length,
            output_format=output_format,
        ),
    )
    assert ours == ref
    width = max_list_length or 3
    assert all(len(row) == width for row in ours["scores"])


def test_resolve_ragged_lists_with_lists_output() -> None:
    queries, documents = _queries(), _documents()
    train = Dataset.from_dict({"query_ids": [["q1"], ["q2", "q3"]], "document_ids": [["d0", "d1", "d2"], ["d5"]]})
    ours, ref = _resolve_both(
        train,
        lambda resolve_ids: resolve_ids({"query_ids": queries, "document_ids": documents}, output_format="lists"),
    )
    assert ours == ref
    assert list(ours) == ["queries", "documents"]  # the plural names


def test_resolve_lists_written_as_strings() -> None:
    documents = _documents()
    train = Dataset.from_dict({"document_ids": ["['d0', 'd1']", " ['d2', 'd3']"], "scores": ["[1.0, 2.0]", "[3, 4]"]})
    ours, ref = _resolve_both(train, lambda resolve_ids: resolve_ids({"document_ids": documents}, max_list_length=1))
    assert ours == ref == {"document_1": ["document 0", "document 2"], "scores": [[1.0], [3]]}


def test_resolve_explicit_columns_custom_keep_columns_and_formatted_lookups() -> None:
    # A lookup dataset with several columns needs explicit ones; a format on it (torch) must not leak into the keys.
    documents = Dataset.from_dict(
        {"pid": [5, 6, 7], "title": ["t5", "t6", "t7"], "body": ["b5", "b6", "b7"]}
    ).with_format("torch")
    queries = Dataset.from_dict({"id": ["a", "b"], "text": ["A", "B"]}).shuffle(seed=0)  # an indices mapping
    train = Dataset.from_dict({"q": ["b", "a"], "pid": [7, 5], "weight": [0.1, 0.2], "label": [1, 1]})
    ours, ref = _resolve_both(
        train,
        lambda resolve_ids: resolve_ids(
            {"q": queries, "pid": (documents, "pid", "body")}, keep_columns=["weight", "absent"]
        ),
    )
    assert ours == ref == {"q": ["B", "A"], "pid": ["b7", "b5"], "weight": [0.1, 0.2]}


def test_resolve_with_map_and_pickled_transform() -> None:
    queries, documents = _queries(), _documents()
    train = Dataset.from_dict(
        {"query_id": ["q1", "q2"], "document_ids": [["d0", "d1"], ["d2", "d3"]], "score": [1, 2]}
    )
    results = []
    for resolve_ids in BOTH:
        transform = pickle.loads(pickle.dumps(resolve_ids({"query_id": queries, "document_ids": documents})))
        mapped = train.map(transform, batched=True, remove_columns=["query_id", "document_ids"])
        results.append(mapped[:])
    assert results[0] == results[1]
    assert results[0]["document_2"] == ["document 1", "document 3"]


def test_resolve_duplicate_ids_take_the_last_row(caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    monkeypatch.setattr(our_dataset, "_warned_duplicates", set())
    transformers_logging.warning_once.cache_clear()  # the reference warns once per message and process
    documents = _documents(["d0", "d1", "d0", "d2", "d1", "d0"])
    train = Dataset.from_dict({"positive_id": ["d0", "d1", "d2"]})
    with caplog.at_level(logging.WARNING):
        ours, ref = _resolve_both(train, lambda resolve_ids: resolve_ids({"positive_id": documents}))
    assert ours == ref == {"positive": ["document 5", "document 4", "document 3"]}
    warnings = {record.name: record.getMessage() for record in caplog.records if record.levelno == logging.WARNING}
    assert "3 rows" in warnings["sentrs.util.dataset"]
    assert "3 rows" in warnings["sentence_transformers.util.dataset"]


def test_resolve_empty_batch() -> None:
    queries = _queries()
    for resolve_ids in BOTH:
        assert resolve_ids({"query_id": queries})({"query_id": [], "label": []}) == {"query": [], "label": []}


@pytest.mark.parametrize(
    ("lookups", "kwargs", "error", "match"),
    [
        ({}, {"keep_columns": "label"}, TypeError, "keep_columns must be a list or tuple"),
        ({}, {"max_list_length": 0}, ValueError, "max_list_length must be a positive integer or None, got 0"),
        ({}, {"output_format": "rows"}, ValueError, "output_format must be 'columns' or 'lists', got 'rows'"),
        ({"query_id": (_queries(),)}, {}, ValueError, r"lookups\['query_id'\] must be a Dataset.*tuple of 1"),
        ({"query_id": DatasetDict({"train": _queries()})}, {}, TypeError, "got a DatasetDict"),
        ({"query_id": {"q1": "text"}}, {}, TypeError, r"lookups\['query_id'\] must be a Dataset, got dict"),
        (
            {"query_id": Dataset.from_dict({"a_id": [1], "b_id": [2], "text": ["x"]})},
            {},
            ValueError,
            r"cannot infer the ID column.*\['a_id', 'b_id'\]",
        ),
        (
            {"query_id": Dataset.from_dict({"id": [1], "text": ["x"], "title": ["y"]})},
            {},
            ValueError,
            r"cannot infer the value column.*\['text', 'title'\]",
        ),
        ({"query_id": (_queries(), "qid")}, {}, ValueError, "the ID column 'qid' is not a column"),
        ({"query_id": (_queries(), "query_id", "body")}, {}, ValueError, "the value column 'body' is not a column"),
    ],
)
def test_resolve_ids_argument_errors(
    lookups: dict[str, Any], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    ours, _ = _raise_both(lambda resolve_ids: resolve_ids(lookups, **kwargs))
    assert isinstance(ours, error)
    assert re.search(match, str(ours)), str(ours)


@pytest.mark.parametrize(
    ("lookup_names", "kwargs", "batch", "error", "match"),
    [
        (["query_id"], {}, {"query_id": ["q1", "q9"]}, KeyError, "ID 'q9' of input column 'query_id' is not in"),
        (["query_id"], {}, {"query_id": ["q1", 3]}, KeyError, "ID 3 of input column 'query_id'"),
        (["document_ids"], {}, {"document_ids": [["d0"], ["d1", "d2"]]}, ValueError, r"lengths \[1, 2\]"),
        (["document_ids"], {}, {"document_ids": [[], []]}, ValueError, "empty ID lists"),
        (["document_ids"], {}, {"document_ids": ["[d0]", "[d1]"]}, ValueError, "does not parse"),
        (["document_ids"], {}, {"document_ids": ["[1, 2]", "[3"]}, ValueError, "does not parse"),
        (
            ["document_ids"],
            {"output_format": "lists"},
            {"document_ids": ["['d0']", "[('d1')]", "['d2', 1]"]},
            KeyError,
            "ID 1 of",
        ),
        (["query_id"], {}, {"query_id": np.array(["q1"])}, TypeError, "must hold a list of IDs, got ndarray"),
        (["query_id"], {}, [{"query_id": "q1"}], TypeError, "a batch as a dict of columns, got list"),
        (["query_id"], {}, {"query_id": ["['q1']", "5"]}, ValueError, "'5' is a int, not a list"),
        (["query_id"], {"keep_columns": ["query"]}, {"query_id": ["q1"], "query": ["x"]}, ValueError, "'query'"),
        (
            ["document_ids", "document_1"],
            {},
            {"document_ids": [["d0"]], "document_1": ["d1"]},
            ValueError,
            "'document_1'",
        ),
    ],
)
def test_resolve_ids_batch_errors(
    lookup_names: list[str],
    kwargs: dict[str, Any],
    batch: Any,
    error: type[Exception],
    match: str,
) -> None:
    datasets = {"query_id": _queries(), "document_ids": _documents(), "document_1": _documents()}
    lookups = {name: datasets[name] for name in lookup_names}
    ours, _ = _raise_both(lambda resolve_ids: resolve_ids(lookups, **kwargs)(batch))
    assert isinstance(ours, error)
    assert re.search(match, str(ours)), str(ours)


def test_resolve_string_list_id_hint() -> None:
    # The first row decides whether a column holds lists written as strings; a later one is taken as an ID.
    documents = _documents()
    ours, _ = _raise_both(lambda resolve_ids: resolve_ids({"positive_id": documents})({"positive_id": ["d0", "[d1]"]}))
    assert "ID '[d1]'" in str(ours) and "written as a string" in str(ours)


# ---------------------------------------------------------------------------------------------------------------
# all_gather, all_gather_with_grad, distributed_evaluation


@pytest.fixture
def process_group(tmp_path: Path) -> Iterator[None]:
    """A one-process ``gloo`` group (file rendezvous, so no port is taken), destroyed after the test."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _reference_deprecation(expected: bool = True) -> Any:
    """The reference gathers with gradients through ``torch.distributed.nn.all_gather``, which recent torch deprecates
    (sentrs has its own autograd function)."""
    if not expected:
        return nullcontext()
    return pytest.warns(FutureWarning, match="torch.distributed.nn.functional.all_gather is deprecated")


@pytest.mark.parametrize("with_grad", [False, True])
def test_all_gather_without_process_group(with_grad: bool, caplog: pytest.LogCaptureFixture, monkeypatch: Any) -> None:
    monkeypatch.setattr(our_distributed, "_warned_not_distributed", False)
    transformers_logging.warning_once.cache_clear()
    tensor = torch.randn(3, 2, requires_grad=True)
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            assert sentrs.util.all_gather(tensor, with_grad=with_grad) is tensor
            assert ref_distributed.all_gather(tensor, with_grad=with_grad) is tensor
            assert sentrs.util.all_gather_with_grad(tensor) is tensor
            assert ref_distributed.all_gather_with_grad(tensor) is tensor
    names = [record.name for record in caplog.records if record.levelno == logging.WARNING]
    # One warning per process from each library, however often it is called.
    assert sorted(names) == ["sentence_transformers.util.distributed", "sentrs.util.distributed"]
    ours = next(record for record in caplog.records if record.name == "sentrs.util.distributed")
    assert "returning this process's tensor only" in ours.getMessage()


@pytest.mark.usefixtures("process_group")
@pytest.mark.parametrize("with_grad", [False, True])
def test_all_gather_in_process_group(with_grad: bool) -> None:
    """Exact: a one-process gather copies the rows; gradients are compared after the same backward."""
    base = torch.randn(4, 3)
    weights = torch.randn(4, 3)
    outputs, grads = [], []
    for gather in (our_distributed.all_gather, ref_distributed.all_gather):
        tensor = base.clone().requires_grad_(True)
        with _reference_deprecation(with_grad and gather is ref_distributed.all_gather):
            gathered = gather(tensor, with_grad=with_grad)
        assert gathered.requires_grad
        (gathered * weights).sum().backward()
        outputs.append(gathered.detach())
        grads.append(tensor.grad)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    torch.testing.assert_close(outputs[0], base, rtol=0, atol=0)
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=0)
    torch.testing.assert_close(grads[0], weights, rtol=0, atol=0)


@pytest.mark.usefixtures("process_group")
def test_all_gather_with_grad_in_process_group() -> None:
    tensor = torch.randn(2, 5, requires_grad=True)
    ours = sentrs.util.all_gather_with_grad(tensor)
    with _reference_deprecation():
        ref = ref_distributed.all_gather_with_grad(tensor)
    torch.testing.assert_close(ours, ref, rtol=0, atol=0)
    assert ours.grad_fn is not None and ref.grad_fn is not None


class _Model:
    """Stands in for a model: only the attribute distributed_evaluation may set."""

    _distributed_inference: Any = None


@pytest.mark.parametrize("enabled", [True, False])
@pytest.mark.parametrize("in_group", [False, True])
def test_distributed_evaluation_in_one_process(enabled: bool, in_group: bool, tmp_path: Path) -> None:
    import torch.distributed as dist

    if in_group:
        dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        for distributed_evaluation in (our_distributed.distributed_evaluation, ref_distributed.distributed_evaluation):
            model = _Model()
            with distributed_evaluation(model, enabled=enabled) as run_evaluator:
                assert run_evaluator is True
                assert model._distributed_inference is None  # one process: nothing to share
            with pytest.raises(KeyError, match="raised inside"), distributed_evaluation(model, enabled=enabled):
                raise KeyError("raised inside")
            assert model._distributed_inference is None
    finally:
        if in_group:
            dist.destroy_process_group()


@pytest.mark.usefixtures("process_group")
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"convert_to_tensor": True}, {"normalize_embeddings": True}, {"output_value": "token_embeddings"}],
    ids=["numpy", "tensor", "normalized", "token-embeddings"],
)
def test_sharded_inference_gives_the_local_result(make_tiny_st: Callable[..., str], kwargs: dict[str, Any]) -> None:
    """What ``encode`` returns on rank 0 inside ``distributed_evaluation`` of a job (here a job of one process):
    the result of a local encode, as in the reference. Tolerance 1e-5: two float32 forward passes of one library
    are equal; the libraries are compared at 1e-4 (sentrs runs its own kernels)."""
    import sentence_transformers

    path = make_tiny_st()
    texts = ["one", "two words", "three words here", "", "five"]
    results = []
    for model, sharded in (
        (sentrs.SentenceTransformer(path, device="cpu"), our_distributed._ShardedInference),
        (sentence_transformers.SentenceTransformer(path, device="cpu"), ref_distributed._DistributedInference),
    ):
        local = model.encode(texts, **kwargs)
        model._distributed_inference = sharded(model)
        try:
            shared = model.encode(texts, **kwargs)
            assert model.encode([], **kwargs) is not None
        finally:
            model._distributed_inference = None
        assert type(shared) is type(local)
        if isinstance(local, list):
            assert [t.shape for t in shared] == [t.shape for t in local]
            local, shared = torch.cat(local), torch.cat(shared)
        np.testing.assert_allclose(np.asarray(shared), np.asarray(local), atol=1e-5)
        results.append(np.asarray(shared))
    np.testing.assert_allclose(results[0], results[1], atol=1e-4)


@pytest.mark.usefixtures("process_group")
def test_sharded_inference_reports_errors_by_rank(make_tiny_st: Callable[..., str]) -> None:
    import sentence_transformers

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("inference broke")

    path = make_tiny_st()
    for model, sharded in (
        (sentrs.SentenceTransformer(path, device="cpu"), our_distributed._ShardedInference),
        (sentence_transformers.SentenceTransformer(path, device="cpu"), ref_distributed._DistributedInference),
    ):
        model._inference = fail
        model._distributed_inference = sharded(model)
        with pytest.raises(
            RuntimeError, match=r"(?s)Distributed evaluator inference failed:\nRank 0:.*inference broke"
        ):
            model.encode(["a", "b"])


class _RankModel:
    """A model whose inference records its inputs and returns ``(len(text), rank)`` rows; ``"boom"`` fails."""

    _distributed_inference: Any = None
    device = torch.device("cpu")

    def __init__(self, rank: int) -> None:
        self.rank = rank
        self.calls: list[list[str]] = []

    def _inference(self, inputs: list[str], **kwargs: Any) -> torch.Tensor:
        self.calls.append(list(inputs))
        if "boom" in inputs:
            raise ValueError(f"boom on rank {self.rank}")
        return torch.tensor([[len(text), self.rank] for text in inputs], dtype=torch.float32)

    def encode(self, inputs: list[str]) -> Any:
        if self._distributed_inference is not None:
            return self._distributed_inference(inputs, show_progress_bar=True)
        return self._inference(inputs)


def _distributed_worker(rank: int, world_size: int, rendezvous: str, results: Any) -> None:
    """One process of the job in :func:`test_three_process_job_matches_the_reference`: the same steps with each
    library, and what each rank saw."""
    import warnings

    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world_size)
    seen: dict[str, Any] = {}
    try:
        for name, library in (("ours", our_distributed), ("ref", ref_distributed)):
            out: dict[str, Any] = {}
            weights = torch.arange(world_size * 6, dtype=torch.float32).reshape(world_size * 2, 3)
            for with_grad in (False, True):
                tensor = torch.full((2, 3), float(rank + 1), requires_grad=True)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # the reference's deprecated torch gather
                    gathered = library.all_gather(tensor, with_grad=with_grad)
                (gathered * weights).sum().backward()
                out[f"gathered {with_grad}"] = gathered.tolist()
                out[f"grad {with_grad}"] = tensor.grad.tolist()
            model = _RankModel(rank)
            with library.distributed_evaluation(model) as run_evaluator:
                out["run_evaluator"] = run_evaluator
                if run_evaluator:
                    out["encoded"] = model.encode(["a", "bb", "ccc", "dddd", "eeeee"]).tolist()
                    try:
                        model.encode(["x", "boom", "y"])
                    except RuntimeError as exc:
                        out["inference error"] = str(exc).splitlines()[:2]
            out["calls"] = model.calls
            try:
                with library.distributed_evaluation(model) as run_evaluator:
                    if run_evaluator:
                        raise KeyError("evaluator failed")
            except (KeyError, RuntimeError) as exc:
                out["evaluator error"] = (type(exc).__name__, "evaluator failed" in str(exc))
            seen[name] = out
    except Exception as exc:
        seen["error"] = repr(exc)
    finally:
        dist.destroy_process_group()
    results.put((rank, seen))


@pytest.mark.slow
def test_three_process_job_matches_the_reference(tmp_path: Path) -> None:
    """A real job of 3 ``gloo`` processes (spawned; ~20 s on 2 busy cores): gathered rows and gradients, the sharded
    inference of rank 0, and errors in inference and in the evaluator, per rank, as with the reference. Exact: small
    integers in float32."""
    import torch.multiprocessing as mp

    world_size = 3
    context = mp.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_distributed_worker, args=(rank, world_size, str(tmp_path / "rendezvous"), results))
        for rank in range(world_size)
    ]
    for process in processes:
        process.start()
    seen = dict(results.get(timeout=300) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    for rank in range(world_size):
        assert "error" not in seen[rank], seen[rank]
        assert seen[rank]["ours"] == seen[rank]["ref"], rank
    assert seen[0]["ours"]["encoded"] == [[1, 0], [2, 0], [3, 1], [4, 1], [5, 2]]  # contiguous shards, input order
    assert seen[0]["ours"]["inference error"] == ["Distributed evaluator inference failed:", "Rank 1:"]
    assert [seen[rank]["ours"]["run_evaluator"] for rank in range(world_size)] == [True, False, False]
    assert seen[1]["ours"]["evaluator error"] == ("RuntimeError", True)
    assert seen[0]["ours"]["grad True"] == [[0, 3, 6], [9, 12, 15]]  # the weights of rank 0's rows, summed over ranks


def test_shards_are_contiguous_and_balanced() -> None:
    assert our_distributed._shards(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert our_distributed._shards([1], 3) == [[1], [], []]


# ---------------------------------------------------------------------------------------------------------------
# check_teacher_targets


@pytest.mark.parametrize(
    ("scores", "temperature"),
    [
        ([[1.0, 2.0, 3.0], [0.5, 0.1, -0.2]], 1.0),  # a clean target: nothing to say
        ([[0.0, 50.0, 200.0], [1.0, 2.0, 3.0]], 1.0),  # underflows: a warning
        ([[0.0, 50.0, 200.0], [1.0, 2.0, 3.0]], 0.5),
        ([[0.0, float("-inf"), 200.0], [1.0, 2.0, 3.0]], 1.0),  # masked candidates: accepted as they are
    ],
)
def test_check_teacher_targets(
    scores: list[list[float]], temperature: float, caplog: pytest.LogCaptureFixture
) -> None:
    logits = torch.tensor(scores)
    probabilities = torch.softmax(logits / temperature, dim=-1)
    assert sentrs.util.check_teacher_targets is our_misc.check_teacher_targets
    messages = []
    for check, logger_name in (
        (sentrs.util.check_teacher_targets, "sentrs.util.misc"),
        (ref_misc.check_teacher_targets, "sentence_transformers.util.misc"),
    ):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=logger_name):
            assert check(probabilities, logits, temperature, "DistillKLDivLoss") is None
        messages.append([record.getMessage() for record in caplog.records if record.name == logger_name])
    assert messages[0] == messages[1]
    if messages[0]:
        assert messages[0][0].startswith(f"DistillKLDivLoss: teacher_temperature={temperature} underflows")


def test_check_teacher_targets_refuses_nan() -> None:
    logits = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    probabilities = torch.softmax(logits, dim=-1)
    with pytest.raises(ValueError, match="the teacher scores contain NaN") as ours:
        sentrs.util.check_teacher_targets(probabilities, logits, 1.0, "MyLoss")
    with pytest.raises(ValueError) as ref:
        ref_misc.check_teacher_targets(probabilities, logits, 1.0, "MyLoss")
    assert str(ours.value) == str(ref.value)


# ---------------------------------------------------------------------------------------------------------------
# ModelCardTemplate


OURS, REF = our_templates.ModelCardTemplate, ref_templates.ModelCardTemplate
TEMPLATES = ["__MODEL_CARD__", "__TRAINING_SECTION__", "__USAGE_TRANSFORMERS__"]


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{[A-Z_]+\}", text))


@pytest.mark.parametrize("name", TEMPLATES)
def test_templates_have_the_reference_placeholders(name: str) -> None:
    assert _placeholders(getattr(OURS, name)) == _placeholders(getattr(REF, name))


def test_template_defaults() -> None:
    assert OURS.__TAGS__ == REF.__TAGS__
    assert set(OURS.__DEFAULT_VARS__) == set(REF.__DEFAULT_VARS__)
    for key in ("{PIPELINE_TAG}", "{TRAINING_SECTION}", "{USAGE_TRANSFORMERS_SECTION}"):
        assert OURS.__DEFAULT_VARS__[key] == REF.__DEFAULT_VARS__[key]
    card = OURS.__MODEL_CARD__
    for key, value in OURS.__DEFAULT_VARS__.items():
        card = card.replace(key, value)
    assert card.splitlines()[1:4] == [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
    ]


@pytest.mark.parametrize("mode", ["max", "mean", "cls", "lasttoken", "weightedmean"])
def test_pooling_functions_compute_what_the_reference_does(mode: str) -> None:
    """Exact: the same float32 operations on the same inputs."""
    ours, ref = OURS.model_card_get_pooling_function(mode), REF.model_card_get_pooling_function(mode)
    if ref is None:
        assert ours is None
        return
    assert ours is not None and ours[0] == ref[0]
    token_embeddings = torch.randn(3, 5, 4)
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    pooled = []
    for name, source in (ours, ref):
        namespace: dict[str, Any] = {"torch": torch}
        exec(source, namespace)  # the source is our own and the reference's template text
        pooled.append(namespace[name]((token_embeddings.clone(),), attention_mask))
    torch.testing.assert_close(pooled[0], pooled[1], rtol=0, atol=0)


class _LossWithConfig(torch.nn.Module):
    def get_config_dict(self) -> dict[str, Any]:
        return {"scale": 20.0}


@pytest.mark.parametrize("loss", [_LossWithConfig(), torch.nn.MSELoss()], ids=["with-config", "without-config"])
def test_train_objective_info(loss: torch.nn.Module) -> None:
    loader = torch.utils.data.DataLoader(list(range(10)), batch_size=4)
    info = OURS.get_train_objective_info(loader, loss)
    assert info == REF.get_train_objective_info(loader, loss)
    assert "of length 3" in info[0] and "'batch_size': 4" in info[0]


@pytest.mark.parametrize(
    ("ours", "ref"),
    [
        (our_dataset.resolve_ids, ref_dataset.resolve_ids),
        (our_distributed.all_gather, ref_distributed.all_gather),
        (our_distributed.all_gather_with_grad, ref_distributed.all_gather_with_grad),
        (our_distributed.distributed_evaluation, ref_distributed.distributed_evaluation),
        (our_misc.check_teacher_targets, ref_misc.check_teacher_targets),
        (OURS.model_card_get_pooling_function, REF.model_card_get_pooling_function),
        (OURS.get_train_objective_info, REF.get_train_objective_info),
    ],
    ids=lambda function: getattr(function, "__name__", ""),
)
def test_signatures_match_the_reference(ours: Callable[..., Any], ref: Callable[..., Any]) -> None:
    """Same parameter names, order, kinds and defaults."""
    import inspect

    ours_parameters, ref_parameters = inspect.signature(ours).parameters, inspect.signature(ref).parameters
    assert [(p.name, p.kind, p.default) for p in ours_parameters.values()] == [
        (p.name, p.kind, p.default) for p in ref_parameters.values()
    ]
