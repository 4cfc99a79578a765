"""Input checks shared by the torch model classes and the torch-free pipeline (no torch here)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_pair", "normalize_inputs", "pop_sentences_alias", "split_pairs"]


def normalize_inputs(inputs: Any) -> list[Any]:
    """A batch as a list, with a clear error for inputs that are not text."""
    if inputs is None:
        raise TypeError("inputs must be a str or a list of str, got None")
    if isinstance(inputs, dict):
        raise TypeError("inputs must be a str or a list of str; dict (multimodal) inputs are not supported by sentrs")
    if isinstance(inputs, np.ndarray):
        if inputs.dtype.kind not in "UO":
            raise TypeError(f"inputs must be text; got a numpy array of dtype {inputs.dtype}")
        return inputs.tolist()
    if isinstance(inputs, list):
        return inputs
    if isinstance(inputs, (bytes, int, float)):
        raise TypeError(f"inputs must be a str or a list of str, got {type(inputs).__name__}")
    try:
        return list(inputs)
    except TypeError as exc:
        raise TypeError(f"inputs must be a str or a list of str, got {type(inputs).__name__}") from exc


def pop_sentences_alias(inputs: Any, kwargs: dict[str, Any]) -> Any:
    """Accepts the reference's deprecated ``sentences=`` keyword for ``inputs``."""
    if "sentences" in kwargs:
        sentences = kwargs.pop("sentences")
        if inputs is None:
            return sentences
        raise TypeError("pass either inputs or sentences, not both")
    if inputs is None:
        raise TypeError("inputs must be a str or a list of str, got None")
    return inputs


def check_pair(item: Any, index: int) -> None:
    """A cross-encoder input: one text or a (text, text) pair; otherwise a clear error naming ``inputs[index]``."""
    if isinstance(item, str):
        return
    if isinstance(item, (list, tuple)):
        if len(item) != 2:
            raise ValueError(f"inputs[{index}] must be a (query, document) pair of two texts, got {len(item)} items")
        for j, part in enumerate(item):
            if not isinstance(part, str):
                raise ValueError(
                    f"Unsupported input type: inputs[{index}][{j}] must be a str, got {type(part).__name__}"
                )
        return
    raise ValueError(
        f"Unsupported input type: inputs[{index}] must be a (str, str) pair or a str, got {type(item).__name__}"
    )


def split_pairs(inputs: list[Any]) -> tuple[list[str], list[str] | None]:
    """Splits inputs into first texts and (for pairs) second texts; validates types with clear errors."""
    if not inputs:
        return [], None
    first = inputs[0]
    is_pair = isinstance(first, (tuple, list))
    texts: list[str] = []
    pairs: list[str] = []
    for i, item in enumerate(inputs):
        if is_pair:
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"inputs[{i}] must be a pair (text, text) like inputs[0], got {item!r}")
            a, b = item
            for j, part in enumerate((a, b)):
                if not isinstance(part, str):
                    raise TypeError(f"inputs[{i}][{j}] must be a str, got {type(part).__name__}")
            texts.append(a)
            pairs.append(b)
        else:
            if isinstance(item, np.str_):
                item = str(item)
            if not isinstance(item, str):
                raise TypeError(f"inputs[{i}] must be a str, got {type(item).__name__}")
            texts.append(item)
    return texts, (pairs if is_pair else None)
