"""``SentencesDataset``: a list of :class:`~sentrs.InputExample` as a torch ``Dataset``, for the old ``model.fit``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch.utils.data import Dataset

from sentrs.sentence_transformer.readers.input_example import InputExample

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["SentencesDataset"]


class SentencesDataset(Dataset[InputExample]):
    """The examples as a map-style dataset, item ``i`` being ``examples[i]``.

    Deprecated, as in the reference: a ``DataLoader`` takes the list of examples directly. The ``model`` argument is
    accepted and ignored.

    Args:
        examples: the training examples.
        model: unused.
    """

    def __init__(self, examples: list[InputExample], model: SentenceTransformer | Any = None) -> None:
        self.examples = examples

    def __getitem__(self, item: int) -> InputExample:
        return self.examples[item]

    def __len__(self) -> int:
        return len(self.examples)
