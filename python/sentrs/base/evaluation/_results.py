"""How evaluators report: the log line's progress text and the rows of their CSV result files."""

from __future__ import annotations

import csv
import os
from typing import Any

__all__ = ["append_csv_row", "progress_text"]


def progress_text(epoch: int, steps: int, truncate_dim: int | None = None) -> str:
    """``" after epoch 2"``, ``" in epoch 2 after 100 steps"`` or ``""`` (outside training), then
    ``" (truncated to 64)"`` when ``truncate_dim`` is set."""
    text = ""
    if epoch != -1:
        text = f" after epoch {epoch}" if steps == -1 else f" in epoch {epoch} after {steps} steps"
    if truncate_dim is not None:
        text += f" (truncated to {truncate_dim})"
    return text


def append_csv_row(output_path: str, file_name: str, headers: list[str], row: list[Any]) -> None:
    """Appends ``row`` to ``output_path/file_name`` (folder created if needed), writing ``headers`` first when the
    file is new."""
    os.makedirs(output_path, exist_ok=True)
    path = os.path.join(output_path, file_name)
    is_new = not os.path.isfile(path)
    with open(path, newline="", mode="w" if is_new else "a", encoding="utf-8") as f:
        writer = csv.writer(f)
        if is_new:
            writer.writerow(headers)
        writer.writerow(row)
