"""``TripletReader``: (anchor, positive, negative) rows for the old ``model.fit`` API."""

from __future__ import annotations

import csv
import os

from sentrs.sentence_transformer.readers._text_files import CsvQuoting, open_text
from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["TripletReader"]


class TripletReader:
    """Reads a delimited file with an anchor, a positive and a negative column (``.gz`` files are gunzipped).

    Args:
        dataset_folder: the folder the files are in.
        s1_col_idx, s2_col_idx, s3_col_idx: the anchor, positive and negative columns.
        has_header: skip the first row.
        delimiter: the column separator.
        quoting: a ``csv`` quoting constant.
    """

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 0,
        s2_col_idx: int = 1,
        s3_col_idx: int = 2,
        has_header: bool = False,
        delimiter: str = "\t",
        quoting: CsvQuoting = csv.QUOTE_NONE,
    ) -> None:
        self.dataset_folder = dataset_folder
        self.s1_col_idx = s1_col_idx
        self.s2_col_idx = s2_col_idx
        self.s3_col_idx = s3_col_idx
        self.has_header = has_header
        self.delimiter = delimiter
        self.quoting = quoting

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """One :class:`InputExample` per row, ``texts=[anchor, positive, negative]`` (no guid, label 0); at most
        ``max_examples`` when it is positive."""
        examples = []
        with open_text(os.path.join(self.dataset_folder, filename)) as f:
            rows = csv.reader(f, delimiter=self.delimiter, quoting=self.quoting)
            if self.has_header:
                next(rows, None)
            for row in rows:
                texts = [row[self.s1_col_idx], row[self.s2_col_idx], row[self.s3_col_idx]]
                examples.append(InputExample(texts=texts))
                if 0 < max_examples <= len(examples):
                    break
        return examples
