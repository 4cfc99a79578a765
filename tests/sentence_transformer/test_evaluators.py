"""The dense evaluators against the reference's: same metric keys and values, primary metric, CSV file and errors.

Each case runs the reference's evaluator on the reference model and sentrs' evaluator on the sentrs model loaded from
the same folder, with the same arguments and data.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sentrs.base.evaluation import BaseEvaluator, SentenceEvaluator
from sentrs.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator, TripletEvaluator

# The two libraries' float32 embeddings agree to ~1e-7 and their pairwise scores (different kernels: the Rust
# euclidean expands |a-b|^2) to ~1e-7 absolute. A correlation divides by the spread of the scores, ~0.05 for the
# euclidean distance of normalised embeddings here, so it moves by up to ~2e-6 (measured); 1e-5 is far below any
# real difference in the math. An accuracy moves only when a triplet sits within ~1e-7 of the margin (none here).
ATOL = 1e-5
# int8/uint8/binary embeddings of our own model: a 1e-7 difference moves a value across a quantisation bucket
# boundary now and then (a few of ~30k values), which moves a correlation by up to ~4e-3 (measured 3.4e-3). The
# same evaluation on the reference's embeddings (our evaluator on the reference model) is held to ATOL, except for
# binary embeddings: unpacked to 0/1 vectors, many pairs have mathematically equal cosines, which the reference's
# normalise-then-dot splits by rounding and our kernel keeps tied. Spearman then differs by ~2e-3 (ubinary, 128 dims;
# ours equals the Spearman of the exact rational cosines, checked by hand).
ATOL_QUANTIZED = 1e-2

_SUBJECTS = ["A man", "A woman", "The child", "An old dog", "Two cats", "The chef", "A pilot", "My neighbour"]
_ACTIONS = ["is eating food", "rides a horse", "plays the guitar", "is reading a book", "walks in the park"]
_PLACES = ["at home.", "in the city.", "by the sea.", "on a train.", "under the bridge."]


def _sentence(i: int) -> str:
    return f"{_SUBJECTS[i % 8]} {_ACTIONS[(i * 3) % 5]} {_PLACES[(i * 7) % 5]}"


def _pairs(n: int = 40) -> tuple[list[str], list[str], list[float]]:
    """``n`` pairs; the scores have ties (ranks shared) and follow the pair's word overlap a little."""
    first = [_sentence(i) for i in range(n)]
    second = [_sentence(i + 1 + (i % 3)) for i in range(n)]  # never the same sentence: a tie at 1.0 ranks by rounding
    scores = [float((i * 7) % 11) / 2.0 + (2.0 if i % 3 == 0 else 0.0) for i in range(n)]
    return first, second, scores


def _triplets(n: int = 30) -> tuple[list[str], list[str], list[str]]:
    anchors = [_sentence(i) for i in range(n)]
    positives = [_sentence(i + 8 * (i % 2)) for i in range(n)]  # same subject, sometimes the same sentence
    negatives = [_sentence(i + 1 + (i % 4)) for i in range(n)]
    return anchors, positives, negatives


def _reference_evaluation() -> Any:
    import sentence_transformers.sentence_transformer.evaluation as ref_evaluation

    return ref_evaluation


def _assert_same_metrics(ours: dict[str, float], theirs: dict[str, float], atol: float = ATOL) -> None:
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert isinstance(ours[key], float), key
        assert ours[key] == pytest.approx(float(value), abs=atol), key


def _read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def _assert_same_csv(ours: Path, theirs: Path, atol: float = ATOL) -> None:
    """Same file name, header and epoch/steps columns; the values within ATOL (their last digits may differ)."""
    assert ours.name == theirs.name
    ours_rows, theirs_rows = _read_csv(ours), _read_csv(theirs)
    assert ours_rows[0] == theirs_rows[0]
    assert len(ours_rows) == len(theirs_rows)
    for mine, ref in zip(ours_rows[1:], theirs_rows[1:], strict=True):
        assert mine[:2] == ref[:2]
        assert [float(v) for v in mine[2:]] == pytest.approx([float(v) for v in ref[2:]], abs=atol)


