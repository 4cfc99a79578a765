"""``BaseDataCollator``: turns a list of dataset rows into the feature dicts the losses take.

Each text column is tokenized by the model's ``preprocess`` (the Rust tokenizer: one call per column, padded
straight into int64 arrays that torch wraps without a copy) and stored as ``{column}_{key}``: ``anchor_input_ids``,
``anchor_attention_mask``, ``anchor_prompt_length`` and so on, the names the reference's collator gives them. The
first label column found (``label``, ``labels``, ``score``, ``scores``) becomes ``batch["label"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_LABEL_COLUMNS", "BaseDataCollator"]

DEFAULT_LABEL_COLUMNS: tuple[str, ...] = ("label", "labels", "score", "scores")

# Column names with a conventional position; a dataset that puts them elsewhere is probably mis-ordered, and the
# losses read columns by position.
_USUAL_POSITIONS: tuple[tuple[str, ...], ...] = (
    ("anchor", "positive", "negative"),
    ("question", "answer"),
    ("query", "response"),
    ("hypothesis", "entailment", "contradiction"),
)


def _label_tensor(values: list[Any], column: str) -> Any:
    import torch

    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(values)
    try:
        return torch.tensor(values)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(
            f"label column {column!r} must hold numbers (or equal-length lists or tensors of numbers); "
            f"got {type(first).__name__}: {first!r}"
        ) from exc


@dataclass
class BaseDataCollator:
    """Collates dataset rows into ``{column}_{feature}`` tensors plus ``label``.

    Args:
        preprocess_fn: the model's ``preprocess`` (texts, ``prompt=``, ``task=``) -> features dict.
        valid_label_columns: the column names read as labels, first match wins.
        router_mapping: column -> Router task, or dataset name -> (column -> task).
        prompts: one prompt, column -> prompt, dataset -> prompt, or dataset -> (column -> prompt).
        max_length: a training-time token limit, for every column (int) or per task (dict).
    """

    preprocess_fn: Callable[..., dict[str, Any]]
    valid_label_columns: list[str] = field(default_factory=lambda: list(DEFAULT_LABEL_COLUMNS))
    router_mapping: dict[str, str] | dict[str, dict[str, str]] | None = field(default_factory=dict, repr=False)
    prompts: str | dict[str, str] | dict[str, dict[str, str]] | None = field(default_factory=dict, repr=False)
    max_length: int | dict[str, int] | None = field(default=None, repr=False)

    _warned_columns: set[tuple[str, ...]] = field(default_factory=set, init=False, repr=False)

    # -- per-batch resolution -------------------------------------------------------------------------------

    @staticmethod
    def _per_dataset(mapping: Any, batch: dict[str, Any], what: str) -> Any:
        """Picks the dataset's entry of a per-dataset mapping; a flat mapping applies to every dataset."""
        if not isinstance(mapping, dict) or not mapping:
            return mapping
        dataset_name = batch.get("dataset_name")
        if dataset_name is not None and dataset_name in mapping:
            return mapping[dataset_name]
        if isinstance(next(iter(mapping.values())), dict):
            if dataset_name is None:
                raise ValueError(
                    f"`{what}` is a nested dict (dataset name -> column -> value), but the dataset is not a "
                    f"DatasetDict, so there is no dataset name to look up; got keys {list(mapping)!r}"
                )
            return {}
        return mapping

    def _resolve_router_mapping(self, batch: dict[str, Any]) -> dict[str, str]:
        return self._per_dataset(self.router_mapping, batch, "router_mapping") or {}

    def _resolve_prompts(self, batch: dict[str, Any]) -> str | dict[str, str] | None:
        return self._per_dataset(self.prompts, batch, "prompts")

    def _get_prompt_for_column(self, prompts: str | dict[str, str] | None, column_name: str) -> str | None:
        if isinstance(prompts, str):
            return prompts
        if isinstance(prompts, dict):
            return prompts.get(column_name)
        return None

    def _get_task_for_column(
        self, column_name: str, column_position: int, router_mapping: dict[str, str]
    ) -> str | None:
        return router_mapping.get(column_name)

    def _get_max_length_for_task(self, task: str | None) -> int | None:
        if isinstance(self.max_length, int):
            return self.max_length
        if isinstance(self.max_length, dict) and task is not None:
            return self.max_length.get(task)
        return None

    # -- collation -------------------------------------------------------------------------------------------

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        columns = list(features[0].keys())
        batch: dict[str, Any] = {}
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        if tuple(columns) not in self._warned_columns:
            self.maybe_warn_about_column_order(columns)

        for label_column in self.valid_label_columns:
            if label_column in columns:
                batch["label"] = _label_tensor([row[label_column] for row in features], label_column)
                columns.remove(label_column)
                break

        router_mapping = self._resolve_router_mapping(batch)
        prompts = self._resolve_prompts(batch)
        id_like = [c for c in columns if c == "id" or c.endswith(("_id", "_ids", "_idx"))]
        if id_like and tuple(columns) not in self._warned_columns:
            logger.warning(
                "Column(s) %s look like IDs but are tokenized and trained on as text; map IDs to their texts first "
                "or drop the columns.",
                id_like,
            )
        self._warned_columns.add(tuple(columns))

        for position, column in enumerate(columns):
            task = self._get_task_for_column(column, position, router_mapping)
            prompt = self._get_prompt_for_column(prompts, column)
            values = [row[column] for row in features]
            kwargs: dict[str, Any] = {"prompt": prompt, "task": task}
            max_length = self._get_max_length_for_task(task)
            if max_length is not None:
                kwargs["max_length"] = max_length
            try:
                out = self.preprocess_fn(values, **kwargs)
            except (TypeError, ValueError) as exc:
                sample = values[0] if values else None
                raise type(exc)(
                    f"column {column!r} could not be preprocessed ({exc}); its first value is "
                    f"{type(sample).__name__}: {sample!r:.80}"
                ) from exc
            for key, value in out.items():
                batch[f"{column}_{key}"] = value
            if task is not None:
                batch[f"{column}_task"] = task
        return batch

    def maybe_warn_about_column_order(self, column_names: list[str]) -> None:
        """Warns once per column list when a conventionally named column sits at an unusual position."""
        for group in _USUAL_POSITIONS:
            for expected, name in enumerate(group):
                if name in column_names and column_names.index(name) != expected:
                    logger.warning(
                        "Column %r is at position %d, but is usually at %d. Losses read columns by position (e.g. "
                        "MultipleNegativesRankingLoss takes the first as the anchor), not by name; reorder with "
                        "dataset.select_columns(%r) if this is not intended.",
                        name,
                        column_names.index(name),
                        expected,
                        list(group),
                    )
                    return
