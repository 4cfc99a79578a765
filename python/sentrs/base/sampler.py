"""Batch samplers for training: which rows of a dataset go together into each batch, and in what order.

The same seed and epoch give the same batches as sentence-transformers' samplers of the same name, so a training run
can move between the two libraries without changing what the model sees. Every sampler is a torch
:class:`~torch.utils.data.BatchSampler` with ``set_epoch``: the trainer calls it at the start of each epoch, and the
samplers that shuffle reseed their generator with ``seed + epoch``.

- :class:`DefaultBatchSampler`: torch's batch sampler over another sampler (the trainer hands it a
  :class:`~torch.utils.data.RandomSampler`).
- :class:`NoDuplicatesBatchSampler`: no value appears twice in a batch, across all columns (for losses that use
  in-batch negatives); ``precompute_hashes=True`` compares 64-bit hashes of the values instead of their text.
- :class:`GroupByLabelBatchSampler`: each batch holds at least two labels with at least two rows each (for the
  batch triplet losses).
- :class:`RoundRobinBatchSampler`, :class:`ProportionalBatchSampler`: the order in which the batches of several
  datasets (a :class:`~torch.utils.data.ConcatDataset`) take turns.

:class:`BatchSamplers` and :class:`MultiDatasetBatchSamplers` are the string choices of the training arguments'
``batch_sampler`` and ``multi_dataset_batch_sampler``.

Importing this module imports torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator, Sequence
from enum import Enum
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import BatchSampler, ConcatDataset, SubsetRandomSampler

if TYPE_CHECKING:
    from datasets import Dataset

__all__ = [
    "BatchSamplers",
    "DefaultBatchSampler",
    "GroupByLabelBatchSampler",
    "MultiDatasetBatchSamplers",
    "MultiDatasetDefaultBatchSampler",
    "NoDuplicatesBatchSampler",
    "ProportionalBatchSampler",
    "RoundRobinBatchSampler",
]

logger = logging.getLogger(__name__)

# Columns that describe where a row came from rather than what it says; never compared for duplicates.
_IGNORED_COLUMNS = frozenset({"dataset_name"})

# How many extra shuffled passes NoDuplicatesBatchSampler may make to reach the number of batches it promised.
_EXTRA_PASSES = 2


@cache
def _warn_once(message: str) -> None:
    logger.warning(message)


class _Choice(str, Enum):
    """A string enum whose error for an unknown value lists the valid ones (as transformers' ``ExplicitEnum``)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        raise ValueError(f"{value} is not a valid {cls.__name__}, please select one of {list(cls._value2member_map_)}")


class BatchSamplers(_Choice):
    """The ``batch_sampler`` choices of the training arguments.

    - ``BATCH_SAMPLER`` (default): :class:`DefaultBatchSampler`, shuffled batches.
    - ``NO_DUPLICATES``: :class:`NoDuplicatesBatchSampler`, no value repeated within a batch; for losses with in-batch
      negatives (``MultipleNegativesRankingLoss``, ``CachedMultipleNegativesRankingLoss``, ``GISTEmbedLoss``, ...).
    - ``NO_DUPLICATES_HASHED``: the same with ``precompute_hashes=True`` (needs ``xxhash``): faster checks for a
      little memory.
    - ``GROUP_BY_LABEL``: :class:`GroupByLabelBatchSampler`, at least two rows of each of at least two labels per
      batch; for ``BatchAllTripletLoss``, ``BatchHardTripletLoss`` and the other batch triplet losses.

    A :class:`DefaultBatchSampler` subclass, or a callable taking ``dataset, batch_size, drop_last,
    valid_label_columns, generator, seed`` and returning one, may be given instead.
    """

    BATCH_SAMPLER = "batch_sampler"
    NO_DUPLICATES = "no_duplicates"
    NO_DUPLICATES_HASHED = "no_duplicates_hashed"
    GROUP_BY_LABEL = "group_by_label"


class MultiDatasetBatchSamplers(_Choice):
    """The ``multi_dataset_batch_sampler`` choices of the training arguments, for a dict of training datasets.

    - ``ROUND_ROBIN``: :class:`RoundRobinBatchSampler`, one batch of each dataset in turn until one runs out.
    - ``PROPORTIONAL`` (default): :class:`ProportionalBatchSampler`, every batch of every dataset, in a random order
      (larger datasets come up more often).

    A :class:`MultiDatasetDefaultBatchSampler` subclass, or a callable taking ``dataset, batch_samplers, generator,
    seed`` and returning one, may be given instead.
    """

    ROUND_ROBIN = "round_robin"
    PROPORTIONAL = "proportional"


class SetEpochMixin:
    """``set_epoch(epoch)``, which the trainer calls before each epoch; samplers that shuffle seed with it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch the next iteration belongs to."""
        self.epoch = epoch


def _reseed(generator: torch.Generator | None, seed: int | None, epoch: int) -> None:
    """Seeds ``generator`` for ``epoch``, so an epoch's batches do not depend on what ran before."""
    if generator and seed is not None:
        generator.manual_seed(seed + epoch)


class DefaultBatchSampler(SetEpochMixin, BatchSampler):
    """torch's :class:`~torch.utils.data.BatchSampler` with the arguments every sentrs batch sampler takes.

    Args:
        dataset: what to batch: a sampler of row indices (the trainer passes a
            :class:`~torch.utils.data.RandomSampler` over the dataset) or the dataset itself (subclasses).
        batch_size: rows per batch.
        drop_last: drop the last batch when it is smaller than ``batch_size``.
        valid_label_columns: the column names that may hold labels; the first one present is the label column.
        generator: the random generator that shuffles; reseeded with ``seed + epoch`` by the subclasses that shuffle.
        seed: the base seed.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last)
        self.valid_label_columns = valid_label_columns
        self.generator = generator
        self.seed = seed


class GroupByLabelBatchSampler(DefaultBatchSampler):
    """Batches for in-batch triplet mining: every batch holds at least two labels, each with at least two rows.

    Each epoch, the rows of each label are shuffled (an odd row out is left out), then the labels take turns, in an
    order reshuffled every round, giving two rows each; the stream is cut into batches of ``batch_size``. A label
    drops out when its rows run out, and the stream ends when fewer than two labels are left. Labels with fewer than
    two rows are never used.

    Args:
        dataset: the dataset; it must have one of ``valid_label_columns``.
        batch_size: rows per batch: an even number, at least 4.
        drop_last: drop the last batch when it is smaller than ``batch_size`` (it is kept only with at least 4 rows).
        valid_label_columns: the column names that may hold labels; the first one present is used.
        generator: the random generator, reseeded with ``seed + epoch`` at each iteration.
        seed: the base seed.

    Raises:
        ValueError: ``batch_size`` is odd or below 4, no label column is found, or fewer than two labels have two rows.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        self.dataset = dataset
        if self.batch_size < 4 or self.batch_size % 2:
            raise ValueError(f"batch_size must be an even number >= 4, but got {self.batch_size}.")

        rows_by_label: dict[Any, list[int]] = {}
        for row, label in enumerate(self._determine_labels_to_use(dataset, valid_label_columns)):
            rows_by_label.setdefault(label, []).append(row)
        self.groups = {label: rows for label, rows in rows_by_label.items() if len(rows) >= 2}
        if len(self.groups) < 2:
            raise ValueError(
                "GroupByLabelBatchSampler requires at least 2 distinct labels with >= 2 samples each, "
                f"but only {len(self.groups)} label(s) qualified."
            )
        # The stream ends once a single label is left: every label gives at most as many pairs as the label with the
        # second most pairs.
        pairs = sorted((len(rows) // 2 for rows in self.groups.values()), reverse=True)
        self._stream_length = 2 * sum(min(count, pairs[1]) for count in pairs)

    @staticmethod
    def _determine_labels_to_use(dataset: Dataset, valid_label_columns: list[str] | None) -> Sequence[Any]:
        """The values of the first of ``valid_label_columns`` that ``dataset`` has."""
        column = next((name for name in valid_label_columns or [] if name in dataset.column_names), None)
        if column is None:
            raise ValueError(
                f"None of the valid_label_columns {valid_label_columns} are in the dataset, "
                f"which only has these columns: {dataset.column_names}."
            )
        return dataset[column]

    def __iter__(self) -> Iterator[list[int]]:
        _reseed(self.generator, self.seed, self.epoch)
        queues: dict[Any, deque[int]] = {}
        for label, rows in self.groups.items():
            order = torch.randperm(len(rows), generator=self.generator)[: len(rows) - len(rows) % 2]
            queues[label] = deque(rows[position] for position in order)

        turn_order = list(queues)
        pending: list[int] = []
        previous_last: Any = None
        while len(turn_order) >= 2:
            turn_order = [turn_order[i] for i in torch.randperm(len(turn_order), generator=self.generator)]
            # Two pairs of the same label never follow each other inside one batch.
            if pending and turn_order[0] == previous_last:
                turn_order[0], turn_order[1] = turn_order[1], turn_order[0]
            for label in turn_order:
                queue = queues[label]
                pending += (queue.popleft(), queue.popleft())
                if len(pending) >= self.batch_size:
                    yield pending[: self.batch_size]
                    pending = pending[self.batch_size :]
            previous_last = turn_order[-1]
            turn_order = [label for label in turn_order if queues[label]]
        # Four rows of the interleaved stream always hold two labels with two rows each.
        if len(pending) >= 4 and not self.drop_last:
            yield pending

    def __len__(self) -> int:
        full, rest = divmod(self._stream_length, self.batch_size)
        return full + (1 if rest >= 4 and not self.drop_last else 0)


_PLAIN_TYPES = (str, int, float, bool, bytes, type(None), np.integer, np.floating, np.bool_)


def _value_key(value: Any) -> str:
    """The text a value is compared by for duplicates.

    Plain values (and lists of them) compare by ``str()``. Other objects (images, audio, decoders) often show a
    memory address in ``str()``, so they compare by a digest of their pickled content (of the encoded source for
    datasets' media decoders); an object that cannot be pickled falls back to ``str()``.
    """
    if isinstance(value, _PLAIN_TYPES):
        return str(value)
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, _PLAIN_TYPES) for item in value):
            return str(value)
        return f"[{', '.join(map(_value_key, value))}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {_value_key(item)}" for key, item in value.items()) + "}"
    source = getattr(value, "_hf_encoded", None)
    try:
        return hashlib.sha256(pickle.dumps(value if source is None else source)).hexdigest()
    except Exception:
        return str(value)


