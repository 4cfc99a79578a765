"""LabelAccuracyEvaluator and MSEEvaluatorFromDataFrame against the reference's: metric keys and values, primary
metric, CSV file, and errors. Data: the WordNet task of test_evaluation_ir.py (glosses and example sentences).
Tolerance: ATOL there (1e-4; embeddings agree to ~1e-7, an accuracy moves only if a logit pair is that close)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.sentence_transformer.evaluation import LabelAccuracyEvaluator, MSEEvaluatorFromDataFrame
from tests.sentence_transformer.test_evaluation_ir import _reference, _run_both
from tests.sentence_transformer.test_evaluation_ranking import _synsets

# ------------------------------------------------------------------ LabelAccuracyEvaluator


def _labelled_examples(n: int = 12) -> list[Any]:
    """Reference ``InputExample``s: (example sentence, some gloss), label 0-2 (1: the right gloss)."""
    from sentence_transformers.sentence_transformer.readers import InputExample

    synsets = _synsets()
    examples = []
    for i in range(n):
        _, gloss, sentences = synsets[i % len(synsets)]
        label = i % 3
        other = gloss if label == 1 else synsets[(i + 1 + label) % len(synsets)][1]
        examples.append(InputExample(texts=[sentences[0], other], label=label))
    return examples


def _softmax_heads(our_model: Any, ref_model: Any) -> tuple[Any, Any]:
    """A SoftmaxLoss of each library with the same seeded classifier (3 labels)."""
    from sentence_transformers.sentence_transformer.losses import SoftmaxLoss as RefSoftmaxLoss

    from sentrs.sentence_transformer.losses import SoftmaxLoss

    torch.manual_seed(0)
    theirs = RefSoftmaxLoss(ref_model, 384, num_labels=3)
    ours = SoftmaxLoss(our_model, 384, num_labels=3)
    ours.classifier.load_state_dict(theirs.classifier.state_dict())
    return ours, theirs


@pytest.mark.parametrize("kwargs", [{}, {"name": "nli-dev"}, {"write_csv": False}], ids=["default", "named", "no-csv"])
def test_label_accuracy_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    from torch.utils.data import DataLoader

    examples = _labelled_examples()
    our_head, ref_head = _softmax_heads(our_minilm, ref_minilm)
    ours = LabelAccuracyEvaluator(DataLoader(examples, batch_size=5), softmax_model=our_head, **kwargs)
    theirs = _reference().LabelAccuracyEvaluator(DataLoader(examples, batch_size=5), softmax_model=ref_head, **kwargs)
    calls = ((-1, -1), (1, 2)) if not kwargs else ((1, -1),)  # two CSV rows, once
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=calls)
    assert 0.0 < metrics[ours.primary_metric] < 1.0


def test_label_accuracy_collate_matches_the_reference(our_minilm: Any, ref_minilm: Any) -> None:
    """The collate used for a model without ``smart_batching_collate`` gives the reference's batch."""
    from sentrs.sentence_transformer.evaluation.label_accuracy import collate_examples

    batch = _labelled_examples(5)
    ours_features, ours_labels = collate_examples(our_minilm, batch)
    ref_features, ref_labels = ref_minilm.smart_batching_collate(batch)
    assert torch.equal(ours_labels, ref_labels)
    assert len(ours_features) == len(ref_features) == 2
    for mine, ref in zip(ours_features, ref_features, strict=True):
        for key in ("input_ids", "attention_mask"):
            assert torch.equal(mine[key], ref[key]), key
    _, array_labels = collate_examples(our_minilm, [type(b)(texts=b.texts, label=np.array([0.5, 1.0])) for b in batch])
    assert array_labels.shape == (5, 2)


def test_label_accuracy_without_smart_batching_collate(our_minilm: Any, ref_minilm: Any, tmp_path: Path) -> None:
    """A model lacking ``smart_batching_collate`` gets the evaluator's own collate: same accuracy."""
    from torch.utils.data import DataLoader

    class Plain:
        """Our model without ``smart_batching_collate`` (whatever sentrs' model has)."""

        def __init__(self, model: Any) -> None:
            self._model = model
            self.device = model.device
            self.model_card_data = None

        def eval(self) -> None:
            self._model.eval()

        def preprocess(self, texts: list[str]) -> dict[str, Any]:
            return self._model.preprocess(texts)

    examples = _labelled_examples()
    our_head, ref_head = _softmax_heads(our_minilm, ref_minilm)
    ours = LabelAccuracyEvaluator(DataLoader(examples, batch_size=7), softmax_model=our_head, write_csv=False)
    theirs = _reference().LabelAccuracyEvaluator(DataLoader(examples, batch_size=7), softmax_model=ref_head)
    assert ours(Plain(our_minilm)) == pytest.approx(theirs(ref_minilm))


