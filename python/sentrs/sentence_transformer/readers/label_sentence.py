"""``LabelSentenceReader``: (label, sentence) rows for the old ``model.fit`` API, e.g. for the batch triplet losses."""

from __future__ import annotations

import os

from sentrs.sentence_transformer.readers._text_files import open_text
from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["LabelSentenceReader"]


class LabelSentenceReader:
    """Reads a delimited file with a label column and a sentence column; labels become integer ids in order of first
    appearance (kept in :attr:`label_map` across calls, so train and dev files share ids).

    Args:
        folder: the folder the files are in.
        label_col_idx: the label column.
        sentence_col_idx: the sentence column.
        separator: the column separator.
    """

    def __init__(self, folder: str, label_col_idx: int = 0, sentence_col_idx: int = 1, separator: str = "\t") -> None:
        self.folder = folder
        self.label_map: dict[str, int] = {}
        self.label_col_idx = label_col_idx
        self.sentence_col_idx = sentence_col_idx
        self.separator = separator

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """One :class:`InputExample` per line of ``folder/filename`` (``texts=[sentence]``, ``label=<label id>``,
        ``guid="<filename>-<line number>"``); at most ``max_examples`` when it is positive."""
        examples: list[InputExample] = []
        with open_text(os.path.join(self.folder, filename)) as lines:
            for line in lines:
                columns = line.strip().split(self.separator)
                label_id = self.label_map.setdefault(columns[self.label_col_idx], len(self.label_map))
                examples.append(
                    InputExample(
                        guid=f"{filename}-{len(examples)}", texts=[columns[self.sentence_col_idx]], label=label_id
                    )
                )
                if 0 < max_examples <= len(examples):
                    break
        return examples
