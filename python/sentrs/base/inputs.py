"""Input checks shared by the torch model classes and the torch-free pipeline (no torch here).

What counts as one input and what as a batch follows the reference (sentence-transformers 6.2):

- embedding models (``SentenceTransformer``, ``SparseEncoder``): a list or a tuple (or a ``datasets.Column``) is a
  batch, except a list of chat messages, which is one conversation; a numpy array of str/object with ``ndim >= 1``
  is a batch; anything else (a str, a dict, a 0-d array, a tensor, a generator) is one input. So
  ``encode(("a", "b"))`` embeds two texts, and a (text, text) pair is only a pair inside a batch:
  ``encode([("a", "b")])``.
- cross-encoders: a list or a tuple is one pair unless its first item is itself a list or a tuple (an empty one is
  an empty batch); a numpy array of str/object is one pair when 0-d or 1-d and a batch when 2-d or empty.

One input is a str, a (text, text) pair (tuple or list) or a ``{"text": ...}`` dict holding one of those. Anything
else raises :class:`~sentrs.exceptions.InputTypeError`, a ``ValueError`` as in the reference and a ``TypeError`` as
in earlier sentrs, with a message naming the argument, what it got and what it expects.
"""

from __future__ import annotations

import sys
from typing import Any, TypeAlias

import numpy as np

from sentrs._lazy import is_tensor
from sentrs.exceptions import InputTypeError

__all__ = [
    "SIMILARITY_FN_NAMES",
    "TextInput",
    "as_batch_list",
    "check_batch_size",
    "check_encode_args",
    "check_pair",
    "check_precision",
    "check_predict_args",
    "check_rank_args",
    "check_similarity_fn_name",
    "is_message_dict",
    "is_single_pair_input",
    "is_single_text_input",
    "multi_process_requested",
    "normalize_inputs",
    "pop_sentences_alias",
    "prepare_pair_inputs",
    "prepare_text_inputs",
    "rank_results",
    "split_pairs",
]

TextInput: TypeAlias = str | tuple[str, str]
"""One checked input: a text, or a (text, text) pair tokenized together."""

_EXPECTED_ITEM = "a str or a (text, text) pair"
_EXPECTED_TEXT_INPUTS = "a str, or a list, tuple or numpy array of str or (text, text) pairs"
_EXPECTED_PAIR_INPUTS = "a (query, document) pair of str, a str, or a list of them"


# ------------------------------------------------------------------ single input or batch
def _sequence_types() -> tuple[type[Any], ...]:
    """``list`` and ``tuple``, plus ``datasets.Column`` when datasets is loaded (no one holds a Column otherwise)."""
    datasets = sys.modules.get("datasets")
    column = getattr(datasets, "Column", None) if datasets is not None else None
    return (list, tuple, column) if isinstance(column, type) else (list, tuple)


def is_message_dict(value: Any) -> bool:
    """A chat message: a dict with ``"role"`` and ``"content"`` keys."""
    return isinstance(value, dict) and "role" in value and "content" in value


def is_single_text_input(inputs: Any) -> bool:
    """Whether an embedding-model input is one input rather than a batch (the module docstring has the rules)."""
    if isinstance(inputs, list) and inputs and is_message_dict(inputs[0]):
        return True  # one conversation
    if isinstance(inputs, _sequence_types()):
        return False
    return not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in "UO")


def is_single_pair_input(inputs: Any) -> bool:
    """Whether a cross-encoder input is one pair (or one text) rather than a batch of them."""
    sequences = _sequence_types()
    if isinstance(inputs, sequences):
        return len(inputs) > 0 and not isinstance(inputs[0], sequences)
    if isinstance(inputs, np.ndarray) and inputs.dtype.kind in "UO":
        return inputs.size > 0 and inputs.ndim < 2
    return True


# ------------------------------------------------------------------ one input
def _received(value: Any) -> str:
    """What a message says was received: the type name, with the shape of arrays and tensors."""
    name = type(value).__name__
    if isinstance(value, np.ndarray):
        return f"{name} of shape {value.shape} and dtype {value.dtype}"
    if is_tensor(value):
        return f"{name} of shape {tuple(value.shape)}"
    return name


