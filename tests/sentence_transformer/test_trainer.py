"""SentenceTransformerTrainer against the reference's trainer: the same logged loss at every step and the same
weights after training, on a tiny seeded model and on MiniLM; evaluation, checkpoints, resuming, and clear errors
for datasets that do not fit the loss.

Tolerances: logged losses are rounded by transformers to 4 significant decimals in the logs we compare at 1e-5
absolute plus 1e-4 relative (float noise of two processes running the same kernels); embeddings after training
at 1e-5 absolute.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pytest

datasets = pytest.importorskip("datasets")
pytest.importorskip("accelerate")

import sentence_transformers  # noqa: E402
import sentence_transformers.sentence_transformer.evaluation  # noqa: E402
import sentence_transformers.sentence_transformer.losses  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import sentrs  # noqa: E402
import sentrs.sentence_transformer.evaluation  # noqa: E402
import sentrs.sentence_transformer.losses  # noqa: E402

WORDS = (
    "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear queen river "
    "snake tree umbrella violin whale xylophone yacht zebra"
).split()


class _Recorder(TrainerCallback):  # type: ignore[misc]
    def __init__(self) -> None:
        self.logs: list[dict[str, float]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))

    def losses(self) -> list[float]:
        return [entry["loss"] for entry in self.logs if "loss" in entry]


def _pairs(n: int = 64) -> Any:
    anchors = [f"the {WORDS[i % 26]} and the {WORDS[(i * 7) % 26]}" for i in range(n)]
    positives = [f"a {WORDS[(i * 7) % 26]} near a {WORDS[i % 26]}" for i in range(n)]
    return datasets.Dataset.from_dict({"anchor": anchors, "positive": positives})


def _scored(n: int = 48) -> Any:
    rng = np.random.default_rng(3)
    return datasets.Dataset.from_dict(
        {
            "sentence1": [f"the {WORDS[i % 26]} is here" for i in range(n)],
            "sentence2": [f"one {WORDS[(i * 5) % 26]} was there" for i in range(n)],
            "score": rng.random(n).round(3).tolist(),
        }
    )


def _train(
    lib: Any,
    path: str,
    tmp: str,
    dataset: Any,
    loss_factory: Any,
    evaluator_factory: Any = None,
    eval_dataset: Any = None,
    **arg_overrides: Any,
) -> tuple[Any, _Recorder, Any]:
    model = lib.SentenceTransformer(path, device="cpu")
    kwargs: dict[str, Any] = {
        "output_dir": tmp,
        "num_train_epochs": 1,
        "per_device_train_batch_size": 16,
        "logging_steps": 1,
        "seed": 11,
        "report_to": "none",
        "save_strategy": "no",
        "learning_rate": 3e-4,
        "warmup_steps": 0.1,
        "use_cpu": True,
    }
    kwargs.update(arg_overrides)
    args = lib.SentenceTransformerTrainingArguments(**kwargs)
    recorder = _Recorder()
    loss = loss_factory(lib, model)
    trainer = lib.SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        loss=loss,
        evaluator=evaluator_factory(lib) if evaluator_factory else None,
        callbacks=[recorder],
    )
    trainer.train()
    return model, recorder, trainer


def _losses_module(lib: Any) -> Any:
    return (
        sentence_transformers.sentence_transformer.losses
        if lib is sentence_transformers
        else sentrs.sentence_transformer.losses
    )


def _mnrl(lib: Any, model: Any) -> Any:
    return _losses_module(lib).MultipleNegativesRankingLoss(model)


def _cosent(lib: Any, model: Any) -> Any:
    return _losses_module(lib).CoSENTLoss(model)


def _assert_same_run(ref: tuple[Any, _Recorder, Any], ours: tuple[Any, _Recorder, Any]) -> None:
    ref_losses, our_losses = ref[1].losses(), ours[1].losses()
    assert len(our_losses) == len(ref_losses) > 0
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-4, atol=1e-5)
    texts = ["the apple and the dog", "a whale near a yacht"]
    np.testing.assert_allclose(ours[0].encode(texts), ref[0].encode(texts), atol=1e-5)


@pytest.mark.parametrize("sampler", ["batch_sampler", "no_duplicates"])
def test_mnrl_run_logs_the_reference_loss_at_every_step(make_tiny_st: Any, tmp_path: Any, sampler: str) -> None:
    path = make_tiny_st()
    ref = _train(sentence_transformers, path, str(tmp_path / "r"), _pairs(), _mnrl, batch_sampler=sampler)
    ours = _train(sentrs, path, str(tmp_path / "o"), _pairs(), _mnrl, batch_sampler=sampler)
    _assert_same_run(ref, ours)


def test_mnrl_with_hard_negatives_keeps_the_reference_dropout_stream(make_tiny_st: Any, tmp_path: Any) -> None:
    """Three text columns: each gets its own forward pass in training, as in the reference, so dropout draws the
    same masks and the logged losses agree."""
    data = _pairs().add_column("negative", [f"nothing about {WORDS[(i * 11) % 26]}" for i in range(64)])
    path = make_tiny_st()
    ref = _train(sentence_transformers, path, str(tmp_path / "r"), data, _mnrl)
    ours = _train(sentrs, path, str(tmp_path / "o"), data, _mnrl)
    _assert_same_run(ref, ours)


def test_cosent_run_with_labels_and_default_loss(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st()
    ref = _train(sentence_transformers, path, str(tmp_path / "r"), _scored(), _cosent)
    ours = _train(sentrs, path, str(tmp_path / "o"), _scored(), lambda lib, m: None)  # the default: CoSENTLoss
    assert type(ours[2].loss).__name__ == "CoSENTLoss"
    _assert_same_run(ref, ours)


def test_softmax_loss_classifier_is_trained(make_tiny_st: Any, tmp_path: Any) -> None:
    rows = 48
    data = datasets.Dataset.from_dict(
        {
            "premise": [f"the {WORDS[i % 26]} sleeps" for i in range(rows)],
            "hypothesis": [f"the {WORDS[(i * 3) % 26]} runs" for i in range(rows)],
            "label": [i % 3 for i in range(rows)],
        }
    )

    def softmax(lib: Any, model: Any) -> Any:
        import torch

        torch.manual_seed(5)
        return _losses_module(lib).SoftmaxLoss(model, model.get_embedding_dimension(), num_labels=3)

    path = make_tiny_st()
    ref = _train(sentence_transformers, path, str(tmp_path / "r"), data, softmax)
    ours = _train(sentrs, path, str(tmp_path / "o"), data, softmax)
    _assert_same_run(ref, ours)
    np.testing.assert_allclose(
        ours[2].loss.classifier.weight.detach().numpy(), ref[2].loss.classifier.weight.detach().numpy(), atol=1e-5
    )


def test_multi_dataset_with_loss_and_prompts_per_dataset(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st(include_prompt=False)

    def train_data() -> dict[str, Any]:
        return {"pairs": _pairs(48), "scored": _scored(32)}

    def losses(lib: Any, model: Any) -> dict[str, Any]:
        return {"pairs": _mnrl(lib, model), "scored": _cosent(lib, model)}

    prompts = {"pairs": {"anchor": "query: "}, "scored": "text: "}
    for sampler in ("proportional", "round_robin"):
        ref = _train(
            sentence_transformers,
            path,
            str(tmp_path / f"r{sampler}"),
            train_data(),
            losses,
            prompts=prompts,
            multi_dataset_batch_sampler=sampler,
        )
        ours = _train(
            sentrs,
            path,
            str(tmp_path / f"o{sampler}"),
            train_data(),
            losses,
            prompts=prompts,
            multi_dataset_batch_sampler=sampler,
        )
        _assert_same_run(ref, ours)


def test_learning_rate_mapping_matches_and_rejects_unmatched_patterns(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st()
    mapping = {r"encoder\.layer\.1\.": 1e-2}
    ref = _train(sentence_transformers, path, str(tmp_path / "r"), _pairs(), _mnrl, learning_rate_mapping=mapping)
    ours = _train(sentrs, path, str(tmp_path / "o"), _pairs(), _mnrl, learning_rate_mapping=json.dumps(mapping))
    _assert_same_run(ref, ours)
    with pytest.raises(ValueError, match="matches no parameter"):
        _train(sentrs, path, str(tmp_path / "x"), _pairs(), _mnrl, learning_rate_mapping={"no_such_param": 1e-3})


def test_minilm_mnrl_run_and_the_reference_loads_the_result(minilm_path: str, tmp_path: Any) -> None:
    data = _pairs(48)
    ref = _train(sentence_transformers, minilm_path, str(tmp_path / "r"), data, _mnrl, learning_rate=5e-5)
    ours = _train(sentrs, minilm_path, str(tmp_path / "o"), data, _mnrl, learning_rate=5e-5)
    _assert_same_run(ref, ours)
    out = str(tmp_path / "saved")
    ours[0].save(out)
    loaded = sentence_transformers.SentenceTransformer(out, device="cpu")
    texts = ["the apple and the dog", "a whale near a yacht", "something else entirely"]
    np.testing.assert_allclose(loaded.encode(texts), ours[0].encode(texts), atol=1e-5)


def _similarity_evaluator(lib: Any) -> Any:
    data = _scored(24)
    evaluation = (
        sentence_transformers.sentence_transformer.evaluation
        if lib is sentence_transformers
        else sentrs.sentence_transformer.evaluation
    )
    return evaluation.EmbeddingSimilarityEvaluator(data["sentence1"], data["sentence2"], data["score"], name="dev")


def test_evaluation_metrics_and_best_checkpoint(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st()
    common = {
        "eval_strategy": "steps",
        "eval_steps": 2,
        "save_strategy": "steps",
        "save_steps": 2,
        "load_best_model_at_end": True,
        "metric_for_best_model": "eval_dev_spearman_cosine",
        "num_train_epochs": 2,
    }
    ref = _train(
        sentence_transformers,
        path,
        str(tmp_path / "r"),
        _scored(),
        _cosent,
        _similarity_evaluator,
        _scored(16),
        **common,
    )
    ours = _train(sentrs, path, str(tmp_path / "o"), _scored(), _cosent, _similarity_evaluator, _scored(16), **common)
    ref_evals = [e for e in ref[1].logs if "eval_loss" in e]
    our_evals = [e for e in ours[1].logs if "eval_loss" in e]
    assert len(our_evals) == len(ref_evals) > 1
    for r, o in zip(ref_evals, our_evals):
        metric_keys = sorted(k for k in r if k.startswith("eval_") and "runtime" not in k and "per_second" not in k)
        assert (
            sorted(k for k in o if k.startswith("eval_") and "runtime" not in k and "per_second" not in k)
            == metric_keys
        )
        for key in metric_keys:
            assert o[key] == pytest.approx(r[key], rel=1e-4, abs=1e-5), key
    assert (
        ours[2].state.best_model_checkpoint.rsplit("-", 1)[-1] == ref[2].state.best_model_checkpoint.rsplit("-", 1)[-1]
    )
    _assert_same_run(ref, ours)
    # Checkpoints are model folders that the reference loads.
    checkpoint = ours[2].state.best_model_checkpoint
    assert os.path.isfile(os.path.join(checkpoint, "modules.json"))
    sentence_transformers.SentenceTransformer(checkpoint, device="cpu")


def test_resume_from_checkpoint_loses_no_steps(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st()
    full = _train(sentrs, path, str(tmp_path / "full"), _pairs(), _mnrl, num_train_epochs=2)
    # The interrupted run: stop after 5 of 8 steps, with a checkpoint every step.
    out = str(tmp_path / "cut")
    model = sentrs.SentenceTransformer(path, device="cpu")

    class _Stop(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 5:
                control.should_training_stop = True

    args = sentrs.SentenceTransformerTrainingArguments(
        output_dir=out,
        num_train_epochs=2,
        per_device_train_batch_size=16,
        logging_steps=1,
        seed=11,
        report_to="none",
        save_strategy="steps",
        save_steps=1,
        learning_rate=3e-4,
        warmup_steps=0.1,
        use_cpu=True,
    )
    first = _Recorder()
    sentrs.SentenceTransformerTrainer(
        model=model, args=args, train_dataset=_pairs(), loss=_mnrl(sentrs, model), callbacks=[first, _Stop()]
    ).train()
    assert len(first.losses()) == 5
    model = sentrs.SentenceTransformer(path, device="cpu")
    second = _Recorder()
    sentrs.SentenceTransformerTrainer(
        model=model, args=args, train_dataset=_pairs(), loss=_mnrl(sentrs, model), callbacks=[second]
    ).train(resume_from_checkpoint=True)
    np.testing.assert_allclose(first.losses() + second.losses(), full[1].losses(), rtol=1e-4, atol=1e-5)
    texts = ["the apple and the dog"]
    np.testing.assert_allclose(model.encode(texts), full[0].encode(texts), atol=1e-5)


# -- bad input: clear errors before any step ---------------------------------------------------------------------


def _trainer(path: str, tmp: Any, dataset: Any, loss: Any = None, **args: Any) -> Any:
    model = sentrs.SentenceTransformer(path, device="cpu")
    training_args = sentrs.SentenceTransformerTrainingArguments(
        output_dir=str(tmp), report_to="none", use_cpu=True, **args
    )
    return model, sentrs.SentenceTransformerTrainer(
        model=model, args=training_args, train_dataset=dataset, loss=loss(model) if loss else None
    )


def test_a_dataset_that_does_not_fit_the_loss_fails_before_training(make_tiny_st: Any, tmp_path: Any) -> None:
    path = make_tiny_st()
    one_column = datasets.Dataset.from_dict({"anchor": ["a b", "c d", "e f"]})
    model, trainer = _trainer(
        path, tmp_path, one_column, sentrs.sentence_transformer.losses.MultipleNegativesRankingLoss
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"columns \['anchor'\]\) does not fit MultipleNegativesRankingLoss"):
        trainer.train()
    assert trainer.state.global_step == 0
    assert all((model.state_dict()[k] == v).all() for k, v in before.items())

    no_label = _pairs(8)
    _, trainer = _trainer(path, tmp_path, no_label, sentrs.sentence_transformer.losses.CoSENTLoss)
    with pytest.raises(ValueError, match="does not fit CoSENTLoss"):
        trainer.train()


def test_a_label_of_the_wrong_type_is_named(make_tiny_st: Any, tmp_path: Any) -> None:
    data = datasets.Dataset.from_dict({"s1": ["a", "b"], "s2": ["c", "d"], "label": ["yes", "no"]})
    _, trainer = _trainer(make_tiny_st(), tmp_path, data, sentrs.sentence_transformer.losses.CoSENTLoss)
    with pytest.raises(ValueError, match=r"label column 'label' must hold numbers.*str: 'yes'"):
        trainer.train()


def test_bad_arguments_are_named(make_tiny_st: Any, tmp_path: Any) -> None:
    with pytest.raises(ValueError, match=r"`batch_sampler` must be one of .*'no_duplicates'.*got 'no_duplicate'"):
        sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), batch_sampler="no_duplicate")
    with pytest.raises(ValueError, match="`multi_dataset_batch_sampler` must be one of"):
        sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), multi_dataset_batch_sampler="zigzag")
    with pytest.raises(ValueError, match="`router_mapping` must be a dict"):
        sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), router_mapping="query")
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    from transformers import TrainingArguments

    with pytest.raises(ValueError, match="`args` must be a sentrs.sentence_transformer.training_args"):
        sentrs.SentenceTransformerTrainer(
            model=model, args=TrainingArguments(output_dir=str(tmp_path)), train_dataset=_pairs(8)
        )
    with pytest.raises(ValueError, match="neither an `eval_dataset` nor an `evaluator`"):
        sentrs.SentenceTransformerTrainer(
            model=model,
            args=sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), eval_strategy="steps"),
            train_dataset=_pairs(8),
        )
    with pytest.raises(ValueError, match=r"has no loss for the train dataset\(s\) \['b'\]"):
        sentrs.SentenceTransformerTrainer(
            model=model,
            args=sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path)),
            train_dataset={"a": _pairs(8), "b": _pairs(8)},
            loss={"a": sentrs.sentence_transformer.losses.MultipleNegativesRankingLoss(model)},
        )
    with pytest.raises(ValueError, match="reserved column name"):
        sentrs.SentenceTransformerTrainer(
            model=model,
            args=sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path)),
            train_dataset=datasets.Dataset.from_dict({"dataset_name": ["x"], "b": ["y"]}),
        )


def test_training_args_round_trip_like_the_reference(tmp_path: Any) -> None:
    kwargs = {
        "output_dir": str(tmp_path),
        "batch_sampler": "no_duplicates_hashed",
        "multi_dataset_batch_sampler": "round_robin",
        "prompts": json.dumps({"anchor": "query: "}),
        "router_mapping": {"anchor": "query"},
        "learning_rate_mapping": {"x": 1e-3},
    }
    ours = sentrs.SentenceTransformerTrainingArguments(**kwargs).to_dict()
    ref = sentence_transformers.SentenceTransformerTrainingArguments(**kwargs).to_dict()
    for key in (
        "batch_sampler",
        "multi_dataset_batch_sampler",
        "prompts",
        "router_mapping",
        "learning_rate_mapping",
        "prediction_loss_only",
        "warmup_steps",
    ):
        assert ours[key] == ref[key], key
    assert (
        sentrs.SentenceTransformerTrainingArguments(output_dir=str(tmp_path), batch_sampler=lambda d, **k: None)
        .to_dict()
        .get("batch_sampler")
        is None
    )
