"""``SparseRerankingEvaluator``: how well a sparse model ranks each query's positives above its negatives."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sentrs.base.similarity import cos_sim, dot_score, euclidean_sim, manhattan_sim, pytorch_cos_sim
from sentrs.sentence_transformer.evaluation.reranking import RerankingEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows, pairwise_similarity

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseRerankingEvaluator"]

# The library's similarity functions, scored on the sparse rows; other callables get torch sparse tensors.
_SPARSE_SCORED: dict[Any, str] = {
    cos_sim: "cosine",
    pytorch_cos_sim: "cosine",
    dot_score: "dot",
    euclidean_sim: "euclidean",
    manhattan_sim: "manhattan",
}


class SparseRerankingEvaluator(SparseEvaluatorMixin, RerankingEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.RerankingEvaluator` for sparse models: mean ``map``,
    ``mrr@<at_k>`` and ``ndcg@<at_k>`` of ranking each query's own positives and negatives, plus the sparsity of
    the query and document embeddings.

    Queries are encoded with ``encode_query``, documents with ``encode_document``; the scores are computed on the
    sparse rows. The metrics add ``query_active_dims``, ``query_sparsity_ratio``, ``corpus_active_dims`` and
    ``corpus_sparsity_ratio`` (the mean over the encode calls), also appended to the CSV row.

    Args:
        samples: ``{"query": str, "positive": [str, ...], "negative": [str, ...]}`` dicts (or a dict of them);
            samples without positives or negatives are skipped.
        at_k: the cut-off of MRR and NDCG.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``RerankingEvaluator[_<name>]_results_@<at_k>.csv``.
        similarity_fct: query-documents score function; cosine by default.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        use_batched_encoding: encode every query in one call and every document in another (faster); else sample
            by sample.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.
        mrr_at_k: deprecated name of ``at_k``.

    Raises:
        ValueError: a sample lacks a key, or ``at_k`` is not a positive integer.
    """

    def __init__(
        self,
        samples: list[dict[str, Any]] | dict[Any, dict[str, Any]],
        at_k: int = 10,
        name: str = "",
        write_csv: bool = True,
        similarity_fct: Callable[[Tensor, Tensor], Tensor] = cos_sim,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        use_batched_encoding: bool = True,
        max_active_dims: int | None = None,
        mrr_at_k: int | None = None,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            samples=samples,
            at_k=at_k,
            name=name,
            write_csv=write_csv,
            similarity_fct=similarity_fct,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            use_batched_encoding=use_batched_encoding,
            mrr_at_k=mrr_at_k,
        )
        self.csv_headers.extend(
            ["query_active_dims", "query_sparsity_ratio", "corpus_active_dims", "corpus_sparsity_ratio"]
        )

    def __call__(  # type: ignore[override]
        self, model: SparseEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """The ranking metrics and the sparsity statistics (see the class docstring)."""
        self.sparsity_stats = defaultdict(list)
        metrics = super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)  # type: ignore[arg-type]
        self.sparsity_stats = {key: mean(values) for key, values in self.sparsity_stats.items()}
        return self.add_sparsity_metrics(model, metrics, self.sparsity_stats, output_path, epoch, steps)

    def _scores(self, query: Any, documents: Any) -> np.ndarray:
        """The query's ``(n,)`` scores against the documents, as float64."""
        try:
            known = _SPARSE_SCORED.get(self.similarity_fct)
        except TypeError:  # an unhashable callable
            known = None
        if known is not None:
            repeated = query.take(np.zeros(len(documents), dtype=np.int64))
            return pairwise_similarity(repeated, documents, known).astype(np.float64)
        import torch

        result: Any = self.similarity_fct(query.to_tensor(), documents.to_tensor())
        if isinstance(result, torch.Tensor):
            result = result.detach().to_dense().float().cpu().numpy()
        values = np.asarray(result)
        return (values[0] if values.ndim > 1 else values).astype(np.float64)

    def embed_inputs(  # type: ignore[override]
        self,
        model: Any,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        show_progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> SparseRows:
        """Sparse embeddings of queries or documents, recording their sparsity."""
        rows = self.encode_sparse(model, sentences, encode_fn_name, show_progress_bar=show_progress_bar, **kwargs)
        prefix = "query" if encode_fn_name in ("query", None) else "corpus"
        for key, value in rows.sparsity().items():
            self.sparsity_stats[f"{prefix}_{key}"].append(value)
        return rows