def _hint(value: Any) -> str:
    """A hint for a value that is not text, appended to the error message."""
    if is_message_dict(value) or (isinstance(value, list) and value and is_message_dict(value[0])):
        return "; chat-style message inputs (dicts with 'role' and 'content') are not supported by sentrs"
    if isinstance(value, dict):
        keys = sorted(map(str, value))
        return f"; the only dict input sentrs reads is {{'text': ...}}, got keys {keys}"
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "UO":
        return "; pass arr.item() for the text of a 0-d numpy array"
    if isinstance(value, np.ndarray) or is_tensor(value):
        return "; array and tensor inputs (audio, image, video) are not supported by sentrs"
    if isinstance(value, (bytes, bytearray)):
        return "; decode bytes to str first"
    if hasattr(value, "__iter__") and not isinstance(value, (list, tuple)):  # a generator, a set, a pandas Series
        return "; pass a batch as a list, a tuple or a numpy array of str"
    return ""


def _where(where: int | str) -> str:
    return f"inputs[{where}]" if isinstance(where, int) else where


def _text_item(item: Any, where: int | str, expected: str = _EXPECTED_ITEM, read_dict: bool = True) -> TextInput:
    """One input checked and made plain: a str, or a ``(str, str)`` tuple for a pair given as tuple or list.

    ``where`` is the index in ``inputs`` (or the argument's name for a single input); it and ``expected`` only go
    into the error message. ``read_dict`` unwraps ``{"text": ...}``.
    """
    if type(item) is str:
        return item
    if isinstance(item, str):  # np.str_ and other subclasses
        return str(item)
    if isinstance(item, (list, tuple)) and not (item and is_message_dict(item[0])):
        if len(item) != 2:
            raise InputTypeError(
                f"Unsupported input type: {_where(where)} must be {expected}, got a {type(item).__name__} of "
                f"{len(item)} item{'' if len(item) == 1 else 's'} (a pair of two texts has 2)"
            )
        for j, part in enumerate(item):
            if not isinstance(part, str):
                raise InputTypeError(
                    f"Unsupported input type: {_where(where)}[{j}] must be a str, got {_received(part)}{_hint(part)}"
                )
        return (str(item[0]), str(item[1]))
    if isinstance(item, dict) and len(item) == 1 and "text" in item:
        if read_dict:
            return _text_item(item["text"], f"{_where(where)}['text']", expected)
        raise InputTypeError(
            f"Unsupported input type: {_where(where)} must be a str, got dict; "
            "pass the text itself rather than {'text': ...}"
        )
    raise InputTypeError(
        f"Unsupported input type: {_where(where)} must be a str, got {_received(item)}; expected {expected}"
        f"{_hint(item)}"
    )


# ------------------------------------------------------------------ embedding models
def pop_sentences_alias(inputs: Any, kwargs: dict[str, Any]) -> Any:
    """Accepts the reference's deprecated ``sentences=`` keyword for ``inputs``."""
    if "sentences" in kwargs:
        sentences = kwargs.pop("sentences")
        if inputs is None:
            inputs = sentences
        else:
            raise TypeError("pass either inputs or sentences, not both")
    if inputs is None:
        raise InputTypeError(f"inputs must be {_EXPECTED_TEXT_INPUTS}, got None")
    return inputs


def normalize_inputs(inputs: Any) -> list[TextInput]:
    """A batch (see :func:`is_single_text_input`) as a list of checked inputs: str, or ``(str, str)`` pairs.

    Anything that is not a batch raises :class:`InputTypeError`; prefer :func:`prepare_text_inputs`, which also
    takes a single input.
    """
    batch: list[Any]
    if isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and inputs.dtype.kind in "UO":
        batch = inputs.tolist()
    elif isinstance(inputs, list) and not (inputs and is_message_dict(inputs[0])):
        batch = inputs
    elif isinstance(inputs, _sequence_types()) and not isinstance(inputs, list):
        batch = list(inputs)
    else:
        raise InputTypeError(
            f"Unsupported input type: inputs must be {_EXPECTED_TEXT_INPUTS}, got {_received(inputs)}{_hint(inputs)}"
        )
    return [item if type(item) is str else _text_item(item, i) for i, item in enumerate(batch)]