def test_label_accuracy_bad_arguments(our_minilm: Any) -> None:
    from torch.utils.data import DataLoader

    with pytest.raises(ValueError, match=re.escape("LabelAccuracyEvaluator needs softmax_model")):
        LabelAccuracyEvaluator(DataLoader(_labelled_examples(3)))(our_minilm)
    our_head, _ = _softmax_heads(our_minilm, our_minilm)
    with pytest.raises(ValueError, match=re.escape("the dataloader yielded no examples to classify")):
        LabelAccuracyEvaluator(DataLoader([]), softmax_model=our_head)(our_minilm)
    with pytest.raises(TypeError, match=re.escape("must yield examples with `texts` and `label`")):
        LabelAccuracyEvaluator(DataLoader([("a", "b")]), softmax_model=our_head)(_without_collate(our_minilm))


def _without_collate(model: Any) -> Any:
    class Plain:
        device = model.device

        def eval(self) -> None:
            pass

        def preprocess(self, texts: list[str]) -> dict[str, Any]:
            return model.preprocess(texts)

    return Plain()


# ------------------------------------------------------------------ MSEEvaluatorFromDataFrame


def _parallel_table() -> list[dict[str, str]]:
    """Columns ``gloss``, ``example``, ``short`` (the gloss's first clause); some cells blank (row skipped for the
    pairs that use that column); one repeated source sentence (encoded once by the teacher)."""
    rows = []
    for i, (_, gloss, examples) in enumerate(_synsets(20)):
        rows.append({"gloss": gloss, "example": examples[0] if i % 7 else "  ", "short": gloss.split("; ")[0]})
    rows.append(dict(rows[1]))
    return rows


@pytest.mark.parametrize(
    "kwargs",
    [
        {"combinations": [("gloss", "example")]},
        {"combinations": [("gloss", "example"), ("example", "short"), ("short", "gloss")], "name": "wn"},
        {"combinations": [("short", "example")], "truncate_dim": 64, "write_csv": False},
    ],
    ids=["one", "three-named", "truncated"],
)
def test_mse_from_dataframe_matches_reference(
    our_minilm: Any, ref_minilm: Any, tmp_path: Path, kwargs: dict[str, Any]
) -> None:
    """Teacher and student are MiniLM; the student encodes another column, so the MSEs are non-zero. Each library
    uses its own model as the teacher."""
    table = _parallel_table()
    ours = MSEEvaluatorFromDataFrame(table, our_minilm, batch_size=16, **kwargs)
    theirs = _reference().MSEEvaluatorFromDataFrame(table, ref_minilm, batch_size=16, **kwargs)
    assert ours.data == theirs.data
    calls = ((-1, -1), (4, 1)) if len(kwargs) == 1 else ((4, -1),)  # two CSV rows, once
    metrics = _run_both(our_minilm, ref_minilm, ours, theirs, tmp_path, calls=calls)
    assert metrics[ours.primary_metric] < 0


def test_mse_from_dataframe_bad_arguments(our_minilm: Any) -> None:
    table = [{"en": "a", "de": "b"}]
    with pytest.raises(ValueError, match=re.escape("combinations must name at least one (source, target) column")):
        MSEEvaluatorFromDataFrame(table, our_minilm, [])
    with pytest.raises(ValueError, match=re.escape("combinations must hold (source, target) column pairs, got 'en'")):
        MSEEvaluatorFromDataFrame(table, our_minilm, ["en"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=re.escape("dataframe row 0 has no column 'fr' (named in combinations)")):
        MSEEvaluatorFromDataFrame(table, our_minilm, [("en", "fr")])
    evaluator = MSEEvaluatorFromDataFrame([{"en": "a", "de": " "}], our_minilm, [("en", "de")])
    with pytest.raises(ValueError, match=re.escape("no row has both a 'en' and a 'de' sentence")):
        evaluator(our_minilm)
