"""``ReciprocalRankFusionEvaluator``: hybrid search quality from fusing precomputed dense and sparse rankings."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.sentence_transformer.evaluation.binary_classification import _average_precision
from sentrs.sentence_transformer.evaluation.reranking import ndcg_with_ties

__all__ = ["ReciprocalRankFusionEvaluator"]

logger = logging.getLogger(__name__)

_REQUIRED_KEYS = ("query_id", "positive", "documents")


class ReciprocalRankFusionEvaluator(BaseEvaluator):
    """Fuses a dense and a sparse retriever's rankings with Reciprocal Rank Fusion and scores all three.

    Each sample pair (same position in both lists, same ``query_id``) holds one query's ranked ``documents`` from
    each retriever, e.g. the prediction files of two IR evaluators run with ``write_predictions=True``. A document's
    fused score is ``sum over the retrievers that returned it of 1 / (rrf_k + its rank)`` (ranks from 1); the fused
    ranking sorts by it, ties keeping the dense-then-sparse order of first appearance. For each ranking the metrics
    are MAP, MRR@``at_k`` and NDCG@``at_k`` over binary relevance (``positive`` documents); relevant documents a
    ranking misses count as ranked after all its documents. Keys: ``dense_map``, ``dense_mrr@k``,
    ``dense_ndcg@k``, ``sparse_*``, and the fused ``map``, ``mrr@k``, ``ndcg@k`` (primary), prefixed with
    ``name + "_"`` when ``name`` is set. No model is involved: call it as ``evaluator(output_path=...)``.

    Args:
        dense_samples: ``{"query_id", "positive": str | [str, ...], "documents": [str, ...]}`` (and optionally
            ``"query"``, copied to the predictions) per query, documents best first.
        sparse_samples: the same queries, in the same order, ranked by the sparse retriever.
        at_k: the cut-off of MRR and NDCG.
        rrf_k: the constant of the fusion formula (larger: flatter weighting of the ranks).
        name: prefix of the metric keys and part of the file names.
        batch_size: unused (kept for the reference's signature).
        show_progress_bar: show a progress bar over the samples.
        write_csv: append the nine metrics to ``ReciprocalRankFusion_evaluation[_<name>]_results.csv``.
        write_predictions: write the fused ranking of each query to
            ``ReciprocalRankFusion_evaluation[_<name>]_predictions.jsonl``.

    Raises:
        ValueError: the two lists differ in length or are empty, a sample lacks a key, or the query ids of a pair
            differ.
    """

    def __init__(
        self,
        dense_samples: list[dict[str, Any]],
        sparse_samples: list[dict[str, Any]],
        at_k: int = 10,
        rrf_k: int = 60,
        name: str = "",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        if len(dense_samples) != len(sparse_samples):
            raise ValueError(
                f"Dense samples ({len(dense_samples)}) and sparse samples ({len(sparse_samples)}) must have the same "
                "length"
            )
        if not dense_samples:
            raise ValueError("dense_samples and sparse_samples must not be empty")
        for i, (dense, sparse) in enumerate(zip(dense_samples, sparse_samples)):
            for side, sample in (("dense", dense), ("sparse", sparse)):
                if missing := [key for key in _REQUIRED_KEYS if key not in sample]:
                    raise ValueError(f"{side}_samples[{i}] lacks {missing}; each sample needs {list(_REQUIRED_KEYS)}")
            if dense["query_id"] != sparse["query_id"]:
                raise ValueError(f"Query ID mismatch at index {i}: {dense['query_id']} != {sparse['query_id']}")
        if isinstance(at_k, bool) or not isinstance(at_k, int) or at_k < 1:
            raise ValueError(f"at_k must be a positive integer, got {at_k!r}")
        self.dense_samples = dense_samples
        self.sparse_samples = sparse_samples
        self.at_k = at_k
        self.rrf_k = rrf_k
        self.name = name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.write_predictions = write_predictions
        suffix = f"_{name}" if name else ""
        self.csv_file = f"ReciprocalRankFusion_evaluation{suffix}_results.csv"
        self.csv_headers = [
            "epoch",
            "steps",
            *(f"{side}_{metric}" for side in ("Dense", "Sparse", "Fusion") for metric in self._csv_metric_names()),
        ]
        self.primary_metric = f"ndcg@{self.at_k}"
        if write_predictions:
            self.predictions_file = f"ReciprocalRankFusion_evaluation{suffix}_predictions.jsonl"

    def _csv_metric_names(self) -> tuple[str, str, str]:
        return ("MAP", f"MRR@{self.at_k}", f"NDCG@{self.at_k}")

    def __call__(self, output_path: str | None = None, epoch: int = -1, steps: int = -1) -> dict[str, float]:  # type: ignore[override]
        """Fuses every pair of rankings and returns the mean metrics of the three rankings (see the class
        docstring)."""
        logger.info(
            "ReciprocalRankFusionEvaluator: Evaluating hybrid search on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps),
        )
        per_query: dict[str, list[tuple[float, float, float]]] = {"dense": [], "sparse": [], "fusion": []}
        fused_rows = []
        n_positives = []
        for dense, sparse in tqdm(
            zip(self.dense_samples, self.sparse_samples),
            desc="Evaluating",
            disable=not self.show_progress_bar,
            total=len(self.dense_samples),
        ):
            positive = dense["positive"]
            positives = [positive] if isinstance(positive, str) else list(positive)
            n_positives.append(len(positives))
            fused = self.fuse(dense["documents"], sparse["documents"])
            for side, documents in (("dense", dense["documents"]), ("sparse", sparse["documents"]), ("fusion", fused)):
                per_query[side].append(self._ranking_metrics(documents, positives))
            if self.write_predictions:
                fused_rows.append(
                    {
                        "query_id": dense["query_id"],
                        "query": dense.get("query"),
                        "positive": positives,
                        "documents": fused,
                    }
                )

        means = {side: np.mean(np.asarray(values, dtype=np.float64), axis=0) for side, values in per_query.items()}
        metrics: dict[str, float] = {}
        for side, prefix in (("dense", "dense_"), ("sparse", "sparse_"), ("fusion", "")):
            mrr, ndcg, ap = (float(v) for v in means[side])
            metrics.update({f"{prefix}map": ap, f"{prefix}mrr@{self.at_k}": mrr, f"{prefix}ndcg@{self.at_k}": ndcg})
        self._log(metrics, n_positives)

        if output_path is not None:
            os.makedirs(output_path, exist_ok=True)
            if self.write_csv:
                row = [
                    metrics[f"{prefix}{metric}"]
                    for prefix in ("dense_", "sparse_", "")
                    for metric in ("map", f"mrr@{self.at_k}", f"ndcg@{self.at_k}")
                ]
                append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, *row])
            if self.write_predictions and fused_rows:
                path = os.path.join(output_path, self.predictions_file)
                with open(path, mode="w", encoding="utf-8") as f:
                    for fused_row in fused_rows:
                        f.write(json.dumps(fused_row) + "\n")
                logger.info("Wrote fused ranking predictions to %s", path)
        return self.prefix_name_to_metrics(metrics, self.name)

    def fuse(self, dense_documents: Sequence[Any], sparse_documents: Sequence[Any]) -> list[Any]:
        """The fused ranking of two rankings (best first), by descending RRF score; ties keep the order in which the
        documents first appear, dense ranking first."""
        dense_ranks = {doc: rank for rank, doc in enumerate(dense_documents, start=1)}
        sparse_ranks = {doc: rank for rank, doc in enumerate(sparse_documents, start=1)}
        scores: dict[Any, float] = {}
        for doc in dict.fromkeys([*dense_ranks, *sparse_ranks]):
            score = 0.0
            if doc in dense_ranks:
                score += 1 / (self.rrf_k + dense_ranks[doc])
            if doc in sparse_ranks:
                score += 1 / (self.rrf_k + sparse_ranks[doc])
            scores[doc] = score
        return sorted(scores, key=scores.__getitem__, reverse=True)

    def _ranking_metrics(self, documents: Sequence[Any], positives: list[Any]) -> tuple[float, float, float]:
        """``(MRR@at_k, NDCG@at_k, average precision)`` of one ranking; all 0 when it holds no positive."""
        relevant = [int(doc in positives) for doc in documents]
        if sum(relevant) == 0:
            return 0.0, 0.0, 0.0
        relevant += [1] * (len(positives) - sum(relevant))  # the missed positives, ranked last
        return self.compute_metrics(relevant, np.arange(len(relevant), 0, -1))

    def compute_metrics(self, y_true: Sequence[int], y_pred: Any) -> tuple[float, float, float]:
        """``(MRR@at_k, NDCG@at_k, average precision)`` of ranking by descending ``y_pred`` with gains ``y_true``."""
        gains = np.asarray(y_true, dtype=np.int64)
        scores = np.asarray(y_pred, dtype=np.float64)
        order = np.argsort(-scores, kind="stable")
        hits = np.flatnonzero(gains[order][: self.at_k])
        mrr = 1.0 / (hits[0] + 1) if len(hits) else 0.0
        return mrr, ndcg_with_ties(gains, scores, self.at_k), _average_precision(gains, scores)

    def _log(self, metrics: dict[str, float], n_positives: list[int]) -> None:
        logger.info(
            "Queries: %d\tPositives: Min %.1f, Mean %.1f, Max %.1f",
            len(n_positives),
            min(n_positives),
            float(np.mean(n_positives)),
            max(n_positives),
        )
        k = self.at_k
        for label, key in (("MAP", "map"), (f"MRR@{k}", f"mrr@{k}"), (f"NDCG@{k}", f"ndcg@{k}")):
            dense, sparse, fusion = metrics[f"dense_{key}"], metrics[f"sparse_{key}"], metrics[key]
            logger.info(
                "%-7s | dense %6.2f%% | sparse %6.2f%% | fusion %6.2f%% | vs dense %+.2f%% | vs sparse %+.2f%%",
                label,
                dense * 100,
                sparse * 100,
                fusion * 100,
                (fusion - dense) * 100,
                (fusion - sparse) * 100,
            )

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k``, ``rrf_k`` and ``write_predictions``."""
        return {"at_k": self.at_k, "rrf_k": self.rrf_k, "write_predictions": self.write_predictions}
