"""How the dense losses take their inputs: one embedding per input column, and one label per row.

Every loss gets ``sentence_features``, one features dict per input column (``model.preprocess`` of the column's texts),
and embeds each column with ``model(features)["sentence_embedding"]``. Candidate columns (the second onwards) that
were preprocessed the same way are padded to one width and embedded in one forward pass, which keeps the device busy
with ``(anchor, positive, negative_1, ..., negative_n)`` batches; the anchor column keeps its own pass, since queries
are often much shorter than documents. The padded positions carry attention mask 0, so the embeddings (and their
gradients) are those of separate passes, up to float rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["check_one_label_per_row", "column_merging_disabled", "embed_columns"]

_MERGING_OFF: ContextVar[bool] = ContextVar("sentrs_column_merging_off", default=False)


@contextmanager
def column_merging_disabled() -> Iterator[None]:
    """Within the block every column gets its own forward pass (for wrapper losses that call their inner loss
    several times on the same feature dicts, e.g. AdaptiveLayerLoss: the reference embeds columns separately
    there, so dropout draws its masks in the same order)."""
    token = _MERGING_OFF.set(True)
    try:
        yield
    finally:
        _MERGING_OFF.reset(token)


def embed_columns(model: nn.Module, sentence_features: Iterable[dict[str, Any]]) -> list[Tensor]:
    """The ``sentence_embedding`` of each column, ``(batch_size, dim)`` each, in column order."""
    columns = list(sentence_features)
    if not columns:
        return []
    embeddings = [model(columns[0])["sentence_embedding"]]
    candidates = columns[1:]
    merged = _merge_columns(candidates) if len(candidates) > 1 and not _MERGING_OFF.get() else None
    if merged is None:
        embeddings.extend(model(features)["sentence_embedding"] for features in candidates)
        return embeddings
    stacked = model(merged)["sentence_embedding"]
    embeddings.extend(stacked.reshape(len(candidates), -1, *stacked.shape[1:]).unbind(0))
    return embeddings


def _merge_columns(columns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One features dict with the rows of every column, column after column; None when the columns differ in a way
    that padding cannot bridge (other keys, float inputs of other widths, other metadata, flattened batches)."""
    first = columns[0]
    keys = set(first)
    if any(set(features) != keys for features in columns[1:]) or "cu_seq_lens_q" in keys:
        return None
    token_tensors = [first.get(key) for key in ("input_ids", "attention_mask")]
    rows_of = [t for t in token_tensors if isinstance(t, Tensor) and t.ndim == 2]
    if not rows_of:
        return None
    rows = rows_of[0].shape[0]
    merged: dict[str, Any] = {}
    for key, value in first.items():
        values = [features[key] for features in columns]
        if isinstance(value, Tensor) and key != "prompt_length":
            stacked = _concat_rows(values, rows)
            if stacked is None:
                return None
            merged[key] = stacked
        elif _all_equal(values):
            merged[key] = value
        else:
            return None
    return merged


def _concat_rows(values: list[Any], rows: int) -> Tensor | None:
    """The per-column tensors of one key concatenated along the rows, the token axis zero-padded to the widest."""
    if not all(isinstance(v, Tensor) and v.ndim >= 1 and v.shape[0] == rows for v in values):
        return None
    if any(v.ndim != values[0].ndim or v.shape[2:] != values[0].shape[2:] for v in values):
        return None
    if values[0].ndim >= 2:
        width = max(v.shape[1] for v in values)
        if any(v.shape[1] != width for v in values):
            if values[0].is_floating_point() or values[0].is_complex():
                return None  # only token ids and masks pad safely (padding gets attention mask 0)
            values = [F.pad(v, [0, 0] * (v.ndim - 2) + [0, width - v.shape[1]]) for v in values]
    return torch.cat(values, dim=0)


def _all_equal(values: list[Any]) -> bool:
    """Whether every column has the same value for a metadata key (a prompt length, a modality name, ...)."""
    first = values[0]
    try:
        for value in values[1:]:
            if isinstance(first, Tensor) or isinstance(value, Tensor):
                if not (isinstance(first, Tensor) and isinstance(value, Tensor) and torch.equal(first, value)):
                    return False
            elif bool(value != first):
                return False
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def check_one_label_per_row(loss: nn.Module, labels: Tensor, batch_size: int) -> Tensor:
    """``labels`` as a flat ``(batch_size,)`` tensor.

    Raises:
        ValueError: there is not exactly one label per row.
    """
    if labels.numel() != batch_size:
        raise ValueError(
            f"{type(loss).__name__} expects {batch_size} labels (one per example), "
            f"but got {labels.numel()} labels with shape {tuple(labels.shape)}."
        )
    return labels.view(-1)