def _hash_key(key: str) -> int:
    """The signed 64-bit xxh64 of a value key (signed, so Arrow stores it as int64)."""
    import xxhash

    hashed: int = xxhash.xxh64_intdigest(key.encode("utf-8"))
    return hashed - (1 << 64) if hashed >= 1 << 63 else hashed


def _hash_rows(batch: dict[str, list[Any]], columns: list[str]) -> dict[str, list[list[int]]]:
    """``datasets.map`` function: the hashed value keys of each row, one per compared column.

    Module-level so ``datasets`` can pickle it for worker processes.
    """
    num_rows = len(next(iter(batch.values()), []))
    return {"__hashes": [[_hash_key(_value_key(batch[column][row])) for column in columns] for row in range(num_rows)]}


class NoDuplicatesBatchSampler(DefaultBatchSampler):
    """Batches in which no value appears twice, across all columns (label columns and ``dataset_name`` excluded).

    For losses that take the other rows of a batch as negatives: a duplicate would be a false negative. Each pass
    walks a shuffled order and puts each row into the current batch unless one of its values is already there; rows
    that clash wait, in order, for a later batch. When one pass yields fewer batches than :meth:`__len__` promises
    (``drop_last=True`` with many duplicates), the rows are reshuffled and sampling goes on, for at most two extra
    passes, so the scheduler's step count holds; those batches repeat rows of the epoch, and a warning says so once.

    Args:
        dataset: the dataset.
        batch_size: rows per batch.
        drop_last: drop each pass's last batch when it is smaller than ``batch_size``.
        valid_label_columns: columns not compared (labels repeat by nature).
        generator: the random generator, reseeded with ``seed + epoch`` at each iteration.
        seed: the base seed.
        precompute_hashes: compare 64-bit xxhash values of the values, computed once with ``datasets.map``, instead of
            reading rows again: faster, above all for image and audio rows, for ``len(dataset) * columns * 8`` bytes.
            Needs ``xxhash``.
        precompute_num_proc: processes for the hashing; ``None`` is ``min(8, cpu_count - 1)`` (at least 1).
        precompute_batch_size: rows per ``datasets.map`` batch for the hashing.

    Raises:
        ImportError: ``precompute_hashes=True`` without ``xxhash`` installed.
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: list[str] | None = None,
        generator: torch.Generator | None = None,
        seed: int = 0,
        precompute_hashes: bool = False,
        precompute_num_proc: int | None = None,
        precompute_batch_size: int = 1000,
    ) -> None:
        super().__init__(
            dataset,
            batch_size=batch_size,
            drop_last=drop_last,
            valid_label_columns=valid_label_columns,
            generator=generator,
            seed=seed,
        )
        label_columns = [name for name in dataset.column_names if name in set(valid_label_columns or ())]
        self.dataset = dataset.remove_columns(label_columns) if label_columns else dataset
        self.precompute_hashes = precompute_hashes
        self.precompute_num_proc = precompute_num_proc
        self.precompute_batch_size = precompute_batch_size
        self._row_hashes: list[list[int]] | None = None
        self._ids: tuple[npt.NDArray[np.uint32], int] | None = None
        if precompute_hashes:
            try:
                import xxhash  # noqa: F401
            except ImportError:
                raise ImportError(
                    "NoDuplicatesBatchSampler with precompute_hashes=True requires `xxhash`. "
                    "Install `xxhash` to use this option."
                ) from None
            if precompute_num_proc is None:
                self.precompute_num_proc = max(1, min(8, (os.cpu_count() or 1) - 1))

    def _compared_columns(self) -> list[str]:
        return [name for name in self.dataset.column_names if name not in _IGNORED_COLUMNS]

    def _build_hashes(self) -> list[list[int]]:
        """The hashed values of every row, computed on first use and kept (they do not depend on the epoch)."""
        if self._row_hashes is None:
            num_proc = self.precompute_num_proc if self.precompute_num_proc and self.precompute_num_proc > 1 else None
            hashed = self.dataset.map(
                _hash_rows,
                batched=True,
                batch_size=self.precompute_batch_size,
                num_proc=num_proc,
                remove_columns=list(self.dataset.column_names),
                fn_kwargs={"columns": self._compared_columns()},
                desc="Hashing dataset values",
            )
            self._row_hashes = list(hashed["__hashes"])
        return self._row_hashes

    def _value_ids(self) -> tuple[npt.NDArray[np.uint32], int]:
        """Every row's compared values as dense ids, ``(rows, columns)``, interned once in the Rust core (they do
        not depend on the epoch): the text keys of the values, or their precomputed hashes."""
        if self._ids is None:
            from sentrs import _core

            if self.precompute_hashes:
                hashes = (
                    np.asarray(self._build_hashes(), dtype=np.int64).reshape(len(self.dataset), -1).view(np.uint64)
                )
                self._ids = _core.intern_u64(hashes)
            else:
                raw = self.dataset.with_format(None)
                columns = []
                for name in self._compared_columns():
                    feature = raw.features.get(name)
                    if getattr(feature, "dtype", None) in ("string", "large_string"):
                        # Text straight from the Arrow column (in row order, with any selection or shuffle applied);
                        # nulls compare by their key, as on the row path.
                        column = raw.with_format("arrow")[name]
                        values = column.to_pylist()
                        if column.null_count:
                            values = [v if type(v) is str else _value_key(v) for v in values]
                    else:
                        values = [_value_key(v) for v in raw[name]]
                    columns.append(values)
                self._ids = _core.intern_str_columns(columns)
        return self._ids

    def __iter__(self) -> Iterator[list[int]]:
        _reseed(self.generator, self.seed, self.epoch)
        if len(self.dataset) == 0:
            return
        value_ids = self._value_ids()
        promised = len(self)
        produced = 0
        # The first pass is never cut short: with drop_last=False it may rightly give more (smaller) batches.
        for batch in self._one_pass(value_ids):
            produced += 1
            yield batch
        if produced >= promised:
            return
        if produced:
            missing = promised - produced
            _warn_once(
                f"NoDuplicatesBatchSampler produced only {produced} of the expected {promised} batches in a full pass "
                f"over the dataset. The remaining {missing} batches are resampled, so at most "
                f"{missing / promised:.1%} of this epoch's samples are repeats from earlier batches."
            )
            for _ in range(_EXTRA_PASSES):
                for batch in self._one_pass(value_ids):
                    produced += 1
                    yield batch
                    if produced >= promised:
                        return
        _warn_once(
            f"NoDuplicatesBatchSampler yielded only {produced} of the expected {promised} batches. The dataset has "
            "too few distinct values for this batch size. Consider lowering it."
        )

    def _one_pass(self, value_ids: tuple[npt.NDArray[np.uint32], int]) -> Iterator[list[int]]:
        """The batches of one shuffled pass over the rows, without reusing any row (the pass runs in the Rust
        core: a row joins the batch unless one of its values is there; rows that clash wait, in order, at the front
        for the next batch)."""
        from sentrs import _core

        num_rows = len(self.dataset)
        dtype = torch.int32 if num_rows <= np.iinfo(np.int32).max else torch.int64
        order = torch.randperm(num_rows, generator=self.generator, dtype=dtype).numpy().astype(np.int64)
        ids, num_values = value_ids
        rows, bounds = _core.no_duplicates_batches(ids, num_values, order, self.batch_size, self.drop_last)
        row_list = rows.tolist()
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            yield row_list[start:end]

    def __len__(self) -> int:
        """The number of batches promised to the DataLoader: from the dataset size alone, as the exact count would
        take a full pass; :meth:`__iter__` resamples to reach it."""
        if self.drop_last:
            return len(self.dataset) // self.batch_size
        return -(-len(self.dataset) // self.batch_size)


class MultiDatasetDefaultBatchSampler(SetEpochMixin, BatchSampler, ABC):
    """The base of the samplers that interleave the batches of several datasets; subclasses choose the order.

    Args:
        dataset: the datasets, concatenated; batch indices are offset to point into it.
        batch_samplers: one batch sampler per dataset, in the same order.
        generator: the random generator, reseeded with ``seed + epoch`` at each iteration.
        seed: the base seed.

    Raises:
        ValueError: the numbers of datasets and batch samplers differ.
    """

    def __init__(
        self,
        dataset: ConcatDataset,
        batch_samplers: list[BatchSampler],
        generator: torch.Generator | None = None,
        seed: int = 0,
    ) -> None:
        if len(dataset.datasets) != len(batch_samplers):
            raise ValueError("The number of batch samplers must match the number of datasets in the ConcatDataset.")
        super().__init__(dataset, batch_size=batch_samplers[0].batch_size, drop_last=batch_samplers[0].drop_last)
        self.dataset = dataset
        self.batch_samplers = batch_samplers
        self.generator = generator
        self.seed = seed

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch here and on every batch sampler that has ``set_epoch``."""
        super().set_epoch(epoch)
        for sampler in self.batch_samplers:
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)

    def _offsets(self) -> list[int]:
        """Where each dataset starts in the concatenation."""
        return [0, *accumulate(len(dataset) for dataset in self.dataset.datasets)]  # type: ignore[arg-type]

    @abstractmethod
    def __iter__(self) -> Iterator[list[int]]:
        """The batches, as indices into the concatenated dataset."""

    @abstractmethod
    def __len__(self) -> int:
        """The number of batches."""


