"""``MSEEvaluatorFromDataFrame``: knowledge-distillation MSE for several language pairs of a parallel table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.evaluation._results import append_csv_row
from sentrs.base.evaluation.evaluator import BaseEvaluator

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MSEEvaluatorFromDataFrame"]

logger = logging.getLogger(__name__)


class MSEEvaluatorFromDataFrame(BaseEvaluator):
    """Mean squared error (times 100) between the teacher's embeddings of one column and the evaluated model's
    embeddings of another, for each ``(source, target)`` column pair of ``combinations``.

    Rows where either of the pair's cells is blank are skipped for that pair. The teacher encodes every distinct
    source sentence once, here. The metric is ``negative_mse``, minus the mean of the pairs' MSEs (prefixed with
    ``name + "_"`` when ``name`` is set; also the primary metric); the CSV file has one column per pair
    (``<source>-<target>``).

    Args:
        dataframe: rows of parallel sentences, ``[{"en": ..., "de": ..., ...}, ...]``.
        teacher_model: encodes the source column of each pair.
        combinations: ``[(source_column, target_column), ...]``; the evaluated model encodes the target column.
        batch_size: encoding batch size.
        name: prefix of the metric key and part of the CSV file name.
        write_csv: append the MSEs to ``mse_evaluation[_<name>]_results.csv`` in ``output_path``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps each model's setting.

    Raises:
        ValueError: ``combinations`` is empty, a combination is not a pair, or a row lacks a column it names.
    """

    def __init__(
        self,
        dataframe: Sequence[Mapping[str, str]],
        teacher_model: Any,
        combinations: Sequence[tuple[str, str]],
        batch_size: int = 8,
        name: str = "",
        write_csv: bool = True,
        truncate_dim: int | None = None,
    ) -> None:
        super().__init__()
        if not combinations:
            raise ValueError("combinations must name at least one (source, target) column pair, got none")
        for pair in combinations:
            if isinstance(pair, (str, bytes)) or len(pair) != 2:
                raise ValueError(f"combinations must hold (source, target) column pairs, got {pair!r}")
        self.combinations = list(combinations)
        self.name = name
        self.batch_size = batch_size
        self.csv_file = "mse_evaluation" + (f"_{name}" if name else "") + "_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self.primary_metric = "negative_mse"
        self.write_csv = write_csv
        self.truncate_dim = truncate_dim

        self.data: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        source_sentences: dict[str, None] = {}  # insertion-ordered set
        for src_lang, trg_lang in self.combinations:
            src_sentences, trg_sentences = [], []
            for index, row in enumerate(dataframe):
                for column in (src_lang, trg_lang):
                    if column not in row:
                        raise ValueError(f"dataframe row {index} has no column {column!r} (named in combinations)")
                if row[src_lang].strip() != "" and row[trg_lang].strip() != "":
                    source_sentences[row[src_lang]] = None
                    src_sentences.append(row[src_lang])
                    trg_sentences.append(row[trg_lang])
            self.data[(src_lang, trg_lang)] = (src_sentences, trg_sentences)
            self.csv_headers.append(f"{src_lang}-{trg_lang}")

        logger.info("Compute teacher embeddings")
        unique_sources = list(source_sentences)
        self.teacher_embeddings: dict[str, np.ndarray] = {}
        if unique_sources:
            embeddings = self.embed_inputs(teacher_model, unique_sources)
            self.teacher_embeddings = dict(zip(unique_sources, embeddings, strict=True))

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Encodes each pair's target column and returns ``{"negative_mse": -mean of the pairs' MSE * 100}``."""
        if hasattr(model, "eval"):
            model.eval()
        mse_scores = []
        for src_lang, trg_lang in self.combinations:
            src_sentences, trg_sentences = self.data[(src_lang, trg_lang)]
            if not trg_sentences:
                raise ValueError(f"no row has both a {src_lang!r} and a {trg_lang!r} sentence")
            teacher = np.asarray([self.teacher_embeddings[sentence] for sentence in src_sentences])
            student = np.asarray(self.embed_inputs(model, trg_sentences))
            if teacher.shape != student.shape:
                raise ValueError(
                    "the teacher's and the model's embeddings must have the same shape, "
                    f"got {teacher.shape} and {student.shape}"
                )
            # In the embeddings' dtype (float32), as the reference: the mean of the squared differences, times 100.
            mse = ((teacher - student) ** 2).mean() * 100
            mse_scores.append(mse)
            logger.info("MSE evaluation on %s dataset - %s-%s:", self.name, src_lang, trg_lang)
            logger.info("MSE (*100):\t%4f", mse)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *mse_scores])

        metrics = {"negative_mse": -float(np.mean(mse_scores))}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> np.ndarray:
        """``model.encode`` with this evaluator's batch size and truncation, as a numpy array."""
        return model.encode(
            sentences, batch_size=self.batch_size, convert_to_numpy=True, truncate_dim=self.truncate_dim, **kwargs
        )

    @property
    def description(self) -> str:
        """``"Knowledge Distillation"``, as in the reference's model cards."""
        return "Knowledge Distillation"
