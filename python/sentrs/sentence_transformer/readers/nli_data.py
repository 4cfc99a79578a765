"""``NLIDataReader``: SNLI / MultiNLI sentence pairs with their entailment label, for the old ``model.fit`` API."""

from __future__ import annotations

import gzip
import os

from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["NLIDataReader"]


class NLIDataReader:
    """Reads an NLI split stored as three gzipped, line-aligned files in ``dataset_folder``:
    ``s1.<split>``, ``s2.<split>`` and ``labels.<split>`` (e.g. ``s1.train.gz``, ``s2.train.gz``, ``labels.train.gz``).

    Args:
        dataset_folder: the folder with the three files.
    """

    def __init__(self, dataset_folder: str) -> None:
        self.dataset_folder = dataset_folder

    def _read_lines(self, prefix: str, filename: str) -> list[str]:
        with gzip.open(os.path.join(self.dataset_folder, prefix + filename), mode="rt", encoding="utf-8") as f:
            return f.readlines()

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """One :class:`InputExample` per line: ``texts=[premise, hypothesis]`` (the lines as read, newline
        included, as in the reference), ``label`` from :meth:`map_label`, ``guid="<filename>-<i>"``; at most
        ``max_examples`` when it is positive.

        Args:
            filename: the split's file suffix, e.g. ``"train.gz"``.
        """
        premises = self._read_lines("s1.", filename)
        hypotheses = self._read_lines("s2.", filename)
        labels = self._read_lines("labels.", filename)
        examples: list[InputExample] = []
        for premise, hypothesis, label in zip(premises, hypotheses, labels):
            examples.append(
                InputExample(
                    guid=f"{filename}-{len(examples)}", texts=[premise, hypothesis], label=self.map_label(label)
                )
            )
            if 0 < max_examples <= len(examples):
                break
        return examples

    @staticmethod
    def get_labels() -> dict[str, int]:
        """The label ids: contradiction 0, entailment 1, neutral 2."""
        return {"contradiction": 0, "entailment": 1, "neutral": 2}

    def get_num_labels(self) -> int:
        """The number of labels (3)."""
        return len(self.get_labels())

    def map_label(self, label: str) -> int:
        """The id of a label name (case and surrounding whitespace ignored).

        Raises:
            KeyError: the name is no NLI label.
        """
        return self.get_labels()[label.strip().lower()]
