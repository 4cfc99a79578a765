"""The word tokenizer interface of the classic modules, and an adapter for Hugging Face tokenizers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, ClassVar

from sentrs.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS

__all__ = ["ENGLISH_STOP_WORDS", "TransformersTokenizerWrapper", "WordTokenizer"]


def match_word(forms: Iterable[str], stop_words: set[str], word2idx: dict[str, int]) -> int | None:
    """The index of the first of ``forms`` (spellings of one word, tried in order) in the vocabulary; None when a
    form tried earlier is a stop word, or none is in the vocabulary."""
    for form in forms:
        if form in stop_words:
            return None
        if form in word2idx:
            return word2idx[form]
    return None


class WordTokenizer(ABC):
    """Turns a text into a list of vocabulary indices, and saves/loads its own config file.

    Subclasses used by :class:`~sentrs.sentence_transformer.modules.WordEmbeddings` are named in its config by
    ``reference_type`` (the reference's class path), so both libraries load the folder.
    """

    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.tokenizer.word.WordTokenizer"

    @abstractmethod
    def set_vocab(self, vocab: Iterable[str]) -> None:
        """Replaces the vocabulary; a word's index is its position in ``vocab``."""

    @abstractmethod
    def get_vocab(self) -> Any:
        """The vocabulary."""

    @abstractmethod
    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        """The vocabulary indices of the words of ``text`` that are in the vocabulary (others are dropped)."""

    @abstractmethod
    def save(self, output_path: str) -> None:
        """Writes the tokenizer's config into the folder ``output_path``."""

    @staticmethod
    @abstractmethod
    def load(input_path: str) -> WordTokenizer:
        """Builds the tokenizer from the config file that :meth:`save` wrote into ``input_path``."""


class TransformersTokenizerWrapper(WordTokenizer):
    """A Hugging Face tokenizer behind the :class:`WordTokenizer` interface: ``tokenize`` returns its input ids
    (special tokens included); ``save``/``load`` use ``save_pretrained``/``AutoTokenizer.from_pretrained``.

    Args:
        tokenizer: a ``transformers`` tokenizer (``PreTrainedTokenizerBase``).
    """

    reference_type: ClassVar[str] = (
        "sentence_transformers.sentence_transformer.modules.tokenizer.word.TransformersTokenizerWrapper"
    )

    def __init__(self, tokenizer: Any) -> None:
        super().__init__()
        self.tokenizer = tokenizer

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        ids: list[int] = self.tokenizer(text)["input_ids"]
        return ids

    def set_vocab(self, vocab: Iterable[str]) -> None:
        """The vocabulary of a Hugging Face tokenizer is fixed: does nothing."""

    def get_vocab(self, vocab: Iterable[str] | None = None) -> dict[str, int]:
        """The tokenizer's ``{token: id}`` mapping (``vocab`` is ignored; the reference's signature has it)."""
        result: dict[str, int] = self.tokenizer.get_vocab()
        return result

    def save(self, output_path: str) -> None:
        self.tokenizer.save_pretrained(output_path)

    @staticmethod
    def load(input_path: str) -> TransformersTokenizerWrapper:
        from transformers import AutoTokenizer

        return TransformersTokenizerWrapper(AutoTokenizer.from_pretrained(input_path, use_fast=True))
