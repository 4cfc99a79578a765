"""CrossEncoder parity with the reference on MiniLM with seeded heads (1 and 3 labels).

Tolerance 1e-5 on scores: same weights and token ids; only padding length and summation order differ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs

ATOL = 1e-5

PAIRS = [
    ("How many people live in Berlin?", "Berlin has a population of 3,520,031 registered inhabitants."),
    ("How many people live in Berlin?", "Berlin is well known for its museums."),
    ("A man is eating food.", "A man is eating a piece of bread."),
    ("A man is eating food.", "A man is riding a horse."),
    ("", "empty query"),
    ("émoji 🤖", "中文句子"),
    ("long " * 300, "document " * 300),  # truncated longest-first at max_seq_length
]


def _both(folder: str, **kwargs: Any) -> tuple[Any, Any]:
    import sentence_transformers

    return sentrs.CrossEncoder(folder, device="cpu", **kwargs), sentence_transformers.CrossEncoder(
        folder, device="cpu", **kwargs
    )


@pytest.mark.parametrize("num_labels", [1, 3])
def test_predict_parity(make_ce: Callable[[int], str], num_labels: int) -> None:
    ours, ref = _both(make_ce(num_labels))
    assert ours.num_labels == ref.num_labels == num_labels
    assert type(ours.activation_fn).__name__ == type(ref.activation_fn).__name__
    for batch_size in (1, 3, 32):
        got = ours.predict(PAIRS, batch_size=batch_size)
        want = ref.predict(PAIRS)
        assert got.dtype == want.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=ATOL)
        np.testing.assert_allclose(ours.predict(PAIRS[::-1], batch_size=batch_size)[::-1], want, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"convert_to_tensor": True},
        {"convert_to_numpy": False},
        {"apply_softmax": True},
        {"activation_fn": torch.nn.Identity()},
        {"activation_fn": torch.nn.Tanh(), "apply_softmax": True},
        {"prompt": "query: "},
    ],
    ids=lambda kw: ",".join(f"{k}={type(v).__name__ if callable(v) else v}" for k, v in kw.items()),
)
@pytest.mark.parametrize("num_labels", [1, 3])
def test_predict_options(make_ce: Callable[[int], str], num_labels: int, kwargs: dict[str, Any]) -> None:
    ours, ref = _both(make_ce(num_labels))
    got, want = ours.predict(PAIRS, **kwargs), ref.predict(PAIRS, **kwargs)
    assert type(got) is type(want)
    if isinstance(want, list):
        got, want = torch.stack(got), torch.stack(want)
    got_t, want_t = torch.as_tensor(got), torch.as_tensor(want)
    assert got_t.shape == want_t.shape and got_t.dtype == want_t.dtype
    torch.testing.assert_close(got_t, want_t, atol=ATOL, rtol=0)


def test_single_pair_and_text(make_ce: Callable[[int], str]) -> None:
    ours, ref = _both(make_ce(1))
    for single in (PAIRS[0], list(PAIRS[0]), "just one text", np.array(PAIRS[0])):
        got, want = ours.predict(single), ref.predict(single)
        assert isinstance(got, np.float32) and isinstance(want, np.float32)
        assert got == pytest.approx(want, abs=ATOL)
    tensor = ours.predict(PAIRS[0], convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == ()
    empty = ours.predict([])
    assert isinstance(empty, np.ndarray) and empty.shape == (0,)


def test_rank_parity(make_ce: Callable[[int], str]) -> None:
    ours, ref = _both(make_ce(1))
    query = "How many people live in Berlin?"
    docs = [p[1] for p in PAIRS]
    for kwargs in ({}, {"top_k": 3}, {"return_documents": True}, {"top_k": 0}, {"batch_size": 2}):
        got, want = ours.rank(query, docs, **kwargs), ref.rank(query, docs, **kwargs)
        assert [h["corpus_id"] for h in got] == [h["corpus_id"] for h in want]
        np.testing.assert_allclose([h["score"] for h in got], [h["score"] for h in want], atol=ATOL)
        assert all(isinstance(h["score"], float) for h in got)
        if kwargs.get("return_documents"):
            assert [h["text"] for h in got] == [h["text"] for h in want]
    assert ours.rank(query, []) == []


def test_rank_needs_one_label(make_ce: Callable[[int], str]) -> None:
    ours = sentrs.CrossEncoder(make_ce(3), device="cpu")
    with pytest.raises(ValueError, match="only works for models with num_labels=1"):
        ours.rank("q", ["a"])


def test_sentrs_save_loads_in_reference(tmp_path: Path, make_ce: Callable[[int], str]) -> None:
    import sentence_transformers

    for num_labels in (1, 3):
        ours = sentrs.CrossEncoder(make_ce(num_labels), device="cpu")
        out = tmp_path / f"saved{num_labels}"
        ours.save(str(out))
        cfg = json.loads((out / "config_sentence_transformers.json").read_text())
        assert cfg["model_type"] == "CrossEncoder"
        expected = "Sigmoid" if num_labels == 1 else "Identity"
        assert cfg["activation_fn"] == f"torch.nn.modules.{'activation' if num_labels == 1 else 'linear'}.{expected}"
        ref = sentence_transformers.CrossEncoder(str(out), device="cpu")
        np.testing.assert_allclose(ref.predict(PAIRS), ours.predict(PAIRS), atol=ATOL)
        again = sentrs.CrossEncoder(str(out), device="cpu")
        np.testing.assert_allclose(again.predict(PAIRS), ours.predict(PAIRS), atol=1e-6)


def test_saved_activation_is_restored(tmp_path: Path, make_ce: Callable[[int], str]) -> None:
    import sentence_transformers

    ours = sentrs.CrossEncoder(make_ce(1), device="cpu", activation_fn=torch.nn.Identity())
    ours.save(str(tmp_path / "identity"))
    ref = sentence_transformers.CrossEncoder(str(tmp_path / "identity"), device="cpu")
    again = sentrs.CrossEncoder(str(tmp_path / "identity"), device="cpu")
    assert type(ref.activation_fn).__name__ == type(again.activation_fn).__name__ == "Identity"


def test_legacy_plain_transformers_folder(tmp_path: Path, make_ce: Callable[[int], str]) -> None:
    """Pre-5.4 cross-encoders are plain transformers folders with the activation in config.json."""
    import sentence_transformers

    ref = sentence_transformers.CrossEncoder(make_ce(1), device="cpu")
    folder = tmp_path / "legacy"
    ref.model.save_pretrained(folder)
    ref.tokenizer.save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity", "version": "4.1.0"}
    (folder / "config.json").write_text(json.dumps(config))
    ours = sentrs.CrossEncoder(str(folder), device="cpu")
    assert type(ours.activation_fn).__name__ == "Identity"
    ref_legacy = sentence_transformers.CrossEncoder(str(folder), device="cpu")
    np.testing.assert_allclose(ours.predict(PAIRS), ref_legacy.predict(PAIRS), atol=ATOL)


def test_untrusted_activation_falls_back(tmp_path: Path, make_ce: Callable[[int], str], copy_dir: Any) -> None:
    folder = Path(copy_dir(make_ce(1)))
    cfg = json.loads((folder / "config_sentence_transformers.json").read_text())
    cfg["activation_fn"] = "my_package.Evil"
    (folder / "config_sentence_transformers.json").write_text(json.dumps(cfg))
    assert type(sentrs.CrossEncoder(str(folder), device="cpu").activation_fn).__name__ == "Sigmoid"


def test_num_labels_and_max_length_arguments(minilm_path: str) -> None:
    import sentence_transformers

    torch.manual_seed(0)
    ours = sentrs.CrossEncoder(minilm_path, num_labels=2, max_length=16, device="cpu")
    assert ours.num_labels == 2 and ours.max_seq_length == 16
    with pytest.warns(DeprecationWarning, match="max_seq_length"):
        assert ours.max_length == 16
    ref = sentence_transformers.CrossEncoder(minilm_path, num_labels=2, max_length=16, device="cpu")
    assert ours.preprocess(PAIRS)["input_ids"].tolist() == ref.preprocess(PAIRS)["input_ids"].tolist()


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ([("only one",)], "pair of two texts"),
        ([("a", "b", "c")], "pair of two texts"),
        ([(1, "b")], "Unsupported input type"),
        ([None], "pair of two texts"),  # one "pair" holding a single None
        ([[None, "x"], ["a", "b"]], "Unsupported input type"),
    ],
)
def test_bad_inputs(make_ce: Callable[[int], str], inputs: Any, match: str) -> None:
    ours = sentrs.CrossEncoder(make_ce(1), device="cpu")
    with pytest.raises(ValueError, match=match):
        ours.predict(inputs)


def test_bad_arguments(make_ce: Callable[[int], str], minilm_path: str) -> None:
    ours = sentrs.CrossEncoder(make_ce(1), device="cpu")
    with pytest.raises(ValueError, match="top_k must be a non-negative integer"):
        ours.rank("q", ["a"], top_k=-1)
    with pytest.raises(TypeError, match=r"documents\[1\] must be a str"):
        ours.rank("q", ["a", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ours.predict([("a", "b")], batch_size=0)
    with pytest.raises(ValueError, match="num_labels must be a positive integer"):
        sentrs.CrossEncoder(minilm_path, num_labels=0, device="cpu")


def test_legacy_constructor_forms(make_ce: Callable[[int], str]) -> None:
    positional = sentrs.CrossEncoder(make_ce(1), 1, 64, None, "cpu")
    assert positional.num_labels == 1 and positional.max_seq_length == 64
    renamed = sentrs.CrossEncoder(model_name=make_ce(1), default_activation_function=torch.nn.Identity(), device="cpu")
    assert type(renamed.activation_fn).__name__ == "Identity"
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        sentrs.CrossEncoder(make_ce(1), device="cpu", nonsense=1)


def test_rerank_cli(tmp_path: Path, make_ce: Callable[[int], str], capsys: pytest.CaptureFixture[str]) -> None:
    from sentrs.cli import main

    passages = tmp_path / "p.txt"
    passages.write_text("\n".join(p[1] for p in PAIRS[:4]) + "\n", encoding="utf-8")
    assert (
        main(
            [
                "rerank",
                make_ce(1),
                "How many people live in Berlin?",
                str(passages),
                "-k",
                "2",
                "-q",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    expected = sentrs.CrossEncoder(make_ce(1), device="cpu").rank(
        "How many people live in Berlin?", [p[1] for p in PAIRS[:4]], top_k=2
    )
    assert out[0] == "query: How many people live in Berlin?" and len(out) == 3
    assert f"#{expected[0]['corpus_id']}" in out[1]
    assert main(["rerank", make_ce(3), "q", str(passages), "-q"]) == 2
    assert "one-label model" in capsys.readouterr().err


def test_rank_legacy_keywords_and_pool_arguments(
    make_ce: Callable[[int], str], caplog: pytest.LogCaptureFixture
) -> None:
    """``rank`` takes the reference's removed keywords without effect (and says so), and forwards ``pool`` and
    ``chunk_size`` to ``predict`` (which refuses a pool: one process only), as the reference does."""
    ours, ref = _both(make_ce(1))
    docs = [d for _, d in PAIRS]
    for legacy in ({"convert_to_numpy": True}, {"convert_to_tensor": True}, {"apply_softmax": True}):
        with caplog.at_level(logging.WARNING):
            got = ours.rank(PAIRS[0][0], docs, **legacy)
        assert "has no effect" in caplog.text
        caplog.clear()
        want = ref.rank(PAIRS[0][0], docs, **legacy)
        assert [r["corpus_id"] for r in got] == [r["corpus_id"] for r in want]
        np.testing.assert_allclose([r["score"] for r in got], [r["score"] for r in want], atol=1e-5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        ours.rank(PAIRS[0][0], docs, bogus=1)
    with pytest.raises(ValueError, match="multi-process pool has no worker processes"):
        ours.rank(PAIRS[0][0], docs, pool={"input": None, "output": None, "processes": []})


def test_renamed_properties_warn_as_in_the_reference(make_ce: Callable[[int], str]) -> None:
    ours, ref = _both(make_ce(1))
    for model in (ours, ref):
        with pytest.warns(DeprecationWarning):
            assert model.max_length == model.max_seq_length
        with pytest.warns(DeprecationWarning):
            assert model.default_activation_function is model.activation_fn
