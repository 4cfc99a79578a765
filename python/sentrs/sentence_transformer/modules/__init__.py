"""Modules of dense models, importable as ``sentrs.sentence_transformer.modules`` and the old path ``sentrs.models``.

The shared modules of :mod:`sentrs.base.modules` are here too, as in the reference, with the static and classic
modules (imported on first use), and the deprecated ``CLIPModel``.
"""

from __future__ import annotations

from sentrs._lazy import lazy_module_attrs
from sentrs.base.modules import Asym, Dense, InputModule, Module, Normalize, Router, Transformer
from sentrs.sentence_transformer.modules.pooling import Pooling

_LAZY = {
    "CLIPModel": "sentrs.sentence_transformer.modules.clip_model",
    "StaticEmbedding": "sentrs.sentence_transformer.modules.static_embedding",
    "WordEmbeddings": "sentrs.sentence_transformer.modules.word_embeddings",
    "WordWeights": "sentrs.sentence_transformer.modules.word_weights",
    "BoW": "sentrs.sentence_transformer.modules.bow",
    "CNN": "sentrs.sentence_transformer.modules.cnn",
    "LSTM": "sentrs.sentence_transformer.modules.lstm",
    "LayerNorm": "sentrs.sentence_transformer.modules.layer_norm",
    "Dropout": "sentrs.sentence_transformer.modules.dropout",
    "WeightedLayerPooling": "sentrs.sentence_transformer.modules.weighted_layer_pooling",
    "tokenizer": "sentrs.sentence_transformer.modules.tokenizer:-",
    "WhitespaceTokenizer": "sentrs.sentence_transformer.modules.tokenizer",
    "WordTokenizer": "sentrs.sentence_transformer.modules.tokenizer",
    "PhraseTokenizer": "sentrs.sentence_transformer.modules.tokenizer",
    "ENGLISH_STOP_WORDS": "sentrs.sentence_transformer.modules.tokenizer",
}

__all__ = [
    "CNN",
    "LSTM",
    "Asym",
    "BoW",
    "CLIPModel",
    "Dense",
    "Dropout",
    "InputModule",
    "LayerNorm",
    "Module",
    "Normalize",
    "Pooling",
    "Router",
    "StaticEmbedding",
    "Transformer",
    "WeightedLayerPooling",
    "WordEmbeddings",
    "WordWeights",
]

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)