def _run_both(
    our_model: Any,
    ref_model: Any,
    ours: Any,
    theirs: Any,
    tmp_path: Path,
    calls: tuple[tuple[int, int], ...] = ((-1, -1),),
    atol: float = ATOL,
) -> dict[str, float]:
    for epoch, steps in calls:
        our_metrics = ours(our_model, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps)
        ref_metrics = theirs(ref_model, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps)
        _assert_same_metrics(our_metrics, ref_metrics, atol)
        assert ours.primary_metric == theirs.primary_metric
        assert ours.primary_metric is not None
    assert ours.greater_is_better == theirs.greater_is_better
    assert ours.description == theirs.description
    assert ours.get_config_dict() == theirs.get_config_dict()
    assert ours.csv_headers == theirs.csv_headers
    if theirs.write_csv:
        _assert_same_csv(tmp_path / "ours" / ours.csv_file, tmp_path / "ref" / theirs.csv_file, atol)
    else:
        assert not (tmp_path / "ours").exists()
    return our_metrics


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "sts_dev"},
        {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"], "name": "all"},
        {"similarity_fn_names": ["manhattan", "cosine"], "main_similarity": "cosine"},
        {"main_similarity": "euclidean"},
        {"main_similarity": "dot", "similarity_fn_names": ["cosine"]},  # primary metric absent, as in the reference
        {"truncate_dim": 64, "write_csv": False},
        {"precision": "float32", "similarity_fn_names": ["cosine", "euclidean"]},
        {"precision": "int8", "similarity_fn_names": ["cosine", "manhattan"]},
        {"precision": "uint8", "name": "q"},
        {"precision": "binary", "similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
        {"precision": "ubinary", "truncate_dim": 128},
    ],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()) or "default",
)
def test_embedding_similarity_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    first, second, scores = _pairs()
    quantized = kwargs.get("precision") in ("int8", "uint8", "binary", "ubinary")
    # Our evaluator on our model, then (quantised precisions) on the reference's model: the same embeddings.
    same_embeddings_atol = ATOL_QUANTIZED if kwargs.get("precision") in ("binary", "ubinary") else ATOL
    runs = [(our_minilm, ATOL_QUANTIZED if quantized else ATOL), *([(ref_minilm, same_embeddings_atol)] * quantized)]
    for run, (our_model, atol) in enumerate(runs):
        ours = EmbeddingSimilarityEvaluator(first, second, scores, batch_size=8, **kwargs)
        theirs = _reference_evaluation().EmbeddingSimilarityEvaluator(first, second, scores, batch_size=8, **kwargs)
        assert ours.csv_file == theirs.csv_file
        metrics = _run_both(
            our_model, ref_minilm, ours, theirs, tmp_path / str(run), calls=((-1, -1), (1, 100), (2, -1)), atol=atol
        )
        assert all(-1.0 <= value <= 1.0 for value in metrics.values())


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "nli_dev"},
        {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
        {"similarity_fn_names": ["dot", "cosine"], "margin": 0.05},
        {"similarity_fn_names": ["cosine", "manhattan"], "margin": {"cosine": 0.1, "manhattan": 0.5}},
        {"main_similarity_function": "dot", "name": "d"},
        {"main_similarity_function": "manhattan", "margin": 1, "truncate_dim": 64, "write_csv": False},
    ],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()) or "default",
)
def test_triplet_matches_reference(our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]) -> None:
    anchors, positives, negatives = _triplets()
    ours = TripletEvaluator(anchors, positives, negatives, batch_size=8, **kwargs)
    theirs = _reference_evaluation().TripletEvaluator(anchors, positives, negatives, batch_size=8, **kwargs)
    assert ours.csv_file == theirs.csv_file
    assert ours.margin == theirs.margin
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (0, 5)))
    assert all(0.0 <= value <= 1.0 for value in metrics.values())


