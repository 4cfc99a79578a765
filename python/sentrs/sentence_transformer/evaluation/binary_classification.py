"""``BinaryClassificationEvaluator``: how well one similarity threshold separates similar from dissimilar pairs."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["BinaryClassificationEvaluator"]

logger = logging.getLogger(__name__)

_FN_NAMES = ["cosine", "dot", "manhattan", "euclidean"]
# Display name of each function, and whether a higher score means more similar (distances: lower is closer).
_FN_DISPLAY = {
    "cosine": ("Cosine-Similarity", True),
    "dot": ("Dot-Product", True),
    "manhattan": ("Manhattan-Distance", False),
    "euclidean": ("Euclidean-Distance", False),
}
# Metric order of the returned dict, and of the CSV columns per function (as in the reference).
_METRICS = ["accuracy", "accuracy_threshold", "f1", "f1_threshold", "precision", "recall", "ap", "mcc"]
_CSV_METRICS = ["accuracy", "accuracy_threshold", "f1", "precision", "recall", "f1_threshold", "ap", "mcc"]


class BinaryClassificationEvaluator(BaseEvaluator):
    """Classifies each pair as similar when its score passes a threshold, and reports per similarity function:
    ``accuracy`` and ``f1`` at their best thresholds (``accuracy_threshold``, ``f1_threshold``), ``precision`` and
    ``recall`` at the best-F1 threshold, ``ap`` (average precision of the ranking by score) and ``mcc`` (Matthews
    correlation at the best-F1 threshold).

    Scores are cosine similarity and dot product (higher is more similar) or Manhattan and Euclidean distance
    (lower is more similar, thresholds are distances). Keys are ``<fn>_<metric>``, plus ``max_<metric>`` over
    several functions, prefixed with ``name + "_"`` when ``name`` is set. The primary metric is ``max_ap`` with
    several functions, else ``<fn>_ap``. Every distinct sentence is encoded once (``model.encode``).

    Args:
        sentences1: the first sentence of each pair.
        sentences2: the second sentence of each pair.
        labels: 1 for a similar pair, 0 for a dissimilar one.
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding; None shows it at INFO or DEBUG logging.
        write_csv: append the metrics to ``binary_classification_evaluation[_<name>]_results.csv``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.
        similarity_fn_names: the functions to score with; None uses the model's ``similarity_fn_name`` at the
            first call.

    Raises:
        ValueError: the three lists differ in length, a label is not 0 or 1, or a function name is unknown.
    """

    def __init__(
        self,
        sentences1: Sequence[Any],
        sentences2: Sequence[Any],
        labels: Sequence[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool | None = False,
        write_csv: bool = True,
        truncate_dim: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
    ) -> None:
        super().__init__()
        if len(sentences1) != len(sentences2) or len(sentences1) != len(labels):
            raise ValueError(
                "sentences1, sentences2 and labels must have the same length, "
                f"got {len(sentences1)}, {len(sentences2)} and {len(labels)}"
            )
        if bad := [label for label in labels if label not in (0, 1)]:
            raise ValueError(f"labels must be 0 or 1, got {bad[0]!r}")
        self.sentences1 = sentences1
        self.sentences2 = sentences2
        self.labels = labels
        self.truncate_dim = truncate_dim
        self.similarity_fn_names: list[str] = list(similarity_fn_names or [])
        if unknown := sorted(set(self.similarity_fn_names) - set(_FN_NAMES)):
            raise ValueError(f"`similarity_fn_names` got unexpected names {unknown}, expected names in {_FN_NAMES}.")
        self.write_csv = write_csv
        self.name = name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file: str = "binary_classification_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.similarity_fn_names)

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        self.csv_headers.extend(f"{fn}_{metric}" for fn in similarity_fn_names for metric in _CSV_METRICS)

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> BinaryClassificationEvaluator:
        """Builds the evaluator from objects with ``texts`` (two sentences) and a 0/1 ``label``."""
        return cls(
            [example.texts[0] for example in examples],
            [example.texts[1] for example in examples],
            [example.label for example in examples],
            **kwargs,
        )

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes the pairs, scores them and returns the metrics (see the class docstring)."""
        logger.info(
            "Binary Accuracy Evaluation of the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        if not self.similarity_fn_names:
            self.similarity_fn_names = [model.similarity_fn_name]
            self._append_csv_headers(self.similarity_fn_names)
        scores = self.compute_metrics(model)

        if output_path is not None and self.write_csv:
            row = [scores[fn][metric] for fn in self.similarity_fn_names for metric in _CSV_METRICS]
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])

        metrics = {f"{fn}_{metric}": value for fn, values in scores.items() for metric, value in values.items()}
        if len(self.similarity_fn_names) > 1:
            metrics.update({f"max_{metric}": max(values[metric] for values in scores.values()) for metric in _METRICS})
            self.primary_metric = "max_ap"
        else:
            self.primary_metric = f"{self.similarity_fn_names[0]}_ap"
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, dict[str, float]]:
        """``{fn: {metric: value}}`` for each similarity function, metrics in the order of the returned dict."""
        try:
            unique = list(dict.fromkeys([*self.sentences1, *self.sentences2]))
        except TypeError:  # unhashable inputs (e.g. images): encode every one
            embeddings1 = self.embed_inputs(model, self.sentences1)
            embeddings2 = self.embed_inputs(model, self.sentences2)
        else:
            embeddings = self.embed_inputs(model, unique)
            row_of = {sentence: row for row, sentence in enumerate(unique)}
            embeddings1 = embeddings[[row_of[sentence] for sentence in self.sentences1]]
            embeddings2 = embeddings[[row_of[sentence] for sentence in self.sentences2]]

        labels = np.asarray(self.labels).astype(np.int64)
        output: dict[str, dict[str, float]] = {}
        for fn in self.similarity_fn_names:
            display, greater_is_better = _FN_DISPLAY[fn]
            scores = self._pairwise_scores(embeddings1, embeddings2, fn)
            if not greater_is_better:
                scores = -scores  # the kernel returns negated distances; thresholds are on the distances
            accuracy, accuracy_threshold = self.find_best_acc_and_threshold(scores, labels, greater_is_better)
            f1, precision, recall, f1_threshold = self.find_best_f1_and_threshold(scores, labels, greater_is_better)
            ap = _average_precision(labels, scores if greater_is_better else -scores)
            predicted = scores >= f1_threshold if greater_is_better else scores <= f1_threshold
            mcc = _matthews_corrcoef(labels, predicted)
            logger.info(
                "Accuracy with %s:             %.2f\t(Threshold: %.4f)", display, accuracy * 100, accuracy_threshold
            )
            logger.info("F1 with %s:                   %.2f\t(Threshold: %.4f)", display, f1 * 100, f1_threshold)
            logger.info("Precision with %s:            %.2f", display, precision * 100)
            logger.info("Recall with %s:               %.2f", display, recall * 100)
            logger.info("Average Precision with %s:    %.2f", display, ap * 100)
            logger.info("Matthews Correlation with %s: %.2f\n", display, mcc * 100)
            output[fn] = {
                "accuracy": accuracy,
                "accuracy_threshold": accuracy_threshold,
                "f1": f1,
                "f1_threshold": f1_threshold,
                "precision": precision,
                "recall": recall,
                "ap": ap,
                "mcc": mcc,
            }
        return output

    compute_metrices = compute_metrics  # the reference's old misspelt name

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        """``(n,)`` float32 similarity of each pair of rows (the sparse evaluators score their own rows)."""
        return ops.similarity_pairwise(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(self, model: SentenceTransformer, sentences: Any, **kwargs: Any) -> np.ndarray:
        """``model.encode`` with this evaluator's batch size and truncation, as a numpy array."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @staticmethod
    def find_best_acc_and_threshold(
        scores: npt.ArrayLike, labels: npt.ArrayLike, high_score_more_similar: bool
    ) -> tuple[float, float]:
        """The best accuracy of "similar when the score passes the threshold" and that threshold.

        Candidate thresholds lie between consecutive distinct scores (their midpoint, in the scores' dtype) or at
        the last score; the first best one in ranking order wins. With no threshold better than calling every pair
        dissimilar, the threshold is just beyond the best score.
        """
        ordered, ordered_labels, group_ends = _ranked(scores, labels, high_score_more_similar)
        n = len(ordered_labels)
        if n == 0:
            return 0.0, -1.0
        negatives = int(np.count_nonzero(ordered_labels == 0))
        best_accuracy = negatives / n
        dtype = np.result_type(ordered.dtype, np.float16)
        best_threshold: Any = np.nextafter(
            ordered[0].astype(dtype), np.array(np.inf if high_score_more_similar else -np.inf, dtype=dtype)
        )
        positives_seen = np.cumsum(ordered_labels == 1)[group_ends]
        negatives_left = negatives - np.cumsum(ordered_labels == 0)[group_ends]
        accuracies = (positives_seen + negatives_left) / n
        best = int(np.argmax(accuracies))
        if accuracies[best] > best_accuracy:
            best_accuracy = float(accuracies[best])
            best_threshold = _threshold_after(ordered, int(group_ends[best]))
        return best_accuracy, float(best_threshold)

    @staticmethod
    def find_best_f1_and_threshold(
        scores: npt.ArrayLike, labels: npt.ArrayLike, high_score_more_similar: bool
    ) -> tuple[float, float, float, float]:
        """The best F1 of "similar when the score passes the threshold", its precision, recall and threshold
        (candidates as in :meth:`find_best_acc_and_threshold`; all 0 when no pair is similar)."""
        ordered, ordered_labels, group_ends = _ranked(scores, labels, high_score_more_similar)
        total_positives = int(np.count_nonzero(ordered_labels == 1))
        if total_positives == 0:
            return 0.0, 0.0, 0.0, 0.0
        correct = np.cumsum(ordered_labels == 1)[group_ends]
        predicted = group_ends + 1
        precision = correct / predicted
        recall = correct / total_positives
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(correct > 0, 2 * precision * recall / (precision + recall), 0.0)
        best = int(np.argmax(f1))
        if f1[best] <= 0:
            return 0.0, 0.0, 0.0, 0.0
        threshold = _threshold_after(ordered, int(group_ends[best]))
        return float(f1[best]), float(precision[best]), float(recall[best]), float(threshold)

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` where set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}


def _ranked(
    scores: npt.ArrayLike, labels: npt.ArrayLike, high_score_more_similar: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores and labels sorted most similar first, and the index of the last row of each run of equal scores."""
    scores = np.asarray(scores)
    labels = np.asarray(labels)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-d of the same length, got {scores.shape} and {labels.shape}")
    order = np.argsort(-scores if high_score_more_similar else scores, kind="stable")
    ordered = scores[order]
    group_ends = np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True)) if len(ordered) else np.empty(0, int)
    return ordered, labels[order], group_ends


