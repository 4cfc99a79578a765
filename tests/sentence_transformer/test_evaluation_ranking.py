"""ParaphraseMiningEvaluator, RerankingEvaluator and TranslationEvaluator against the reference's: metric keys and
values, primary metric, CSV file, tie handling and errors.

The data is the WordNet task of test_evaluation_ir.py: a noun synset's example sentences paraphrase its gloss.
Tolerance: ATOL there (1e-4; embeddings and scores agree to ~1e-7).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sentrs.sentence_transformer.evaluation import (
    ParaphraseMiningEvaluator,
    RerankingEvaluator,
    TranslationEvaluator,
)
from tests.sentence_transformer.test_evaluation_ir import (
    _assert_same_metrics,
    _reference,
    _run_both,
    _wordnet_task,
)


def _synsets(n: int = 30) -> list[tuple[str, str, list[str]]]:
    """``(synset id, gloss, example sentences)`` of the first ``n`` WordNet noun synsets with examples."""
    queries, corpus, _ = _wordnet_task()
    out = []
    for qid in queries:
        if qid.startswith("q0") and len(out) < n:
            doc_id = f"d{qid[1:]}"
            out.append((qid[1:], corpus[doc_id], [queries[qid]]))
    return out


# ------------------------------------------------------------------ ParaphraseMiningEvaluator


def _mining_data() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Glosses and example sentences; each example duplicates its gloss, and some glosses have a second
    paraphrase (the gloss's first clause), so the transitive closure adds pairs."""
    sentences: dict[str, str] = {}
    duplicates: list[tuple[str, str]] = []
    for i, (sid, gloss, examples) in enumerate(_synsets()):
        sentences[f"g{sid}"] = gloss
        for j, example in enumerate(examples):
            sentences[f"e{sid}_{j}"] = example
            duplicates.append((f"e{sid}_{j}", f"g{sid}"))
        if i % 3 == 0 and "; " in gloss:
            sentences[f"c{sid}"] = gloss.split("; ")[0]
            duplicates.append((f"g{sid}", f"c{sid}"))
    duplicates.append(("g-not-in-map", next(iter(sentences))))  # ignored: an id outside sentences_map
    return sentences, duplicates


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"add_transitive_closure": True, "name": "wn"},
        {"top_k": 3, "max_pairs": 40, "truncate_dim": 96, "write_csv": False},
        {"as_dict": True, "query_chunk_size": 7, "corpus_chunk_size": 11},
    ],
    ids=["default", "closure", "top3-max40-truncated", "duplicates-dict-small-chunks"],
)
def test_paraphrase_mining_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    sentences, duplicates = _mining_data()
    kwargs = dict(kwargs)

    def make(cls: type) -> Any:
        if kwargs.get("as_dict"):
            from collections import defaultdict

            marks: defaultdict[str, defaultdict[str, bool]] = defaultdict(lambda: defaultdict(bool))
            for a, b in duplicates[:-1]:
                marks[a][b] = True  # one direction only: either direction counts
            extra = {k: v for k, v in kwargs.items() if k != "as_dict"}
            return cls(sentences, duplicates_dict=marks, batch_size=16, **extra)
        return cls(sentences, duplicates_list=duplicates, batch_size=16, **kwargs)

    ours, theirs = make(ParaphraseMiningEvaluator), make(_reference().ParaphraseMiningEvaluator)
    assert ours.total_num_duplicates == theirs.total_num_duplicates > 0
    metrics = _run_both(
        our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (1, 3)) if not kwargs else ((1, -1),)
    )
    assert 0.0 < metrics[ours.primary_metric] < 1.0


