"""``NanoBEIREvaluator``: information retrieval on the NanoBEIR datasets (downloaded from the Hugging Face Hub),
per dataset and aggregated."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from tqdm import tqdm

from sentrs.base.evaluation._results import append_csv_row, progress_text
from sentrs.base.evaluation.evaluator import BaseEvaluator
from sentrs.base.similarity import SimilarityFunction
from sentrs.sentence_transformer.evaluation.information_retrieval import InformationRetrievalEvaluator

if TYPE_CHECKING:
    from torch import Tensor

    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["DATASET_NAME_TO_HUMAN_READABLE", "DatasetNameType", "NanoBEIREvaluator"]

logger = logging.getLogger(__name__)

DatasetNameType = Literal[
    "climatefever",
    "dbpedia",
    "fever",
    "fiqa2018",
    "hotpotqa",
    "msmarco",
    "nfcorpus",
    "nq",
    "quoraretrieval",
    "scidocs",
    "arguana",
    "scifact",
    "touche2020",
]

DATASET_NAME_TO_HUMAN_READABLE: dict[str, str] = {
    "climatefever": "ClimateFEVER",
    "dbpedia": "DBPedia",
    "fever": "FEVER",
    "fiqa2018": "FiQA2018",
    "hotpotqa": "HotpotQA",
    "msmarco": "MSMARCO",
    "nfcorpus": "NFCorpus",
    "nq": "NQ",
    "quoraretrieval": "QuoraRetrieval",
    "scidocs": "SCIDOCS",
    "arguana": "ArguAna",
    "scifact": "SciFact",
    "touche2020": "Touche2020",
}
"""Short (lower-case) dataset name -> the name in its split, ``Nano<Name>``."""

_OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


class NanoBEIREvaluator(BaseEvaluator):
    """Runs an :class:`InformationRetrievalEvaluator` on each NanoBEIR dataset and aggregates their metrics.

    **Needs the Hugging Face Hub**: the datasets are read with ``datasets.load_dataset(dataset_id, subset,
    split="Nano<Name>")`` for the subsets ``corpus``, ``queries`` and ``qrels``, at construction. Offline
    (``HF_HUB_OFFLINE=1``, no network) that works only for datasets already in the local ``datasets`` cache;
    otherwise construction raises a ``ValueError`` that says so.

    The result holds every dataset's metrics (``Nano<Name>[_<truncate_dim>]_<fn>_<metric>@k``) and their aggregate
    over the datasets (``aggregate_fn``) under ``NanoBEIR_<aggregate_key>[_<truncate_dim>]_<fn>_<metric>@k``. The
    primary metric is the aggregate ``<fn>_ndcg@<max(ndcg_at_k)>`` of ``main_score_function``, else of the function
    with the best such value.

    Args:
        dataset_names: short names of the datasets (case-insensitive), see ``DATASET_NAME_TO_HUMAN_READABLE``;
            None evaluates all 13.
        dataset_id: the Hub dataset with the ``corpus``/``queries``/``qrels`` subsets (translations exist).
        mrr_at_k: the k of MRR@k.
        ndcg_at_k: the k of NDCG@k.
        accuracy_at_k: the k of accuracy@k.
        precision_recall_at_k: the k of precision@k and recall@k.
        map_at_k: the k of MAP@k.
        show_progress_bar: show progress bars.
        batch_size: encoding batch size.
        write_csv: write each dataset's CSV and the aggregate ``NanoBEIR_evaluation_<aggregate_key>_results.csv``.
        truncate_dim: truncate embeddings to this many dimensions; None keeps the model's setting.
        score_functions: as for :class:`InformationRetrievalEvaluator` (None: the model's similarity).
        main_score_function: the function whose aggregate NDCG is the primary metric.
        aggregate_fn: reduces each metric's per-dataset values to one number.
        aggregate_key: names the aggregate (``NanoBEIR_<aggregate_key>``).
        query_prompts: one prompt for every dataset's queries, or dataset name -> prompt (every dataset needed).
        corpus_prompts: the same for the documents.
        write_predictions: write each dataset's ranked hits as JSON lines (see the IR evaluator).

    Raises:
        ValueError: ``dataset_names`` is empty or names an unknown dataset, prompts are missing for some
            datasets, ``datasets`` is not installed, or a dataset cannot be loaded (offline, not on the Hub, ...).
    """

    information_retrieval_class = InformationRetrievalEvaluator

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
        truncate_dim: int | None = None,
        score_functions: dict[str, Callable[[Tensor, Tensor], Tensor]] | None = None,
        main_score_function: str | SimilarityFunction | None = None,
        aggregate_fn: Callable[[list[float]], float] = np.mean,
        aggregate_key: str = "mean",
        query_prompts: str | dict[str, str] | None = None,
        corpus_prompts: str | dict[str, str] | None = None,
        write_predictions: bool = False,
    ) -> None:
        super().__init__()
        self.dataset_names: list[str] = (
            list(DATASET_NAME_TO_HUMAN_READABLE) if dataset_names is None else list(dataset_names)
        )
        self.dataset_id = dataset_id
        self.aggregate_fn = aggregate_fn
        self.aggregate_key = aggregate_key
        self.write_csv = write_csv
        self.query_prompts = query_prompts
        self.corpus_prompts = corpus_prompts
        self.show_progress_bar = show_progress_bar
        self.score_functions = score_functions
        self.score_function_names: list[str] = sorted(score_functions) if score_functions else []
        self._score_functions_from_model = score_functions is None
        self.main_score_function = SimilarityFunction(main_score_function) if main_score_function else None
        self.truncate_dim = truncate_dim
        self.name = f"NanoBEIR_{aggregate_key}" + (f"_{truncate_dim}" if truncate_dim else "")
        self.mrr_at_k = mrr_at_k
        self.ndcg_at_k = ndcg_at_k
        self.accuracy_at_k = accuracy_at_k
        self.precision_recall_at_k = precision_recall_at_k
        self.map_at_k = map_at_k

        self._validate_dataset_names()
        self._validate_prompts()

        ir_kwargs: dict[str, Any] = {
            "mrr_at_k": mrr_at_k,
            "ndcg_at_k": ndcg_at_k,
            "accuracy_at_k": accuracy_at_k,
            "precision_recall_at_k": precision_recall_at_k,
            "map_at_k": map_at_k,
            "show_progress_bar": show_progress_bar,
            "batch_size": batch_size,
            "write_csv": write_csv,
            "truncate_dim": truncate_dim,
            "score_functions": score_functions,
            "main_score_function": main_score_function,
            "write_predictions": write_predictions,
        }
        self.evaluators = [
            self._load_dataset(dataset_name, **ir_kwargs)
            for dataset_name in tqdm(self.dataset_names, desc="Loading NanoBEIR datasets", leave=False)
        ]

        self.csv_file: str = f"NanoBEIR_evaluation_{aggregate_key}_results.csv"
        self.csv_headers = ["epoch", "steps"]
        self._append_csv_headers(self.score_function_names)

    def _append_csv_headers(self, score_function_names: list[str]) -> None:
        for fn_name in score_function_names:
            self.csv_headers.extend(f"{fn_name}-Accuracy@{k}" for k in self.accuracy_at_k)
            for k in self.precision_recall_at_k:
                self.csv_headers.extend((f"{fn_name}-Precision@{k}", f"{fn_name}-Recall@{k}"))
            self.csv_headers.extend(f"{fn_name}-MRR@{k}" for k in self.mrr_at_k)
            self.csv_headers.extend(f"{fn_name}-NDCG@{k}" for k in self.ndcg_at_k)
            self.csv_headers.extend(f"{fn_name}-MAP@{k}" for k in self.map_at_k)

    def __call__(
        self,
        model: SentenceTransformer,
        output_path: str | None = None,
        epoch: int = -1,
        steps: int = -1,
        *args: Any,
        **kwargs: Any,
    ) -> dict[str, float]:
        """Evaluates every dataset and returns their metrics followed by the aggregates (see the class docstring)."""
        logger.info(
            "NanoBEIR Evaluation of the model on %s dataset%s:",
            self.dataset_names,
            progress_text(epoch, steps, self.truncate_dim),
        )
        headers_changed = False
        if self._score_functions_from_model:
            # Taken from a dataset's evaluator, so the aggregate's labels follow the per-dataset ones.
            self.score_functions = self.evaluators[0]._model_score_functions(model)
            if self.score_function_names != sorted(self.score_functions):
                headers_changed = bool(self.score_function_names)
                self.score_function_names = sorted(self.score_functions)
                self.csv_headers = ["epoch", "steps"]
                self._append_csv_headers(self.score_function_names)
                self.primary_metric = None

        per_metric: dict[str, list[float]] = {}
        per_dataset: dict[str, float] = {}
        # A dataset's keys are "<its name>_<fn>_<metric>"; its name has as many "_" as this evaluator's name.
        name_parts = self.name.count("_")
        for evaluator in tqdm(self.evaluators, desc="Evaluating datasets", disable=not self.show_progress_bar):
            logger.info("Evaluating %s", evaluator.name)
            for key, value in evaluator(model, output_path, epoch, steps).items():
                metric = key.split("_", maxsplit=name_parts)[-1]
                per_metric.setdefault(metric, []).append(value)
                per_dataset[key] = value
        aggregated = {metric: self.aggregate_fn(values) for metric, values in per_metric.items()}

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
                row.extend(aggregated[f"{fn_name}_accuracy@{k}"] for k in self.accuracy_at_k)
                for k in self.precision_recall_at_k:
                    row.extend((aggregated[f"{fn_name}_precision@{k}"], aggregated[f"{fn_name}_recall@{k}"]))
                row.extend(aggregated[f"{fn_name}_mrr@{k}"] for k in self.mrr_at_k)
                row.extend(aggregated[f"{fn_name}_ndcg@{k}"] for k in self.ndcg_at_k)
                row.extend(aggregated[f"{fn_name}_map@{k}"] for k in self.map_at_k)
            append_csv_row(output_path, self.csv_file, self.csv_headers, row)

        if not self.primary_metric:
            at_k = max(self.ndcg_at_k)
            if self.main_score_function is None:
                best = max(self.score_function_names, key=lambda fn_name: aggregated[f"{fn_name}_ndcg@{at_k}"])
                self.primary_metric = f"{best}_ndcg@{at_k}"
            else:
                self.primary_metric = f"{self.main_score_function.value}_ndcg@{at_k}"

        logger.info("Average Queries: %s", np.mean([len(evaluator.queries) for evaluator in self.evaluators]))
        logger.info("Average Corpus: %s\n", np.mean([len(evaluator.corpus) for evaluator in self.evaluators]))
        for fn_name in self.score_function_names:
            logger.info("Aggregated for Score Function: %s", fn_name)
            for k in self.accuracy_at_k:
                logger.info("Accuracy@%d: %.2f%%", k, aggregated[f"{fn_name}_accuracy@{k}"] * 100)
            for k in self.precision_recall_at_k:
                logger.info("Precision@%d: %.2f%%", k, aggregated[f"{fn_name}_precision@{k}"] * 100)
                logger.info("Recall@%d: %.2f%%", k, aggregated[f"{fn_name}_recall@{k}"] * 100)
            for k in self.mrr_at_k:
                logger.info("MRR@%d: %.4f", k, aggregated[f"{fn_name}_mrr@{k}"])
            for k in self.ndcg_at_k:
                logger.info("NDCG@%d: %.4f", k, aggregated[f"{fn_name}_ndcg@{k}"])
            for k in self.map_at_k:
                logger.info("MAP@%d: %.4f", k, aggregated[f"{fn_name}_map@{k}"])

        aggregated = self.prefix_name_to_metrics(aggregated, self.name)
        self.store_metrics_in_model_card_data(model, aggregated, epoch, steps)
        per_dataset.update(aggregated)
        return per_dataset

    def _get_human_readable_name(self, dataset_name: str) -> str:
        """``Nano<Name>``, with ``_<truncate_dim>`` when truncating."""
        readable = f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}"
        return readable + (f"_{self.truncate_dim}" if self.truncate_dim is not None else "")

    def _load_dataset(self, dataset_name: str, **ir_kwargs: Any) -> InformationRetrievalEvaluator:
        """Downloads (or reads from the ``datasets`` cache) one dataset and builds its IR evaluator."""
        if dataset_name.lower() not in DATASET_NAME_TO_HUMAN_READABLE:
            raise ValueError(f"Dataset '{dataset_name}' is not a valid NanoBEIR dataset.")
        split = f"Nano{DATASET_NAME_TO_HUMAN_READABLE[dataset_name.lower()]}"
        corpus = self._load_dataset_subset_split("corpus", split=split, required_columns=["_id", "text"])
        queries = self._load_dataset_subset_split("queries", split=split, required_columns=["_id", "text"])
        qrels = self._load_dataset_subset_split("qrels", split=split, required_columns=["query-id", "corpus-id"])

        corpus_dict = {row["_id"]: row["text"] for row in corpus if len(row["text"]) > 0}
        queries_dict = {row["_id"]: row["text"] for row in queries if len(row["text"]) > 0}
        relevant: dict[Any, set[Any]] = {}
        for row in qrels:
            corpus_ids = row.get("corpus-id")
            docs = relevant.setdefault(row["query-id"], set())
            if isinstance(corpus_ids, list):
                docs.update(corpus_ids)
            else:
                docs.add(corpus_ids)

        if isinstance(self.query_prompts, dict):
            ir_kwargs["query_prompt"] = self.query_prompts.get(dataset_name)
        if isinstance(self.corpus_prompts, dict):
            ir_kwargs["corpus_prompt"] = self.corpus_prompts.get(dataset_name)
        return self.information_retrieval_class(
            queries=queries_dict,
            corpus=corpus_dict,
            relevant_docs=relevant,
            name=self._get_human_readable_name(dataset_name),
            **ir_kwargs,
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
                f"{type(self).__name__} needs the `datasets` package to download NanoBEIR from the Hugging Face Hub: "
                "pip install datasets"
            ) from exc
        try:
            dataset = load_dataset(self.dataset_id, subset, split=split)
        except Exception as exc:
            offline = [name for name in _OFFLINE_VARIABLES if _env_flag(name)]
            reason = (
                f"{' and '.join(offline)} {'is' if len(offline) == 1 else 'are'} set and it is not in the local "
                "datasets cache"
                if offline
                else f"{type(exc).__name__}: {exc}"
            )
            raise ValueError(
                f"{type(self).__name__} needs the Hugging Face Hub to download its datasets: could not load subset "
                f"'{subset}' split '{split}' of dataset '{self.dataset_id}' ({reason}). Run it with network access "
                f"once to fill the cache, or evaluate local data with {self.information_retrieval_class.__name__}."
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

    def _validate_prompts(self) -> None:
        problems = []
        if isinstance(self.query_prompts, str):
            self.query_prompts = dict.fromkeys(self.dataset_names, self.query_prompts)
        elif self.query_prompts is not None:
            if missing := [name for name in self.dataset_names if name not in self.query_prompts]:
                problems.append(f"The following datasets are missing query prompts: {missing}")
        if isinstance(self.corpus_prompts, str):
            self.corpus_prompts = dict.fromkeys(self.dataset_names, self.corpus_prompts)
        elif self.corpus_prompts is not None:
            if missing := [name for name in self.dataset_names if name not in self.corpus_prompts]:
                problems.append(f"The following datasets are missing corpus prompts: {missing}")
        if problems:
            raise ValueError("\n".join(problems))

    def store_metrics_in_model_card_data(self, *args: Any, **kwargs: Any) -> None:
        """Only with more than one dataset: for a single one the aggregate repeats its metrics."""
        if len(self.dataset_names) > 1:
            super().store_metrics_in_model_card_data(*args, **kwargs)

    def get_config_dict(self) -> dict[str, Any]:
        """``dataset_names`` and ``dataset_id``, and ``truncate_dim`` and the prompts where set."""
        config: dict[str, Any] = {"dataset_names": self.dataset_names, "dataset_id": self.dataset_id}
        for key in ("truncate_dim", "query_prompts", "corpus_prompts"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "0").upper() in ("1", "ON", "YES", "TRUE")