def _threshold_after(ordered: np.ndarray, end: int) -> Any:
    """The threshold that takes rows ``..end`` as similar: the midpoint to the next score (in the scores' dtype),
    or the score itself where the midpoint rounds onto the next score or ``end`` is the last row."""
    if end == len(ordered) - 1:
        return ordered[end]
    midpoint = (ordered[end] + ordered[end + 1]) / 2
    return ordered[end] if midpoint == ordered[end + 1] else midpoint


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of ranking by ``scores`` (higher first): the sum over distinct score values of the
    precision there times the recall gained there. 0.0 when no label is 1."""
    _, ordered_labels, group_ends = _ranked(scores, labels, True)
    true_positives = np.cumsum(ordered_labels == 1)[group_ends]
    if len(true_positives) == 0 or true_positives[-1] == 0:
        return 0.0
    precision = true_positives / (group_ends + 1)
    recall_gain = np.diff(true_positives, prepend=0) / true_positives[-1]
    return float(np.sum(recall_gain * precision))


def _matthews_corrcoef(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Matthews correlation of 0/1 labels and boolean predictions; 0.0 when a margin of the table is empty."""
    truth = labels == 1
    tp = float(np.count_nonzero(truth & predicted))
    tn = float(np.count_nonzero(~truth & ~predicted))
    fp = float(np.count_nonzero(~truth & predicted))
    fn = float(np.count_nonzero(truth & ~predicted))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 0.0 if denominator == 0 else (tp * tn - fp * fn) / denominator
