"""``SparseNanoBEIREvaluator``: a :class:`SparseInformationRetrievalEvaluator` on each NanoBEIR dataset, aggregated.
**Needs the Hugging Face Hub** for its data."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from sentrs.sentence_transformer.evaluation.nano_beir import DatasetNameType, NanoBEIREvaluator
from sentrs.sparse_encoder.evaluation._sparse_evaluator import SparseEvaluatorMixin
from sentrs.sparse_encoder.evaluation.sparse_information_retrieval import SparseInformationRetrievalEvaluator
from sentrs.util.misc import append_to_last_row

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.base.similarity import SimilarityFunction
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseNanoBEIREvaluator"]

logger = logging.getLogger(__name__)


class SparseNanoBEIREvaluator(SparseEvaluatorMixin, NanoBEIREvaluator):
    """:class:`~sentrs.sentence_transformer.evaluation.NanoBEIREvaluator` for sparse models: a
    :class:`SparseInformationRetrievalEvaluator` per NanoBEIR dataset, their metrics and aggregates, plus the
    aggregate sparsity statistics.

    **Needs the Hugging Face Hub**: the datasets are read with ``datasets.load_dataset`` at construction; offline,
    only datasets already in the local ``datasets`` cache load, and otherwise construction raises a ``ValueError``
    that says so (use :class:`SparseInformationRetrievalEvaluator` on local data instead).

    The aggregate sparsity statistics (``NanoBEIR_<aggregate_key>[_<max_active_dims>]_query_active_dims``, ...) are
    the datasets' values weighted by their numbers of queries (or documents); ``avg_flops`` is recomputed from the
    activation counts of every dataset together. With ``max_active_dims`` set, it ends the evaluator's name and
    each dataset's name (``NanoMSMARCO_64``).

    Args:
        dataset_names: short names of the datasets (case-insensitive); None: all 13.
        dataset_id: the Hub dataset with ``corpus``/``queries``/``qrels`` subsets.
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars.
        batch_size: encoding batch size.
        write_csv: write each dataset's CSV and the aggregate one.
        max_active_dims: keep at most this many dimensions of each embedding; None: the model's setting.
        score_functions: as for :class:`SparseInformationRetrievalEvaluator` (None: the model's similarity).
        main_score_function: the function whose aggregate NDCG is the primary metric.
        aggregate_fn: reduces each metric's per-dataset values to one number.
        aggregate_key: names the aggregate (``NanoBEIR_<aggregate_key>``).
        query_prompts: one prompt for every dataset's queries, or dataset name -> prompt.
        corpus_prompts: the same for the documents.
        write_predictions: write each dataset's ranked hits as JSON lines.

    Raises:
        ValueError: unknown or no dataset names, missing prompts, ``datasets`` not installed, or a dataset that
            cannot be loaded (offline and not cached, not on the Hub, ...).
    """

    information_retrieval_class = SparseInformationRetrievalEvaluator  # type: ignore[assignment]

    def __init__(
        self,
        dataset_names: list[DatasetNameType | str] | None = None,
        dataset_id: str = "sentence-transformers/NanoBEIR-en",
        mrr_at_k: list[int] = [10],  # noqa: B006 - the reference's defaults, never mutated
        ndcg_at_k: list[int] = [10],  # noqa: B006
        accuracy_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        precision_recall_at_k: list[int] = [1, 3, 5, 10],  # noqa: B006
        map_at_k: list[int] = [100],  # noqa: B006
        show_progress_bar: bool = False,
        batch_size: int = 32,
        write_csv: bool = True,
        max_active_dims: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
        query_prompts: str | dict[str, str] | None = None,
        corpus_prompts: str | dict[str, str] | None = None,
        write_predictions: bool = False,
    ) -> None:
        self.max_active_dims = max_active_dims
        self.sparsity_stats: Any = defaultdict(list)
        super().__init__(
            dataset_names=dataset_names,
            dataset_id=dataset_id,
            mrr_at_k=mrr_at_k,
            ndcg_at_k=ndcg_at_k,
            accuracy_at_k=accuracy_at_k,
            precision_recall_at_k=precision_recall_at_k,
            map_at_k=map_at_k,
            show_progress_bar=show_progress_bar,
            batch_size=batch_size,
            write_csv=write_csv,
            score_functions=score_functions,
            main_score_function=main_score_function,
            aggregate_fn=aggregate_fn,
            aggregate_key=aggregate_key,
            query_prompts=query_prompts,
            corpus_prompts=corpus_prompts,
            write_predictions=write_predictions,
        )
        if self.max_active_dims is not None:
            self.name += f"_{self.max_active_dims}"

    def _get_human_readable_name(self, dataset_name: str) -> str:
        readable = super()._get_human_readable_name(dataset_name)
        return readable + (f"_{self.max_active_dims}" if self.max_active_dims is not None else "")

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
        """Every dataset's metrics, the aggregates and the aggregate sparsity statistics (see the class
        docstring)."""
        per_dataset = super().__call__(model, output_path, epoch, steps, *args, **kwargs)  # type: ignore[arg-type]
        per_call: dict[str, list[float]] = defaultdict(list)
        lengths: dict[str, list[int]] = {"query": [], "corpus": []}
        counts: dict[str, npt.NDArray[np.float64]] = {}
        for evaluator in self.evaluators:
            assert isinstance(evaluator, SparseInformationRetrievalEvaluator)
            lengths["query"].append(len(evaluator.queries))
            lengths["corpus"].append(len(evaluator.corpus))
            for key, value in evaluator.sparsity_stats.items():
                per_call[key].append(value)
            for side in ("query", "corpus"):
                vector = evaluator.count_vectors[side]
                counts[side] = vector if side not in counts else counts[side] + vector
        stats: dict[str, float] = {}
        for key, values in per_call.items():
            if key == "avg_flops":  # recomputed below: a weighted mean of per-dataset FLOPS would be wrong
                stats[key] = 0.0
                continue
            weights = lengths[key.split("_")[0]]
            stats[key] = sum(value * weight for value, weight in zip(values, weights)) / sum(weights)
        stats["avg_flops"] = float(
            np.dot(counts["query"] / sum(lengths["query"]), counts["corpus"] / sum(lengths["corpus"]))
        )
        self.sparsity_stats = stats
        per_dataset.update(self.prefix_name_to_metrics(stats, self.name))
        aggregated = {
            key: value for key, value in per_dataset.items() if key.startswith(self.name) and key != self.name
        }
        self.store_metrics_in_model_card_data(model, aggregated, epoch, steps)
        logger.info(
            "Model Query Sparsity: Active Dimensions: %.1f, Sparsity Ratio: %.4f",
            stats["query_active_dims"],
            stats["query_sparsity_ratio"],
        )
        logger.info(
            "Model Corpus Sparsity: Active Dimensions: %.1f, Sparsity Ratio: %.4f",
            stats["corpus_active_dims"],
            stats["corpus_sparsity_ratio"],
        )
        logger.info("Average FLOPS: %.2f", stats["avg_flops"])
        if output_path is not None and self.write_csv:
            append_to_last_row(os.path.join(output_path, self.csv_file), list(stats.values()))
        return per_dataset

    def _load_dataset(self, dataset_name: str, **ir_kwargs: Any) -> SparseInformationRetrievalEvaluator:
        ir_kwargs["max_active_dims"] = self.max_active_dims
        ir_kwargs.pop("truncate_dim", None)
        evaluator = super()._load_dataset(dataset_name, **ir_kwargs)
        assert isinstance(evaluator, SparseInformationRetrievalEvaluator)
        return evaluator
