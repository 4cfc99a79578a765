"""The batch samplers give the reference's batches, and lengths, for the same arguments, seed and epoch.

Each test builds one in-memory dataset, runs the reference's sampler and sentrs' side by side over two epochs
(``set_epoch(0)``, ``set_epoch(1)``), and compares the batch lists exactly: samplers are deterministic given the
generator's seed, so there is no tolerance.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

torch = pytest.importorskip("torch")
datasets = pytest.importorskip("datasets")
ref = pytest.importorskip("sentence_transformers.base.sampler")

from torch.utils.data import ConcatDataset, RandomSampler  # noqa: E402

from sentrs.base import sampler as ours  # noqa: E402

Dataset = datasets.Dataset
EPOCHS = (0, 1)


def _epochs(sampler: Any) -> list[tuple[int, list[list[int]]]]:
    """(len, batches) of each epoch."""
    runs = []
    for epoch in EPOCHS:
        sampler.set_epoch(epoch)
        runs.append((len(sampler), [list(map(int, batch)) for batch in sampler]))
    return runs


def _same_batches(build: Callable[[Any], Any], seed: int | None = 12) -> list[tuple[int, list[list[int]]]]:
    """Runs ``build(module)`` for the reference's module and sentrs', each with a fresh generator seeded ``seed``
    (None: the global torch RNG, seeded the same way before each), and asserts the same epochs; returns sentrs'."""
    runs = []
    for module in (ref, ours):
        torch.manual_seed(1234)
        runs.append(_epochs(build(module)))
    assert runs[1] == runs[0]
    return runs[1]


def _gen(seed: int = 12) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pairs(n: int, vocabulary: int, seed: int = 0) -> Dataset:
    """anchor/positive/negative texts drawn from a small vocabulary (so rows share values), a label and a source."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    return Dataset.from_dict(
        {
            "anchor": [rng.choice(words) for _ in range(n)],
            "positive": [rng.choice(words) for _ in range(n)],
            "negative": [rng.choice(words) for _ in range(n)],
            "label": [rng.randint(0, 3) for _ in range(n)],
            "dataset_name": ["a"] * n,
        }
    )


def _labelled(counts: dict[Any, int], seed: int = 0) -> Dataset:
    labels = [label for label, count in counts.items() for _ in range(count)]
    random.Random(seed).shuffle(labels)
    return Dataset.from_dict({"text": [f"t{i}" for i in range(len(labels))], "label": labels})


# --- enums -------------------------------------------------------------------------------------------------------


def test_enums_match_the_reference() -> None:
    for name in ("BatchSamplers", "MultiDatasetBatchSamplers"):
        theirs, mine = getattr(ref, name), getattr(ours, name)
        assert {m.name: m.value for m in mine} == {m.name: m.value for m in theirs}
        for member in mine:
            assert member == member.value and mine(member.value) is member
        with pytest.raises(ValueError) as expected:
            theirs("nope")
        with pytest.raises(ValueError) as got:
            mine("nope")
        assert str(got.value) == str(expected.value)


def test_names_import_at_the_reference_paths() -> None:
    import sentrs
    import sentrs.base
    from sentrs.sentence_transformer import training_args

    assert sentrs.DefaultBatchSampler is ours.DefaultBatchSampler
    assert sentrs.MultiDatasetDefaultBatchSampler is ours.MultiDatasetDefaultBatchSampler
    for name in ref.__all__:
        assert getattr(sentrs.base, name) is getattr(ours, name)
    assert training_args.BatchSamplers is ours.BatchSamplers
    assert training_args.MultiDatasetBatchSamplers is ours.MultiDatasetBatchSamplers
    assert training_args.SentenceTransformerTrainingArguments is sentrs.SentenceTransformerTrainingArguments


# --- DefaultBatchSampler -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [1, 4, 7, 50])
def test_default_over_a_random_sampler(batch_size: int, drop_last: bool) -> None:
    dataset = _pairs(23, 10)

    def build(module: Any) -> Any:
        generator = _gen()
        return module.DefaultBatchSampler(
            RandomSampler(dataset, generator=generator), batch_size, drop_last, generator=generator, seed=3
        )

    runs = _same_batches(build)
    assert runs[0][0] == (23 // batch_size if drop_last else -(-23 // batch_size))


def test_default_keeps_its_arguments() -> None:
    sampler = ours.DefaultBatchSampler(range(5), 2, False, valid_label_columns=["label"], seed=9)
    assert (sampler.batch_size, sampler.drop_last, sampler.seed) == (2, False, 9)
    assert sampler.valid_label_columns == ["label"]
    assert sampler.generator is None and sampler.epoch == 0
    assert list(sampler) == [[0, 1], [2, 3], [4]]
    assert isinstance(sampler, torch.utils.data.BatchSampler)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_default_bad_batch_size_raises_like_the_reference(batch_size: Any) -> None:
    with pytest.raises(ValueError) as expected:
        ref.DefaultBatchSampler(range(4), batch_size, False)
    with pytest.raises(ValueError) as got:
        ours.DefaultBatchSampler(range(4), batch_size, False)
    assert str(got.value) == str(expected.value)


# --- NoDuplicatesBatchSampler ------------------------------------------------------------------------------------


@pytest.mark.parametrize("precompute_hashes", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize(("n", "vocabulary", "batch_size"), [(40, 60, 4), (60, 25, 8), (30, 14, 4), (30, 8, 4)])
def test_no_duplicates(n: int, vocabulary: int, batch_size: int, drop_last: bool, precompute_hashes: bool) -> None:
    """With drop_last, (30, 14, 4) falls short in the first pass and resamples; (30, 8, 4) cannot fill one batch."""
    dataset = _pairs(n, vocabulary)

    def build(module: Any) -> Any:
        return module.NoDuplicatesBatchSampler(
            dataset,
            batch_size,
            drop_last,
            valid_label_columns=["label"],
            generator=_gen(),
            seed=5,
            precompute_hashes=precompute_hashes,
            precompute_num_proc=1,
        )

    runs = _same_batches(build)
    for _, batches in runs:
        for batch in batches:
            # A row may repeat its own value; two rows of a batch share none.
            values = [{dataset[row][column] for column in ("anchor", "positive", "negative")} for row in batch]
            assert sum(map(len, values)) == len(set().union(*values))


def test_no_duplicates_on_many_rows_with_a_shuffled_selection_and_nulls() -> None:
    """The Rust pass reads the text columns from Arrow: an index mapping (select/shuffle) and null values must give
    the reference's batches too."""
    rng = random.Random(7)
    rows = 3000
    texts = [f"t{rng.randrange(150)}" for _ in range(rows)]
    others: list[str | None] = [None if i % 97 == 0 else f"t{rng.randrange(150)}" for i in range(rows)]
    base = datasets.Dataset.from_dict({"anchor": texts, "positive": others, "score": list(range(rows))})
    dataset = base.shuffle(seed=1).select(range(0, rows, 2))

    def build(module: Any) -> Any:
        return module.NoDuplicatesBatchSampler(
            dataset, 16, True, valid_label_columns=["score"], generator=_gen(), seed=2
        )

    runs = _same_batches(build)
    assert len(runs[0][1]) > 10


