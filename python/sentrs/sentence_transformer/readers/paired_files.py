"""``PairedFilesReader``: line-aligned files (one text per file per example), for the old ``model.fit`` API."""

from __future__ import annotations

from contextlib import ExitStack

from sentrs.sentence_transformer.readers._text_files import open_text
from sentrs.sentence_transformer.readers.input_example import InputExample

__all__ = ["PairedFilesReader"]


class PairedFilesReader:
    """Reads examples whose texts are spread over several line-aligned files (``.gz`` ones are gunzipped), e.g. a
    sentence file and its translation.

    Args:
        filepaths: the files, one per text of an example.
    """

    def __init__(self, filepaths: list[str]) -> None:
        self.filepaths = filepaths

    def get_examples(self, max_examples: int = 0) -> list[InputExample]:
        """One :class:`InputExample` per line number, with ``texts`` the line of each file (newline included, as in
        the reference), ``label=1`` and ``guid`` its index as a string; reading stops at the end of the shortest
        file, or after ``max_examples`` when it is positive."""
        examples: list[InputExample] = []
        with ExitStack() as stack:
            files = [stack.enter_context(open_text(path)) for path in self.filepaths]
            while True:
                texts = [f.readline() for f in files]
                if "" in texts:
                    break
                examples.append(InputExample(guid=str(len(examples)), texts=texts, label=1))
                if 0 < max_examples <= len(examples):
                    break
        return examples
