"""The old training API against the reference: ``model.fit`` and ``model.old_fit`` on DataLoaders of
``InputExample``, the readers and the old data helpers (``NoDuplicatesDataLoader``, ``SentenceLabelDataset``,
``ParallelSentencesDataset``, ``SentencesDataset``).

Each run seeds torch, ``random`` and numpy the same way before building its DataLoader in both libraries, so both see
the same batches. Tolerance: embeddings after training at 1e-5 absolute (the same kernels in two processes' worth of
float noise); readers and data helpers must give exactly the reference's examples.
"""

from __future__ import annotations

import gc
import gzip
import inspect
import logging
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
import sentence_transformers.sentence_transformer.datasets
import sentence_transformers.sentence_transformer.evaluation
import sentence_transformers.sentence_transformer.losses
import sentence_transformers.sentence_transformer.readers
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

import sentrs
import sentrs.sentence_transformer.datasets
import sentrs.sentence_transformer.evaluation
import sentrs.sentence_transformer.losses
import sentrs.sentence_transformer.readers

# Without an accelerator, the trainer's DataLoader (pin_memory=True) makes torch warn; the reference's does the same.
pytestmark = pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true:UserWarning")

REF = sentence_transformers
WORDS = (
    "apple banana cherry dog elephant fish grape house igloo jungle kite lemon mango nest orange pear queen river "
    "snake tree umbrella violin whale xylophone yacht zebra"
).split()
PROBE = ["the apple and the dog", "a whale near a yacht", "one kite was there"]
FAST = {"epochs": 1, "warmup_steps": 1, "optimizer_params": {"lr": 3e-4}, "show_progress_bar": False}


def _st(lib: Any) -> Any:
    """The ``sentence_transformer`` package of ``lib``."""
    return lib.sentence_transformer


def _pairs(lib: Any, n: int = 32) -> list[Any]:
    return [
        _st(lib).readers.InputExample(
            texts=[
                f"the {WORDS[i % 26]} and the {WORDS[(i * 7) % 26]}",
                f"a {WORDS[(i * 7) % 26]} near a {WORDS[i % 26]}",
            ]
        )
        for i in range(n)
    ]


def _scored(lib: Any, n: int = 32) -> list[Any]:
    return [
        _st(lib).readers.InputExample(
            texts=[f"the {WORDS[i % 26]} is here", f"one {WORDS[(i * 5) % 26]} was there"], label=(i * 7 % 11) / 10
        )
        for i in range(n)
    ]


def _loader(lib: Any, examples: list[Any], no_duplicates: bool = False, batch_size: int = 8) -> Any:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    if no_duplicates:
        return _st(lib).datasets.NoDuplicatesDataLoader(examples, batch_size=batch_size)
    return DataLoader(examples, shuffle=True, batch_size=batch_size)


def _mnrl(lib: Any, model: Any) -> Any:
    return _st(lib).losses.MultipleNegativesRankingLoss(model)


def _cosent(lib: Any, model: Any) -> Any:
    return _st(lib).losses.CoSENTLoss(model)


def _fit_both(
    path: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    objectives: Callable[[Any, Any], list[tuple[Any, Any]]],
    method: str = "fit",
    **fit_kwargs: Callable[[Any], Any] | Any,
) -> tuple[Any, Any]:
    """Trains a fresh model with each library (in its own working folder, where fit() makes ``checkpoints/``);
    a callable keyword argument is called with the library to build the value."""
    models = []
    for lib in (REF, sentrs):
        work = tmp_path / lib.__name__
        work.mkdir()
        monkeypatch.chdir(work)
        model = lib.SentenceTransformer(path, device="cpu")
        kwargs = {key: value(lib) if callable(value) else value for key, value in fit_kwargs.items()}
        getattr(model, method)(objectives(lib, model), **{**FAST, **kwargs})
        models.append(model)
    return models[0], models[1]


def _assert_same_embeddings(ref: Any, ours: Any, untrained_path: str | None = None) -> None:
    np.testing.assert_allclose(ours.encode(PROBE), ref.encode(PROBE), atol=1e-5)
    if untrained_path is not None:  # and training did change the model
        untrained = sentrs.SentenceTransformer(untrained_path, device="cpu").encode(PROBE)
        assert np.abs(ours.encode(PROBE) - untrained).max() > 1e-3


