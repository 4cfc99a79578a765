"""``CrossEncoderClassificationEvaluator``: how well a cross-encoder classifies pairs (binary or multi-class)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.sentence_transformer.evaluation.binary_classification import (
    BinaryClassificationEvaluator,
    _average_precision,
)

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoderClassificationEvaluator", "f1_scores"]

logger = logging.getLogger(__name__)


class CrossEncoderClassificationEvaluator(BaseEvaluator):
    """Scores each pair with ``model.predict`` and compares with the gold labels.

    A model with one output label is a binary classifier: the evaluator reports the best ``accuracy`` and ``f1``
    over all thresholds on the score (with ``accuracy_threshold``, ``f1_threshold``, and the ``precision`` and
    ``recall`` at the best F1), and ``average_precision``, the primary metric. A model with several output labels
    predicts the class of highest score; the evaluator reports ``f1_macro`` (primary), ``f1_micro`` and
    ``f1_weighted``. Keys are prefixed with ``name + "_"`` when ``name`` is set.

    Args:
        sentence_pairs: the pairs, ``[text_a, text_b]`` each.
        labels: the gold label of each pair: 0/1 for a one-label model, a class id otherwise.
        name: prefix of the metric keys and part of the CSV file name.
        prompt_name: name of a prompt of the model (``model.prompts``) for ``predict``.
        batch_size: ``predict`` batch size.
        show_progress_bar: show a progress bar; None shows it when logging is at INFO or DEBUG.
        write_csv: append the metrics to ``CrossEncoderClassificationEvaluator[_<name>]_results.csv`` in
            ``output_path``.
        **kwargs: accepted and ignored, as in the reference.

    Raises:
        ValueError: ``sentence_pairs`` and ``labels`` differ in length.

    Example:
        ::

            from sentrs import CrossEncoder
            from sentrs.cross_encoder.evaluation import CrossEncoderClassificationEvaluator

            model = CrossEncoder("cross-encoder/nli-deberta-v3-base")
            evaluator = CrossEncoderClassificationEvaluator(
                [["A man eats.", "Someone is eating."], ["A man eats.", "Nobody eats."]], [1, 0], name="nli-dev"
            )
            results = evaluator(model)
            print(results[evaluator.primary_metric])  # nli-dev_f1_macro
    """

    def __init__(
        self,
        sentence_pairs: list[list[str]],
        labels: list[int],
        *,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        if len(sentence_pairs) != len(labels):
            raise ValueError(
                f"sentence_pairs and labels must have the same length, got {len(sentence_pairs)} pairs and "
                f"{len(labels)} labels"
            )
        self.sentence_pairs = sentence_pairs
        self.labels = np.asarray(labels)
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.csv_file = "CrossEncoderClassificationEvaluator" + (f"_{name}" if name else "") + "_results.csv"
        self.write_csv = write_csv
        self.csv_headers: list[str] = []

    def __call__(
        self, model: CrossEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every pair and returns the metrics (see the class docstring)."""
        logger.info(
            "CrossEncoderClassificationEvaluator: Evaluating the model on %s dataset%s:",
            self.name,
            progress_text(epoch, steps),
        )
        scores = model.predict(
            self.sentence_pairs,
            prompt_name=self.prompt_name,
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=self.show_progress_bar,
        )
        metrics: dict[str, Any]
        if model.num_labels == 1:
            metrics = self._binary_metrics(np.asarray(scores))
            self.csv_headers = [
                "epoch",
                "steps",
                "Accuracy",
                "Accuracy_Threshold",
                "F1",
                "F1_Threshold",
                "Precision",
                "Recall",
                "Average_Precision",
            ]
            self.primary_metric = "average_precision"
        else:
            f1_macro, f1_micro, f1_weighted = f1_scores(self.labels, np.argmax(scores, axis=1))
            logger.info("Macro F1:           %.2f", f1_macro * 100)
            logger.info("Micro F1:           %.2f", f1_micro * 100)
            logger.info("Weighted F1:        %.2f", f1_weighted * 100)
            metrics = {"f1_macro": f1_macro, "f1_micro": f1_micro, "f1_weighted": f1_weighted}
            self.csv_headers = ["epoch", "steps", "Macro_F1", "Micro_F1", "Weighted_F1"]
            self.primary_metric = "f1_macro"

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *metrics.values()])
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _binary_metrics(self, scores: npt.NDArray[Any]) -> dict[str, Any]:
        accuracy, accuracy_threshold = BinaryClassificationEvaluator.find_best_acc_and_threshold(
            scores, self.labels, True
        )
        f1, precision, recall, f1_threshold = BinaryClassificationEvaluator.find_best_f1_and_threshold(
            scores, self.labels, True
        )
        average_precision = _average_precision(self.labels, scores)
        logger.info("Accuracy:          %.2f\t(Threshold: %.4f)", accuracy * 100, accuracy_threshold)
        logger.info("F1:                %.2f\t(Threshold: %.4f)", f1 * 100, f1_threshold)
        logger.info("Precision:         %.2f", precision * 100)
        logger.info("Recall:            %.2f", recall * 100)
        logger.info("Average Precision: %.2f", average_precision * 100)
        return {
            "accuracy": accuracy,
            "accuracy_threshold": accuracy_threshold,
            "f1": f1,
            "f1_threshold": f1_threshold,
            "precision": precision,
            "recall": recall,
            "average_precision": average_precision,
        }

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> Any:
        """Builds the evaluator from objects with ``texts`` (a pair) and ``label``."""
        return cls([example.texts for example in examples], [example.label for example in examples], **kwargs)


def f1_scores(labels: npt.ArrayLike, predicted: npt.ArrayLike) -> tuple[float, float, float]:
    """``(macro, micro, weighted)`` F1 of predicted class ids against gold ones, over the classes that occur in
    either (scikit-learn's ``f1_score`` with ``average=...``; a class's F1 is 0 when it has no true positive).

    Macro averages the per-class F1, weighted averages it by each class's gold count, and micro pools the counts
    (for single-label predictions, the accuracy).
    """
    gold = np.asarray(labels).reshape(-1)
    pred = np.asarray(predicted).reshape(-1)
    if gold.shape != pred.shape:
        raise ValueError(f"labels and predictions must have the same length, got {gold.shape[0]} and {pred.shape[0]}")
    if gold.size == 0:
        return 0.0, 0.0, 0.0
    classes, index = np.unique(np.concatenate([gold, pred]), return_inverse=True)
    gold_index, pred_index = index[: gold.size], index[gold.size :]
    n_classes = len(classes)
    true_positives = np.bincount(gold_index[gold_index == pred_index], minlength=n_classes).astype(np.float64)
    gold_counts = np.bincount(gold_index, minlength=n_classes).astype(np.float64)
    pred_counts = np.bincount(pred_index, minlength=n_classes).astype(np.float64)
    denominator = gold_counts + pred_counts  # 2 tp + fp + fn
    per_class = np.divide(2 * true_positives, denominator, out=np.zeros(n_classes), where=denominator > 0)
    macro = float(per_class.mean())
    micro = float(2 * true_positives.sum() / denominator.sum())
    weighted = float(per_class @ gold_counts / gold_counts.sum())
    return macro, micro, weighted