def test_no_duplicates_global_rng_and_label_column_compared_when_not_declared() -> None:
    dataset = _pairs(30, 30, seed=3)
    # No valid_label_columns: the label column takes part in the comparison, so at most 4 rows fit a batch.
    runs = _same_batches(lambda module: module.NoDuplicatesBatchSampler(dataset, 6, False))
    assert max(len(batch) for batch in runs[0][1]) <= 4


def test_no_duplicates_compares_lists_and_non_text_values() -> None:
    rng = random.Random(1)
    dataset = Dataset.from_dict(
        {
            "tokens": [[rng.randint(0, 3), rng.randint(0, 3)] for _ in range(30)],
            "score": [rng.choice([0.5, 1.0, 2]) for _ in range(30)],
            "meta": [{"k": rng.randint(0, 5)} for _ in range(30)],
        }
    )
    for hashed in (False, True):
        _same_batches(
            lambda module, hashed=hashed: module.NoDuplicatesBatchSampler(
                dataset, 3, False, generator=_gen(4), precompute_hashes=hashed, precompute_num_proc=1
            )
        )


@pytest.mark.parametrize("drop_last", [False, True])
def test_no_duplicates_empty_dataset(drop_last: bool) -> None:
    dataset = Dataset.from_dict({"anchor": [], "positive": []})
    runs = _same_batches(lambda module: module.NoDuplicatesBatchSampler(dataset, 4, drop_last, generator=_gen()))
    assert runs == [(0, []), (0, [])]


def test_no_duplicates_arguments() -> None:
    dataset = _pairs(10, 10)
    sampler = ours.NoDuplicatesBatchSampler(dataset, 4, False, valid_label_columns=["label", "score"])
    assert "label" not in sampler.dataset.column_names and "label" in dataset.column_names
    assert not sampler.precompute_hashes and sampler.precompute_num_proc is None
    assert sampler.precompute_batch_size == 1000
    hashed = ours.NoDuplicatesBatchSampler(dataset, 4, False, precompute_hashes=True)
    assert hashed.precompute_num_proc is not None and 1 <= hashed.precompute_num_proc <= 8
    with pytest.raises(ValueError) as expected:
        ref.NoDuplicatesBatchSampler(dataset, 0, False)
    with pytest.raises(ValueError) as got:
        ours.NoDuplicatesBatchSampler(dataset, 0, False)
    assert str(got.value) == str(expected.value)


# --- GroupByLabelBatchSampler ------------------------------------------------------------------------------------