# -- fit ----------------------------------------------------------------------------------------------------------


def test_fit_signature_is_the_reference_one() -> None:
    for method in ("fit", "old_fit"):
        ours = inspect.signature(getattr(sentrs.SentenceTransformer, method)).parameters
        ref = inspect.signature(getattr(REF.SentenceTransformer, method)).parameters
        assert list(ours) == list(ref)
        for name in ours:
            if name != "optimizer_class":  # ours: None, meaning torch.optim.AdamW (no torch import at class creation)
                assert ours[name].default == ref[name].default, name


@pytest.mark.parametrize(
    ("loss", "no_duplicates", "extra"),
    [
        ("mnrl", False, {}),
        ("mnrl", True, {}),
        ("cosent", False, {"steps_per_epoch": 3, "scheduler": "WarmupCosine"}),
    ],
    ids=["mnrl", "mnrl-no-duplicates", "cosent-steps-per-epoch"],
)
def test_fit_trains_like_the_reference(
    make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loss: str, no_duplicates: bool, extra: Any
) -> None:
    path = make_tiny_st()
    examples, loss_fn = (_pairs, _mnrl) if loss == "mnrl" else (_scored, _cosent)

    def objectives(lib: Any, model: Any) -> list[tuple[Any, Any]]:
        return [(_loader(lib, examples(lib), no_duplicates), loss_fn(lib, model))]

    ref, ours = _fit_both(path, tmp_path, monkeypatch, objectives, **extra)
    _assert_same_embeddings(ref, ours, path)


