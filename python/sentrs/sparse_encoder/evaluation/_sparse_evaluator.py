"""What every sparse evaluator adds to its dense base: sparse encoding (with ``max_active_dims``), sparsity
statistics as extra metrics and CSV columns, and ``max_active_dims`` in the config."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.sparse_encoder.evaluation._sparse_rows import SparseRows
from sentrs.util.misc import append_to_last_row

__all__ = ["SparseEvaluatorMixin", "mean"]

logger = logging.getLogger(__name__)


def mean(values: Sequence[float]) -> float:
    """The plain mean of one statistic over the encode calls of an evaluation."""
    return sum(values) / len(values)


class SparseEvaluatorMixin(BaseEvaluator):
    """Put before the dense evaluator among the bases: ``class SparseXEvaluator(SparseEvaluatorMixin, XEvaluator)``.

    The subclass sets ``max_active_dims`` and ``sparsity_stats`` before calling the dense ``__init__`` (whose
    ``embed_inputs`` may already run, e.g. for a teacher).
    """

    max_active_dims: int | None
    sparsity_stats: Any
    batch_size: int
    name: str
    write_csv: bool
    csv_file: str

    def encode_sparse(
        self,
        model: Any,
        sentences: Any,
        encode_fn_name: str | None = None,
        show_progress_bar: bool | None = None,
        **kwargs: Any,
    ) -> SparseRows:
        """``encode_query`` (``"query"``), ``encode_document`` (``"document"``) or ``encode`` as sparse rows, with
        this evaluator's batch size and ``max_active_dims``."""
        if encode_fn_name == "query":
            encode_fn = model.encode_query
        elif encode_fn_name == "document":
            encode_fn = model.encode_document
        else:
            encode_fn = model.encode
        embeddings = encode_fn(
            sentences,
            batch_size=self.batch_size,
            show_progress_bar=getattr(self, "show_progress_bar", False)
            if show_progress_bar is None
            else show_progress_bar,
            convert_to_tensor=True,
            convert_to_sparse_tensor=True,
            save_to_cpu=True,
            max_active_dims=self.max_active_dims,
            **kwargs,
        )
        return SparseRows.from_embeddings(embeddings)

    def add_sparsity_metrics(
        self,
        model: Any,
        metrics: dict[str, float],
        stats: dict[str, float],
        output_path: str | None,
        epoch: int,
        steps: int,
    ) -> dict[str, float]:
        """``metrics`` with the sparsity ``stats`` added (prefixed like the rest), handed to the model card again,
        and the stats appended to the CSV row the dense evaluator just wrote."""
        metrics.update(self.prefix_name_to_metrics(stats, self.name))
        self.store_metrics_in_model_card_data(model, metrics, epoch, steps)
        for prefix in ("", "query_", "corpus_", "anchor_", "positive_", "negative_"):
            if f"{prefix}active_dims" in stats:
                logger.info(
                    "Model %sSparsity: Active Dimensions: %.1f, Sparsity Ratio: %.4f",
                    prefix.replace("_", " ").title(),
                    stats[f"{prefix}active_dims"],
                    stats[f"{prefix}sparsity_ratio"],
                )
        if "avg_flops" in stats:
            logger.info("Average FLOPS: %.2f", stats["avg_flops"])
        if output_path is not None and self.write_csv:
            append_to_last_row(os.path.join(output_path, self.csv_file), list(stats.values()))
        return metrics

    def get_config_dict(self) -> dict[str, Any]:
        """The dense evaluator's config, plus ``max_active_dims`` where set."""
        config = super().get_config_dict()
        if self.max_active_dims is not None:
            config["max_active_dims"] = self.max_active_dims
        return config
