"""``RerankingEvaluator``: how well a model ranks each query's positive documents above its negatives."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from sentrs import ops
from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.similarity import cos_sim, dot_score, euclidean_sim, manhattan_sim, pytorch_cos_sim
from sentrs.sentence_transformer.evaluation.binary_classification import _average_precision

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["RerankingEvaluator"]

logger = logging.getLogger(__name__)

# Similarity functions scored by the Rust core (other callables are called with torch tensors).
_KNOWN_FUNCTIONS: dict[Any, str] = {
    cos_sim: "cosine",
    pytorch_cos_sim: "cosine",
    dot_score: "dot",
    euclidean_sim: "euclidean",
    manhattan_sim: "manhattan",
}


class RerankingEvaluator(BaseEvaluator):
    """Scores each query against its own positives and negatives and reports the mean ``map`` (average precision),
    ``mrr@<at_k>`` and ``ndcg@<at_k>`` over the queries; keys are prefixed with ``name + "_"`` when ``name`` is set.
    The primary metric is ``ndcg@<at_k>``.

    Queries are encoded with ``encode_query`` and documents with ``encode_document``. Average precision and NDCG
    treat documents with equal scores as scikit-learn's ``average_precision_score`` and ``ndcg_score`` do (a run of
    equal scores is one step; NDCG averages the gain over it); MRR ranks equal scores in document order (positives
    first). Samples without positives or without negatives are dropped.

    Args:
        samples: ``{"query": str, "positive": [str, ...], "negative": [str, ...]}`` per query (a single str is one
            document); a dict of such samples uses its values.
        at_k: the cut-off of MRR and NDCG.
        name: prefix of the metric keys and part of the CSV file name.
        write_csv: append the metrics to ``RerankingEvaluator[_<name>]_results_@<at_k>.csv`` in ``output_path``.
        similarity_fct: ``f(query (d,), documents (n, d)) -> (n,)`` or ``(1, n)`` scores; ``cos_sim`` (default) and
            the library's other similarity functions run in the Rust core.
        batch_size: encoding batch size.
        show_progress_bar: show a progress bar while encoding.
        use_batched_encoding: encode all queries and all documents at once (else sample by sample).
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.
        mrr_at_k: deprecated name of ``at_k``.

    Raises:
        ValueError: ``at_k`` is below 1, or a sample lacks ``query``, ``positive`` or ``negative``.
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
        truncate_dim: int | None = None,
        mrr_at_k: int | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        if mrr_at_k is not None:
            logger.warning("The `mrr_at_k` parameter has been deprecated; please use `at_k=%s` instead.", mrr_at_k)
            at_k = mrr_at_k
        if isinstance(at_k, bool) or not isinstance(at_k, (int, np.integer)) or at_k < 1:
            raise ValueError(f"at_k must be a positive integer, got {at_k!r}")
        self.at_k = at_k
        self.similarity_fct = similarity_fct
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.use_batched_encoding = use_batched_encoding
        self.truncate_dim = truncate_dim

        rows = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
        normalized = []
        for index, sample in enumerate(rows):
            if not isinstance(sample, Mapping) or any(key not in sample for key in ("query", "positive", "negative")):
                raise ValueError(
                    f"samples[{index}] must be a dict with 'query', 'positive' and 'negative', got {sample!r:.200}"
                )
            normalized.append(
                {
                    **sample,
                    "positive": _as_documents(sample["positive"]),
                    "negative": _as_documents(sample["negative"]),
                }
            )
        self.samples = [sample for sample in normalized if sample["positive"] and sample["negative"]]

        self.csv_file = "RerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{self.at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{self.at_k}", f"NDCG@{self.at_k}"]
        self.write_csv = write_csv
        self.primary_metric = f"ndcg@{self.at_k}"

    def __call__(
        self, model: SentenceTransformer, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every sample and returns the mean metrics (see the class docstring)."""
        logger.info(
            "RerankingEvaluator: Evaluating the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps, self.truncate_dim),
        )
        if not self.samples:
            raise ValueError("no sample has both positive and negative documents to rank")
        scores = self.compute_metrics(model)
        mean_ap, mean_mrr, mean_ndcg = scores["map"], scores["mrr"], scores["ndcg"]

        n_positives = [len(sample["positive"]) for sample in self.samples]
        n_negatives = [len(sample["negative"]) for sample in self.samples]
        logger.info(
            "Queries: %d \t Positives: Min %.1f, Mean %.1f, Max %.1f \t Negatives: Min %.1f, Mean %.1f, Max %.1f",
            len(self.samples),
            np.min(n_positives),
            np.mean(n_positives),
            np.max(n_positives),
            np.min(n_negatives),
            np.mean(n_negatives),
            np.max(n_negatives),
        )
        logger.info("MAP: %.2f", mean_ap * 100)
        logger.info("MRR@%d: %.2f", self.at_k, mean_mrr * 100)
        logger.info("NDCG@%d: %.2f", self.at_k, mean_ndcg * 100)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mean_ap, mean_mrr, mean_ndcg])

        metrics = {"map": mean_ap, f"mrr@{self.at_k}": mean_mrr, f"ndcg@{self.at_k}": mean_ndcg}
        metrics = self.prefix_name_to_metrics(metrics, self.name)
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        return metrics

    def compute_metrics(self, model: SentenceTransformer) -> dict[str, float]:
        """``{"map", "mrr", "ndcg"}``, each the mean over the samples."""
        if self.use_batched_encoding:
            return self.compute_metrics_batched(model)
        return self.compute_metrics_individual(model)

    def compute_metrics_batched(self, model: SentenceTransformer) -> dict[str, float]:
        """The metrics with all queries encoded in one call and all documents in another."""
        queries = self.embed_inputs(
            model, [sample["query"] for sample in self.samples], "query", show_progress_bar=self.show_progress_bar
        )
        documents = [doc for sample in self.samples for doc in (*sample["positive"], *sample["negative"])]
        doc_embeddings = self.embed_inputs(model, documents, "document", show_progress_bar=self.show_progress_bar)
        per_sample = []
        start = 0
        for query, sample in zip(queries, self.samples, strict=True):
            n_pos, n_docs = len(sample["positive"]), len(sample["positive"]) + len(sample["negative"])
            per_sample.append(self._sample_metrics(query, doc_embeddings[start : start + n_docs], n_pos))
            start += n_docs
        return _means(per_sample)

    def compute_metrics_individual(self, model: SentenceTransformer) -> dict[str, float]:
        """The metrics with each sample's query and documents encoded on their own."""
        per_sample = []
        for sample in tqdm(self.samples, disable=not self.show_progress_bar, desc="Samples"):
            documents = [*sample["positive"], *sample["negative"]]
            query = self.embed_inputs(model, [sample["query"]], "query", show_progress_bar=False)[0]
            doc_embeddings = self.embed_inputs(model, documents, "document", show_progress_bar=False)
            per_sample.append(self._sample_metrics(query, doc_embeddings, len(sample["positive"])))
        return _means(per_sample)

    compute_metrices = compute_metrics  # the reference's old (misspelt) names
    compute_metrices_batched = compute_metrics_batched
    compute_metrices_individual = compute_metrics_individual

    def _sample_metrics(
        self, query: npt.NDArray[np.float32], documents: npt.NDArray[np.float32], n_positive: int
    ) -> tuple[float, float, float]:
        """``(average precision, reciprocal rank within at_k, NDCG@at_k)`` of one sample (positives first)."""
        scores = self._scores(query, documents)
        relevant = np.zeros(len(scores), dtype=np.int64)
        relevant[:n_positive] = 1
        order = np.argsort(-scores, kind="stable")
        first_hits = np.flatnonzero(relevant[order][: self.at_k])
        reciprocal_rank = 1.0 / (first_hits[0] + 1) if len(first_hits) else 0.0
        return _average_precision(relevant, scores), reciprocal_rank, ndcg_with_ties(relevant, scores, self.at_k)

    def _scores(self, query: npt.NDArray[np.float32], documents: npt.NDArray[np.float32]) -> np.ndarray:
        """The query's ``(n,)`` scores against the documents, as float64 (values of the function's dtype)."""
        try:
            known = _KNOWN_FUNCTIONS.get(self.similarity_fct)
        except TypeError:  # an unhashable callable
            known = None
        if known is not None:
            return ops.similarity_matrix(query, documents, known)[0].astype(np.float64)
        import torch

        result: Any = self.similarity_fct(torch.from_numpy(query), torch.from_numpy(documents))
        if isinstance(result, torch.Tensor):
            result = result.detach().cpu()
            if result.dtype in (torch.float16, torch.bfloat16):
                result = result.float()
            result = result.numpy()
        values = np.asarray(result)
        if values.ndim > 1:
            values = values[0]
        return values.astype(np.float64)

    def embed_inputs(
        self,
        model: SentenceTransformer,
        sentences: Any,
        encode_fn_name: Literal["query", "document"] | None = None,
        show_progress_bar: bool | None = None,
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
            batch_size=self.batch_size,
            show_progress_bar=show_progress_bar,
            convert_to_numpy=True,
            truncate_dim=self.truncate_dim,
            **kwargs,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k``, and ``truncate_dim`` where set."""
        config: dict[str, Any] = {"at_k": self.at_k}
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config


def _as_documents(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _means(per_sample: Sequence[tuple[float, float, float]]) -> dict[str, float]:
    values = np.asarray(per_sample, dtype=np.float64).reshape(-1, 3)
    mean_ap, mean_mrr, mean_ndcg = (float(np.mean(values[:, i])) for i in range(3))
    return {"map": mean_ap, "mrr": mean_mrr, "ndcg": mean_ndcg}


def ndcg_with_ties(relevance: npt.ArrayLike, scores: npt.ArrayLike, k: int) -> float:
    """NDCG@k of ranking by descending ``scores``, each run of equal scores sharing the mean gain of its members
    (scikit-learn's ``ndcg_score`` for one query). 0.0 when no gain is positive.

    Args:
        relevance: ``(n,)`` gains (e.g. 1 for relevant, 0 otherwise).
        scores: ``(n,)`` predicted scores.
        k: only the first ``k`` ranks count.
    """
    gains = np.asarray(relevance, dtype=np.float64)
    predicted = np.asarray(scores, dtype=np.float64)
    discounts = 1.0 / np.log2(np.arange(len(gains), dtype=np.float64) + 2.0)
    discounts[k:] = 0.0
    ideal = float(np.sort(gains)[::-1] @ discounts)
    if ideal == 0.0:
        return 0.0
    # Runs of equal scores, best first: each position of a run earns the run's mean gain.
    _, run_of, run_sizes = np.unique(-predicted, return_inverse=True, return_counts=True)
    run_gain = np.bincount(run_of, weights=gains, minlength=len(run_sizes)) / run_sizes
    run_discount = np.diff(np.cumsum(discounts)[np.cumsum(run_sizes) - 1], prepend=0.0)
    return float(run_gain @ run_discount) / ideal
