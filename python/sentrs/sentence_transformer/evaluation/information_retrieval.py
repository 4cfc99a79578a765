"""``InformationRetrievalEvaluator``: retrieval quality (accuracy, precision, recall, MRR, NDCG, MAP at k) of a model
that searches a corpus for each query.

The search is exact and never holds the query x corpus score matrix for cosine and dot product: each corpus chunk
goes through the Rust top-k kernel (:func:`sentrs.ops.topk_search`). Euclidean and Manhattan scores and custom score
functions build one query x chunk matrix at a time, as the reference does.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from tqdm import trange

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.evaluation.ranking import matrix_top_k, merge_top_k, scores_as_numpy, slice_rows
from sentrs.base.similarity import (
    SimilarityFunction,
    cos_sim,
    dot_score,
    euclidean_sim,
    manhattan_sim,
    pytorch_cos_sim,
)
from sentrs.base.similarity_config import SimilarityMixin

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["InformationRetrievalEvaluator"]

logger = logging.getLogger(__name__)

# The metric families in the order of the returned dict, and their CSV column names.
_METRICS = ("accuracy@k", "precision@k", "recall@k", "ndcg@k", "mrr@k", "map@k")
# Score functions that are known by identity: the top-k kernel (cosine, dot) or the Rust matrix (the others).
_KNOWN_FUNCTIONS: dict[Any, str] = {
    cos_sim: "cosine",
    pytorch_cos_sim: "cosine",
    dot_score: "dot",
    euclidean_sim: "euclidean",
    manhattan_sim: "manhattan",
}
# The Rust top-k kernel takes these; the other named functions are scored as a matrix per chunk.
_TOPK_KERNELS = ("cosine", "dot")
# At most this many corpus rows per block inside the top-k kernel (its cache-friendly default).
_KERNEL_BLOCK = 4096


class InformationRetrievalEvaluator(BaseEvaluator):
    """Searches the corpus with every query that has relevant documents and scores the ranked hits.

    Queries are encoded with ``encode_query`` and the corpus, ``corpus_chunk_size`` documents at a time, with
    ``encode_document`` (so a model's ``query`` / ``document`` prompts apply unless ``*_prompt(_name)`` says
    otherwise). Hits are ranked by score, equal scores by ascending corpus id, as in the reference. For each score
    function the metrics are ``<fn>_accuracy@k`` (a relevant document in the top k), ``<fn>_precision@k``,
    ``<fn>_recall@k``, ``<fn>_ndcg@k`` (binary relevance), ``<fn>_mrr@k`` and ``<fn>_map@k``, for the k of the
    matching ``*_at_k`` list; keys are prefixed with ``name + "_"`` when ``name`` is set. The primary metric is
    ``<fn>_ndcg@<max(ndcg_at_k)>`` of ``main_score_function``, else of the function with the best such NDCG.

    Queries without relevant documents are skipped. Relevant ids absent from the corpus still count in the recall
    denominator, as in the reference.

    Args:
        queries: query id -> query text.
        corpus: corpus id -> document text.
        relevant_docs: query id -> the ids of its relevant documents (a set).
        corpus_chunk_size: documents encoded and searched at a time.
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k; the largest is the primary metric's.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars while encoding and over the corpus chunks.
        batch_size: encoding batch size.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``Information-Retrieval_evaluation[_<name>]_results.csv`` in
            ``output_path``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.
        score_functions: score function name -> ``f(queries (q, d), documents (n, d)) -> (q, n)`` scores. None uses
            the similarity of the model passed to each call (``{model.similarity_fn_name: model.similarity}``).
            ``cos_sim`` and ``dot_score`` (and a model's cosine or dot similarity) run in the Rust top-k kernel.
        main_score_function: the function whose NDCG is the primary metric.
        query_prompt: prompt put before every query.
        query_prompt_name: name of a model prompt put before every query.
        corpus_prompt: prompt put before every document.
        corpus_prompt_name: name of a model prompt put before every document.
        write_predictions: also write each query's ranked hits, one JSON line per query, to
            ``Information-Retrieval_evaluation[_<name>]_predictions_<fn>.jsonl`` in ``output_path``.

    Raises:
        TypeError: ``queries``, ``corpus`` or ``relevant_docs`` is not a dict, a ``relevant_docs`` value is a
            string rather than a collection of ids, or a score function is not callable.
        ValueError: a ``*_at_k`` list is empty or holds a value below 1, ``corpus_chunk_size`` or ``batch_size``
            is below 1, ``main_score_function`` is unknown, or no query has relevant documents.
    """

    def __init__(
        self,
        queries: dict[str, Any],
        corpus: dict[str, Any],
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
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        query_prompt: str | None = None,
        query_prompt_name: str | None = None,
        corpus_prompt: str | None = None,
        corpus_prompt_name: str | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        for arg_name, mapping in (("queries", queries), ("corpus", corpus), ("relevant_docs", relevant_docs)):
            if not isinstance(mapping, Mapping):
                raise TypeError(
                    f"{arg_name} must be a dict from id to {_ID_VALUE[arg_name]}, got {type(mapping).__name__}"
                )
        for qid, docs in relevant_docs.items():
            if isinstance(docs, (str, bytes)) or not isinstance(docs, Collection):
                raise TypeError(
                    f"relevant_docs[{qid!r}] must be a collection of corpus ids (a set), got {type(docs).__name__}"
                )
        for arg_name, ks in (
            ("mrr_at_k", mrr_at_k),
            ("ndcg_at_k", ndcg_at_k),
            ("accuracy_at_k", accuracy_at_k),
            ("precision_recall_at_k", precision_recall_at_k),
            ("map_at_k", map_at_k),
        ):
            _check_ks(arg_name, ks)
        for arg_name, value in (("corpus_chunk_size", corpus_chunk_size), ("batch_size", batch_size)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{arg_name} must be a positive integer, got {value!r}")
        if score_functions is not None:
            for fn_name, fn in score_functions.items():
                if not callable(fn):
                    raise TypeError(f"score_functions[{fn_name!r}] must be callable, got {type(fn).__name__}")

        self.queries_ids = [qid for qid in queries if qid in relevant_docs and len(relevant_docs[qid]) > 0]
        if not self.queries_ids:
            raise ValueError(
                f"no query has relevant documents: none of the {len(queries)} ids in `queries` has a non-empty "
                "entry in `relevant_docs`"
            )
        self.queries = [queries[qid] for qid in self.queries_ids]
        self.corpus_ids = list(corpus.keys())
        self.corpus = [corpus[cid] for cid in self.corpus_ids]
        self._corpus_ranks: npt.NDArray[np.int64] | None = None
        missing = _count_missing_ids(self.queries_ids, relevant_docs, corpus)
        if missing:
            logger.warning(
                "%d relevant document ids in relevant_docs are not in the corpus; they can never be retrieved but "
                "count in the recall denominator (as in sentence-transformers)",
                missing,
            )

        self.query_prompt = query_prompt
        self.query_prompt_name = query_prompt_name
        self.corpus_prompt = corpus_prompt
        self.corpus_prompt_name = corpus_prompt_name

        self.relevant_docs = relevant_docs
        self.corpus_chunk_size = int(corpus_chunk_size)
        self.mrr_at_k = list(mrr_at_k)
        self.ndcg_at_k = list(ndcg_at_k)
        self.accuracy_at_k = list(accuracy_at_k)
        self.precision_recall_at_k = list(precision_recall_at_k)
        self.map_at_k = list(map_at_k)

        self.show_progress_bar = show_progress_bar
        self.batch_size = int(batch_size)
        self.name = name
        self.write_csv = write_csv
        self.score_functions = score_functions
        self.score_function_names: list[str] = sorted(score_functions) if score_functions else []
        self._score_functions_from_model = score_functions is None
        self.main_score_function = SimilarityFunction(main_score_function) if main_score_function else None
        self.truncate_dim = truncate_dim

        suffix = f"_{name}" if name else ""
        self.csv_file: str = f"Information-Retrieval_evaluation{suffix}_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)
        self.write_predictions = write_predictions
        if self.write_predictions:
            self.predictions_file = f"Information-Retrieval_evaluation{suffix}_predictions.jsonl"

    def _append_csv_headers(self, score_function_names: list[str]) -> None:
        for fn_name in score_function_names:
            self.csv_headers.extend(f"{fn_name}-Accuracy@{k}" for k in self.accuracy_at_k)
            for k in self.precision_recall_at_k:
                self.csv_headers.extend((f"{fn_name}-Precision@{k}", f"{fn_name}-Recall@{k}"))
            self.csv_headers.extend(f"{fn_name}-MRR@{k}" for k in self.mrr_at_k)
            self.csv_headers.extend(f"{fn_name}-NDCG@{k}" for k in self.ndcg_at_k)
            self.csv_headers.extend(f"{fn_name}-MAP@{k}" for k in self.map_at_k)

    def _model_score_functions(self, model: SentenceTransformer) -> dict[str, Callable[[Tensor, Tensor], Tensor]]:
        """The score functions of a call without ``score_functions``: the model's own similarity."""
        return {model.similarity_fn_name: model.similarity}

    def __call__(
        self,
        model: SentenceTransformer,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Encodes, searches and returns the metrics (see the class docstring). Extra arguments go to
        :meth:`compute_all_metrics` (``corpus_model``, ``corpus_embeddings``)."""
        logger.info(
            "Information Retrieval Evaluation of the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        headers_changed = False
        if self._score_functions_from_model:
            # Resolved at every call: an evaluator reused with another model follows that model's similarity.
            self.score_functions = self._model_score_functions(model)
            if self.score_function_names != sorted(self.score_functions):
                headers_changed = bool(self.score_function_names)
                self.score_function_names = sorted(self.score_functions)
                self.csv_headers = ["epoch", "steps"]
                self._append_csv_headers(self.score_function_names)
                self.primary_metric = None

        kwargs.setdefault("output_path", output_path)
        scores = self.compute_all_metrics(model, *args, **kwargs)

        if output_path is not None and self.write_csv:
            if headers_changed and os.path.isfile(os.path.join(output_path, self.csv_file)):
                logger.warning(
                    "%s was written with different score function columns, so the rows appended for %s are labeled "
                    "with the previous score function.",
                    self.csv_file,
                    self.score_function_names,
                )
            row: list[Any] = [epoch, steps]
            for fn_name in self.score_function_names:
                fn_scores = scores[fn_name]
                row.extend(fn_scores["accuracy@k"][k] for k in self.accuracy_at_k)
                for k in self.precision_recall_at_k:
                    row.extend((fn_scores["precision@k"][k], fn_scores["recall@k"][k]))
                row.extend(fn_scores["mrr@k"][k] for k in self.mrr_at_k)
                row.extend(fn_scores["ndcg@k"][k] for k in self.ndcg_at_k)
                row.extend(fn_scores["map@k"][k] for k in self.map_at_k)
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        if not self.primary_metric:
            at_k = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(self.score_function_names, key=lambda fn_name: scores[fn_name]["ndcg@k"][at_k])
                self.primary_metric = f"{best}_ndcg@{at_k}"
            else:
                self.primary_metric = f"{self.main_score_function.value}_ndcg@{at_k}"

        metrics = {
            f"{fn_name}_{metric.replace('@k', f'@{k}')}": value
            for fn_name, fn_scores in scores.items()
            for metric, values in fn_scores.items()
            for k, value in values.items()
        }
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_all_metrics(
        self,
        model: SentenceTransformer,
        corpus_model: Any = None,
        corpus_embeddings: Any = None,
        output_path: str | None = None,
    ) -> dict[str, dict[str, dict[int, float]]]:
        """Searches and scores with every score function: ``{fn: {"accuracy@k": {k: value}, ...}}``.

        Args:
            model: encodes the queries (and the corpus, unless ``corpus_model`` or ``corpus_embeddings`` is given).
            corpus_model: encodes the corpus instead of ``model``.
            corpus_embeddings: precomputed ``(len(corpus), dim)`` corpus embeddings, in the corpus's order.
            output_path: folder for the predictions files (``write_predictions``).
        """
        if corpus_model is None:
            corpus_model = model
        if self.score_functions is None:
            self.score_functions = self._model_score_functions(model)
            self.score_function_names = sorted(self.score_functions)
        if corpus_embeddings is not None and len(corpus_embeddings) != len(self.corpus):
            raise ValueError(
                f"corpus_embeddings must have one row per corpus entry, got {len(corpus_embeddings)} rows for "
                f"{len(self.corpus)} entries"
            )
        max_k = max(*self.mrr_at_k, *self.ndcg_at_k, *self.accuracy_at_k, *self.precision_recall_at_k, *self.map_at_k)
        hits = self._search(model, corpus_model, corpus_embeddings, max_k)

        if self.write_predictions and output_path is not None:
            self._write_predictions(output_path, hits)

        logger.info("Queries: %d", len(self.queries))
        logger.info("Corpus: %d\n", len(self.corpus))
        scores = {
            fn_name: self._metrics_of_ranked_ids([[self.corpus_ids[i] for i in row] for row in ids.tolist()])
            for fn_name, (ids, _) in hits.items()
        }
        for fn_name in self.score_function_names:
            logger.info("Score-Function: %s", fn_name)
            self.output_scores(scores[fn_name])
        return scores

    compute_metrices = compute_all_metrics  # the reference's old (misspelt) name

    # ------------------------------------------------------------------ search

    def _search(
        self, model: Any, corpus_model: Any, corpus_embeddings: Any, max_k: int
    ) -> dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]:
        """Per score function, every query's best ``max_k`` corpus rows ``(ids, scores)``, ``(q, min(max_k, n))``,
        ranked by descending score then ascending corpus id."""
        assert self.score_functions is not None
        queries = self.embed_inputs(
            model, self.queries, encode_fn_name="query", prompt_name=self.query_prompt_name, prompt=self.query_prompt
        )
        kernels = {fn_name: _kernel_name(fn) for fn_name, fn in self.score_functions.items()}
        host_queries = _host_matrix(queries)
        ranks = self._corpus_id_ranks()
        n_queries = len(self.queries)
        best = {
            fn_name: (np.empty((n_queries, 0), dtype=np.int64), np.empty((n_queries, 0), dtype=np.float64))
            for fn_name in self.score_functions
        }
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
                chunk = slice_rows(corpus_embeddings, start, end)
            chunk_ranks = ranks[start:end]
            host_chunk = _host_matrix(chunk) if any(k is not None for k in kernels.values()) else None
            for fn_name, fn in self.score_functions.items():
                kernel = kernels[fn_name]
                if kernel in _TOPK_KERNELS and host_queries is not None and host_chunk is not None:
                    ids, values = _kernel_top_k(host_queries, host_chunk, chunk_ranks, max_k, kernel)
                elif kernel is not None and host_queries is not None and host_chunk is not None:
                    matrix = ops.similarity_matrix(host_queries, host_chunk, kernel)
                    ids, values = matrix_top_k(matrix, chunk_ranks, max_k)
                else:
                    matrix = scores_as_numpy(fn(_as_tensor(queries), _as_tensor(chunk)))
                    ids, values = matrix_top_k(matrix, chunk_ranks, max_k)
                best[fn_name] = merge_top_k(best[fn_name], (ids + start, values), ranks, max_k)
        return best

    def _corpus_id_ranks(self) -> npt.NDArray[np.int64]:
        """Position of each corpus entry in ascending corpus-id order (insertion order if the ids do not sort)."""
        if self._corpus_ranks is None:
            n = len(self.corpus_ids)
            try:
                order = sorted(range(n), key=self.corpus_ids.__getitem__)
            except TypeError:  # ids of mixed types: ties fall back to the corpus's order
                order = list(range(n))
            ranks = np.empty(n, dtype=np.int64)
            ranks[np.asarray(order, dtype=np.int64)] = np.arange(n, dtype=np.int64)
            self._corpus_ranks = ranks
        return self._corpus_ranks

    def get_corpus_id_ranks(self) -> Tensor:
        """Position of each corpus entry in ascending corpus-id order, as a ``(n,)`` int64 tensor (cached)."""
        import torch

        return torch.from_numpy(self._corpus_id_ranks().copy())

    def _write_predictions(
        self, output_path: str, hits: dict[str, tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]]
    ) -> None:
        os.makedirs(output_path, exist_ok=True)
        for fn_name, (ids, values) in hits.items():
            path = os.path.join(output_path, self.predictions_file.replace(".jsonl", f"_{fn_name}.jsonl"))
            with open(path, mode="w", encoding="utf-8") as f:
                for qid, query, id_row, value_row in zip(
                    self.queries_ids, self.queries, ids.tolist(), values.tolist(), strict=True
                ):
                    results = [
                        {"corpus_id": self.corpus_ids[i], "score": value} for i, value in zip(id_row, value_row)
                    ]
                    f.write(json.dumps({"query_id": qid, "query": query, "results": results}) + "\n")

    # ------------------------------------------------------------------ metrics

    def compute_metrics(self, queries_result_list: list[list[dict[str, Any]]]) -> dict[str, dict[int, float]]:
        """The metrics of hits given as ``[[{"corpus_id": ..., "score": ...}, ...] per query]`` (in
        ``queries_ids`` order); each query's hits are ranked by descending score, then ascending corpus id."""
        ranked = [
            [hit["corpus_id"] for hit in sorted(row, key=lambda hit: (-hit["score"], hit["corpus_id"]))]
            for row in queries_result_list
        ]
        return self._metrics_of_ranked_ids(ranked)

    def _metrics_of_ranked_ids(self, ranked_ids: list[list[Any]]) -> dict[str, dict[int, float]]:
        """The metrics of each query's hits, best first (one list per query, in ``queries_ids`` order)."""
        if len(ranked_ids) != len(self.queries_ids):
            raise ValueError(f"expected hits for {len(self.queries_ids)} queries, got {len(ranked_ids)}")
        width = max((len(row) for row in ranked_ids), default=0)
        width = max(width, *self.mrr_at_k, *self.ndcg_at_k, *self.accuracy_at_k)
        width = max(width, *self.precision_recall_at_k, *self.map_at_k)
        relevant = np.zeros((len(ranked_ids), width), dtype=bool)  # relevant[q, r]: the hit at rank r is relevant
        n_relevant = np.empty(len(ranked_ids), dtype=np.float64)
        for row, (qid, ids) in enumerate(zip(self.queries_ids, ranked_ids, strict=True)):
            wanted = self.relevant_docs[qid]
            n_relevant[row] = len(wanted)
            wanted_set = set(wanted)
            relevant[row, : len(ids)] = [cid in wanted_set for cid in ids]
        return ranking_metrics(
            relevant,
            n_relevant,
            accuracy_at_k=self.accuracy_at_k,
            precision_recall_at_k=self.precision_recall_at_k,
            mrr_at_k=self.mrr_at_k,
            ndcg_at_k=self.ndcg_at_k,
            map_at_k=self.map_at_k,
        )

    def output_scores(self, scores: dict[str, dict[int, float]]) -> None:
        """Logs the metrics of one score function."""
        for k, value in scores["accuracy@k"].items():
            logger.info("Accuracy@%d: %.2f%%", k, value * 100)
        for k, value in scores["precision@k"].items():
            logger.info("Precision@%d: %.2f%%", k, value * 100)
        for k, value in scores["recall@k"].items():
            logger.info("Recall@%d: %.2f%%", k, value * 100)
        for k, value in scores["mrr@k"].items():
            logger.info("MRR@%d: %.4f", k, value)
        for k, value in scores["ndcg@k"].items():
            logger.info("NDCG@%d: %.4f", k, value)
        for k, value in scores["map@k"].items():
            logger.info("MAP@%d: %.4f", k, value)

    @staticmethod
    def compute_dcg_at_k(relevances: Sequence[float], k: int) -> float:
        """Discounted cumulative gain of the first ``k`` gains: ``sum(gain_i / log2(i + 2))``."""
        gains = np.asarray(relevances[:k], dtype=np.float64)
        return float(np.sum(gains / np.log2(np.arange(len(gains)) + 2.0)))

    def embed_inputs(
        self,
        model: SentenceTransformer,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        prompt_name: str | None = None,
        prompt: str | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """``encode_query`` / ``encode_document`` / ``encode`` with this evaluator's batch size and truncation."""
        if encode_fn_name == "query":
            encode_fn = model.encode_query
        elif encode_fn_name == "document":
            encode_fn = model.encode_document
        else:
            encode_fn = model.encode
        return encode_fn(
            sentences,
            prompt_name=prompt_name,
            prompt=prompt,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``truncate_dim`` and the prompts, where set."""
        keys = ("truncate_dim", "query_prompt", "query_prompt_name", "corpus_prompt", "corpus_prompt_name")
        return {key: getattr(self, key) for key in keys if getattr(self, key) is not None}


_ID_VALUE = {"queries": "query text", "corpus": "document text", "relevant_docs": "a set of corpus ids"}


def _check_ks(arg_name: str, ks: Any) -> None:
    if (
        isinstance(ks, (str, bytes))
        or not isinstance(ks, Sequence)
        or not ks
        or any(isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 for k in ks)
    ):
        raise ValueError(f"{arg_name} must be a non-empty list of positive integers, got {ks!r}")


def _count_missing_ids(queries_ids: list[Any], relevant_docs: Mapping[Any, Any], corpus: Mapping[Any, Any]) -> int:
    return sum(1 for qid in queries_ids for cid in relevant_docs[qid] if cid not in corpus)


def ranking_metrics(
    relevant: npt.NDArray[np.bool_],
    n_relevant: npt.NDArray[np.float64],
    *,
    accuracy_at_k: Sequence[int],
    precision_recall_at_k: Sequence[int],
    mrr_at_k: Sequence[int],
    ndcg_at_k: Sequence[int],
    map_at_k: Sequence[int],
) -> dict[str, dict[int, float]]:
    """Accuracy, precision, recall, NDCG, MRR and MAP at each k, averaged over queries.

    Args:
        relevant: ``(q, width)`` bool, whether the hit at each rank (best first) is relevant; ``width`` is at least
            every k (missing hits are False).
        n_relevant: ``(q,)`` how many documents are relevant to each query (> 0).
    """
    rel = relevant.astype(np.float64)
    n_queries = rel.shape[0]
    hits_before = np.cumsum(rel, axis=1)  # relevant hits up to and including each rank
    positions = np.arange(1, rel.shape[1] + 1, dtype=np.float64)
    discounts = 1.0 / np.log2(positions + 1.0)
    # Rank (1-based) of the first relevant hit, or width + 1 when none is.
    first = np.where(relevant.any(axis=1), relevant.argmax(axis=1) + 1, rel.shape[1] + 1)

    accuracy = {k: float(np.count_nonzero(first <= k)) / n_queries for k in accuracy_at_k}
    precision = {k: float(np.mean(hits_before[:, k - 1] / k)) for k in precision_recall_at_k}
    recall = {k: float(np.mean(hits_before[:, k - 1] / n_relevant)) for k in precision_recall_at_k}
    ndcg = {}
    for k in ndcg_at_k:
        dcg = rel[:, :k] @ discounts[:k]
        ideal = np.cumsum(discounts[:k])[np.minimum(n_relevant, k).astype(np.int64) - 1]
        ndcg[k] = float(np.mean(dcg / ideal))
    mrr = {k: float(np.sum(np.where(first <= k, 1.0 / first, 0.0))) / n_queries for k in mrr_at_k}
    average_precision = {}
    for k in map_at_k:
        precision_at_hits = (rel[:, :k] * hits_before[:, :k] / positions[:k]).sum(axis=1)
        average_precision[k] = float(np.mean(precision_at_hits / np.minimum(n_relevant, k)))
    return {
        "accuracy@k": accuracy,
        "precision@k": precision,
        "recall@k": recall,
        "ndcg@k": ndcg,
        "mrr@k": mrr,
        "map@k": average_precision,
    }


def _kernel_name(fn: Callable[..., Any]) -> str | None:
    """``cosine``/``dot``/``euclidean``/``manhattan`` for the library's score functions and a model's own
    ``similarity``; None for any other callable (scored in torch)."""
    owner = getattr(fn, "__self__", None)
    if owner is not None and getattr(fn, "__func__", None) is SimilarityMixin.similarity:
        return str(owner.similarity_fn_name)
    try:
        return _KNOWN_FUNCTIONS.get(fn)
    except TypeError:  # an unhashable callable
        return None


def _host_matrix(x: Any) -> npt.NDArray[np.float32] | None:
    """``x`` as a dense 2-D float32 numpy array, or None when it is a sparse tensor (scored by the callable)."""
    if isinstance(x, np.ndarray):
        return np.ascontiguousarray(x.reshape(1, -1) if x.ndim == 1 else x, dtype=np.float32)
    from sentrs._lazy import is_tensor

    if is_tensor(x):
        import torch

        if x.layout != torch.strided:
            return None
        arr = x.detach().float().cpu().numpy()
        return np.ascontiguousarray(arr.reshape(1, -1) if arr.ndim == 1 else arr)
    return np.asarray(x, dtype=np.float32)


def _as_tensor(x: Any) -> Tensor:
    from sentrs._lazy import is_tensor
    from sentrs.base.tensors import _convert_to_batch_tensor

    return x if is_tensor(x) else _convert_to_batch_tensor(x)


def _kernel_top_k(
    queries: npt.NDArray[np.float32],
    chunk: npt.NDArray[np.float32],
    chunk_ranks: npt.NDArray[np.int64],
    k: int,
    kernel: str,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Exact top-``k`` of a chunk in the Rust kernel, equal scores to the lower corpus id: the kernel gives ties to
    the lower row, so the rows go in corpus-id order."""
    order = np.argsort(chunk_ranks, kind="stable")
    in_order = bool(np.all(order[1:] > order[:-1]))
    ids, values = ops.topk_search(
        queries, chunk if in_order else chunk[order], k, kernel, min(len(chunk), _KERNEL_BLOCK) or 1
    )
    return (ids if in_order else order[ids]), values.astype(np.float64)
