"""The whitespace word tokenizer of the classic modules."""

from __future__ import annotations

import json
import os
import string
from collections.abc import Iterable
from typing import Any, ClassVar

from sentrs.sentence_transformer.modules.tokenizer.word import ENGLISH_STOP_WORDS, WordTokenizer, match_word

__all__ = ["WhitespaceTokenizer"]

CONFIG_FILE_NAME = "whitespacetokenizer_config.json"


class WhitespaceTokenizer(WordTokenizer):
    """Splits a text on whitespace and maps each word to its vocabulary index.

    A word is looked up as written, then with leading and trailing ASCII punctuation removed, then lowercased;
    the first spelling that is a stop word drops the word, the first in the vocabulary gives its index, and a word
    with neither is dropped.

    Args:
        vocab: the words; a word's index is its position (a repeated word keeps its last index).
        stop_words: words that are never returned.
        do_lower_case: lowercase the whole text before splitting.
    """

    reference_type: ClassVar[str] = (
        "sentence_transformers.sentence_transformer.modules.tokenizer.whitespace.WhitespaceTokenizer"
    )

    def __init__(
        self,
        vocab: Iterable[str] = [],
        stop_words: Iterable[str] = ENGLISH_STOP_WORDS,
        do_lower_case: bool = False,
    ) -> None:
        self.stop_words = set(stop_words)
        self.do_lower_case = do_lower_case
        self.set_vocab(vocab)

    def get_vocab(self) -> Iterable[str]:
        return self.vocab

    def set_vocab(self, vocab: Iterable[str]) -> None:
        self.vocab = vocab
        self.word2idx = {word: idx for idx, word in enumerate(vocab)}

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        if self.do_lower_case:
            text = text.lower()
        ids: list[int] = []
        for word in text.split():
            stripped = word.strip(string.punctuation)
            idx = match_word((word, stripped, stripped.lower()), self.stop_words, self.word2idx)
            if idx is not None:
                ids.append(idx)
        return ids

    def save(self, output_path: str) -> None:
        config = {
            "vocab": list(self.word2idx),
            "stop_words": sorted(self.stop_words),
            "do_lower_case": self.do_lower_case,
        }
        with open(os.path.join(output_path, CONFIG_FILE_NAME), "w", encoding="utf-8") as f:
            json.dump(config, f)

    @staticmethod
    def load(input_path: str) -> WhitespaceTokenizer:
        with open(os.path.join(input_path, CONFIG_FILE_NAME), encoding="utf-8") as f:
            config = json.load(f)
        return WhitespaceTokenizer(**config)
