"""Word tokenizers of the classic modules (:class:`~sentrs.sentence_transformer.modules.WordEmbeddings`,
:class:`~sentrs.sentence_transformer.modules.BoW`): whitespace and phrase splitting over a fixed vocabulary."""

from __future__ import annotations

from sentrs.sentence_transformer.modules.tokenizer.phrase import PhraseTokenizer
from sentrs.sentence_transformer.modules.tokenizer.stop_words import ENGLISH_STOP_WORDS
from sentrs.sentence_transformer.modules.tokenizer.whitespace import WhitespaceTokenizer
from sentrs.sentence_transformer.modules.tokenizer.word import TransformersTokenizerWrapper, WordTokenizer

__all__ = [
    "ENGLISH_STOP_WORDS",
    "PhraseTokenizer",
    "TransformersTokenizerWrapper",
    "WhitespaceTokenizer",
    "WordTokenizer",
]
