"""``SparseInformationRetrievalEvaluator``: retrieval quality of a sparse model, searched on an inverted index.

Each corpus chunk's sparse embeddings go into the Rust inverted index (:class:`sentrs.ops.SparseIndex`), which
scores only the documents that share an active dimension with the query (the others score 0 and fill the ranking in
corpus-id order, as in the reference). Neither a dense vocabulary-sized matrix nor a query x corpus score matrix is
built for the dot product or the cosine; other score functions are called chunk by chunk with torch sparse tensors.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from tqdm import trange

from sentrs.base.evaluation.ranking import matrix_top_k, merge_top_k, scores_as_numpy
from sentrs.base.similarity import cos_sim, dot_score, pytorch_cos_sim
from sentrs.base.similarity_config import SimilarityMixin
from sentrs.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin, mean
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseInformationRetrievalEvaluator"]

logger = logging.getLogger(__name__)

_INDEX_SCORES: dict[Any, str] = {cos_sim: "cosine", pytorch_cos_sim: "cosine", dot_score: "dot"}

Hits = tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]


class SparseInformationRetrievalEvaluator(SparseEvaluatorMixin, InformationRetrievalEvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.InformationRetrievalEvaluator` for sparse models: accuracy,
    precision, recall, MRR, NDCG and MAP at k of searching the corpus with every query, plus the sparsity and the
    search cost of the embeddings.

    Queries are encoded with ``encode_query``, the corpus ``corpus_chunk_size`` documents at a time with
    ``encode_document``; each chunk is searched on an inverted index (see the module docstring). Hits are ranked by
    score, equal scores by ascending corpus id. Besides ``<fn>_<metric>@k`` the metrics hold:

    - ``query_active_dims`` / ``query_sparsity_ratio``: mean non-zero dimensions of the query embeddings, and
      ``1 - active_dims / vocab``;
    - ``corpus_active_dims`` / ``corpus_sparsity_ratio``: the same for the documents (weighted by chunk size);
    - ``avg_flops``: the expected number of multiplications of one query-document score, the dot product of the
      mean query and mean document activation counts per dimension.

    They are also appended to the CSV row.

    Args:
        queries: query id -> query text.
        corpus: corpus id -> document text.
        relevant_docs: query id -> the ids of its relevant documents.
        corpus_chunk_size: documents encoded and searched at a time.
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k; the largest is the primary metric's.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars while encoding and over the corpus chunks.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``Information-Retrieval_evaluation[_<name>]_results.csv``.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.
        score_functions: score function name -> function; None: the model's similarity. ``dot_score`` and
            ``cos_sim`` (and a model's dot or cosine similarity) run on the inverted index.
        main_score_function: the function whose NDCG is the primary metric.
        query_prompt: prompt put before every query.
        query_prompt_name: name of a model prompt put before every query.
        corpus_prompt: prompt put before every document.
        corpus_prompt_name: name of a model prompt put before every document.
        write_predictions: also write each query's ranked hits as JSON lines (the input of
            :class:`ReciprocalRankFusionEvaluator`).

    Raises:
        TypeError, ValueError: as :class:`~sentrs.sentence_transformer.evaluation.InformationRetrievalEvaluator`.
    """

    def __init__(
        self,
        queries: dict[str, str],
        corpus: dict[str, str],
        relevant_docs: dict[str, set[str]],
        corpus_chunk_size: int = 50000,
        mrr_at_k: list[int] = [10],  # noqa: B006 - the reference's defaults, never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        name: str = "",
        write_csv: bool = True,
        max_active_dims: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        self.max_active_dims = max_active_dims
        self._reset_sparsity()
        super().__init__(
            queries=queries,
            corpus=corpus,
            relevant_docs=relevant_docs,
            corpus_chunk_size=corpus_chunk_size,
            mrr_at_k=mrr_at_k,
            ndcg_at_k=ndcg_at_k,
            accuracy_at_k=accuracy_at_k,
            precision_recall_at_k=precision_recall_at_k,
            map_at_k=map_at_k,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            name=name,
            write_csv=write_csv,
            score_functions=score_functions,
            main_score_function=main_score_function,
            query_prompt=query_prompt,
            query_prompt_name=query_prompt_name,
            corpus_prompt=corpus_prompt,
            corpus_prompt_name=corpus_prompt_name,
            write_predictions=write_predictions,
        )

    def _reset_sparsity(self) -> None:
        self.sparsity_stats: Any = {"query": defaultdict(list), "corpus": defaultdict(list)}
        self.count_vectors: dict[str, npt.NDArray[np.float64]] = {}
        self.count_lengths: dict[str, list[int]] = {"query": [], "corpus": []}

    def _append_csv_headers(self, score_function_names: list[str]) -> None:
        super()._append_csv_headers(score_function_names)
        if score_function_names:
            self.csv_headers.extend(
                [
                    "query_active_dims",
                    "query_sparsity_ratio",
                    "corpus_active_dims",
                    "corpus_sparsity_ratio",
                    "avg_flops",
                ]
            )

    def __call__(  # type: ignore[override]
        self,
        model: SparseEncoder,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """The retrieval metrics and the sparsity statistics (see the class docstring). Extra arguments go to
        :meth:`compute_all_metrics` (``corpus_model``, ``corpus_embeddings``)."""
        self._reset_sparsity()
        metrics = super().__call__(model, output_path, epoch, steps, *args, **kwargs)  # type: ignore[arg-type]
        stats: dict[str, float] = {}
        for side, values in self.sparsity_stats.items():
            for key, per_call in values.items():
                if side == "query":
                    stats[f"{side}_{key}"] = mean(per_call)
                else:  # weighted by the number of documents of each chunk
                    lengths = self.count_lengths[side]
                    stats[f"{side}_{key}"] = sum(v * n for v, n in zip(per_call, lengths)) / sum(lengths)
        stats["avg_flops"] = self._calculate_avg_flops()
        self.sparsity_stats = stats
        return self.add_sparsity_metrics(model, metrics, stats, output_path, epoch, steps)

    def compute_all_metrics(
        self,
        model: Any,
        corpus_model: Any = None,
        corpus_embeddings: Any = None,
        output_path: str | None = None,
    ) -> dict[str, dict[str, dict[int, float]]]:
        """As :meth:`InformationRetrievalEvaluator.compute_all_metrics`; ``corpus_embeddings`` may be sparse (a torch
        sparse tensor, as ``encode_document`` returns) and count in the corpus statistics."""
        if corpus_embeddings is not None:
            corpus_embeddings = SparseRows.from_embeddings(corpus_embeddings)
            self._record_sparsity(corpus_embeddings, "corpus")
        return super().compute_all_metrics(
            model, corpus_model=corpus_model, corpus_embeddings=corpus_embeddings, output_path=output_path
        )

    def embed_inputs(  # type: ignore[override]
        self,
        model: Any,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> SparseRows:
        """Sparse embeddings of queries (``"query"`` or None) or documents, recording their sparsity."""
        rows = self.encode_sparse(model, sentences, encode_fn_name, prompt_name=prompt_name, prompt=prompt, **kwargs)
        self._record_sparsity(rows, "query" if encode_fn_name in ("query", None) else "corpus")
        return rows

    def _record_sparsity(self, rows: SparseRows, side: str) -> None:
        for key, value in rows.sparsity().items():
            self.sparsity_stats[side][key].append(value)
        counts = rows.count_vector()
        self.count_vectors[side] = counts if side not in self.count_vectors else self.count_vectors[side] + counts
        self.count_lengths[side].append(len(rows))

    def _calculate_avg_flops(self) -> float:
        """The dot product of the mean query and the mean document activation count per dimension (0 before any
        query or document was encoded)."""
        if "query" not in self.count_vectors or "corpus" not in self.count_vectors:
            return 0.0
        queries = self.count_vectors["query"] / sum(self.count_lengths["query"])
        documents = self.count_vectors["corpus"] / sum(self.count_lengths["corpus"])
        return float(np.dot(queries, documents))

    def _search(self, model: Any, corpus_model: Any, corpus_embeddings: Any, max_k: int) -> dict[str, Hits]:
        """Per score function, every query's best ``max_k`` corpus rows ``(ids, scores)``, ranked by descending score
        then ascending corpus id."""
        assert self.score_functions is not None
        queries = self.embed_inputs(
            model, self.queries, encode_fn_name="query", prompt_name=self.query_prompt_name, prompt=self.query_prompt
        )
        index_scores = {fn_name: _index_score(fn) for fn_name, fn in self.score_functions.items()}
        ranks = self._corpus_id_ranks()
        n_queries = len(self.queries)
        best: dict[str, Hits] = {
            fn_name: (np.empty((n_queries, 0), dtype=np.int64), np.empty((n_queries, 0), dtype=np.float64))
            for fn_name in self.score_functions
        }
        query_tensor: Tensor | None = None
        for start in trange(
            0, len(self.corpus), self.corpus_chunk_size, desc="Corpus Chunks", disable=not self.show_progress_bar
        ):
            end = min(start + self.corpus_chunk_size, len(self.corpus))
            if corpus_embeddings is None:
                chunk = self.embed_inputs(
                    corpus_model,
                    self.corpus[start:end],
                    encode_fn_name="document",
                    prompt_name=self.corpus_prompt_name,
                    prompt=self.corpus_prompt,
                )
            else:
                chunk = corpus_embeddings[start:end]
            chunk_ranks = ranks[start:end]
            # The index gives equal scores to the lower row, so its rows go in corpus-id order.
            order = np.argsort(chunk_ranks, kind="stable")
            index = chunk.take(order).index() if any(index_scores.values()) else None
            for fn_name, fn in self.score_functions.items():
                score = index_scores[fn_name]
                if score is not None and index is not None:
                    ids, values = index.search(*queries.csr_arrays(), max_k, score)
                    hits: Hits = (order[ids], values.astype(np.float64))
                else:
                    if query_tensor is None:
                        query_tensor = queries.to_tensor()
                    matrix = scores_as_numpy(fn(query_tensor, chunk.to_tensor()))
                    hits = matrix_top_k(matrix, chunk_ranks, max_k)
                best[fn_name] = merge_top_k(best[fn_name], (hits[0] + start, hits[1]), ranks, max_k)
        return best


def _index_score(fn: Callable[..., Any]) -> str | None:
    """``"dot"`` / ``"cosine"`` for the score functions the inverted index computes (the library's, or a model's
    own ``similarity`` set to one of them); None for any other callable."""
    owner = getattr(fn, "__self__", None)
    if owner is not None and getattr(fn, "__func__", None) is SimilarityMixin.similarity:
        name = str(owner.similarity_fn_name)
        return name if name in ("dot", "cosine") else None
    try:
        return _INDEX_SCORES.get(fn)
    except TypeError:  # an unhashable callable
        return None