@pytest.mark.parametrize("seed", range(4))
def test_paraphrase_mining_scoring_with_ties(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """The threshold search on mined pairs with many equal scores: both evaluators get the same pair list (their
    ``paraphrase_mining`` replaced), so only the scoring is compared (float64 sums: 1e-12)."""
    import sentence_transformers.sentence_transformer.evaluation.paraphrase_mining as ref_module

    import sentrs.sentence_transformer.evaluation.paraphrase_mining as our_module

    rng = np.random.default_rng(seed)
    n = 40
    sentences = {f"s{i:02d}": f"sentence {i}" for i in range(n)}
    pairs = sorted(
        {(int(a), int(b)) for a, b in rng.integers(0, n, size=(150, 2)) if a < b},
    )
    mined = sorted(([float(rng.integers(0, 8)) / 8, a, b] for a, b in pairs), key=lambda p: -p[0])
    duplicates = [(f"s{a:02d}", f"s{b:02d}") for a, b in pairs if rng.random() < 0.3]
    duplicates.append(("s00", "s39"))  # a gold pair the mining never finds
    monkeypatch.setattr(our_module, "paraphrase_mining", lambda *args, **kwargs: mined)
    monkeypatch.setattr(ref_module, "paraphrase_mining", lambda *args, **kwargs: mined)
    ours = ParaphraseMiningEvaluator(sentences, duplicates, write_csv=False)
    theirs = ref_module.ParaphraseMiningEvaluator(sentences, duplicates, write_csv=False)
    our_metrics, ref_metrics = ours(object()), theirs(_NoCard())
    assert our_metrics == pytest.approx(ref_metrics, abs=1e-12)
    # nothing mined: all zero, as in the reference
    monkeypatch.setattr(our_module, "paraphrase_mining", lambda *args, **kwargs: [])
    monkeypatch.setattr(ref_module, "paraphrase_mining", lambda *args, **kwargs: [])
    assert (
        ours(object())
        == theirs(_NoCard())
        == dict.fromkeys(["average_precision", "f1", "precision", "recall", "threshold"], 0.0)
    )


class _NoCard:
    """A model stand-in for the reference, which hands the metrics to ``model.model_card_data``."""

    model_card_data = type("CardData", (), {"set_evaluation_metrics": lambda *args: None})()


def test_paraphrase_mining_transitive_closure_matches_reference() -> None:
    graph_edges = [("a", "b"), ("b", "c"), ("d", "e"), ("f", "f"), ("c", "g")]

    def graph() -> dict[str, dict[str, bool]]:
        from collections import defaultdict

        marks: defaultdict[str, defaultdict[str, bool]] = defaultdict(lambda: defaultdict(bool))
        for x, y in graph_edges:
            marks[x][y] = marks[y][x] = True
        marks["h"]["a"] = False  # a mark that is not a duplicate does not connect
        return marks

    ours = ParaphraseMiningEvaluator.add_transitive_closure(graph())
    theirs = _reference().ParaphraseMiningEvaluator.add_transitive_closure(graph())

    def pairs(marks: Any) -> set[tuple[str, str]]:
        return {(x, y) for x, row in marks.items() for y, value in row.items() if value}

    assert pairs(ours) == pairs(theirs)
    assert ("a", "g") in pairs(ours) and ("h", "a") not in pairs(ours)


def test_paraphrase_mining_bad_arguments() -> None:
    with pytest.raises(TypeError, match=re.escape("sentences_map must be a dict from id to sentence, got list")):
        ParaphraseMiningEvaluator(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=re.escape("duplicates_list must hold (id1, id2) pairs, got ('a',)")):
        ParaphraseMiningEvaluator({"a": "x"}, duplicates_list=[("a",)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=re.escape("top_k must be a positive integer, got 0")):
        ParaphraseMiningEvaluator({"a": "x"}, top_k=0)
    with pytest.raises(ValueError, match=re.escape("max_pairs must be a positive integer, got -1")):
        ParaphraseMiningEvaluator({"a": "x"}, max_pairs=-1)


# ------------------------------------------------------------------ RerankingEvaluator


def _reranking_samples(n: int = 12) -> list[dict[str, Any]]:
    """Query: an example sentence. Positive: its gloss (and, for some, a second one). Negatives: other glosses."""
    synsets = _synsets()
    samples = []
    for i in range(n):
        _, gloss, examples = synsets[i]
        negatives = [synsets[(i + j) % len(synsets)][1] for j in (1, 2, 3, 5, 8, 13)[: 3 + i % 4]]
        positive: Any = gloss if i % 4 == 0 else [gloss, *([gloss.split("; ")[0]] if i % 3 == 0 else [])]
        samples.append({"query": examples[0], "positive": positive, "negative": negatives})
    samples.append({"query": "no negatives", "positive": ["x"], "negative": []})  # dropped
    return samples


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"at_k": 3, "name": "wn"},
        {"use_batched_encoding": False, "truncate_dim": 64, "write_csv": False},
        {"similarity_fct": "dot_score", "at_k": 2},
        {"similarity_fct": "custom", "as_dict": True},
    ],
    ids=["default", "at3-named", "individual-truncated", "dot", "custom-dict"],
)
def test_reranking_matches_reference(our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]) -> None:
    import torch
    from sentence_transformers import util as ref_util

    from sentrs import util

    def custom(query: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
        return -torch.cdist(query[None].double(), documents.double())[0]  # float64, 1-D query as the reference

    samples: Any = _reranking_samples()
    kwargs = dict(kwargs)
    if kwargs.pop("as_dict", False):
        samples = {f"id{i}": sample for i, sample in enumerate(samples)}
    fct = kwargs.pop("similarity_fct", None)
    our_fct = {"dot_score": util.dot_score, "custom": custom}.get(fct or "")
    ref_fct = {"dot_score": ref_util.dot_score, "custom": custom}.get(fct or "")
    ours = RerankingEvaluator(samples, batch_size=16, **kwargs, **({"similarity_fct": our_fct} if fct else {}))
    theirs = _reference().RerankingEvaluator(
        samples, batch_size=16, **kwargs, **({"similarity_fct": ref_fct} if fct else {})
    )
    assert len(ours.samples) == len(theirs.samples) == 12
    metrics = _run_both(
        our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (0, 9)) if not kwargs else ((1, -1),)
    )
    assert 0.3 < metrics[ours.primary_metric] < 1.0


