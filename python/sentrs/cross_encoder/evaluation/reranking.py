"""``CrossEncoderRerankingEvaluator``: how well a cross-encoder reranks each query's documents."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.sentence_transformer.evaluation.binary_classification import _average_precision
from sentrs.sentence_transformer.evaluation.reranking import ndcg_with_ties

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEncoderRerankingEvaluator"]

logger = logging.getLogger(__name__)


@dataclass
class _Ranking:
    """One query's documents to score: the (query, document) pairs and which documents are relevant."""

    pairs: list[list[str]]
    relevant: npt.NDArray[np.int64]


class CrossEncoderRerankingEvaluator(BaseEvaluator):
    """Scores each query against its documents and reports the mean ``map`` (average precision), ``mrr@<at_k>`` and
    ``ndcg@<at_k>`` (primary) over the queries; keys are prefixed with ``name + "_"`` when ``name`` is set.

    A sample is ``{"query": str, "positive": [str, ...], "negative": [str, ...]}``, or ``{"query", "positive",
    "documents"}`` where ``documents`` is a first-stage ranking (best first) that may or may not contain the
    positives. With ``documents`` the evaluator also reports the metrics of that first-stage order (``base_map``,
    ``base_mrr@<at_k>``, ``base_ndcg@<at_k>``; positives missing from it count as ranked last), and what it reranks
    depends on ``always_rerank_positives``: True reranks the positives plus the documents, so every positive can be
    found (an upper bound); False reranks only the documents, so positives the first stage missed stay missed (the
    realistic setting). A query with nothing relevant to rank scores 0 on every metric.

    All pairs of all samples are scored in one ``model.predict`` call. Average precision and NDCG treat equal scores
    as scikit-learn does; MRR ranks equal scores later documents first, as the reference does.

    Args:
        samples: the samples (a dict of samples uses its values); a single str is one document.
        at_k: the cut-off of MRR and NDCG.
        always_rerank_positives: with ``documents``, also rerank positives the documents lack (see above). Samples
            with ``negative`` always rerank their positives.
        name: prefix of the metric keys and part of the CSV file name.
        prompt_name: name of a prompt of the model (``model.prompts``) for ``predict``.
        batch_size: ``predict`` batch size.
        show_progress_bar: show a progress bar while scoring.
        write_csv: append the metrics to ``CrossEncoderRerankingEvaluator[_<name>]_results_@<at_k>.csv`` in
            ``output_path``.
        mrr_at_k: deprecated name of ``at_k``.

    Raises:
        ValueError: ``at_k`` is not a positive integer, or a sample lacks ``query`` or ``positive`` or has not
            exactly one of ``negative`` and ``documents``.

    Example:
        ::

            from sentrs import CrossEncoder
            from sentrs.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

            model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
            samples = [
                {
                    "query": "What are pandas?",
                    "positive": ["Pandas are a kind of bear."],
                    "negative": ["Pandas are a kind of fish.", "Paris is the capital of France."],
                }
            ]
            evaluator = CrossEncoderRerankingEvaluator(samples, name="dev")
            results = evaluator(model)
            print(results[evaluator.primary_metric])  # dev_ndcg@10
    """

    def __init__(
        self,
        samples: list[dict[str, str | list[str]]],
        at_k: int = 10,
        always_rerank_positives: bool = True,
        name: str = "",
        prompt_name: str | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        mrr_at_k: int | None = None,
    ) -> None:
        super().__init__()
        if mrr_at_k is not None:
            logger.warning("The `mrr_at_k` parameter has been deprecated; please use `at_k=%s` instead.", mrr_at_k)
            at_k = mrr_at_k
        if isinstance(at_k, bool) or not isinstance(at_k, (int, np.integer)) or at_k < 1:
            raise ValueError(f"at_k must be a positive integer, got {at_k!r}")
        self.at_k = int(at_k)
        self.samples: list[dict[str, Any]] = list(samples.values()) if isinstance(samples, Mapping) else list(samples)
        for index, sample in enumerate(self.samples):
            _check_sample(sample, index)
        self.always_rerank_positives = always_rerank_positives
        self.name = name
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.csv_file = "CrossEncoderRerankingEvaluator" + (f"_{name}" if name else "") + f"_results_@{self.at_k}.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{self.at_k}", f"NDCG@{self.at_k}"]
        self.write_csv = write_csv
        self.primary_metric = f"ndcg@{self.at_k}"

    def __call__(
        self, model: CrossEncoder, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        """Scores every sample's documents and returns the mean metrics (see the class docstring)."""
        logger.info(
            "CrossEncoderRerankingEvaluator: Evaluating the model on the %s dataset%s:",
            self.name,
            progress_text(epoch, steps),
        )
        if not self.samples:
            raise ValueError("CrossEncoderRerankingEvaluator has no samples to evaluate")
        rankings: list[_Ranking | None] = []
        base_metrics: list[tuple[float, float, float]] = []
        n_positives: list[int] = []
        n_negatives: list[int] = []
        for sample in self.samples:
            to_score, base = self._ranking(sample)
            if base is not None:
                base_metrics.append(base)
            n_positives.append(len(_documents(sample["positive"])))
            n_negatives.append(len(to_score.relevant) - int(to_score.relevant.sum()))
            rankings.append(to_score if to_score.relevant.any() else None)

        pairs = [pair for ranking in rankings if ranking is not None for pair in ranking.pairs]
        scores = np.asarray([], dtype=np.float32)
        if pairs:
            scores = np.asarray(
                model.predict(
                    pairs,
                    prompt_name=self.prompt_name,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    show_progress_bar=self.show_progress_bar,
                )
            )
        per_sample: list[tuple[float, float, float]] = []
        start = 0
        for ranking in rankings:
            if ranking is None:
                per_sample.append((0.0, 0.0, 0.0))
                continue
            end = start + len(ranking.pairs)
            per_sample.append(self.compute_metrics(ranking.relevant, scores[start:end]))
            start = end
        mean_mrr, mean_ndcg, mean_ap = _means(per_sample)
        metrics: dict[str, Any] = {"map": mean_ap, f"mrr@{self.at_k}": mean_mrr, f"ndcg@{self.at_k}": mean_ndcg}

        logger.info(
            "Queries: %d\tPositives: Min %.1f, Mean %.1f, Max %.1f\tNegatives: Min %.1f, Mean %.1f, Max %.1f",
            len(self.samples),
            np.min(n_positives),
            np.mean(n_positives),
            np.max(n_positives),
            np.min(n_negatives),
            np.mean(n_negatives),
            np.max(n_negatives),
        )
        pad = " " * len(str(self.at_k))
        if base_metrics:
            base_mrr, base_ndcg, base_ap = _means(base_metrics)
            logger.info("%s       Base  -> Reranked", pad)
            logger.info("MAP:%s   %.2f -> %.2f", pad, base_ap * 100, mean_ap * 100)
            logger.info("MRR@%d:  %.2f -> %.2f", self.at_k, base_mrr * 100, mean_mrr * 100)
            logger.info("NDCG@%d: %.2f -> %.2f", self.at_k, base_ndcg * 100, mean_ndcg * 100)
            # The model card shows each metric with its change over the first-stage ranking.
            card = {
                "map": f"{mean_ap:.4f} ({mean_ap - base_ap:+.4f})",
                f"mrr@{self.at_k}": f"{mean_mrr:.4f} ({mean_mrr - base_mrr:+.4f})",
                f"ndcg@{self.at_k}": f"{mean_ndcg:.4f} ({mean_ndcg - base_ndcg:+.4f})",
            }
            self.store_metrics_in_model_card_data(model, self.prefix_name_to_metrics(card, self.name), epoch, steps)
            metrics.update(
                {"base_map": base_ap, f"base_mrr@{self.at_k}": base_mrr, f"base_ndcg@{self.at_k}": base_ndcg}
            )
            metrics = self.prefix_name_to_metrics(metrics, self.name)
        else:
            logger.info("MAP:%s   %.2f", pad, mean_ap * 100)
            logger.info("MRR@%d:  %.2f", self.at_k, mean_mrr * 100)
            logger.info("NDCG@%d: %.2f", self.at_k, mean_ndcg * 100)
            metrics = self.prefix_name_to_metrics(metrics, self.name)
            self.store_metrics_in_model_card_data(model, metrics, epoch, steps)

        if output_path is not None and self.write_csv:
            append_csv_row(output_path, self.csv_file, self.csv_headers, [epoch, steps, mean_ap, mean_mrr, mean_ndcg])
        return metrics

    def _ranking(self, sample: Mapping[str, Any]) -> tuple[_Ranking, tuple[float, float, float] | None]:
        """The pairs to score for one sample, and for a ``documents`` sample the first-stage metrics."""
        query = sample["query"]
        positives = _documents(sample["positive"])
        documents = sample.get("documents")
        base = None
        if documents is None:
            docs = positives + _documents(sample["negative"])
            relevant = [1] * len(positives) + [0] * (len(docs) - len(positives))
        else:
            documents = _documents(documents)
            in_documents = [int(doc in positives) for doc in documents]
            base = (0.0, 0.0, 0.0)
            if any(in_documents):
                # The first stage's order, with the positives it missed ranked after all its documents.
                base_relevant = in_documents + [1] * (len(positives) - sum(in_documents))
                base = self.compute_metrics(base_relevant, np.arange(len(base_relevant), 0, -1))
            if self.always_rerank_positives:
                docs = positives + [doc for doc in documents if doc not in positives]
                relevant = [1] * len(positives) + [0] * (len(docs) - len(positives))
            else:
                docs, relevant = documents, in_documents
        return _Ranking([[query, doc] for doc in docs], np.asarray(relevant, dtype=np.int64)), base

    def compute_metrics(self, y_true: Any, y_pred: Any) -> tuple[float, float, float]:
        """``(reciprocal rank within at_k, NDCG@at_k, average precision)`` of one query's documents.

        Args:
            y_true: ``(n,)`` 1 for a relevant document, 0 otherwise.
            y_pred: ``(n,)`` the documents' scores.
        """
        relevant = np.asarray(y_true, dtype=np.int64).reshape(-1)
        scores = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        # Best first; equal scores put the later document first.
        order = np.lexsort((-np.arange(len(scores)), -scores))
        hits = np.flatnonzero(relevant[order][: self.at_k])
        reciprocal_rank = 1.0 / (hits[0] + 1) if len(hits) else 0.0
        return reciprocal_rank, ndcg_with_ties(relevant, scores, self.at_k), _average_precision(relevant, scores)

    def get_config_dict(self) -> dict[str, Any]:
        """``at_k``, and ``always_rerank_positives`` when the samples have ``documents``."""
        config: dict[str, Any] = {"at_k": self.at_k}
        if self.samples and "documents" in self.samples[0]:
            config["always_rerank_positives"] = self.always_rerank_positives
        return config


def _documents(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _check_sample(sample: Any, index: int) -> None:
    if not isinstance(sample, Mapping) or "query" not in sample:
        raise ValueError(f"CrossEncoderRerankingEvaluator requires a 'query' key in each sample (sample {index}).")
    if "positive" not in sample:
        raise ValueError(f"CrossEncoderRerankingEvaluator requires a 'positive' key in each sample (sample {index}).")
    if ("negative" in sample) == ("documents" in sample):
        raise ValueError(
            "CrossEncoderRerankingEvaluator requires exactly one of 'negative' and 'documents' in each sample "
            f"(sample {index} has {'both' if 'negative' in sample else 'neither'})."
        )


def _means(values: Sequence[tuple[float, float, float]]) -> tuple[float, float, float]:
    table = np.asarray(values, dtype=np.float64).reshape(-1, 3)
    first, second, third = (float(np.mean(table[:, column])) for column in range(3))
    return first, second, third
