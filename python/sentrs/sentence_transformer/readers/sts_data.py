"""``STSDataReader`` and ``STSBenchmarkDataReader``: scored sentence pairs for the old ``model.fit`` API."""

from __future__ import annotations

import csv
import os

from sentrs.sentence_transformer.readers._text_files import CsvQuoting, open_text
from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["STSBenchmarkDataReader", "STSDataReader"]


class STSDataReader:
    """Reads a delimited file of sentence pairs with a similarity score (``.gz`` files are gunzipped).

    By default: tab-separated, no quoting, sentence 1 in column 0, sentence 2 in column 1, the score in column 2,
    and scores mapped from ``min_score..max_score`` (0..5) to 0..1.

    Args:
        dataset_folder: the folder the files are in.
        s1_col_idx, s2_col_idx, score_col_idx: the columns of the two sentences and of the score.
        delimiter: the column separator.
        quoting: a ``csv`` quoting constant.
        normalize_scores: map scores to 0..1 with ``(score - min_score) / (max_score - min_score)``.
        min_score, max_score: the score range of the file.
    """

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 0,
        s2_col_idx: int = 1,
        score_col_idx: int = 2,
        delimiter: str = "\t",
        quoting: CsvQuoting = csv.QUOTE_NONE,
        normalize_scores: bool = True,
        min_score: float = 0,
        max_score: float = 5,
    ) -> None:
        self.dataset_folder = dataset_folder
        self.score_col_idx = score_col_idx
        self.s1_col_idx = s1_col_idx
        self.s2_col_idx = s2_col_idx
        self.delimiter = delimiter
        self.quoting = quoting
        self.normalize_scores = normalize_scores
        self.min_score = min_score
        self.max_score = max_score

    def get_examples(self, filename: str, max_examples: int = 0) -> list[InputExample]:
        """One :class:`InputExample` per row of ``dataset_folder/filename``: ``texts=[s1, s2]``, ``label`` the
        (normalized) float score, ``guid=filename + str(row)``; at most ``max_examples`` when it is positive."""
        examples: list[InputExample] = []
        with open_text(os.path.join(self.dataset_folder, filename)) as f:
            for row_idx, row in enumerate(csv.reader(f, delimiter=self.delimiter, quoting=self.quoting)):
                score = float(row[self.score_col_idx])
                if self.normalize_scores:
                    score = (score - self.min_score) / (self.max_score - self.min_score)
                texts = [row[self.s1_col_idx], row[self.s2_col_idx]]
                examples.append(InputExample(guid=filename + str(row_idx), texts=texts, label=score))
                if 0 < max_examples <= len(examples):
                    break
        return examples


class STSBenchmarkDataReader(STSDataReader):
    """:class:`STSDataReader` with the STS benchmark's columns: the score in column 4, the sentences in 5 and 6."""

    def __init__(
        self,
        dataset_folder: str,
        s1_col_idx: int = 5,
        s2_col_idx: int = 6,
        score_col_idx: int = 4,
        delimiter: str = "\t",
        quoting: CsvQuoting = csv.QUOTE_NONE,
        normalize_scores: bool = True,
        min_score: float = 0,
        max_score: float = 5,
    ) -> None:
        super().__init__(
            dataset_folder,
            s1_col_idx=s1_col_idx,
            s2_col_idx=s2_col_idx,
            score_col_idx=score_col_idx,
            delimiter=delimiter,
            quoting=quoting,
            normalize_scores=normalize_scores,
            min_score=min_score,
            max_score=max_score,
        )
