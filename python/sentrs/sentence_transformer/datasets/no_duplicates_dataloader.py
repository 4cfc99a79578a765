"""``NoDuplicatesDataLoader``: batches of :class:`~sentrs.InputExample` without repeated texts, for the old
``model.fit`` (which turns it into the trainer's ``batch_sampler="no_duplicates"``)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["NoDuplicatesDataLoader"]


def _text_key(text: Any) -> str:
    """What counts as the same text: equal after ``str``, ``strip`` and ``lower``."""
    return (text if isinstance(text, str) else str(text)).strip().lower()


class NoDuplicatesDataLoader:
    """Yields ``len(self)`` batches of ``batch_size`` examples in which no text appears twice (compared stripped and
    lower-cased), as in-batch-negative losses such as
    :class:`~sentrs.sentence_transformer.losses.MultipleNegativesRankingLoss` need.

    The examples are shuffled in place (Python's ``random``) on creation and each time the walk through them wraps
    around; an example whose text is already in the batch is skipped for that batch. Each batch goes through
    :attr:`collate_fn` when one is set.

    Args:
        train_examples: the examples (the list itself is shuffled).
        batch_size: examples per batch.
    """

    def __init__(self, train_examples: list[InputExample], batch_size: int) -> None:
        self.batch_size = batch_size
        self.data_pointer = 0
        self.collate_fn: Callable[[list[InputExample]], Any] | None = None
        self.train_examples = train_examples
        random.shuffle(self.train_examples)

    def _next_example(self) -> InputExample:
        example = self.train_examples[self.data_pointer]
        self.data_pointer += 1
        if self.data_pointer >= len(self.train_examples):
            self.data_pointer = 0
            random.shuffle(self.train_examples)
        return example

    def __iter__(self) -> Iterator[Any]:
        for _ in range(len(self)):
            batch: list[InputExample] = []
            seen: set[str] = set()
            while len(batch) < self.batch_size:
                example = self._next_example()
                keys = [_text_key(text) for text in example.texts or []]
                if seen.isdisjoint(keys):
                    batch.append(example)
                    seen.update(keys)
            yield self.collate_fn(batch) if self.collate_fn is not None else batch

    def __len__(self) -> int:
        return len(self.train_examples) // self.batch_size