def as_batch_list(inputs: Any) -> list[Any]:
    """A batch (see :func:`is_single_text_input`) as a plain list of its inputs, unchecked."""
    if isinstance(inputs, np.ndarray):
        return list(inputs.tolist())
    return list(inputs)


def prepare_text_inputs(inputs: Any) -> tuple[list[TextInput], bool]:
    """The inputs of ``encode`` as ``(batch, single)``: the checked inputs as a list, and whether ``inputs`` was one
    input (whose result the caller unwraps) rather than a batch."""
    if is_single_text_input(inputs):
        return [_text_item(inputs, "inputs", _EXPECTED_TEXT_INPUTS)], True
    return normalize_inputs(inputs), False


def split_pairs(inputs: list[Any]) -> tuple[list[str], list[str | None] | None]:
    """Splits a batch into first texts and second texts, checking every input.

    ``pairs`` is None when no input is a pair; otherwise it has one entry per input, None for the single texts
    (the reference tokenizes a batch that mixes texts and pairs row by row, and so does the Rust tokenizer).
    """
    texts: list[str] = []
    pairs: list[str | None] = []
    any_pair = False
    for i, raw in enumerate(inputs):
        item = raw if type(raw) is str else _text_item(raw, i)
        if isinstance(item, str):
            texts.append(item)
            pairs.append(None)
        else:
            texts.append(item[0])
            pairs.append(item[1])
            any_pair = True
    return texts, (pairs if any_pair else None)


# ------------------------------------------------------------------ cross-encoders
def check_pair(item: Any, index: int) -> TextInput:
    """One cross-encoder input, ``inputs[index]``: a text or a (text, text) pair; returns it as a str or a
    ``(str, str)`` tuple. A ``{"text": ...}`` dict is refused here (callers index pairs directly); use
    :func:`prepare_pair_inputs`, which reads it."""
    return _text_item(item, index, read_dict=False)


def prepare_pair_inputs(inputs: Any) -> tuple[list[TextInput], bool]:
    """The inputs of ``CrossEncoder.predict`` as ``(batch, single)``: the checked pairs (or texts) as a list, and
    whether ``inputs`` was one pair rather than a batch."""
    single = is_single_pair_input(inputs)
    if isinstance(inputs, np.ndarray):
        inputs = inputs.tolist()
    if single:
        return [_text_item(inputs, "inputs", _EXPECTED_PAIR_INPUTS)], True
    if not isinstance(inputs, list):
        inputs = list(inputs)
    # A batch may mix pairs and single texts: each row is tokenized as what it is, as in the reference.
    return [_text_item(item, i) for i, item in enumerate(inputs)], False


def check_predict_args(
    inputs: Any, activation_fn: Any, batch_size: Any, pool: Any, device: Any, kwargs: dict[str, Any]
) -> tuple[Any, Any]:
    """The argument handling of ``CrossEncoder.predict`` (both implementations): the ``sentences`` alias, the legacy
    ``activation_fct`` and ``num_workers`` keywords (popped from ``kwargs``) and the checks. Returns
    ``(inputs, activation_fn)``; ``activation_fn`` wins over ``activation_fct``, as in the reference."""
    if "sentences" in kwargs:
        sentences = kwargs.pop("sentences")
        if inputs is not None:
            raise TypeError("pass either inputs or sentences, not both")
        inputs = sentences
    if inputs is None:
        raise InputTypeError(f"inputs must be {_EXPECTED_PAIR_INPUTS}, got None")
    if "activation_fct" in kwargs:
        legacy = kwargs.pop("activation_fct")
        if activation_fn is None:
            activation_fn = legacy
    kwargs.pop("num_workers", None)
    check_batch_size(batch_size)
    multi_process_requested(pool, device)
    unused = set(kwargs) - {"task", "processing_kwargs"}
    if unused:
        raise ValueError(f"CrossEncoder.predict() got keyword arguments it does not use: {sorted(unused)}")
    return inputs, activation_fn


