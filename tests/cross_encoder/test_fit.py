"""The cross-encoder's old training API against the reference: ``CrossEncoder.fit`` and ``old_fit`` on a DataLoader
of ``InputExample`` pairs, their evaluator and callback hooks, what they save, and ``model.evaluate``.

Each run seeds torch, ``random`` and numpy the same way before building its DataLoader in both libraries, so both see
the same batches; the trainer seeds itself (42) in both. Tolerance: scores after training at 1e-5 absolute (the same
kernels in two processes' worth of float noise).
"""

from __future__ import annotations

import inspect
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("datasets")
pytest.importorskip("accelerate")

import sentence_transformers
import sentence_transformers.cross_encoder.evaluation
import torch
from torch.utils.data import DataLoader

import sentrs
import sentrs.cross_encoder.evaluation

# Without an accelerator, the trainer's DataLoader (pin_memory=True) makes torch warn; the reference's does the same.
pytestmark = pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")

REF = sentence_transformers
WORDS = "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear".split()
PROBE = [("where is the apple", "the apple is in the house"), ("where is the dog", "a kite"), ("fish", "a pear")]
FAST = {"epochs": 1, "warmup_steps": 1, "optimizer_params": {"lr": 3e-4}, "show_progress_bar": False}


def _examples(lib: Any, num_labels: int, n: int = 24) -> list[Any]:
    """Pairs with 0/1 labels (1 label: scores in [0, 1]) or class ids (3 labels)."""
    return [
        lib.InputExample(
            texts=[f"where is the {WORDS[i % 16]}", f"the {WORDS[(i * 5) % 16]} is in the {WORDS[(i * 3) % 16]}"],
            label=(i * 7 % 11) / 10 if num_labels == 1 else i % 3,
        )
        for i in range(n)
    ]


def _loader(lib: Any, num_labels: int) -> DataLoader[Any]:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    return DataLoader(_examples(lib, num_labels), shuffle=True, batch_size=8)


def _fit(lib: Any, path: str, work: Path, monkeypatch: pytest.MonkeyPatch, method: str = "fit", **kwargs: Any) -> Any:
    """Trains a fresh model of ``lib`` in its own working folder (where fit() picks its ``checkpoints/`` folder);
    the reference's old_fit warns about its own use of ``max_length`` on every batch, which is silenced."""
    work.mkdir()
    monkeypatch.chdir(work)
    model = lib.CrossEncoder(path, device="cpu")
    with warnings.catch_warnings():
        if lib is REF:
            warnings.filterwarnings("ignore", "The `max_length` property was renamed", DeprecationWarning)
        getattr(model, method)(_loader(lib, model.num_labels), **{**FAST, **kwargs})
    return model


def _fit_both(
    path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    method: str = "fit",
    per_library: dict[str, Callable[[Any], Any]] | None = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Trains with each library; ``per_library`` maps argument names to functions of the library giving the value."""
    models = []
    for lib in (REF, sentrs):
        own = {key: make(lib) for key, make in (per_library or {}).items()}
        models.append(_fit(lib, path, tmp_path / lib.__name__, monkeypatch, method, **kwargs, **own))
    return models[0], models[1]


def _assert_same_scores(ref: Any, ours: Any, untrained_path: str) -> None:
    np.testing.assert_allclose(ours.predict(PROBE), ref.predict(PROBE), atol=1e-5)
    untrained = sentrs.CrossEncoder(untrained_path, device="cpu").predict(PROBE)
    assert np.abs(ours.predict(PROBE) - untrained).max() > 1e-3  # and training did change the model


def _recording_evaluator(lib: Any) -> Any:
    """A correlation evaluator on the 1-label examples that records each call's ``(epoch, steps)``."""
    data = _examples(lib, 1, 12)

    class Recording(lib.cross_encoder.evaluation.CrossEncoderCorrelationEvaluator):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__([e.texts for e in data], [e.label for e in data], name="dev")
            self.calls: list[tuple[float, int]] = []

        def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> Any:
            self.calls.append((epoch, steps))
            return super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)

    return Recording()


