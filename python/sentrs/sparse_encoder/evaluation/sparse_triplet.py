"""``SparseTripletEvaluator``: how often a sparse model scores the anchor closer to the positive than the negative."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sentrs.sentence_transformer.evaluation.triplet import TripletEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, pairwise_similarity

if TYPE_CHECKING:
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseTripletEvaluator"]

_COLUMNS = ("anchor", "positive", "negative")


class SparseTripletEvaluator(SparseEvaluatorMixin, TripletEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.TripletEvaluator` for sparse models: the share of triplets
    with ``sim(anchor, positive) > sim(anchor, negative) + margin``, plus the sparsity of each column.

    Anchors are encoded with ``encode_query``, positives and negatives with ``encode_document``; the similarities
    are computed on the sparse rows. The metrics add ``anchor_active_dims``, ``anchor_sparsity_ratio`` and the
    same for ``positive`` and ``negative``, also appended to the CSV row.

    Args:
        anchors: the anchor texts.
        positives: a text similar to each anchor.
        negatives: a text dissimilar to each anchor.
        main_similarity_function: the function whose accuracy is the primary metric.
        margin: the margin, one number for every function or a dict by function name.
        name: prefix of the metric keys and part of the CSV file name.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the metrics to ``triplet_evaluation[_<name>]_results.csv``.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.
        similarity_fn_names: the functions to score with; None: the model's ``similarity_fn_name``.
        main_distance_function: deprecated name of ``main_similarity_function``.

    Raises:
        ValueError: as :class:`~sentrs.sentence_transformer.evaluation.TripletEvaluator`.
    """

    def __init__(
        self,
        anchors: Sequence[str],
        positives: Sequence[str],
        negatives: Sequence[str],
        main_similarity_function: str | SimilarityFunction | None = None,
        margin: float | dict[str, float] | None = None,
        name: str = "",
        batch_size: int = 16,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
        similarity_fn_names: list[Literal["cosine", "dot", "euclidean", "manhattan"]] | None = None,
        main_distance_function: str | SimilarityFunction | None = "deprecated",
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            anchors=anchors,
            positives=positives,
            negatives=negatives,
            main_similarity_function=main_similarity_function,
            margin=margin,
            name=name,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            similarity_fn_names=similarity_fn_names,
            main_distance_function=main_distance_function,
        )

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        super()._append_csv_headers(similarity_fn_names)
        if similarity_fn_names:
            for column in _COLUMNS:
                self.csv_headers.extend([f"{column}_active_dims", f"{column}_sparsity_ratio"])

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """The accuracies and the sparsity statistics of each column (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        return pairwise_similarity(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(  # type: ignore[override]
        self,
        model: Any,
        sentences: str | Sequence[str],
        encode_fn_name: Literal["query", "document"] | None = None,
        **kwargs: Any,
    ) -> SparseRows:
        """Sparse embeddings of one column, recording its sparsity (the columns come anchor, positive, negative)."""
        rows = self.encode_sparse(model, sentences, encode_fn_name, **kwargs)
        column = _COLUMNS[min(len(self.sparsity_stats) // 2, len(_COLUMNS) - 1)]
        for key, value in rows.sparsity().items():
            self.sparsity_stats[f"{column}_{key}"].append(value)
        return rows