def test_fit_round_robin_over_two_objectives_and_saves_to_output_path(
    make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_tiny_st()

    def objectives(lib: Any, model: Any) -> list[tuple[Any, Any]]:
        pairs = _loader(lib, _pairs(lib, 24))
        scored = DataLoader(_scored(lib, 32), shuffle=True, batch_size=8)
        return [(pairs, _mnrl(lib, model)), (scored, _cosent(lib, model))]

    ref, ours = _fit_both(
        path, tmp_path, monkeypatch, objectives, output_path=lambda lib: str(tmp_path / f"out_{lib.__name__}")
    )
    _assert_same_embeddings(ref, ours, path)
    # Without an evaluator the final model is saved, and both libraries load it.
    saved = str(tmp_path / "out_sentrs")
    assert os.path.isfile(os.path.join(saved, "modules.json"))
    np.testing.assert_allclose(
        sentrs.SentenceTransformer(saved, device="cpu").encode(PROBE), ours.encode(PROBE), atol=1e-6
    )
    np.testing.assert_allclose(
        REF.SentenceTransformer(saved, device="cpu").encode(PROBE), ours.encode(PROBE), atol=1e-5
    )


def _recording_evaluator(lib: Any) -> Any:
    data = _scored(lib, 12)

    class Recording(_st(lib).evaluation.EmbeddingSimilarityEvaluator):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__(
                [e.texts[0] for e in data], [e.texts[1] for e in data], [e.label for e in data], name="dev"
            )
            self.calls: list[tuple[float, int]] = []

        def __call__(self, model: Any, output_path: str | None = None, epoch: float = -1, steps: int = -1) -> Any:
            self.calls.append((epoch, steps))
            return super().__call__(model, output_path=output_path, epoch=epoch, steps=steps)

    return Recording()


def test_fit_runs_the_evaluator_and_callback_and_saves_the_best_model(
    make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_tiny_st()
    evaluators, scores = {}, {}

    def evaluator(lib: Any) -> Any:
        evaluators[lib.__name__] = _recording_evaluator(lib)
        return evaluators[lib.__name__]

    def callback(lib: Any) -> Any:
        scores[lib.__name__] = []
        return lambda score, epoch, steps: scores[lib.__name__].append((score, epoch, steps))

    def objectives(lib: Any, model: Any) -> list[tuple[Any, Any]]:
        return [(_loader(lib, _scored(lib)), _cosent(lib, model))]

    ref, ours = _fit_both(
        path,
        tmp_path,
        monkeypatch,
        objectives,
        evaluator=evaluator,
        callback=callback,
        evaluation_steps=2,
        output_path=lambda lib: str(tmp_path / f"out_{lib.__name__}"),
    )
    _assert_same_embeddings(ref, ours, path)
    ref_calls, our_calls = evaluators["sentence_transformers"].calls, evaluators["sentrs"].calls
    assert our_calls == ref_calls and len(our_calls) == 3  # steps 2 and 4, and the end of the epoch
    ref_scores, our_scores = scores["sentence_transformers"], scores["sentrs"]
    assert [s[1:] for s in our_scores] == [s[1:] for s in ref_scores] and len(our_scores) == 3
    np.testing.assert_allclose([s[0] for s in our_scores], [s[0] for s in ref_scores], atol=1e-5)
    # The best model by the evaluator is in output_path, with the evaluator's results in output_path/eval.
    ours_saved, ref_saved = tmp_path / "out_sentrs", tmp_path / "out_sentence_transformers"
    assert sorted(os.listdir(ours_saved / "eval")) == sorted(os.listdir(ref_saved / "eval"))
    np.testing.assert_allclose(
        sentrs.SentenceTransformer(str(ours_saved), device="cpu").encode(PROBE),
        REF.SentenceTransformer(str(ref_saved), device="cpu").encode(PROBE),
        atol=1e-5,
    )


def test_old_fit_trains_like_the_reference(make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make_tiny_st()

    def objectives(lib: Any, model: Any) -> list[tuple[Any, Any]]:
        return [(_loader(lib, _pairs(lib)), _mnrl(lib, model))]

    ref, ours = _fit_both(
        path,
        tmp_path,
        monkeypatch,
        objectives,
        method="old_fit",
        output_path=lambda lib: str(tmp_path / f"out_{lib.__name__}"),
    )
    _assert_same_embeddings(ref, ours, path)
    assert os.path.isfile(tmp_path / "out_sentrs" / "modules.json")


def test_old_fit_evaluates_by_the_primary_metric_and_keeps_checkpoints(
    make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reference's old_fit compares the evaluator's result with a float, which fails for the dict results of 6.x
    # evaluators; ours ranks by the primary metric, as the v2 loop did with the scores of v2 evaluators.
    monkeypatch.chdir(tmp_path)
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    evaluator = _recording_evaluator(sentrs)
    seen: list[tuple[Any, ...]] = []
    model.old_fit(
        [(_loader(sentrs, _scored(sentrs)), _cosent(sentrs, model))],
        evaluator=evaluator,
        evaluation_steps=2,
        output_path=str(tmp_path / "out"),
        callback=lambda *args: seen.append(args),
        checkpoint_path=str(tmp_path / "checkpoints"),
        checkpoint_save_steps=1,
        checkpoint_save_total_limit=2,
        **FAST,
    )
    assert evaluator.calls == [(0, 2), (0, 4), (0, -1)]
    assert [args[1:] for args in seen] == evaluator.calls
    assert all(isinstance(args[0], float) for args in seen)
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["3", "4"]
    assert (tmp_path / "out" / "modules.json").is_file()
    assert (tmp_path / "out" / "eval" / "similarity_evaluation_dev_results.csv").is_file()


def test_fit_saves_trainer_checkpoints_and_resumes_from_the_latest(
    make_tiny_st: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    checkpoints = str(tmp_path / "checkpoints")
    options = {"checkpoint_path": checkpoints, "checkpoint_save_steps": 2, "checkpoint_save_total_limit": 1, **FAST}
    model.fit([(_loader(sentrs, _pairs(sentrs)), _mnrl(sentrs, model))], **options)
    assert os.listdir(checkpoints) == ["checkpoint-4"]
    with caplog.at_level(logging.INFO, logger="sentrs.sentence_transformer.fit_mixin"):
        model.fit([(_loader(sentrs, _pairs(sentrs)), _mnrl(sentrs, model))], resume_from_checkpoint=True, **options)
    assert "Resuming from latest checkpoint: " + os.path.join(checkpoints, "checkpoint-4") in caplog.text
    assert not (tmp_path / "checkpoints" / "model").exists()  # the default folder is only used without a path


def test_fit_input_checks(make_tiny_st: Any) -> None:
    model = sentrs.SentenceTransformer(make_tiny_st(), device="cpu")
    with pytest.raises(ValueError, match="at least one"):
        model.fit([])
    empty = DataLoader([], batch_size=4)
    with pytest.raises(ValueError, match="training objective 1 yielded no examples"):
        model.fit([(empty, _mnrl(sentrs, model))])


def test_objectives_become_datasets_with_the_reference_sampler_and_batch_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    read = sentrs.SentenceTransformer._read_objectives
    datasets_module = sentrs.sentence_transformer.datasets
    plain = DataLoader(_pairs(sentrs, 8), batch_size=4)
    datasets, batch_size, sampler = read([plain])
    assert (batch_size, sampler) == (4, "batch_sampler")
    assert datasets["_dataset_1"].column_names == ["sentence_0", "sentence_1"]  # every label 0: no label column
    assert datasets["_dataset_1"]["sentence_0"][0] == _pairs(sentrs, 1)[0].texts[0]

    labelled = [sentrs.InputExample(texts=[f"text {i}"], label=i % 3) for i in range(12)]
    grouped = DataLoader(datasets_module.SentenceLabelDataset(labelled), batch_size=6)
    no_dups = datasets_module.NoDuplicatesDataLoader(_pairs(sentrs, 8), batch_size=2)
    datasets, batch_size, sampler = read([grouped])
    assert (batch_size, sampler, datasets["_dataset_1"].column_names) == (6, "group_by_label", ["sentence_0", "label"])
    _, batch_size, sampler = read([grouped, no_dups])
    assert (batch_size, sampler) == (2, "no_duplicates")  # the last loader's settings apply to all

    custom = DataLoader(_scored(sentrs, 8), batch_sampler=BatchSampler(SequentialSampler(range(8)), 3, False))
    with caplog.at_level(logging.WARNING):
        datasets, batch_size, _ = read([custom])
    assert batch_size == 3 and "custom `batch_sampler`" in caplog.text
    assert datasets["_dataset_1"]["label"] == [e.label for e in _scored(sentrs, 8)]


@pytest.mark.parametrize(
    "name", ["constantlr", "WarmupConstant", "WarmupLinear", "warmupcosine", "warmupcosinewithhardrestarts"]
)
def test_scheduler_names_map_to_the_reference_schedules(name: str) -> None:
    def learning_rates(lib: Any) -> list[float]:
        optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
        scheduler = lib.SentenceTransformer._get_scheduler(optimizer, name, warmup_steps=3, t_total=10)
        rates = []
        for _ in range(10):
            optimizer.step()
            scheduler.step()
            rates.append(scheduler.get_last_lr()[0])
        return rates

    assert learning_rates(sentrs) == learning_rates(REF)


def test_unknown_scheduler_is_named() -> None:
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    with pytest.raises(ValueError, match="Unknown scheduler 'warmupquadratic'"):
        sentrs.SentenceTransformer._get_scheduler(optimizer, "warmupquadratic", warmup_steps=1, t_total=2)


def test_smart_batching_collate_matches_the_reference(make_tiny_st: Any) -> None:
    path = make_tiny_st()
    ours = sentrs.SentenceTransformer(path, device="cpu").smart_batching_collate(_scored(sentrs, 3))
    ref = REF.SentenceTransformer(path, device="cpu").smart_batching_collate(_scored(REF, 3))
    assert torch.equal(ours[1], ref[1])
    assert len(ours[0]) == len(ref[0]) == 2
    for our_column, ref_column in zip(ours[0], ref[0]):
        assert torch.equal(our_column["input_ids"], ref_column["input_ids"])
    embeddings = [sentrs.InputExample(texts=["a"], label=np.ones(3, dtype=np.float32)) for _ in range(2)]
    assert sentrs.SentenceTransformer(path, device="cpu").smart_batching_collate(embeddings)[1].shape == (2, 3)


# -- readers ------------------------------------------------------------------------------------------------------


def _rows(examples: list[Any]) -> list[tuple[Any, ...]]:
    return [(e.guid, e.texts, e.label) for e in examples]


def _write(path: Path, lines: list[str], gz: bool = False) -> None:
    text = "".join(line + "\n" for line in lines)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _write_reader_files(folder: Path) -> None:
    _write(folder / "sts.tsv", ["a cat\ta dog\t4.0", "Zürich\tGenf\t0.5", 'quoted "x"\ty\t5'])
    _write(folder / "sts.tsv.gz", ["a cat\ta dog\t4.0", "one\ttwo\t2.5"], gz=True)
    _write(folder / "stsb.tsv", ["g\tf\t2015\t1\t3.8\tfirst s\tsecond s", "g\tf\t2015\t2\t1.0\tthird\tfourth"])
    nli = {"s1": ["A man.", "A woman."], "s2": ["A person.", "Nobody."], "labels": ["entailment", " Contradiction "]}
    for prefix, lines in nli.items():
        _write(folder / f"{prefix}.train.gz", lines, gz=True)
    _write(folder / "triplets.tsv", ["anchor\tpos\tneg", "a\tb\tc", "d\te\tf"])
    _write(folder / "labels.tsv", ["x\tfirst", "y\tsecond", "x\tthird"])
    _write(folder / "left.txt", ["hello", "world", "extra"])
    _write(folder / "right.txt.gz", ["hallo", "welt"], gz=True)


def _read_all(readers: Any, folder: Path) -> list[Any]:
    """Every reader on the files of :func:`_write_reader_files`, with a few option combinations."""
    path = str(folder)
    paired = [str(folder / "left.txt"), str(folder / "right.txt.gz")]
    return [
        _rows(readers.STSDataReader(path).get_examples("sts.tsv")),
        _rows(readers.STSDataReader(path, normalize_scores=False).get_examples("sts.tsv", max_examples=2)),
        _rows(readers.STSDataReader(path).get_examples("sts.tsv.gz")),
        _rows(readers.STSBenchmarkDataReader(path).get_examples("stsb.tsv")),
        _rows(readers.NLIDataReader(path).get_examples("train.gz")),
        _rows(readers.NLIDataReader(path).get_examples("train.gz", max_examples=1)),
        _rows(readers.TripletReader(path, has_header=True).get_examples("triplets.tsv")),
        _rows(readers.TripletReader(path).get_examples("triplets.tsv", max_examples=1)),
        _rows(readers.LabelSentenceReader(path).get_examples("labels.tsv")),
        _rows(readers.LabelSentenceReader(path, label_col_idx=1, sentence_col_idx=0).get_examples("labels.tsv", 2)),
        _rows(readers.PairedFilesReader(paired).get_examples()),
        _rows(readers.PairedFilesReader(paired[:1]).get_examples(max_examples=2)),
    ]


# The reference's readers leave some files open (ResourceWarning when they are collected); ours close them.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_readers_read_like_the_reference(tmp_path: Path) -> None:
    _write_reader_files(tmp_path)
    reference = _read_all(REF.sentence_transformer.readers, tmp_path)
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = _read_all(sentrs.sentence_transformer.readers, tmp_path)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert ours == reference
    assert sentrs.sentence_transformer.readers.NLIDataReader(str(tmp_path)).get_num_labels() == 3
    example = sentrs.sentence_transformer.readers.STSDataReader(str(tmp_path)).get_examples("sts.tsv")[0]
    assert isinstance(example, sentrs.InputExample)
    assert str(example) == str(REF.InputExample(guid="sts.tsv0", texts=["a cat", "a dog"], label=0.8))


def test_input_example_defaults() -> None:
    example = sentrs.InputExample()
    assert (example.guid, example.texts, example.label) == ("", None, 0)
    assert sentrs.InputExample is sentrs.sentence_transformer.readers.InputExample
    assert repr(sentrs.InputExample(texts=["a"], label=1)) == "InputExample(guid='', texts=['a'], label=1)"


# -- data helpers -------------------------------------------------------------------------------------------------


def _duplicated_pairs(lib: Any) -> list[Any]:
    texts = [("a dog", "A dog "), ("a cat", "a bird"), ("A DOG", "fish"), ("a bird", "a cow"), ("x", "y"), ("y", "z")]
    return [_st(lib).readers.InputExample(texts=list(pair)) for pair in texts * 3]


def test_no_duplicates_dataloader_batches_have_no_repeated_text() -> None:
    def batches(lib: Any) -> list[list[list[str]]]:
        random.seed(3)
        loader = _st(lib).datasets.NoDuplicatesDataLoader(_duplicated_pairs(lib), batch_size=3)
        assert len(loader) == 6
        return [[example.texts for example in batch] for _ in range(2) for batch in loader]

    ours = batches(sentrs)
    assert ours == batches(REF)
    for batch in ours:
        keys = [text.strip().lower() for texts in batch for text in set(t.strip().lower() for t in texts)]
        assert len(keys) == len(set(keys)), batch
    loader = sentrs.sentence_transformer.datasets.NoDuplicatesDataLoader(_duplicated_pairs(sentrs), batch_size=2)
    loader.collate_fn = len
    assert list(loader) == [2] * 9


def test_sentence_label_dataset_draws_like_the_reference() -> None:
    labels = [0] * 5 + [1] * 3 + [2] + [3] * 4 + [4] * 2

    def drawn(lib: Any, **kwargs: Any) -> list[tuple[str, int]]:
        np.random.seed(7)
        examples = [_st(lib).readers.InputExample(texts=[f"t{i}"], label=label) for i, label in enumerate(labels)]
        dataset = _st(lib).datasets.SentenceLabelDataset(examples, **kwargs)
        return [(e.texts[0], e.label) for _ in range(2) for e in dataset]

    for kwargs in ({}, {"samples_per_label": 3}, {"with_replacement": True}):
        ours = drawn(sentrs, **kwargs)
        assert ours == drawn(REF, **kwargs), kwargs
        per_label = kwargs.get("samples_per_label", 2)
        assert all(label != 2 for _, label in ours)  # fewer examples than samples_per_label: left out
        for start in range(0, len(ours), per_label):
            assert len({label for _, label in ours[start : start + per_label]}) == 1
    dataset = sentrs.sentence_transformer.datasets.SentenceLabelDataset(
        [sentrs.InputExample(texts=[str(i)], label=i % 2) for i in range(8)]
    )
    assert isinstance(dataset, torch.utils.data.IterableDataset) and len(dataset) == 8
    assert [len(batch) for batch in DataLoader(dataset, batch_size=4, collate_fn=list)] == [4, 4]


class _Teacher:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, sentences: list[str], **kwargs: Any) -> np.ndarray:
        self.calls.append(list(sentences))
        return np.array([[len(s), s.count("e"), i] for i, s in enumerate(sentences)], dtype=np.float32)


@pytest.mark.parametrize("use_embedding_cache", [True, False])
def test_parallel_sentences_dataset_matches_the_reference(tmp_path: Path, use_embedding_cache: bool) -> None:
    _write(tmp_path / "en-de.tsv", ["hello\thallo", "world\twelt", "hello\tservus", "x" * 50 + "\tlong", "tree\tbaum"])
    _write(tmp_path / "en-fr.tsv.gz", ["hello\tbonjour", "tree\tarbre"], gz=True)

    def items(lib: Any) -> tuple[list[tuple[list[str], list[float]]], list[list[str]], int]:
        random.seed(5)
        teacher = _Teacher()
        dataset = _st(lib).datasets.ParallelSentencesDataset(
            student_model=None, teacher_model=teacher, batch_size=4, use_embedding_cache=use_embedding_cache
        )
        dataset.load_data(str(tmp_path / "en-de.tsv"), weight=2, max_sentence_length=20)
        dataset.load_data(str(tmp_path / "en-fr.tsv.gz"), weight=1, max_sentences=1)
        dataset.add_dataset([["a", "b"], ["c", "d"]], weight=1, max_sentences=-1, max_sentence_length=0)
        got = [(e.texts, e.label.tolist()) for e in (dataset[i] for i in range(2 * len(dataset)))]
        return got, teacher.calls, len(dataset)

    ours = items(sentrs)
    assert ours == items(REF)
    assert ours[2] == 13  # (source, sentence) pairs: 7 from en-de (the long row skipped), 2 from en-fr, 4 added


def test_sentences_dataset_is_a_torch_dataset() -> None:
    examples = _pairs(sentrs, 3)
    dataset = sentrs.SentencesDataset(examples, model=None)
    assert isinstance(dataset, torch.utils.data.Dataset)
    assert len(dataset) == 3 and dataset[1] is examples[1]
    assert sentrs.ParallelSentencesDataset is sentrs.sentence_transformer.datasets.ParallelSentencesDataset
