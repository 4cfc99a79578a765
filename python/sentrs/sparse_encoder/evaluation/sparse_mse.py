"""``SparseMSEEvaluator``: mean squared error between a sparse teacher's embeddings and the model's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sentrs.sentence_transformer.evaluation.mse import MSEEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, mean_squared_error

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseMSEEvaluator"]


class SparseMSEEvaluator(SparseEvaluatorMixin, MSEEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.MSEEvaluator` for sparse models: ``negative_mse``, minus 100
    times the mean squared error between the teacher's embeddings of ``source_sentences`` (computed once, at
    construction) and the model's embeddings of ``target_sentences``, plus the sparsity of the model's embeddings.

    The error is computed over the union of each pair's active dimensions, so nothing vocabulary-sized is built.
    ``max_active_dims`` applies to the teacher's embeddings too. The metrics add ``active_dims`` and
    ``sparsity_ratio`` (of the model's embeddings), also appended to the CSV row.

    Args:
        source_sentences: the teacher's texts (e.g. English).
        target_sentences: the model's texts, row-aligned (e.g. their translations).
        teacher_model: the sparse teacher.
        show_progress_bar: show a progress bar while encoding.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``mse_evaluation_<name>_results.csv``.
        max_active_dims: keep at most this many dimensions of each embedding; None: each model's setting.

    Raises:
        ValueError: the two lists differ in length, or the two models' embeddings differ in shape.
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
        max_active_dims: int | None = None,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            source_sentences=source_sentences,
            target_sentences=target_sentences,
            teacher_model=teacher_model,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
        )
        self.csv_headers.extend(["active_dims", "sparsity_ratio"])

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """``negative_mse`` and the sparsity statistics (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _mean_squared_error(self, source: Any, target: Any) -> float:
        return mean_squared_error(source, target) * 100

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> SparseRows:  # type: ignore[override]
        """Sparse embeddings of ``sentences`` (``model.encode``), recording their sparsity."""
        rows = self.encode_sparse(model, sentences, **kwargs)
        for key, value in rows.sparsity().items():
            self.sparsity_stats[key].append(value)
        return rows
