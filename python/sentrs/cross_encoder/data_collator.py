"""``CrossEncoderDataCollator``: rows -> raw text columns plus labels; the cross-encoder losses build and tokenize
the (query, document) pairs themselves (the Rust pair tokenizer, through ``model.preprocess``)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sentrs.base.data_collator import BaseDataCollator, _label_tensor

__all__ = ["CrossEncoderDataCollator"]


@dataclass
class CrossEncoderDataCollator(BaseDataCollator):
    """Collates rows into ``{column: [values]}`` plus ``label`` and, when set, ``prompt`` and ``task``.

    ``prompts`` and ``router_mapping`` are one value or dataset name -> value: the columns are joined into pairs,
    so a per-column value has no meaning and raises.
    """

    def __post_init__(self) -> None:
        for name, mapping, example in (
            ("prompts", self.prompts, "prompts='Search: ' or prompts={'dataset_a': 'Search: '}"),
            ("router_mapping", self.router_mapping, "router_mapping={'dataset_a': 'rerank'}"),
        ):
            if isinstance(mapping, dict) and any(isinstance(v, dict) for v in mapping.values()):
                raise ValueError(
                    f"CrossEncoder `{name}` cannot be per column (the columns are joined into pairs): give one "
                    f"value or one per dataset, e.g. {example}; got {mapping!r}"
                )

    @staticmethod
    def _resolve_scalar(mapping: Any, batch: dict[str, Any]) -> str | None:
        if not mapping:
            return None
        if isinstance(mapping, str):
            return mapping
        if isinstance(mapping, dict) and "dataset_name" in batch:
            found = mapping.get(batch["dataset_name"])
            return found if isinstance(found, str) else None
        return None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        if not features:
            return {}
        columns = list(features[0].keys())
        batch: dict[str, Any] = {}
        if "dataset_name" in columns:
            columns.remove("dataset_name")
            batch["dataset_name"] = features[0]["dataset_name"]
        for label_column in self.valid_label_columns:
            if label_column in columns:
                values = [row[label_column] for row in features]
                if isinstance(values[0], Collection) and not isinstance(values[0], str):
                    # Listwise labels (one list per query, of varying length): one tensor per row.
                    batch["label"] = [_label_tensor(list(v), label_column) for v in values]
                else:
                    batch["label"] = _label_tensor(values, label_column)
                columns.remove(label_column)
                break
        prompt = self._resolve_scalar(self.prompts, batch)
        if prompt:
            batch["prompt"] = prompt
        task = self._resolve_scalar(self.router_mapping, batch)
        if task:
            batch["task"] = task
        for column in columns:
            batch[column] = [row[column] for row in features]
        return batch
