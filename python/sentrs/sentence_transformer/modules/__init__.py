"""Modules of dense models, importable as ``sentrs.sentence_transformer.modules`` and the old path ``sentrs.models``.

The shared modules of :mod:`sentrs.base.modules` are here too, as in the reference. Its older modules that sentrs
does not implement yet (``BoW``, ``CNN``, ``StaticEmbedding``, ...) raise
:class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from sentrs._unavailable import unavailable_getattr
from sentrs.base.modules import Asym, Dense, InputModule, Module, Normalize, Router, Transformer
from sentrs.sentence_transformer.modules.pooling import Pooling

__all__ = ["Asym", "Dense", "InputModule", "Module", "Normalize", "Pooling", "Router", "Transformer"]

__getattr__ = unavailable_getattr(
    __name__,
    {
        name: "the {name} module"
        for name in (
            "BoW",
            "CLIPModel",
            "CNN",
            "Dropout",
            "LSTM",
            "LayerNorm",
            "StaticEmbedding",
            "WeightedLayerPooling",
            "WordEmbeddings",
            "WordWeights",
        )
    },
)