def test_reranking_ties_follow_scikit_learn() -> None:
    """NDCG and average precision with equal scores, against scikit-learn (which the reference calls)."""
    from sklearn.metrics import average_precision_score, ndcg_score

    from sentrs.sentence_transformer.evaluation.binary_classification import _average_precision
    from sentrs.sentence_transformer.evaluation.reranking import ndcg_with_ties

    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(2, 15))
        relevance = (rng.random(n) < 0.4).astype(int)
        relevance[0] = 1
        scores = rng.integers(0, 4, size=n).astype(np.float64)
        k = int(rng.integers(1, 12))
        assert ndcg_with_ties(relevance, scores, k) == pytest.approx(ndcg_score([relevance], [scores], k=k), abs=1e-12)
        assert _average_precision(relevance, scores) == pytest.approx(
            average_precision_score(relevance, scores), abs=1e-12
        )


def test_reranking_bad_arguments(our_minilm: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("at_k must be a positive integer, got 0")):
        RerankingEvaluator([], at_k=0)
    with pytest.raises(
        ValueError, match=re.escape("samples[1] must be a dict with 'query', 'positive' and 'negative'")
    ):
        RerankingEvaluator([{"query": "q", "positive": "p", "negative": "n"}, {"query": "q", "positive": ["p"]}])
    evaluator = RerankingEvaluator([{"query": "q", "positive": ["p"], "negative": []}])
    with pytest.raises(ValueError, match=re.escape("no sample has both positive and negative documents to rank")):
        evaluator(our_minilm)


# ------------------------------------------------------------------ TranslationEvaluator


def _translation_pairs() -> tuple[list[str], list[str]]:
    """Sources: glosses. Targets: their example sentences (a wrong match is common), one target repeated under
    another source (a match to its twin counts as correct)."""
    synsets = _synsets()
    sources = [gloss for _, gloss, _ in synsets]
    targets = [examples[0] for _, _, examples in synsets]
    sources.append(synsets[0][1].split("; ")[0])
    targets.append(targets[0])
    return sources, targets


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"name": "gloss-example"}, {"truncate_dim": 128, "write_csv": False}],
    ids=["default", "named", "truncated"],
)
def test_translation_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    sources, targets = _translation_pairs()
    ours = TranslationEvaluator(sources, targets, batch_size=16, **kwargs)
    theirs = _reference().TranslationEvaluator(sources, targets, batch_size=16, **kwargs)
    metrics = _run_both(
        our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (3, 30)) if not kwargs else ((1, -1),)
    )
    assert 0.3 < metrics[ours.primary_metric] < 1.0


def test_translation_prints_wrong_matches_like_the_reference(
    our_minilm: Any, ref_minilm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sources, targets = _translation_pairs()
    ours = TranslationEvaluator(sources, targets, print_wrong_matches=True)
    theirs = _reference().TranslationEvaluator(sources, targets, print_wrong_matches=True)
    our_metrics = ours(our_minilm)
    our_out = capsys.readouterr().out
    _assert_same_metrics(our_metrics, theirs(ref_minilm))
    assert "Incorrect  : Source" in our_out
    assert our_out == capsys.readouterr().out


def test_translation_bad_arguments() -> None:
    with pytest.raises(
        ValueError, match=re.escape("source_sentences and target_sentences must have the same length, got 2 and 1")
    ):
        TranslationEvaluator(["a", "b"], ["c"])
    with pytest.raises(ValueError, match=re.escape("source_sentences and target_sentences must not be empty")):
        TranslationEvaluator([], [])
