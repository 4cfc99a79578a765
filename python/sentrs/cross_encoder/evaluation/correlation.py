"""``CrossEncoderCorrelationEvaluator``: how well a cross-encoder's pair scores correlate with gold scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.sentence_transformer.evaluation.embedding_similarity import pearson_correlation, spearman_correlation

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoderCorrelationEvaluator"]

logger = logging.getLogger(__name__)


class CrossEncoderCorrelationEvaluator(BaseEvaluator):
    """Scores each pair with ``model.predict`` and reports the ``pearson`` and ``spearman`` (primary) correlations
    with the gold scores; keys are prefixed with ``name + "_"`` when ``name`` is set.

    Args:
        sentence_pairs: the pairs, ``[text_a, text_b]`` each.
        scores: the gold score of each pair.
        name: prefix of the metric keys and part of the CSV file name.
        prompt_name: name of a prompt of the model (``model.prompts``) for ``predict``.
        batch_size: ``predict`` batch size.
        show_progress_bar: show a progress bar; None shows it when logging is at INFO or DEBUG.
        write_csv: append the metrics to ``CrossEncoderCorrelationEvaluator[_<name>]_results.csv`` in
            ``output_path``.

    Example:
        ::

            from sentrs import CrossEncoder
            from sentrs.cross_encoder.evaluation import CrossEncoderCorrelationEvaluator

            model = CrossEncoder("cross-encoder/stsb-roberta-base")
            pairs = [["A man eats.", "Someone eats."], ["A man eats.", "A plane lands."], ["Hi", "Hello"]]
            evaluator = CrossEncoderCorrelationEvaluator(pairs, [0.9, 0.1, 0.8], name="sts-dev")
            results = evaluator(model)
            print(results[evaluator.primary_metric])  # sts-dev_spearman
    """

    def __init__(
        self,
        sentence_pairs: list[list[str]],
        scores: list[float],
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        write_csv: bool = True,
    ) -> None:
        super().__init__()
        self.sentence_pairs = sentence_pairs
        self.scores = scores
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        if show_progress_bar is None:
            show_progress_bar = logger.getEffectiveLevel() in (logging.INFO, logging.DEBUG)
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.csv_file = "CrossEncoderCorrelationEvaluator" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps", "Pearson_Correlation", "Spearman_Correlation"]
        self.primary_metric = "spearman"

    @classmethod
    def from_input_examples(cls, examples: Sequence[Any], **kwargs: Any) -> Any:
        """Builds the evaluator from objects with ``texts`` (a pair) and ``label`` (the gold score)."""
        return cls([example.texts for example in examples], [example.label for example in examples], **kwargs)

    def __call__(
        self, model: CrossEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every pair and returns the correlations (see the class docstring).

        Raises:
            ValueError: the model gives more than one score per pair, or the gold scores are not one per pair.
        """
        logger.info(
            "CrossEncoderCorrelationEvaluator: Evaluating the model on %s dataset%s:",
            self.name,
            progress_text(epoch, steps),
        )
        predicted = np.asarray(
            model.predict(
                self.sentence_pairs,
                prompt_name=self.prompt_name,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                show_progress_bar=self.show_progress_bar,
            ),
            dtype=np.float64,
        )
        if predicted.ndim != 1:
            raise ValueError(
                "CrossEncoderCorrelationEvaluator needs one score per pair, but the model gives "
                f"{predicted.shape[-1]} (num_labels={model.num_labels}); use CrossEncoderClassificationEvaluator."
            )
        gold = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        if gold.shape != predicted.shape:
            raise ValueError(f"got {len(gold)} gold scores for {len(predicted)} sentence pairs")
        pearson = pearson_correlation(gold, predicted)
        spearman = spearman_correlation(gold, predicted)
        logger.info("Correlation:\tPearson: %.4f\tSpearman: %.4f", pearson, spearman)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, pearson, spearman])
        metrics = self.prefix_name_to_metrics({"pearson": pearson, "spearman": spearman}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics
