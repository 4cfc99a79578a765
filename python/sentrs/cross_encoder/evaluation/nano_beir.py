"""``CrossEncoderNanoBEIREvaluator``: reranking of BM25's top documents on the NanoBEIR datasets (downloaded from the
Hugging Face Hub), per dataset and aggregated."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.cross_encoder.evaluation.reranking import CrossEncoderRerankingEvaluator
from sentrs.sentence_transformer.evaluation.nano_beir import DATASET_NAME_TO_HUMAN_READABLE, DatasetNameType

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["DATASET_NAME_TO_HUMAN_READABLE", "CrossEncoderNanoBEIREvaluator", "DatasetNameType"]

logger = logging.getLogger(__name__)

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

# The argument-retrieval datasets, left out by default: their task differs from the others'.
_NOT_BY_DEFAULT = ("arguana", "touche2020")


class CrossEncoderNanoBEIREvaluator(BaseEvaluator):
    """Runs a :class:`CrossEncoderRerankingEvaluator` on each NanoBEIR dataset, reranking the top ``rerank_k``
    documents of the dataset's BM25 ranking, and aggregates the metrics.

    **Needs the Hugging Face Hub**: the datasets are read with ``datasets.load_dataset(dataset_id, subset,
    split="Nano<Name>")`` for the subsets ``corpus``, ``queries``, ``qrels`` and ``bm25``, at construction. Offline
    (``HF_HUB_OFFLINE=1``, no network) that works only for datasets already in the local ``datasets`` cache;
    otherwise construction raises a ``ValueError`` that says so.

    The result holds each dataset's metrics (``Nano<Name>_R<rerank_k>_<metric>``, with ``map``, ``mrr@<at_k>``,
    ``ndcg@<at_k>`` and their BM25 ``base_`` counterparts) and their aggregate over the datasets (``aggregate_fn``)
    under ``NanoBEIR_R<rerank_k>_<aggregate_key>_<metric>``. The primary metric is the aggregate ``ndcg@<at_k>``.

    Args:
        dataset_names: short names of the datasets (case-insensitive), see ``DATASET_NAME_TO_HUMAN_READABLE``;
            None evaluates all but arguana and touche2020 (argument retrieval, a different task).
        dataset_id: the Hub dataset with the ``corpus``/``queries``/``qrels``/``bm25`` subsets (translations exist).
        rerank_k: how many BM25 documents to rerank per query.
        at_k: the cut-off of MRR and NDCG.
        always_rerank_positives: also rerank the relevant documents BM25 missed (an upper bound); False reranks only
            BM25's documents (the realistic setting).
        prompt_name: name of a prompt of the model (``model.prompts``) for ``predict``.
        batch_size: ``predict`` batch size.
        show_progress_bar: show progress bars.
        write_csv: write each dataset's CSV and the aggregate ``NanoBEIR_evaluation_<aggregate_key>_results.csv``.
        aggregate_fn: reduces each metric's per-dataset values to one number.
        aggregate_key: names the aggregate (``NanoBEIR_R<rerank_k>_<aggregate_key>``).

    Raises:
        ValueError: ``dataset_names`` is empty or names an unknown dataset, ``datasets`` is not installed, or a
            dataset cannot be loaded (offline, not on the Hub, missing columns, ...).
    """

    def __init__(
        self,
        dataset_names: list[DatasetNameType | str] | None = None,
        dataset_id: str = "sentence-transformers/NanoBEIR-en",
        rerank_k: int = 100,
        at_k: int = 10,
        always_rerank_positives: bool = True,
        prompt_name: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool = False,
        write_csv: bool = True,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
    ) -> None:
        super().__init__()
        if dataset_names is None:
            dataset_names = [name for name in DATASET_NAME_TO_HUMAN_READABLE if name not in _NOT_BY_DEFAULT]
        self.dataset_names = list(dataset_names)
        self.dataset_id = dataset_id
        self.rerank_k = rerank_k
        self.at_k = at_k
        self.always_rerank_positives = always_rerank_positives
        self.prompt_name = prompt_name
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.write_csv = write_csv
        self.aggregate_fn = aggregate_fn
        self.aggregate_key = aggregate_key
        self.name = f"NanoBEIR_R{rerank_k:d}_{aggregate_key}"
        self._validate_dataset_names()

        reranking_kwargs = {
            "at_k": at_k,
            "always_rerank_positives": always_rerank_positives,
            "prompt_name": prompt_name,
            "show_progress_bar": show_progress_bar,
            "batch_size": batch_size,
            "write_csv": write_csv,
        }
        self.evaluators = [
            self._load_dataset(name, **reranking_kwargs)
            for name in tqdm(self.dataset_names, desc="Loading NanoBEIR datasets", leave=False)
        ]
        self.csv_file = f"NanoBEIR_evaluation_{aggregate_key}_results.csv"
        self.csv_headers = ["epoch", "steps", "MAP", f"MRR@{at_k}", f"NDCG@{at_k}"]
        self.primary_metric = f"ndcg@{at_k}"

    def __call__(
        self,
        model: CrossEncoder,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Evaluates every dataset and returns their metrics and the aggregates (see the class docstring)."""
        logger.info(
            "NanoBEIR Evaluation of the model on %s dataset%s:", self.dataset_names, progress_text(epoch, steps)
        )
        per_metric: dict[str, list[float]] = {}
        per_dataset: dict[str, float] = {}
        for evaluator in tqdm(self.evaluators, desc="Evaluating datasets", disable=not self.show_progress_bar):
            logger.info("Evaluating %s", evaluator.name)
            for key, value in evaluator(model, output_path, epoch, steps).items():
                # "Nano<Name>_R<k>_<metric>"
                dataset, _, metric = key.split("_", maxsplit=2)
                per_dataset[f"{dataset}_R{self.rerank_k}_{metric}"] = value
                per_metric.setdefault(metric, []).append(value)
            logger.info("")
        aggregated = {metric: float(self.aggregate_fn(values)) for metric, values in per_metric.items()}

        k = self.at_k
        mrr, ndcg = f"mrr@{k}", f"ndcg@{k}"
        if output_path is not None and self.write_csv:
            row = [epoch, steps, aggregated["map"], aggregated[mrr], aggregated[ndcg]]
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        pad = " " * len(str(k))
        logger.info("CrossEncoderNanoBEIREvaluator: Aggregated Results:")
        logger.info("%s       Base  -> Reranked", pad)
        logger.info("MAP:%s   %.2f -> %.2f", pad, aggregated["base_map"] * 100, aggregated["map"] * 100)
        logger.info("MRR@%d:  %.2f -> %.2f", k, aggregated[f"base_{mrr}"] * 100, aggregated[mrr] * 100)
        logger.info("NDCG@%d: %.2f -> %.2f", k, aggregated[f"base_{ndcg}"] * 100, aggregated[ndcg] * 100)
        card = {
            metric: f"{aggregated[metric]:.4f} ({aggregated[metric] - aggregated[f'base_{metric}']:+.4f})"
            for metric in ("map", mrr, ndcg)
        }
        self.store_metrics_in_model_card_data(model, self.prefix_name_to_metrics(card, self.name), epoch, steps)
        per_dataset.update(self.prefix_name_to_metrics(aggregated, self.name))
        return per_dataset

    def _get_human_readable_name(self, dataset_name: str) -> str:
        return f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}_R{self.rerank_k}"

    def _load_dataset(self, dataset_name: str, **reranking_kwargs: Any) -> CrossEncoderRerankingEvaluator:
        """The reranking evaluator of one dataset: each query with its positives and BM25's top ``rerank_k``."""
        if dataset_name.lower() not in DATASET_NAME_TO_HUMAN_READABLE:
            raise ValueError(f"Dataset '{dataset_name}' is not a valid NanoBEIR dataset.")
        split = f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}"
        corpus = self._load_dataset_subset_split("corpus", split, ["_id", "text"])
        queries = self._load_dataset_subset_split("queries", split, ["_id", "text"])
        qrels = self._load_dataset_subset_split("qrels", split, ["query-id", "corpus-id"])
        bm25 = self._load_dataset_subset_split("bm25", split, ["query-id", "corpus-ids"])

        documents = dict(zip(corpus["_id"], corpus["text"]))
        query_texts = dict(zip(queries["_id"], queries["text"]))
        relevant: dict[str, set[str]] = {}
        for row in qrels:
            ids = row["corpus-id"]
            relevant.setdefault(row["query-id"], set()).update(ids if isinstance(ids, list) else [ids])
        samples = [
            {
                "query": query_texts[row["query-id"]],
                "positive": [documents[doc_id] for doc_id in relevant[row["query-id"]]],
                "documents": [documents[doc_id] for doc_id in row["corpus-ids"][: self.rerank_k]],
            }
            for row in bm25
        ]
        return CrossEncoderRerankingEvaluator(
            samples=samples, name=self._get_human_readable_name(dataset_name), **reranking_kwargs
        )

    def _load_dataset_subset_split(self, subset: str, split: str, required_columns: list[str]) -> Any:
        """``datasets.load_dataset(dataset_id, subset, split=split)``, checked for ``required_columns``.

        Raises:
            ValueError: ``datasets`` is missing, the Hub cannot be reached (or offline mode is on) and the dataset
                is not cached, or the split lacks a required column.
        """
        try:
            from datasets import load_dataset
        except ImportError as exc:
            raise ValueError(
                "CrossEncoderNanoBEIREvaluator needs the `datasets` package to download NanoBEIR from the Hugging "
                "Face Hub: pip install datasets"
            ) from exc
        try:
            dataset = load_dataset(self.dataset_id, subset, split=split)
        except Exception as exc:
            offline = [name for name in _OFFLINE_VARIABLES if _env_flag(name)]
            reason = f"{type(exc).__name__}: {exc}"
            if offline:
                verb = "is" if len(offline) == 1 else "are"
                reason = f"{' and '.join(offline)} {verb} set and it is not in the local datasets cache; {reason}"
            raise ValueError(
                f"CrossEncoderNanoBEIREvaluator needs the Hugging Face Hub to download its datasets: could not load "
                f"subset '{subset}' split '{split}' of dataset '{self.dataset_id}' ({reason}). Run it with network "
                "access once to fill the cache, or evaluate local data with CrossEncoderRerankingEvaluator."
            ) from exc
        if missing := sorted(set(required_columns) - set(dataset.column_names)):
            raise ValueError(
                f"Subset '{subset}' split '{split}' of dataset '{self.dataset_id}' is missing required columns: "
                f"{missing}."
            )
        return dataset

    def _validate_dataset_names(self) -> None:
        if len(self.dataset_names) == 0:
            raise ValueError("dataset_names cannot be empty. Use None to evaluate on all datasets.")
        if unknown := [name for name in self.dataset_names if name.lower() not in DATASET_NAME_TO_HUMAN_READABLE]:
            raise ValueError(
                f"Dataset(s) {unknown} are not valid NanoBEIR datasets. "
                f"Valid dataset names are: {list(DATASET_NAME_TO_HUMAN_READABLE)}"
            )

    def get_config_dict(self) -> dict[str, Any]:
        """The datasets and the reranking settings, for the model card."""
        return {
            "dataset_names": self.dataset_names,
            "dataset_id": self.dataset_id,
            "rerank_k": self.rerank_k,
            "at_k": self.at_k,
            "always_rerank_positives": self.always_rerank_positives,
        }


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").upper() in ("1", "ON", "YES", "TRUE")
