"""``SparseEmbeddingSimilarityEvaluator``: correlation of a sparse model's pair similarities with gold scores."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sentrs.sentence_transformer.evaluation.embedding_similarity import EmbeddingSimilarityEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, pairwise_similarity

if TYPE_CHECKING:
    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseEmbeddingSimilarityEvaluator"]


class SparseEmbeddingSimilarityEvaluator(SparseEvaluatorMixin, EmbeddingSimilarityEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.EmbeddingSimilarityEvaluator` for sparse models: Pearson
    and Spearman correlation between each pair's similarity and its gold score, plus the sparsity of the
    embeddings.

    The pair similarities are computed on the sparse rows (no dense vocabulary-sized matrix). Besides
    ``pearson_<fn>`` / ``spearman_<fn>`` (and ``*_max`` over several functions) the metrics hold ``active_dims``
    (mean non-zero dimensions per embedding) and ``sparsity_ratio``, averaged over the two sides; both are also
    appended to the CSV row.

    Args:
        sentences1: the first sentence of each pair.
        sentences2: the second sentence of each pair.
        scores: the gold similarity of each pair.
        batch_size: encoding batch size.
        main_similarity: the function whose Spearman correlation is the primary metric.
        similarity_fn_names: the functions to score with (``cosine``, ``dot``, ``euclidean``, ``manhattan``); None:
            the model's ``similarity_fn_name``.
        name: prefix of the metric keys and part of the CSV file name.
        show_progress_bar: show a progress bar while encoding.
        write_csv: append the metrics to ``similarity_evaluation[_<name>]_results.csv`` in ``output_path``.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.

    Raises:
        ValueError: the three lists differ in length, or a similarity function name is unknown.
    """

    def __init__(
        self,
        sentences1: Sequence[str],
        sentences2: Sequence[str],
        scores: Sequence[float],
        batch_size: int = 16,
        main_similarity: str | SimilarityFunction | None = None,
        similarity_fn_names: list[Literal["cosine", "euclidean", "manhattan", "dot"]] | None = None,
        name: str = "",
        show_progress_bar: bool = False,
        write_csv: bool = True,
        max_active_dims: int | None = None,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            sentences1=sentences1,
            sentences2=sentences2,
            scores=scores,
            batch_size=batch_size,
            main_similarity=main_similarity,
            similarity_fn_names=similarity_fn_names,
            name=name,
            show_progress_bar=show_progress_bar,
            write_csv=write_csv,
            precision=None,
        )

    def _append_csv_headers(self, similarity_fn_names: list[str]) -> None:
        super()._append_csv_headers(similarity_fn_names)
        if similarity_fn_names:
            self.csv_headers.extend(["active_dims", "sparsity_ratio"])

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """The correlations and the sparsity statistics (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _pair_embeddings(self, model: Any) -> tuple[Any, Any]:
        return self.embed_inputs(model, self.sentences1), self.embed_inputs(model, self.sentences2)

    def _pairwise_scores(self, embeddings1: Any, embeddings2: Any, similarity_fn_name: str) -> np.ndarray:
        return pairwise_similarity(embeddings1, embeddings2, similarity_fn_name)

    def embed_inputs(self, model: Any, sentences: str | Sequence[str], **kwargs: Any) -> SparseRows:  # type: ignore[override]
        """Sparse embeddings of ``sentences`` (``model.encode``), recording their sparsity."""
        rows = self.encode_sparse(model, sentences, **kwargs)
        for key, value in rows.sparsity().items():
            self.sparsity_stats[key].append(value)
        return rows
