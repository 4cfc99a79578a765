"""The phrase-aware word tokenizer of the classic modules (needs NLTK)."""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Iterable
from typing import Any, ClassVar

from sentrs.sentence_transformer.modules.tokenizer.word import ENGLISH_STOP_WORDS, WordTokenizer, match_word

__all__ = ["PhraseTokenizer"]

logger = logging.getLogger(__name__)

CONFIG_FILE_NAME = "phrasetokenizer_config.json"


def _require_nltk(cls_name: str) -> None:
    try:
        import nltk  # noqa: F401 - only checks that it is installed
    except ImportError as exc:
        raise ImportError(f"{cls_name} needs NLTK to split words; install it with `pip install nltk`") from exc


class PhraseTokenizer(WordTokenizer):
    """Splits a text into words with NLTK and merges runs of words that form a vocabulary phrase into one token.

    Phrases are vocabulary entries whose words are joined by ``ngram_separator`` (``New_York`` in the Google News
    word2vec vocabulary); ``"New York is big"`` gives ``[New_York, is, big]`` before lookup. Longer phrases are
    merged first. A word is then looked up as written, lowercased, and lowercased without surrounding ASCII
    punctuation; the first spelling that is a stop word drops it, the first in the vocabulary gives its index.
    ``do_lower_case`` is saved with the config but, as in the reference, does not change tokenization.

    Args:
        vocab: the words and phrases; an entry's index is its position.
        stop_words: words that are never returned.
        do_lower_case: kept in the config.
        ngram_separator: the character joining the words of a phrase.
        max_ngram_length: phrases of more words than this are not merged.
    """

    reference_type: ClassVar[str] = (
        "sentence_transformers.sentence_transformer.modules.tokenizer.phrase.PhraseTokenizer"
    )

    def __init__(
        self,
        vocab: Iterable[str] = [],
        stop_words: Iterable[str] = ENGLISH_STOP_WORDS,
        do_lower_case: bool = False,
        ngram_separator: str = "_",
        max_ngram_length: int = 5,
    ) -> None:
        _require_nltk(type(self).__name__)
        self.stop_words = set(stop_words)
        self.do_lower_case = do_lower_case
        self.ngram_separator = ngram_separator
        self.max_ngram_length = max_ngram_length
        self.set_vocab(vocab)

    def get_vocab(self) -> Iterable[str]:
        return self.vocab

    def set_vocab(self, vocab: Iterable[str]) -> None:
        self.vocab = vocab
        self.word2idx = {word: idx for idx, word in enumerate(vocab)}
        self.ngram_lookup: set[str] = set()
        self.ngram_lengths: set[int] = set()
        sep = self.ngram_separator
        for word in self.word2idx:
            if not sep or sep not in word or sep + sep in word:
                continue  # no phrase, or a malformed one (``a__b`` appears in word2vec vocabularies)
            length = word.count(sep) + 1
            if length <= self.max_ngram_length:
                self.ngram_lookup.add(word)
                self.ngram_lengths.add(length)
        if self.word2idx:
            logger.info("PhraseTokenizer: %d phrases of lengths %s", len(self.ngram_lookup), self.ngram_lengths)

    def _merge_phrases(self, words: list[str]) -> list[str]:
        """Replaces each run of words that spells a known phrase (as written, or lowercased) by the phrase."""
        for n in sorted(self.ngram_lengths, reverse=True):
            start = 0
            while start + n <= len(words):
                candidate = self.ngram_separator.join(words[start : start + n])
                if candidate in self.ngram_lookup:
                    words[start : start + n] = [candidate]
                elif candidate.lower() in self.ngram_lookup:
                    words[start : start + n] = [candidate.lower()]
                start += 1
        return words

    def tokenize(self, text: str, **kwargs: Any) -> list[int]:
        from nltk import word_tokenize

        ids: list[int] = []
        for word in self._merge_phrases(word_tokenize(text, preserve_line=True)):
            lower = word.lower()
            stripped = lower.strip(string.punctuation)
            # an empty stripped spelling is never looked up (it could only match a stop word, which drops too)
            forms = (word, lower, stripped) if stripped else (word, lower)
            idx = match_word(forms, self.stop_words, self.word2idx)
            if idx is not None:
                ids.append(idx)
        return ids

    def save(self, output_path: str) -> None:
        config = {
            "vocab": list(self.word2idx),
            "stop_words": sorted(self.stop_words),
            "do_lower_case": self.do_lower_case,
            "ngram_separator": self.ngram_separator,
            "max_ngram_length": self.max_ngram_length,
        }
        with open(os.path.join(output_path, CONFIG_FILE_NAME), "w", encoding="utf-8") as f:
            json.dump(config, f)

    @staticmethod
    def load(input_path: str) -> PhraseTokenizer:
        with open(os.path.join(input_path, CONFIG_FILE_NAME), encoding="utf-8") as f:
            config = json.load(f)
        return PhraseTokenizer(**config)
