"""``MSEEvaluator``: how close a student model's embeddings are to a teacher's (knowledge distillation)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MSEEvaluator"]

logger = logging.getLogger(__name__)


class MSEEvaluator(BaseEvaluator):
    """Mean squared error between the teacher's embeddings of ``source_sentences`` (computed once, here) and the
    evaluated model's embeddings of ``target_sentences`` (e.g. their translations), times 100.

    The metric is ``negative_mse`` (higher is better), prefixed with ``name + "_"`` when ``name`` is set; it is
    also the primary metric. The CSV column ``MSE`` holds the positive value.

    Args:
        source_sentences: sentences the teacher encodes.
        target_sentences: sentences the evaluated model encodes, row-aligned with ``source_sentences``.
        teacher_model: the model whose embeddings are the targets.
        show_progress_bar: show a progress bar while encoding.
        batch_size: encoding batch size.
        name: prefix of the metric key and part of the CSV file name (``mse_evaluation_<name>_results.csv``).
        write_csv: append the MSE to the CSV file in ``output_path``.
        truncate_dim: truncate both models' embeddings to this many dimensions; None keeps each model's setting.

    Raises:
        ValueError: the two lists differ in length.
    """

    def __init__(
        self,
        source_sentences: Sequence[str],
        target_sentences: Sequence[str],
        teacher_model: Any = None,
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if len(source_sentences) != len(target_sentences):
            raise ValueError(
                f"source_sentences ({len(source_sentences)}) and target_sentences ({len(target_sentences)}) "
                "must have the same length."
            )
        self.truncate_dim = truncate_dim
        self.target_sentences = target_sentences
        self.show_progress_bar = show_progress_bar
        self.batch_size = batch_size
        self.name = name
        self.csv_file: str = f"mse_evaluation_{name}_results.csv"
        self.csv_headers = ["epoch", "steps", "MSE"]
        self.write_csv = write_csv
        self.primary_metric = "negative_mse"
        self.source_embeddings = self.embed_inputs(teacher_model, source_sentences)

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes the targets and returns ``{"negative_mse": -100 * mean((teacher - model) ** 2)}``."""
        target_embeddings = self.embed_inputs(model, self.target_sentences)
        if target_embeddings.shape != self.source_embeddings.shape:
            raise ValueError(
                "the teacher's and the model's embeddings must have the same shape, "
                f"got {self.source_embeddings.shape} and {target_embeddings.shape}"
            )
        # float32 throughout, as the reference: the mean of the squared differences, then times 100.
        mse = self._mean_squared_error(self.source_embeddings, target_embeddings)
        logger.info(
            "MSE evaluation (lower = better) on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        logger.info("MSE (*100):\t%4f", mse)
        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mse])
        metrics = self.prefix_name_to_metrics({"negative_mse": -mse}, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def _mean_squared_error(self, source: Any, target: Any) -> float:
        """``100 * mean((source - target) ** 2)`` (the sparse evaluator computes it over its own rows)."""
        return float(np.mean((source - target) ** 2) * np.float32(100))

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        """``model.encode`` with this evaluator's batch size and truncation, as a numpy array."""
        return model.encode(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    @property
    def description(self) -> str:
        """``"Knowledge Distillation"``, as in the reference's model cards."""
        return "Knowledge Distillation"

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` where set."""
        return {"truncate_dim": self.truncate_dim} if self.truncate_dim is not None else {}