# -- signatures ---------------------------------------------------------------------------------------------------


def test_signatures_are_the_reference_ones() -> None:
    # Ours default to None where the reference builds a torch object at class creation (the model class imports no
    # torch): optimizer_class None means torch.optim.AdamW, activation_fct None means nn.Identity().
    torch_defaults = {"optimizer_class": torch.optim.AdamW, "activation_fct": None}
    for method in ("fit", "old_fit"):
        ours = inspect.signature(getattr(sentrs.CrossEncoder, method)).parameters
        ref = inspect.signature(getattr(REF.CrossEncoder, method)).parameters
        assert list(ours) == list(ref)
        for name in ours:
            if name in torch_defaults:
                assert ours[name].default is None
                if name == "activation_fct":
                    assert isinstance(ref[name].default, torch.nn.Identity)
                else:
                    assert ref[name].default is torch_defaults[name]
            else:
                assert ours[name].default == ref[name].default, name
    for cls in ("CrossEncoder", "SentenceTransformer", "SparseEncoder"):
        ours_evaluate = inspect.signature(getattr(sentrs, cls).evaluate).parameters
        assert list(ours_evaluate) == list(inspect.signature(getattr(REF, cls).evaluate).parameters)
    for name in ("smart_batching_collate", "smart_batching_collate_text_only"):
        assert list(inspect.signature(getattr(sentrs.CrossEncoder, name)).parameters) == ["self", "batch"]