GROUPS = {
    "balanced": {0: 10, 1: 10, 2: 10},
    "skewed": {"a": 25, "b": 5, "c": 3, "d": 1},  # "d" never qualifies
    "two labels": {1: 7, 2: 9},
    "many": {i: 2 + i % 5 for i in range(12)},
}


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("batch_size", [4, 6, 8, 32])
@pytest.mark.parametrize("groups", list(GROUPS))
def test_group_by_label(groups: str, batch_size: int, drop_last: bool) -> None:
    dataset = _labelled(GROUPS[groups])

    def build(module: Any) -> Any:
        return module.GroupByLabelBatchSampler(
            dataset, batch_size, drop_last, valid_label_columns=["score", "label"], generator=_gen(), seed=7
        )

    runs = _same_batches(build)
    labels = dataset["label"]
    for length, batches in runs:
        assert length == len(batches)
        for batch in batches:
            counts: dict[Any, int] = {}
            for row in batch:
                counts[labels[row]] = counts.get(labels[row], 0) + 1
            assert len(counts) >= 2 and min(counts.values()) >= 2


def test_group_by_label_global_rng() -> None:
    dataset = _labelled(GROUPS["skewed"])
    _same_batches(lambda module: module.GroupByLabelBatchSampler(dataset, 4, False, valid_label_columns=["label"]))


@pytest.mark.parametrize(
    ("counts", "batch_size", "columns"),
    [
        ({0: 4, 1: 4}, 3, ["label"]),  # odd
        ({0: 4, 1: 4}, 2, ["label"]),  # below 4
        ({0: 4, 1: 4}, 0, ["label"]),  # torch's own check
        ({0: 4, 1: 4}, 4, ["score"]),  # no label column
        ({0: 4, 1: 4}, 4, None),
        ({0: 8, 1: 1, 2: 1}, 4, ["label"]),  # one label with two rows
    ],
)
def test_group_by_label_errors_match_the_reference(counts: dict[int, int], batch_size: int, columns: Any) -> None:
    dataset = _labelled(counts)
    with pytest.raises(ValueError) as expected:
        ref.GroupByLabelBatchSampler(dataset, batch_size, False, valid_label_columns=columns)
    with pytest.raises(ValueError) as got:
        ours.GroupByLabelBatchSampler(dataset, batch_size, False, valid_label_columns=columns)
    assert str(got.value) == str(expected.value)


# --- multi-dataset samplers --------------------------------------------------------------------------------------


def _children(module: Any, parts: list[Any], generator: torch.Generator, kind: str) -> list[Any]:
    if kind == "default":
        return [
            module.DefaultBatchSampler(RandomSampler(part, generator=generator), 4, False, generator=generator)
            for part in parts
        ]
    if kind == "no_duplicates":
        return [
            module.NoDuplicatesBatchSampler(part, 4, True, valid_label_columns=["label"], generator=generator, seed=2)
            for part in parts
        ]
    return [
        module.GroupByLabelBatchSampler(part, 4, False, valid_label_columns=["label"], generator=generator, seed=2)
        for part in parts
    ]


@pytest.mark.parametrize("kind", ["default", "no_duplicates", "group_by_label"])
@pytest.mark.parametrize("strategy", ["ProportionalBatchSampler", "RoundRobinBatchSampler"])
def test_multi_dataset(strategy: str, kind: str) -> None:
    """The trainer's setup: one generator shared by the multi-dataset sampler and every child sampler."""
    if kind == "group_by_label":
        parts = [_labelled({0: 6, 1: 9}), _labelled({0: 4, 1: 4, 2: 12}, seed=1), _labelled({5: 3, 6: 3}, seed=2)]
    else:
        parts = [_pairs(17, 30), _pairs(9, 20, seed=1), _pairs(26, 40, seed=2)]
    concat = ConcatDataset(parts)

    def build(module: Any) -> Any:
        generator = _gen(42)
        children = _children(module, parts, generator, kind)
        return getattr(module, strategy)(concat, children, generator=generator, seed=8)

    runs = _same_batches(build)
    sizes = [len(part) for part in parts]
    for _, batches in runs:
        assert all(0 <= row < sum(sizes) for batch in batches for row in batch)


def test_multi_dataset_set_epoch_reaches_the_children() -> None:
    parts = [_pairs(8, 10), _pairs(8, 10, seed=1)]
    children = [ours.NoDuplicatesBatchSampler(part, 2, False) for part in parts]
    sampler = ours.ProportionalBatchSampler(ConcatDataset(parts), children)
    sampler.set_epoch(3)
    assert sampler.epoch == 3 and all(child.epoch == 3 for child in children)
    assert (sampler.batch_size, sampler.drop_last, sampler.seed, sampler.generator) == (2, False, 0, None)
    assert len(sampler) == 8
    assert len(ours.RoundRobinBatchSampler(ConcatDataset(parts), children)) == 8


def test_multi_dataset_errors() -> None:
    parts = [_pairs(8, 10), _pairs(8, 10, seed=1)]
    children = [ours.NoDuplicatesBatchSampler(parts[0], 2, False)]
    with pytest.raises(ValueError) as expected:
        ref.RoundRobinBatchSampler(ConcatDataset(parts), children)
    with pytest.raises(ValueError) as got:
        ours.RoundRobinBatchSampler(ConcatDataset(parts), children)
    assert str(got.value) == str(expected.value)
    with pytest.raises(TypeError):
        ours.MultiDatasetDefaultBatchSampler(ConcatDataset(parts), children * 2)  # abstract
