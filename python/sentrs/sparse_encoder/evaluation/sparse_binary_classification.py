"""``SparseBinaryClassificationEvaluator``: how well a sparse model's pair similarities separate similar pairs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sentrs.sentence_transformer.evaluation.binary_classification import BinaryClassificationEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, pairwise_similarity

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseBinaryClassificationEvaluator"]


class SparseBinaryClassificationEvaluator(SparseEvaluatorMixin, BinaryClassificationEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.BinaryClassificationEvaluator` for sparse models: accuracy,
    F1, precision, recall, average precision and MCC of "similar when the score passes a threshold", with the best
    thresholds, plus the sparsity of the embeddings.

    Every distinct sentence is encoded once; the pair similarities are computed on the sparse rows. The metrics add
    ``active_dims`` and ``sparsity_ratio``, also appended to the CSV row.

    Args:
        sentences1: the first sentence of each pair.
        sentences2: the second sentence of each pair.
        labels: 1 for a similar pair, 0 otherwise.
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the metrics to ``binary_classification_evaluation[_<name>]_results.csv``.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.
        similarity_fn_names: the functions to score with; None: the model's ``similarity_fn_name``.

    Raises:
        ValueError: the lists differ in length, a label is not 0 or 1, or a similarity function name is unknown.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        labels: Sequence[int],
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            sentences1=sentences1,
            sentences2=sentences2,
            labels=labels,
            name=name,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            similarity_fn_names=similarity_fn_names,
        )

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        super()._append_csv_headers(similarity_fn_names)
        if similarity_fn_names:
            self.csv_headers.extend(["active_dims", "sparsity_ratio"])

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """The classification metrics and the sparsity statistics (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        return pairwise_similarity(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(self, model: Any, sentences: Any, **kwargs: Any) -> SparseRows:  # type: ignore[override]
        """Sparse embeddings of ``sentences`` (``model.encode``), recording their sparsity."""
        rows = self.encode_sparse(model, sentences, **kwargs)
        for key, value in rows.sparsity().items():
            self.sparsity_stats[key].append(value)
        return rows
