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

from sentrs.base.evaluation import BaseEvaluator, SentenceEvaluator, SequentialEvaluator
from sentrs.sentence_transformer.evaluation import (
    BinaryClassificationEvaluator,
    EmbeddingSimilarityEvaluator,
    MSEEvaluator,
    TripletEvaluator,
)

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
    """The evaluator hands the model's model-card data the prefixed metrics; a model without any, nothing."""
    first, second, scores = _pairs(10)
    evaluator = EmbeddingSimilarityEvaluator(first, second, scores, name="x")
    metrics = evaluator(our_minilm)
    assert our_minilm.model_card_data.eval_results_dict[evaluator] == metrics

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


# --- BinaryClassificationEvaluator, MSEEvaluator, SequentialEvaluator ---


def _labelled_pairs(n: int = 40) -> tuple[list[str], list[str], list[int]]:
    """``n`` pairs, some repeated sentences (encoded once), labels mixed so that no threshold is perfect."""
    first = [_sentence(i) for i in range(n)]
    second = [_sentence(i + (8 if i % 3 == 0 else 1 + i % 5)) for i in range(n)]
    labels = [1 if i % 3 == 0 or i % 7 == 0 else 0 for i in range(n)]
    return first, second, labels


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"name": "quora_dev"},
        {"similarity_fn_names": ["cosine", "dot", "euclidean", "manhattan"]},
        {"similarity_fn_names": ["manhattan", "cosine"], "name": "m"},
        {"similarity_fn_names": ["euclidean"], "truncate_dim": 64},
        {"write_csv": False, "similarity_fn_names": ["dot"]},
    ],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()) or "default",
)
def test_binary_classification_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    """Thresholds are midpoints between neighbouring scores, so they move with the scores: ATOL as for them."""
    first, second, labels = _labelled_pairs()
    ours = BinaryClassificationEvaluator(first, second, labels, batch_size=8, **kwargs)
    theirs = _reference_evaluation().BinaryClassificationEvaluator(first, second, labels, batch_size=8, **kwargs)
    assert ours.csv_file == theirs.csv_file
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (1, 10)))
    assert 0.0 < metrics[ours.primary_metric] <= 1.0


def _scores_with_ties(seed: int, n: int, dtype: Any) -> tuple[Any, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    scores = (rng.integers(0, n // 3 + 1, size=n) / 7).astype(dtype)  # many ties
    labels = (rng.random(n) < 0.4).astype(np.int64)
    return scores, labels


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("high_score_more_similar", [True, False])
def test_binary_classification_threshold_search_matches_reference(seed: int, high_score_more_similar: bool) -> None:
    """The numpy threshold search, AP and MCC against the reference's loops and scikit-learn on the same scores:
    equal up to float64 summation order (1e-12)."""
    import numpy as np
    from sklearn.metrics import average_precision_score, matthews_corrcoef

    from sentrs.sentence_transformer.evaluation.binary_classification import _average_precision, _matthews_corrcoef

    reference = _reference_evaluation().BinaryClassificationEvaluator
    for n, dtype in ((1, np.float32), (2, np.float32), (31, np.float32), (200, np.float64)):
        scores, labels = _scores_with_ties(seed, n, dtype)
        ours_acc = BinaryClassificationEvaluator.find_best_acc_and_threshold(scores, labels, high_score_more_similar)
        ref_acc = reference.find_best_acc_and_threshold(scores, labels, high_score_more_similar)
        assert ours_acc == pytest.approx(tuple(float(v) for v in ref_acc), abs=1e-12)
        ours_f1 = BinaryClassificationEvaluator.find_best_f1_and_threshold(scores, labels, high_score_more_similar)
        ref_f1 = reference.find_best_f1_and_threshold(scores, labels, high_score_more_similar)
        assert ours_f1 == pytest.approx(tuple(float(v) for v in ref_f1), abs=1e-12)
        if labels.any():
            signed = scores if high_score_more_similar else -scores
            assert _average_precision(labels, signed) == pytest.approx(
                average_precision_score(labels, signed), abs=1e-12
            )
        predicted = scores >= ours_f1[3] if high_score_more_similar else scores <= ours_f1[3]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-learn on a single class: "A single label was found"
            expected_mcc = matthews_corrcoef(labels, predicted)
        assert _matthews_corrcoef(labels, predicted) == pytest.approx(expected_mcc, abs=1e-12)


def test_binary_classification_bad_arguments() -> None:
    with pytest.raises(ValueError, match=re.escape("sentences1, sentences2 and labels must have the same length")):
        BinaryClassificationEvaluator(["a", "b"], ["c", "d"], [1])
    with pytest.raises(ValueError, match=re.escape("labels must be 0 or 1, got 2")):
        BinaryClassificationEvaluator(["a"], ["c"], [2])
    with pytest.raises(ValueError, match=re.escape("`similarity_fn_names` got unexpected names ['l2']")):
        BinaryClassificationEvaluator(["a"], ["c"], [1], similarity_fn_names=["l2"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"name": "en-de"}, {"truncate_dim": 64, "name": "t"}, {"write_csv": False}],
    ids=lambda kwargs: "-".join(f"{k}={v}" for k, v in kwargs.items()) or "default",
)
def test_mse_matches_reference(our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]) -> None:
    """Teacher and student are both MiniLM, the targets are other sentences: the MSE is non-zero. Each side uses
    its own library's model as teacher; embeddings agree to ~1e-7, the MSE (x100) to ATOL."""
    source = [_sentence(i) for i in range(24)]
    target = [_sentence(i + 5) for i in range(24)]
    ours = MSEEvaluator(source, target, teacher_model=our_minilm, batch_size=8, **kwargs)
    theirs = _reference_evaluation().MSEEvaluator(source, target, teacher_model=ref_minilm, batch_size=8, **kwargs)
    assert ours.csv_file == theirs.csv_file
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=((-1, -1), (3, -1)))
    assert metrics[ours.primary_metric] < 0