class RoundRobinBatchSampler(MultiDatasetDefaultBatchSampler):
    """One batch of each dataset in turn, until one dataset runs out: each dataset is sampled equally often, and the
    larger ones are not used up.

    Args:
        dataset: the datasets, concatenated.
        batch_samplers: one batch sampler per dataset.
        generator: the random generator, reseeded with ``seed + epoch`` at each iteration.
        seed: the base seed.
    """

    def __iter__(self) -> Iterator[list[int]]:
        _reseed(self.generator, self.seed, self.epoch)
        offsets = self._offsets()
        for batches in zip(*(iter(sampler) for sampler in self.batch_samplers)):
            for offset, batch in zip(offsets, batches):
                yield [row + offset for row in batch]

    def __len__(self) -> int:
        """The number of batches (an estimate when the batch samplers' lengths are)."""
        return len(self.batch_samplers) * min(len(sampler) for sampler in self.batch_samplers)


class ProportionalBatchSampler(MultiDatasetDefaultBatchSampler):
    """Every batch of every dataset, in a random order: larger datasets come up more often, and all are used up.

    Args:
        dataset: the datasets, concatenated.
        batch_samplers: one batch sampler per dataset.
        generator: the random generator, reseeded with ``seed + epoch`` at each iteration.
        seed: the base seed.
    """

    def __iter__(self) -> Iterator[list[int]]:
        _reseed(self.generator, self.seed, self.epoch)
        offsets = self._offsets()
        # One entry per promised batch, naming its dataset; shuffled, that is the order of the datasets' turns.
        turns = [which for which, sampler in enumerate(self.batch_samplers) for _ in range(len(sampler))]
        iterators = [iter(sampler) for sampler in self.batch_samplers]
        for which in SubsetRandomSampler(turns, generator=self.generator):
            batch = next(iterators[which], None)
            if batch is not None:  # a sampler may give fewer batches than its length promised
                yield [row + offsets[which] for row in batch]

    def __len__(self) -> int:
        return sum(len(sampler) for sampler in self.batch_samplers)
