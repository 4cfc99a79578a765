"""Input checks shared by the torch model classes and the torch-free pipeline (no torch here)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "SIMILARITY_FN_NAMES",
    "check_batch_size",
    "check_encode_args",
    "check_pair",
    "check_rank_args",
    "check_similarity_fn_name",
    "check_single_process",
    "is_single_pair_input",
    "is_single_text_input",
    "normalize_inputs",
    "pop_sentences_alias",
    "rank_results",
    "split_pairs",
]


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


SIMILARITY_FN_NAMES = ("cosine", "dot", "euclidean", "manhattan")


def check_similarity_fn_name(value: Any) -> str:
    """A ``similarity_fn_name`` (str or SimilarityFunction member) checked against the single-vector names."""
    value = getattr(value, "value", value)  # a SimilarityFunction member
    if value in ("maxsim", "meanmaxsim"):
        raise ValueError(f"similarity_fn_name {value!r} is for multi-vector models (MultiVectorEncoder)")
    if value not in SIMILARITY_FN_NAMES:
        raise ValueError(
            f"similarity_fn_name must be one of {SIMILARITY_FN_NAMES} or a SimilarityFunction, got {value!r}"
        )
    return str(value)


def check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def check_single_process(pool: Any, device: Any, what: str) -> None:
    """``pool=`` and ``device=[...]`` (multi-process work) are not supported: a clear error naming ``what``."""
    if pool is not None or isinstance(device, list):
        from sentrs.exceptions import UnsupportedFeatureError

        raise UnsupportedFeatureError(f"multi-process {what} (pool=, device=[...]) is not supported by sentrs yet")


def check_encode_args(
    batch_size: Any,
    pool: Any,
    device: Any,
    kwargs: dict[str, Any],
    allowed: set[str],
    precision: Any,
    truncate_dim: Any,
) -> None:
    """The argument checks of ``SentenceTransformer.encode`` (both implementations)."""
    from sentrs.util.quantization import PRECISIONS

    check_batch_size(batch_size)
    check_single_process(pool, device, "encoding")
    unused = set(kwargs) - allowed
    if unused:
        raise ValueError(
            f"SentenceTransformer.encode() got keyword arguments this model does not use: {sorted(unused)}; "
            f"valid extra arguments are {sorted(allowed)}"
        )
    if precision not in PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported, must be one of {PRECISIONS}")
    if truncate_dim is not None and (
        isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int) or truncate_dim < 1
    ):
        raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}")


def check_predict_args(
    inputs: Any, activation_fn: Any, batch_size: Any, pool: Any, device: Any, kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """The argument handling of ``CrossEncoder.predict`` (both implementations): the ``sentences`` alias, the legacy
    ``activation_fct`` and ``num_workers`` keywords (popped from ``kwargs``) and the checks. Returns
    ``(inputs, activation_fn)``."""
    if inputs is None:
        inputs = kwargs.pop("sentences", None)
        if inputs is None:
            raise TypeError("inputs must be a (query, document) pair or a list of pairs, got None")
    if "activation_fct" in kwargs:
        activation_fn = kwargs.pop("activation_fct")
    kwargs.pop("num_workers", None)
    check_batch_size(batch_size)
    check_single_process(pool, device, "prediction")
    unused = set(kwargs) - {"task", "processing_kwargs"}
    if unused:
        raise ValueError(f"CrossEncoder.predict() got keyword arguments it does not use: {sorted(unused)}")
    return inputs, activation_fn


def is_single_text_input(inputs: Any) -> bool:
    """An embedding-model input that is one item: a str, or one ``(text, text)`` tuple; lists are batches."""
    return isinstance(inputs, str) or (
        isinstance(inputs, tuple) and len(inputs) == 2 and all(isinstance(x, str) for x in inputs)
    )


def is_single_pair_input(inputs: Any) -> bool:
    """A cross-encoder input that is one item: a bare text, or one pair (not a list of pairs)."""
    if isinstance(inputs, str):
        return True
    if isinstance(inputs, np.ndarray):
        return inputs.ndim == 1
    return isinstance(inputs, (list, tuple)) and len(inputs) > 0 and not isinstance(inputs[0], (list, tuple))


def check_rank_args(num_labels: int, query: Any, documents: Any, top_k: Any) -> list[str]:
    """The argument checks of ``CrossEncoder.rank``; returns the documents as a list."""
    if num_labels != 1:
        raise ValueError(
            f"CrossEncoder.rank() only works for models with num_labels=1; this model has {num_labels}. "
            "Use predict() to get all label scores."
        )
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}")
    documents = list(documents)
    for i, doc in enumerate(documents):
        if not isinstance(doc, str):
            raise TypeError(f"documents[{i}] must be a str, got {type(doc).__name__}")
    return documents


def rank_results(
    values: list[float], documents: list[str], top_k: int | None, return_documents: bool
) -> list[dict[str, Any]]:
    """``[{"corpus_id", "score"(, "text")}]`` best first; equal scores keep document order; the first ``top_k``."""
    order = sorted(range(len(values)), key=lambda i: -values[i])  # stable
    results: list[dict[str, Any]] = []
    for i in order[:top_k]:
        hit: dict[str, Any] = {"corpus_id": i, "score": float(values[i])}
        if return_documents:
            hit["text"] = documents[i]
        results.append(hit)
    return results