# -- fit ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_labels", "extra"),
    [
        (1, {}),
        (1, {"activation_fct": torch.nn.Tanh(), "scheduler": "WarmupCosine", "weight_decay": 0.1}),
        (3, {"epochs": 2, "scheduler": "constantlr"}),
    ],
    ids=["bce", "bce-tanh-cosine", "cross-entropy-2-epochs"],
)
def test_fit_trains_like_the_reference(
    make_tiny_ce: Callable[[int], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    num_labels: int,
    extra: dict[str, Any],
) -> None:
    path = make_tiny_ce(num_labels)
    outputs = {lib.__name__: tmp_path / f"out_{lib.__name__}" for lib in (REF, sentrs)}
    per_library = {"output_path": lambda lib: str(outputs[lib.__name__])}
    ref, ours = _fit_both(path, tmp_path, monkeypatch, per_library=per_library, **extra)
    _assert_same_scores(ref, ours, path)
    # Without an evaluator, neither library saves anything to output_path.
    assert not any(out.exists() for out in outputs.values())


def test_fit_with_a_loss_fct_trains_like_the_default_loss(
    make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reference's own loss_fct path fails in 6.2 (its wrapper calls the model's forward the pre-v4 way), so ours
    # with nn.BCEWithLogitsLoss is compared with the reference's default loss, BinaryCrossEntropyLoss: the same loss.
    path = make_tiny_ce(1)
    ref = _fit(REF, path, tmp_path / "ref", monkeypatch)
    ours = _fit(sentrs, path, tmp_path / "ours", monkeypatch, loss_fct=torch.nn.BCEWithLogitsLoss())
    _assert_same_scores(ref, ours, path)


def test_fit_runs_the_evaluator_and_callback_and_saves_the_best_model(
    make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_tiny_ce(1)
    evaluators: dict[str, Any] = {}
    scores: dict[str, list[tuple[float, float, int]]] = {}

    def evaluator(lib: Any) -> Any:
        evaluators[lib.__name__] = _recording_evaluator(lib)
        return evaluators[lib.__name__]

    def callback(lib: Any) -> Any:
        scores[lib.__name__] = []
        return lambda score, epoch, steps: scores[lib.__name__].append((score, epoch, steps))

    ref, ours = _fit_both(
        path,
        tmp_path,
        monkeypatch,
        per_library={
            "evaluator": evaluator,
            "callback": callback,
            "output_path": lambda lib: str(tmp_path / f"out_{lib.__name__}"),
        },
        evaluation_steps=2,
    )
    _assert_same_scores(ref, ours, path)
    # 24 examples in batches of 8: the trainer evaluates at steps 2 and 3 (its last step), then the epoch-end hook
    # evaluates once more.
    assert evaluators["sentrs"].calls == evaluators["sentence_transformers"].calls
    assert [steps for _, steps in evaluators["sentrs"].calls] == [2, 3, 3]
    ours_saved, ref_saved = tmp_path / "out_sentrs", tmp_path / "out_sentence_transformers"
    assert sorted(os.listdir(ours_saved / "eval")) == sorted(os.listdir(ref_saved / "eval"))
    # The reference's epoch-end evaluation never reaches its callback or its saving (see docs/compatibility.md);
    # ours does, as SentenceTransformer.fit does.
    ref_scores, our_scores = scores["sentence_transformers"], scores["sentrs"]
    assert [s[1:] for s in ref_scores] == [(2 / 3, 2), (1.0, 3)]
    assert [s[1:] for s in our_scores] == [(2 / 3, 2), (1.0, 3), (1.0, 3)]
    np.testing.assert_allclose([s[0] for s in our_scores[:2]], [s[0] for s in ref_scores], atol=1e-5)
    # output_path holds the best model by the evaluator (the epoch-end one only repeats the last score).
    np.testing.assert_allclose(
        sentrs.CrossEncoder(str(ours_saved), device="cpu").predict(PROBE),
        REF.CrossEncoder(str(ref_saved), device="cpu").predict(PROBE),
        atol=1e-5,
    )


def test_fit_saves_after_the_epoch_end_evaluation(
    make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without evaluation_steps the only evaluation is the epoch-end one: ours saves the model and calls the callback
    # (as SentenceTransformer.fit does); the reference only writes the evaluator's results.
    path = make_tiny_ce(1)
    evaluators: dict[str, Any] = {}
    seen: dict[str, list[tuple[Any, ...]]] = {}

    def evaluator(lib: Any) -> Any:
        evaluators[lib.__name__] = _recording_evaluator(lib)
        return evaluators[lib.__name__]

    def callback(lib: Any) -> Any:
        seen[lib.__name__] = []
        return lambda *args: seen[lib.__name__].append(args)

    outputs = {lib.__name__: tmp_path / f"out_{lib.__name__}" for lib in (REF, sentrs)}
    ref, ours = _fit_both(
        path,
        tmp_path,
        monkeypatch,
        per_library={
            "evaluator": evaluator,
            "callback": callback,
            "output_path": lambda lib: str(outputs[lib.__name__]),
        },
    )
    _assert_same_scores(ref, ours, path)
    assert evaluators["sentrs"].calls == evaluators["sentence_transformers"].calls == [(1.0, 3)]
    assert os.listdir(outputs["sentence_transformers"]) == ["eval"] and seen["sentence_transformers"] == []
    assert [args[1:] for args in seen["sentrs"]] == [(1.0, 3)] and isinstance(seen["sentrs"][0][0], float)
    out = outputs["sentrs"]
    assert (out / "eval" / "CrossEncoderCorrelationEvaluator_dev_results.csv").is_file()
    np.testing.assert_allclose(
        sentrs.CrossEncoder(str(out), device="cpu").predict(PROBE), ours.predict(PROBE), atol=1e-6
    )


def test_fit_input_checks(make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    model = sentrs.CrossEncoder(make_tiny_ce(1), device="cpu")
    with pytest.raises(ValueError, match="training objective 1 yielded no examples"):
        model.fit(DataLoader([], batch_size=4))
    with pytest.raises(ValueError, match="Unknown scheduler 'warmupquadratic'"):
        model.fit(_loader(sentrs, 1), scheduler="warmupquadratic")
    three_texts = [sentrs.InputExample(texts=["a", "b", "c"], label=1.0) for _ in range(4)]
    with pytest.raises(ValueError, match="expects examples with two texts, but got a dataset with 3 columns"):
        model.fit(DataLoader(three_texts, batch_size=2), loss_fct=torch.nn.MSELoss(), **FAST)


# -- old_fit ------------------------------------------------------------------------------------------------------


def test_old_fit_trains_and_evaluates_like_the_reference(
    make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_tiny_ce(1)
    evaluators: dict[str, Any] = {}
    results: dict[str, list[tuple[Any, ...]]] = {}

    def evaluator(lib: Any) -> Any:
        evaluators[lib.__name__] = _recording_evaluator(lib)
        return evaluators[lib.__name__]

    def callback(lib: Any) -> Any:
        results[lib.__name__] = []
        return lambda *args: results[lib.__name__].append(args)

    ref, ours = _fit_both(
        path,
        tmp_path,
        monkeypatch,
        method="old_fit",
        per_library={
            "evaluator": evaluator,
            "callback": callback,
            "output_path": lambda lib: str(tmp_path / f"out_{lib.__name__}"),
        },
        evaluation_steps=2,
    )
    _assert_same_scores(ref, ours, path)
    assert evaluators["sentrs"].calls == evaluators["sentence_transformers"].calls == [(0, 2), (0, -1)]
    # The callback gets what the evaluator returned (a dict of metrics), its results go to output_path itself.
    for ours_args, ref_args in zip(results["sentrs"], results["sentence_transformers"], strict=True):
        assert ours_args[1:] == ref_args[1:] and sorted(ours_args[0]) == sorted(ref_args[0])
        np.testing.assert_allclose(list(ours_args[0].values()), list(ref_args[0].values()), atol=1e-5)
    ours_saved, ref_saved = tmp_path / "out_sentrs", tmp_path / "out_sentence_transformers"
    assert sorted(os.listdir(ours_saved)) == sorted(os.listdir(ref_saved))
    np.testing.assert_allclose(
        sentrs.CrossEncoder(str(ours_saved), device="cpu").predict(PROBE),
        REF.CrossEncoder(str(ref_saved), device="cpu").predict(PROBE),
        atol=1e-5,
    )


def test_old_fit_trains_a_classifier_like_the_reference(
    make_tiny_ce: Callable[[int], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_tiny_ce(3)
    ref, ours = _fit_both(path, tmp_path, monkeypatch, method="old_fit", scheduler="WarmupConstant")
    _assert_same_scores(ref, ours, path)


def test_smart_batching_collate_matches_the_reference(make_tiny_ce: Callable[[int], str]) -> None:
    for num_labels in (1, 3):
        path = make_tiny_ce(num_labels)
        ours = sentrs.CrossEncoder(path, device="cpu")
        ref = REF.CrossEncoder(path, device="cpu")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "The `max_length` property was renamed", DeprecationWarning)
            ref_features, ref_labels = ref.smart_batching_collate(_examples(REF, num_labels, 5))
            ref_text_only = ref.smart_batching_collate_text_only(PROBE)
        our_features, our_labels = ours.smart_batching_collate(_examples(sentrs, num_labels, 5))
        assert torch.equal(our_labels, ref_labels) and our_labels.dtype == ref_labels.dtype
        assert sorted(our_features) == sorted(ref_features)
        for key in ref_features:
            assert torch.equal(our_features[key], ref_features[key]), key
        our_text_only = ours.smart_batching_collate_text_only(PROBE)
        for key in ref_text_only:
            assert torch.equal(our_text_only[key], ref_text_only[key]), key


# -- evaluate -----------------------------------------------------------------------------------------------------


def test_evaluate_runs_the_evaluator_on_the_model(make_tiny_ce: Callable[[int], str], tmp_path: Path) -> None:
    path = make_tiny_ce(1)
    ours = sentrs.CrossEncoder(path, device="cpu").evaluate(_recording_evaluator(sentrs), str(tmp_path / "o" / "e"))
    ref = REF.CrossEncoder(path, device="cpu").evaluate(_recording_evaluator(REF), str(tmp_path / "r" / "e"))
    assert sorted(ours) == sorted(ref)
    np.testing.assert_allclose(list(ours.values()), list(ref.values()), atol=1e-5)
    assert os.listdir(tmp_path / "o" / "e") == os.listdir(tmp_path / "r" / "e")