def check_rank_args(num_labels: int, query: Any, documents: Any, top_k: Any) -> list[str]:
    """The argument checks of ``CrossEncoder.rank``; returns the documents as a list."""
    if num_labels != 1:
        raise ValueError(
            f"CrossEncoder.rank() only works for models with num_labels=1; this model has {num_labels}. "
            "Use predict() to get all label scores."
        )
    if not isinstance(query, str):
        raise InputTypeError(f"query must be a str, got {_received(query)}{_hint(query)}")
    if top_k is not None:
        if not _is_integer(top_k):
            raise InputTypeError(f"top_k must be a non-negative integer or None, got {top_k!r}")
        if top_k < 0:
            raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}")
    if isinstance(documents, np.ndarray):
        documents = documents.tolist()
    try:
        documents = list(documents)
    except TypeError as exc:
        raise InputTypeError(f"documents must be a list of str, got {_received(documents)}") from exc
    for i, doc in enumerate(documents):
        if not isinstance(doc, str):
            raise InputTypeError(f"documents[{i}] must be a str, got {_received(doc)}{_hint(doc)}")
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


# ------------------------------------------------------------------ options
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


def _is_integer(value: Any) -> bool:
    """A Python or numpy integer, not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_optional_positive_int(value: Any, name: str) -> int | None:
    """``value`` as an int when it is a positive integer, None when None; ``ValueError`` naming ``name`` otherwise."""
    if value is None:
        return None
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return int(value)


def check_batch_size(batch_size: Any) -> int:
    """A positive ``batch_size`` (numpy integers too), returned as an int. A non-integer raises
    :class:`InputTypeError` (the reference raises ``TypeError``), zero or less ``ValueError``."""
    if not _is_integer(batch_size):
        raise InputTypeError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_precision(precision: Any) -> str:
    """The embedding precision, with ``None`` read as ``"float32"`` (as the reference does)."""
    from sentrs.base.quantization import PRECISIONS

    if precision is None:
        return "float32"
    if precision not in PRECISIONS:
        raise ValueError(f"Precision {precision!r} is not supported, must be one of {PRECISIONS}")
    return str(precision)


def multi_process_requested(pool: Any, device: Any, chunk_size: Any = None) -> bool:
    """Whether a call runs in a multi-process pool (``pool=`` given, or ``device`` a list of devices), with the
    pool arguments checked: ``chunk_size`` a positive int or None, ``pool`` the dict ``start_multi_process_pool``
    returns, a device list not empty."""
    if chunk_size is not None and (not _is_integer(chunk_size) or int(chunk_size) < 1):
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    if pool is not None:
        if not isinstance(pool, dict) or not {"input", "output", "processes"} <= set(pool):
            raise ValueError(
                "pool must be the dict returned by start_multi_process_pool() (keys 'input', 'output', "
                f"'processes'), got {type(pool).__name__}"
            )
        return True
    if isinstance(device, list):
        if not device:
            raise ValueError("device must be a device or a non-empty list of devices for multi-process work, got []")
        return True
    return False


def check_encode_args(
    batch_size: Any,
    pool: Any,
    device: Any,
    kwargs: dict[str, Any],
    allowed: set[str],
    precision: Any,
    truncate_dim: Any,
) -> str:
    """The argument checks of ``SentenceTransformer.encode`` (both implementations). Returns the precision, with
    ``None`` read as ``"float32"`` (see :func:`check_precision`)."""
    check_batch_size(batch_size)
    multi_process_requested(pool, device)
    unused = set(kwargs) - allowed
    if unused:
        raise ValueError(
            f"SentenceTransformer.encode() got keyword arguments this model does not use: {sorted(unused)}; "
            f"valid extra arguments are {sorted(allowed)}"
        )
    precision = check_precision(precision)
    if truncate_dim is not None:
        if not _is_integer(truncate_dim):
            raise InputTypeError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}")
        if truncate_dim < 1:
            raise ValueError(f"truncate_dim must be a positive integer or None, got {truncate_dim!r}")
    return precision
