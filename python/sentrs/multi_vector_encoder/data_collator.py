"""``MultiVectorEncoderDataCollator``: the shared collator (Rust tokenization per column) for multi-vector models."""

from __future__ import annotations

from dataclasses import dataclass

from sentrs.base.data_collator import BaseDataCollator

__all__ = ["MultiVectorEncoderDataCollator"]


@dataclass
class MultiVectorEncoderDataCollator(BaseDataCollator):
    """Collates rows into ``{column}_input_ids``/... tensors plus ``label``; see
    :class:`~sentrs.base.data_collator.BaseDataCollator`.

    A column without a ``router_mapping`` entry is tokenized as a query when it comes first and as a document
    otherwise (by position, as the losses read them), so queries get the query length and expansion."""

    def _get_task_for_column(self, column_name: str, column_position: int, router_mapping: dict[str, str]) -> str:
        task = router_mapping.get(column_name)
        if task is None:
            task = "query" if column_position == 0 else "document"
        return task
