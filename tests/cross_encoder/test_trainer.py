"""CrossEncoderTrainer against the reference's: the same logged loss at every step and the same scores after a
short seeded run on a tiny cross-encoder; the saved folder loads in the reference; clear errors before training.

Tolerances: logged losses rtol 1e-4 / atol 1e-5; scores after training atol 1e-5.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("accelerate")

import sentence_transformers  # noqa: E402
import sentence_transformers.cross_encoder.losses  # noqa: E402
import torch  # noqa: E402

import sentrs  # noqa: E402
import sentrs.cross_encoder.losses  # noqa: E402
from tests.training_utils import assert_same_losses, run  # noqa: E402

WORDS = "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear".split()


@pytest.fixture(scope="module")
def tiny_ce(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> Any:
    def build(num_labels: int) -> str:
        torch.manual_seed(num_labels + 3)
        ce = sentence_transformers.CrossEncoder(tiny_bert_dir, num_labels=num_labels, device="cpu")
        out = tmp_path_factory.mktemp(f"tiny_ce{num_labels}")
        ce.save(str(out))
        return str(out)

    return {n: build(n) for n in (1, 3)}


def _pairs(rows: int = 32) -> Any:
    return datasets.Dataset.from_dict(
        {
            "query": [f"where is the {WORDS[i % 16]}" for i in range(rows)],
            "answer": [f"the {WORDS[(i * 5) % 16]} is in the {WORDS[(i * 3) % 16]}" for i in range(rows)],
            "label": [float(i % 2) for i in range(rows)],
        }
    )


def _losses(lib: Any) -> Any:
    return lib.cross_encoder.losses


def _train(lib: Any, path: str, out: str, data: Any, make_loss: Any, **args: Any) -> tuple[Any, Any]:
    model = lib.CrossEncoder(path, device="cpu")
    recorder, _trainer = run(
        lib.CrossEncoderTrainer, lib.CrossEncoderTrainingArguments, model, out, data, make_loss(lib, model), **args
    )
    return model, recorder


@pytest.mark.parametrize("loss_name", ["BinaryCrossEntropyLoss", "default", "MultipleNegativesRankingLoss"])
def test_same_logged_loss_and_scores(tiny_ce: dict[int, str], tmp_path: Any, loss_name: str) -> None:
    data = _pairs()
    if loss_name == "MultipleNegativesRankingLoss":
        data = data.remove_columns("label")

    def make_loss(lib: Any, model: Any) -> Any:
        return None if loss_name == "default" else getattr(_losses(lib), loss_name)(model)

    ref_model, ref_rec = _train(sentence_transformers, tiny_ce[1], str(tmp_path / "r"), data, make_loss)
    our_model, our_rec = _train(sentrs, tiny_ce[1], str(tmp_path / "o"), data, make_loss)
    assert_same_losses(ref_rec, our_rec)
    pairs = [("where is the apple", "the apple is in the house"), ("where is the dog", "a kite")]
    np.testing.assert_allclose(our_model.predict(pairs), ref_model.predict(pairs), atol=1e-5)
    out = str(tmp_path / "saved")
    our_model.save(out)
    loaded = sentence_transformers.CrossEncoder(out, device="cpu")
    np.testing.assert_allclose(loaded.predict(pairs), our_model.predict(pairs), atol=1e-5)


def test_multi_class_with_cross_entropy(tiny_ce: dict[int, str], tmp_path: Any) -> None:
    data = _pairs().remove_columns("label")
    data = data.add_column("label", [i % 3 for i in range(len(data))])
    _ref_model, ref_rec = _train(sentence_transformers, tiny_ce[3], str(tmp_path / "r"), data, lambda lib, m: None)
    _our_model, our_rec = _train(sentrs, tiny_ce[3], str(tmp_path / "o"), data, lambda lib, m: None)
    assert_same_losses(ref_rec, our_rec)


def test_errors_before_the_first_step(tiny_ce: dict[int, str], tmp_path: Any) -> None:
    model = sentrs.CrossEncoder(tiny_ce[1], device="cpu")
    args = sentrs.CrossEncoderTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    # A label column of class ids (0..2) for a one-output model with CrossEntropyLoss semantics is fine to build,
    # but a single text column cannot form pairs.
    one_column = datasets.Dataset.from_dict({"query": ["a", "b"], "label": [1.0, 0.0]})
    trainer = sentrs.CrossEncoderTrainer(model=model, args=args, train_dataset=one_column)
    with pytest.raises(ValueError, match=r"does not fit BinaryCrossEntropyLoss"):
        trainer.train()
    assert trainer.state.global_step == 0
    with pytest.raises(ValueError, match="cannot be per column"):
        sentrs.CrossEncoderTrainer(
            model=model,
            args=sentrs.CrossEncoderTrainingArguments(
                output_dir=str(tmp_path), prompts={"d": {"query": "q: "}}, report_to="none"
            ),
            train_dataset=_pairs(),
        )
    iterable = _pairs().to_iterable_dataset()
    with pytest.raises(ValueError, match="does not take an IterableDataset"):
        sentrs.CrossEncoderTrainer(model=model, args=args, train_dataset=iterable)
