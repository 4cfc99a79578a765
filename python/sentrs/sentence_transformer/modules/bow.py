"""Bag-of-words sentence vectors (term counts or tf-idf) over a fixed vocabulary."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from sentrs.base.modules.module import InputModule
from sentrs.sentence_transformer.modules.tokenizer import WhitespaceTokenizer
from sentrs.sentence_transformer.modules.word_weights import vocab_weights

__all__ = ["BoW"]


class BoW(InputModule):
    """A ``sentence_embedding`` of size ``len(vocab)`` per text, built in :meth:`preprocess`: entry ``i`` is the
    weight of word ``i`` times its count in the text (or just its weight when it occurs, with
    ``cumulative_term_frequency=False``). With idf values as ``word_weights`` this is a tf-idf vector.

    Texts are split on whitespace (no stop words, case kept; see :class:`WhitespaceTokenizer` for the lookup).
    The module saves only its config, into a numbered folder even as the first module, as in the reference.

    Args:
        vocab: the words; repeats are dropped, keeping the first.
        word_weights: word -> weight; words missing here are also looked up lowercased.
        unknown_word_weight: the weight of vocabulary words with no entry.
        cumulative_term_frequency: add the weight once per occurrence (True) or once per text (False).
    """

    save_in_root: ClassVar[bool] = False
    modalities: ClassVar[list[str]] = ["text"]
    config_keys: ClassVar[list[str]] = ["vocab", "word_weights", "unknown_word_weight", "cumulative_term_frequency"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.bow.BoW"

    def __init__(
        self,
        vocab: list[str],
        word_weights: dict[str, float] = {},  # noqa: B006 - the reference's default; never mutated
        unknown_word_weight: float = 1,
        cumulative_term_frequency: bool = True,
    ) -> None:
        super().__init__()
        vocab = list(dict.fromkeys(vocab))
        self.vocab = vocab
        self.word_weights = word_weights
        self.unknown_word_weight = unknown_word_weight
        self.cumulative_term_frequency = cumulative_term_frequency
        self.weights = vocab_weights(vocab, word_weights, unknown_word_weight)
        self._weights_f32 = np.asarray(self.weights, dtype=np.float32)
        self.tokenizer = WhitespaceTokenizer(vocab, stop_words=set(), do_lower_case=False)
        self.sentence_embedding_dimension = len(vocab)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Passes ``features`` through: :meth:`preprocess` already built ``sentence_embedding``."""
        return features

    def preprocess(self, inputs: list[str], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """``{"sentence_embedding": (batch, len(vocab)) float32}`` for ``inputs`` (each prefixed by ``prompt``)."""
        if prompt:
            inputs = [prompt + text for text in inputs]
        return self.get_sentence_features([self.tokenizer.tokenize(text, **kwargs) for text in inputs])

    def get_sentence_features(self, tokenized_texts: list[list[int]], pad_seq_length: int = 0) -> dict[str, Any]:
        """The bag-of-words vectors of texts given as vocabulary indices (``pad_seq_length`` is unused)."""
        vectors = np.zeros((len(tokenized_texts), self.sentence_embedding_dimension), dtype=np.float32)
        for row, ids in zip(vectors, tokenized_texts):
            if not ids:
                continue
            idx = np.asarray(ids, dtype=np.int64)
            if self.cumulative_term_frequency:
                np.add.at(row, idx, self._weights_f32[idx])  # one float32 addition per occurrence, in order
            else:
                row[idx] = self._weights_f32[idx]
        return {"sentence_embedding": torch.from_numpy(vectors)}

    def get_embedding_dimension(self) -> int:
        return self.sentence_embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
