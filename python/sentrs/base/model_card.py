"""A short model card (``README.md``) written next to a saved model."""

from __future__ import annotations

import os
from typing import Any

__all__ = ["write_model_card"]


def write_model_card(
    model: Any, path: str, model_name: str | None = None, train_datasets: list[str] | None = None
) -> None:
    """Writes ``README.md`` describing the model's modules, output size and usage."""
    name = model_name or (os.path.basename(os.path.normpath(model.model_name_or_path or "")) or "model")
    cls = type(model).__name__
    dims = getattr(model, "get_embedding_dimension", lambda: None)()
    lines = [
        "---",
        "library_name: sentence-transformers",
        "tags:",
        "- sentence-transformers",
        "- sentrs",
    ]
    if train_datasets:
        lines.append("datasets:")
        lines += [f"- {d}" for d in train_datasets]
    lines += [
        "---",
        "",
        f"# {name}",
        "",
        f"A {cls} model saved by sentrs in the sentence-transformers folder format; it loads in either library.",
        "",
        f"- Output dimension: {dims}",
        f"- Maximum sequence length: {model.max_seq_length}",
        f"- Similarity function: {getattr(model, 'similarity_fn_name', None)}",
        "",
        "## Architecture",
        "",
        "```",
        repr(model),
        "```",
        "",
        "## Usage",
        "",
        "```python",
        f"from sentrs import {cls}",
        "",
        f'model = {cls}("{name}")',
        'embeddings = model.encode(["An example sentence", "Another one"])',
        "```",
        "",
    ]
    with open(os.path.join(path, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
