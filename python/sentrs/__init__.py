"""sentrs: a Rust-accelerated, drop-in alternative to sentence-transformers.

``from sentrs import SentenceTransformer`` works like ``from sentence_transformers import SentenceTransformer``
and reads and writes the same model folders.
"""

from __future__ import annotations

__version__ = "0.1.0"
__MODEL_HUB_ORGANIZATION__ = "sentence-transformers"

from sentrs import evaluation, losses, models, util
from sentrs.backend import (
    export_dynamic_quantized_onnx_model,
    export_optimized_onnx_model,
    export_static_quantized_openvino_model,
)
from sentrs.base.modules import Dense, Normalize, Router, Transformer
from sentrs.base.registry import register_module_class
from sentrs.cross_encoder.model import CrossEncoder
from sentrs.sentence_transformer.model import SentenceTransformer
from sentrs.sentence_transformer.modules import Pooling
from sentrs.sparse_encoder.model import SparseEncoder
from sentrs.sparse_encoder.modules import MLMTransformer, SparseAutoEncoder, SparseStaticEmbedding, SpladePooling
from sentrs.util.hard_negatives import mine_hard_negatives
from sentrs.util.quantization import quantize_embeddings
from sentrs.util.similarity import SimilarityFunction

for _cls in (Transformer, Pooling, Dense, Normalize, SpladePooling, MLMTransformer, SparseStaticEmbedding):
    register_module_class(_cls)
register_module_class(SparseAutoEncoder)
register_module_class(Router, "Asym")
del _cls

__all__ = [
    "CrossEncoder",
    "SentenceTransformer",
    "SimilarityFunction",
    "SparseEncoder",
    "__version__",
    "evaluation",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "export_static_quantized_openvino_model",
    "losses",
    "mine_hard_negatives",
    "models",
    "quantize_embeddings",
    "util",
]
