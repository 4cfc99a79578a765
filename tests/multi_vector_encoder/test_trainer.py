"""MultiVectorEncoderTrainer against the reference's: the same logged loss at every step for short seeded runs on
a tiny multi-vector model (default loss, the cached and the distillation losses, query expansion, a max_length
override), the same embeddings after training, and a saved folder the reference loads with the same outputs.

Tolerances: logged losses rtol 1e-4 / atol 1e-5 (the same torch kernels in two trainers); token embeddings after
training atol 1e-4 (a few hundred Adam steps' worth of float32 rounding differences).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

datasets = pytest.importorskip("datasets")
pytest.importorskip("accelerate")

import sentence_transformers  # noqa: E402
import sentence_transformers.multi_vector_encoder.losses  # noqa: E402

import sentrs  # noqa: E402
import sentrs.multi_vector_encoder.losses  # noqa: E402
from tests.training_utils import assert_same_losses, run  # noqa: E402

WORDS = "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear".split()


@pytest.fixture(scope="module")
def mve_dir(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    torch.manual_seed(5)
    model = sentence_transformers.MultiVectorEncoder(tiny_bert_dir, device="cpu")
    out = tmp_path_factory.mktemp("mve_train") / "model"
    model.save(str(out))
    return str(out)


def _pairs(rows: int = 24) -> Any:
    return datasets.Dataset.from_dict(
        {
            "query": [f"where is the {WORDS[i % 16]}?" for i in range(rows)],
            "document": [
                f"the {WORDS[i % 16]} is in the {WORDS[(i * 3) % 16]}, near the {WORDS[i // 2 % 16]}"
                for i in range(rows)
            ],
        }
    )


def _distillation(rows: int = 16) -> Any:
    return datasets.Dataset.from_dict(
        {
            "query": [f"where is the {WORDS[i % 16]}?" for i in range(rows)],
            "document_1": [f"the {WORDS[i % 16]} is here" for i in range(rows)],
            "document_2": [f"a {WORDS[(i + 5) % 16]} is there" for i in range(rows)],
            "scores": [[float(i % 3), float((i + 1) % 4) / 2] for i in range(rows)],
        }
    )


def _train(lib: Any, path: str, out: str, dataset: Any, loss_name: str | None, expand: bool, **overrides: Any) -> Any:
    model = lib.MultiVectorEncoder(path, device="cpu")
    if expand:
        model[0].query_expansion = {"strategy": "fixed", "length": 10}
    losses = lib.multi_vector_encoder.losses
    loss = None
    if loss_name == "cached":
        loss = losses.CachedMultiVectorMultipleNegativesRankingLoss(model, mini_batch_size=3)
    elif loss_name == "distill":
        loss = losses.MultiVectorDistillKLDivLoss(model)
    elif loss_name == "margin":
        loss = losses.MultiVectorMarginMSELoss(model)
    recorder, trainer = run(
        lib.MultiVectorEncoderTrainer, lib.MultiVectorEncoderTrainingArguments, model, out, dataset, loss, **overrides
    )
    return model, recorder, trainer


@pytest.mark.parametrize(
    ("loss_name", "expand", "overrides"),
    [
        (None, False, {}),
        (None, True, {"max_length": {"document": 12}}),
        ("cached", True, {}),
        ("distill", False, {"max_length": 16}),
    ],
)
def test_run_matches_the_reference(
    mve_dir: str, tmp_path: Path, loss_name: str | None, expand: bool, overrides: dict[str, Any]
) -> None:
    data = _distillation() if loss_name == "distill" else _pairs()
    ref_model, ref_rec, _ = _train(
        sentence_transformers, mve_dir, str(tmp_path / "r"), data, loss_name, expand, **overrides
    )
    our_model, our_rec, trainer = _train(sentrs, mve_dir, str(tmp_path / "o"), data, loss_name, expand, **overrides)
    assert_same_losses(ref_rec, our_rec)
    if loss_name is None:
        assert type(trainer.loss).__name__ == "MultiVectorMultipleNegativesRankingLoss"
    texts = ["where is the apple?", "the kite is in the house"]
    for a, b in zip(ref_model.encode_document(texts), our_model.encode_document(texts)):
        assert torch.allclose(a, b, atol=1e-4)
    for a, b in zip(ref_model.encode_query(texts), our_model.encode_query(texts)):
        assert torch.allclose(a, b, atol=1e-4)


def test_trained_folder_loads_in_the_reference(mve_dir: str, tmp_path: Path) -> None:
    model, _, _ = _train(sentrs, mve_dir, str(tmp_path / "o"), _pairs(16), None, True)
    out = tmp_path / "saved"
    model.save(str(out))
    card = (out / "README.md").read_text()
    assert "MultiVectorMultipleNegativesRankingLoss" in card and "MultiVectorEncoder" in card
    assert json.loads((out / "sentence_bert_config.json").read_text())["query_expansion"]["length"] == 10
    loaded = sentence_transformers.MultiVectorEncoder(str(out), device="cpu")
    texts = ["where is the apple?", "the kite is in the house"]
    for a, b in zip(loaded.encode_query(texts), model.encode_query(texts)):
        assert torch.allclose(a, b, atol=1e-5)


def test_bad_arguments_fail_before_training(mve_dir: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_length must"):
        sentrs.MultiVectorEncoderTrainingArguments(output_dir=str(tmp_path), max_length=0)
    with pytest.raises(ValueError, match="max_length must map task names to positive ints"):
        sentrs.MultiVectorEncoderTrainingArguments(output_dir=str(tmp_path), max_length={"query": -1})