def test_triplet_uses_query_and_document_prompts(make_tiny_st: Callable[..., str], tmp_path: Path) -> None:
    """Anchors are encoded as queries and the others as documents, with the model's prompts."""
    import sentence_transformers

    import sentrs

    folder = make_tiny_st(prompts={"query": "query: ", "document": "passage: "})
    ours_model = sentrs.SentenceTransformer(folder, device="cpu")
    ref_model = sentence_transformers.SentenceTransformer(folder, device="cpu")
    anchors, positives, negatives = _triplets()
    kwargs: dict[str, Any] = {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"], "margin": 0.01}
    ours = TripletEvaluator(anchors, positives, negatives, **kwargs)
    theirs = _reference_evaluation().TripletEvaluator(anchors, positives, negatives, **kwargs)
    _run_both(ours_model, ref_model, ours, theirs, tmp_path)


def test_metrics_pass_to_model_card_data(our_minilm: Any) -> None:
    """With model-card data, the evaluator hands it the prefixed metrics; without it (sentrs' default), nothing."""
    first, second, scores = _pairs(10)
    evaluator = EmbeddingSimilarityEvaluator(first, second, scores, name="x")
    assert our_minilm.model_card_data is None
    evaluator(our_minilm)

    received: list[tuple[Any, ...]] = []

    class CardData:
        def set_evaluation_metrics(self, *args: Any) -> None:
            received.append(args)

    class Model:
        model_card_data = CardData()

    metrics = {"x_spearman_cosine": 0.5}
    evaluator.store_metrics_in_model_card_data(Model(), metrics, 2, 30)
    assert received == [(evaluator, metrics, 2, 30)]
    evaluator.store_metrics_in_model_card_data(object(), metrics)  # no model_card_data attribute at all


def test_base_evaluator_matches_reference() -> None:
    from sentence_transformers.base.evaluation import BaseEvaluator as RefBaseEvaluator

    assert SentenceEvaluator is BaseEvaluator

    def make(base: type) -> list[Any]:
        names = ["CEBinaryAccuracyEvaluator", "MyCustomEvaluator", "NoSuffix", "lowercase", "ABCEvaluatorThing"]
        return [type(name, (base,), {})() for name in names]

    for ours, theirs in zip(make(BaseEvaluator), make(RefBaseEvaluator), strict=True):
        assert ours.description == theirs.description
        assert ours.get_config_dict() == theirs.get_config_dict() == {}
        assert (ours.primary_metric, ours.greater_is_better) == (theirs.primary_metric, theirs.greater_is_better)
        with pytest.raises(NotImplementedError):
            ours(None)
        metrics: dict[str, Any] = {"accuracy": 1, "f1": "n/a", "recall": 0.25}
        for name in ("", "dev", "dev"):  # the second "dev" finds the primary metric already prefixed
            ours.primary_metric = theirs.primary_metric = "accuracy" if name == "" else ours.primary_metric
            assert ours.prefix_name_to_metrics(metrics, name) == theirs.prefix_name_to_metrics(metrics, name)
            assert ours.primary_metric == theirs.primary_metric


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: EmbeddingSimilarityEvaluator(["a", "b"], ["c"], [0.1, 0.2]),
            "sentences1, sentences2 and scores must have the same length, got 2, 1 and 2",
        ),
        (
            lambda: EmbeddingSimilarityEvaluator(["a"], ["c"], [0.1, 0.2]),
            "sentences1, sentences2 and scores must have the same length, got 1, 1 and 2",
        ),
        (
            lambda: EmbeddingSimilarityEvaluator(["a"], ["c"], [0.1], similarity_fn_names=["cosine", "cos"]),  # type: ignore[list-item]
            "similarity_fn_names got unexpected names ['cos']",
        ),
        (lambda: EmbeddingSimilarityEvaluator(["a"], ["c"], [0.1], main_similarity="l2"), "'l2' is not a valid"),
        (
            lambda: TripletEvaluator(["a"], ["b"], []),
            "anchors, positives and negatives must have the same length, got 1, 1 and 0",
        ),
        (
            lambda: TripletEvaluator(["a"], ["b"], ["c"], similarity_fn_names=["dot", "l1"]),  # type: ignore[list-item]
            "`similarity_fn_names` got unexpected names ['l1'], expected names in "
            "['cosine', 'dot', 'manhattan', 'euclidean'].",
        ),
        (
            lambda: TripletEvaluator(["a"], ["b"], ["c"], margin={"cosine": 0.1, "max": 1}),
            "`margin` got unexpected keys ['max'], expected keys in ['cosine', 'dot', 'manhattan', 'euclidean'].",
        ),
        (
            lambda: TripletEvaluator(["a"], ["b"], ["c"], margin="0.1"),  # type: ignore[arg-type]
            "`margin` should be a float or a dictionary with keys in ['cosine', 'dot', 'manhattan', 'euclidean'].",
        ),
        (lambda: TripletEvaluator(["a"], ["b"], ["c"], main_similarity_function="l2"), "'l2' is not a valid"),
    ],
)
def test_bad_arguments(make: Callable[[], Any], message: str) -> None:
    """Our messages; the reference raises ValueError with the same text for the similarity names and margins, and
    AssertionError for mismatched lengths (which ``python -O`` drops: we raise ValueError instead) and accepts an
    unknown name in EmbeddingSimilarityEvaluator's ``similarity_fn_names`` until the call fails with KeyError."""
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


@pytest.mark.parametrize(
    "make_reference",
    [
        lambda ev: ev.TripletEvaluator(["a"], ["b"], ["c"], similarity_fn_names=["dot", "l1"]),
        lambda ev: ev.TripletEvaluator(["a"], ["b"], ["c"], margin={"cosine": 0.1, "max": 1}),
        lambda ev: ev.TripletEvaluator(["a"], ["b"], ["c"], margin="0.1"),
        lambda ev: ev.TripletEvaluator(["a"], ["b"], ["c"], main_similarity_function="l2"),
        lambda ev: ev.EmbeddingSimilarityEvaluator(["a"], ["c"], [0.1], main_similarity="l2"),
    ],
)
def test_reference_raises_value_error_too(make_reference: Callable[[Any], Any]) -> None:
    with pytest.raises(ValueError):
        make_reference(_reference_evaluation())


def test_too_few_pairs(our_minilm: Any) -> None:
    evaluator = EmbeddingSimilarityEvaluator(["a"], ["b"], [0.5])
    with pytest.raises(ValueError, match="correlation needs at least 2 pairs, got 1"):
        evaluator(our_minilm)


def test_old_import_paths() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import sentrs.evaluation
        from sentrs.evaluation import SentenceEvaluator as Old
        from sentrs.evaluation.TripletEvaluator import TripletEvaluator as OldTriplet

    assert sentrs.evaluation.EmbeddingSimilarityEvaluator is EmbeddingSimilarityEvaluator
    assert Old is BaseEvaluator
    assert OldTriplet is TripletEvaluator