def test_mse_bad_arguments(our_minilm: Any) -> None:
    with pytest.raises(ValueError, match=re.escape("source_sentences (2) and target_sentences (1) must have")):
        MSEEvaluator(["a", "b"], ["c"], teacher_model=our_minilm)


@pytest.mark.parametrize("main_score", [None, "mean"])
def test_sequential_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, main_score: str | None
) -> None:
    """Merged metrics of a triplet, an STS and a binary evaluator, plus a plain-float evaluator and one without a
    primary metric, against the reference's SequentialEvaluator over the reference's evaluators."""
    from sentence_transformers.base.evaluation import SequentialEvaluator as RefSequentialEvaluator

    first, second, scores = _pairs(20)
    anchors, positives, negatives = _triplets(20)
    b1, b2, labels = _labelled_pairs(20)

    def parts(ev: Any, base: type) -> list[Any]:
        class Constant(base):  # type: ignore[misc, valid-type]
            def __call__(self, model: Any, output_path: Any = None, epoch: int = -1, steps: int = -1) -> Any:
                return 0.25

        class NoPrimary(base):  # type: ignore[misc, valid-type]
            def __call__(self, model: Any, output_path: Any = None, epoch: int = -1, steps: int = -1) -> Any:
                return {"first": 0.5, "second": 0.75}

        return [
            ev.TripletEvaluator(anchors, positives, negatives, name="trip"),
            Constant(),
            ev.EmbeddingSimilarityEvaluator(first, second, scores, name="sts"),
            NoPrimary(),
            ev.BinaryClassificationEvaluator(b1, b2, labels, name="bin"),
        ]

    import sentrs.sentence_transformer.evaluation as our_evaluation

    extra: dict[str, Any] = {} if main_score is None else {"main_score_function": lambda s: sum(s) / len(s)}
    ours = SequentialEvaluator(parts(our_evaluation, BaseEvaluator), **extra)
    from sentence_transformers.base.evaluation import BaseEvaluator as RefBaseEvaluator

    theirs = RefSequentialEvaluator(parts(_reference_evaluation(), RefBaseEvaluator), **extra)
    for epoch, steps in ((-1, -1), (1, 4)):
        our_metrics = ours(our_minilm, output_path=str(tmp_path / "ours"), epoch=epoch, steps=steps)
        ref_metrics = theirs(ref_minilm, output_path=str(tmp_path / "ref"), epoch=epoch, steps=steps)
        _assert_same_metrics(our_metrics, ref_metrics)
        assert ours.primary_metric == theirs.primary_metric == "sequential_score"
    assert sorted(p.name for p in (tmp_path / "ours").iterdir()) == sorted(
        p.name for p in (tmp_path / "ref").iterdir()
    )
    assert ours.description == theirs.description


def test_sequential_without_evaluators() -> None:
    evaluator = SequentialEvaluator([])
    assert evaluator(None) == {"sequential_score": 0.0}
    assert evaluator.primary_metric == "sequential_score"
    from sentrs.base.evaluation import SequentialEvaluator as FromBase

    assert FromBase is SequentialEvaluator


def test_old_import_paths_of_new_evaluators() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from sentrs.evaluation.BinaryClassificationEvaluator import BinaryClassificationEvaluator as OldBinary
        from sentrs.evaluation.MSEEvaluator import MSEEvaluator as OldMSE
        from sentrs.evaluation.SequentialEvaluator import SequentialEvaluator as OldSequential

    assert OldBinary is BinaryClassificationEvaluator
    assert OldMSE is MSEEvaluator
    assert OldSequential is SequentialEvaluator
