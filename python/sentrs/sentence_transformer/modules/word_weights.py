"""Per-word weights (idf, say) applied to the token embeddings of a word-level model."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.module import Module

__all__ = ["WordWeights", "vocab_weights"]

logger = logging.getLogger(__name__)


def vocab_weights(vocab: list[str], word_weights: dict[str, float], unknown_word_weight: float) -> list[float]:
    """The weight of each vocabulary word: ``word_weights[word]``, else ``word_weights[word.lower()]``, else
    ``unknown_word_weight``."""
    weights: list[float] = []
    missing = 0
    for word in vocab:
        if word in word_weights:
            weights.append(word_weights[word])
        elif word.lower() in word_weights:
            weights.append(word_weights[word.lower()])
        else:
            weights.append(unknown_word_weight)
            missing += 1
    logger.info("%d of %d words have no weight; they get %s", missing, len(vocab), unknown_word_weight)
    return weights


class WordWeights(Module):
    """Scales each token embedding by its word's weight and records the weight sum per text.

    Reads ``input_ids``, ``attention_mask`` and ``token_embeddings``; writes the weighted ``token_embeddings`` and
    ``token_weights_sum`` ``(batch,)`` (the sum of the weights of the attended tokens), which
    :class:`~sentrs.sentence_transformer.modules.Pooling` divides by in its mean modes, so that mean pooling
    becomes a weighted mean.

    The weights are built from the config on load, as the reference does: the saved ``emb_layer.weight`` (written
    for the reference's sake) is not read back, so weights changed by training do not survive a save.

    Args:
        vocab: the vocabulary of the word tokenizer, in index order.
        word_weights: word -> weight; words missing here are also looked up lowercased.
        unknown_word_weight: the weight of vocabulary words with no entry.
    """

    config_keys: ClassVar[list[str]] = ["vocab", "word_weights", "unknown_word_weight"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.word_weights.WordWeights"

    def __init__(self, vocab: list[str], word_weights: dict[str, float], unknown_word_weight: float = 1) -> None:
        super().__init__()
        self.vocab = vocab
        self.word_weights = word_weights
        self.unknown_word_weight = unknown_word_weight
        weights = torch.tensor(vocab_weights(vocab, word_weights, unknown_word_weight), dtype=torch.float32)
        weights = weights.to(torch.get_default_dtype())  # rounded to float32 first, as the reference
        self.emb_layer = nn.Embedding(len(vocab), 1, _weight=weights.unsqueeze(1))

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        tokens = features["token_embeddings"]
        weights = self.emb_layer(features["input_ids"]).squeeze(-1) * features["attention_mask"].float()
        features["token_embeddings"] = tokens * weights.unsqueeze(-1)
        features["token_weights_sum"] = weights.sum(1)
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
