"""``SentenceLabelDataset``: labelled examples streamed a few of one label at a time, for the batch triplet losses
of the old ``model.fit`` (which turns it into the trainer's ``batch_sampler="group_by_label"``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
from torch.utils.data import IterableDataset

from sentrs.sentence_transformer.readers.input_example import InputExample

logger = logging.getLogger(__name__)

__all__ = ["SentenceLabelDataset"]


class SentenceLabelDataset(IterableDataset[InputExample]):
    """An iterable dataset that yields ``samples_per_label`` distinct examples of one label, then of the next label,
    so that every batch holds several examples per label (as
    :class:`~sentrs.sentence_transformer.losses.BatchHardTripletLoss` and its siblings need).

    Labels with fewer than ``samples_per_label`` examples are left out. Labels are visited in a random order
    (numpy's global random state), reshuffled after each pass. Without replacement, an example is drawn at most once
    per pass over the labels, and a label with fewer than ``samples_per_label`` undrawn examples is skipped for the
    rest of that pass; with replacement, every label is drawn from all its examples each time. One iteration yields
    ``len(self)`` examples. Batch size and ``samples_per_label`` are not checked against each other.

    Args:
        examples: the labelled examples.
        samples_per_label: how many examples of a label are yielded in a row; the batch size should be a multiple.
        with_replacement: draw from all examples of a label each time instead of only the ones not drawn yet.
    """

    def __init__(
        self, examples: list[InputExample], samples_per_label: int = 2, with_replacement: bool = False
    ) -> None:
        super().__init__()
        self.samples_per_label = samples_per_label
        self.with_replacement = with_replacement

        by_label: dict[Any, list[InputExample]] = {}
        for example in examples:
            by_label.setdefault(example.label, []).append(example)

        # The kept examples, grouped by label; label number i owns positions [groups_right_border[i-1], ...[i]).
        self.grouped_inputs: list[InputExample] = []
        self.groups_right_border: list[int] = []
        for group in by_label.values():
            if len(group) >= samples_per_label:
                self.grouped_inputs.extend(group)
                self.groups_right_border.append(len(self.grouped_inputs))
        num_labels = len(self.groups_right_border)
        self.label_range = np.arange(num_labels)
        np.random.shuffle(self.label_range)
        logger.info(
            "SentenceLabelDataset: %d examples, of which %d can be used (their label has at least %d examples); "
            "%d labels.",
            len(examples),
            len(self.grouped_inputs),
            samples_per_label,
            num_labels,
        )

    def _group_bounds(self, label: int) -> tuple[int, int]:
        left = 0 if label == 0 else self.groups_right_border[label - 1]
        return left, self.groups_right_border[label]

    def __iter__(self) -> Iterator[InputExample]:
        label_idx = 0
        yielded = 0
        drawn: dict[int, set[int]] = {}
        while yielded < len(self.grouped_inputs):
            label = int(self.label_range[label_idx])
            seen = drawn.setdefault(label, set())
            left, right = self._group_bounds(label)
            candidates = [i for i in range(left, right) if self.with_replacement or i not in seen]
            if len(candidates) >= self.samples_per_label:
                for position in np.random.choice(candidates, self.samples_per_label, replace=False):
                    yielded += 1
                    seen.add(int(position))
                    yield self.grouped_inputs[position]
            label_idx += 1
            if label_idx >= len(self.label_range):
                label_idx = 0
                drawn = {}
                np.random.shuffle(self.label_range)

    def __len__(self) -> int:
        return len(self.grouped_inputs)
