"""sentrs: a Rust-accelerated, drop-in alternative to sentence-transformers.

``from sentrs import SentenceTransformer`` works like ``from sentence_transformers import SentenceTransformer``
and reads and writes the same model folders.

Importing sentrs imports nothing heavy: every public name is loaded on first use. ``SentenceTransformer``,
``CrossEncoder`` and ``SparseEncoder`` load a torch-free pipeline for ``backend="onnx"``/``"openvino"`` on a folder
that already holds the exported file, and the torch model classes otherwise (see :mod:`sentrs.backend.lite`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

__version__ = "0.1.0"
__MODEL_HUB_ORGANIZATION__ = "sentence-transformers"

_LAZY = {
    "CrossEncoder": "sentrs.backend.lite.facade",
    "SentenceTransformer": "sentrs.backend.lite.facade",
    "SparseEncoder": "sentrs.backend.lite.facade",
    "SimilarityFunction": "sentrs.util.similarity",
    "mine_hard_negatives": "sentrs.util.hard_negatives",
    "quantize_embeddings": "sentrs.util.quantization",
    "export_dynamic_quantized_onnx_model": "sentrs.backend.export",
    "export_optimized_onnx_model": "sentrs.backend.export",
    "export_static_quantized_openvino_model": "sentrs.backend.export",
    "evaluation": "sentrs.evaluation:-",
    "losses": "sentrs.losses:-",
    "models": "sentrs.models:-",
    "util": "sentrs.util:-",
    "Dense": "sentrs.base.modules.dense",
    "Normalize": "sentrs.base.modules.normalize",
    "Router": "sentrs.base.modules.router",
    "Transformer": "sentrs.base.modules.transformer",
    "Pooling": "sentrs.sentence_transformer.modules.pooling",
    "MLMTransformer": "sentrs.sparse_encoder.modules.mlm_transformer",
    "SparseAutoEncoder": "sentrs.sparse_encoder.modules.sparse_auto_encoder",
    "SparseStaticEmbedding": "sentrs.sparse_encoder.modules.sparse_static_embedding",
    "SpladePooling": "sentrs.sparse_encoder.modules.splade_pooling",
    "register_module_class": "sentrs.base.registry",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs import evaluation, losses, models, util
    from sentrs.backend.export import (
        export_dynamic_quantized_onnx_model,
        export_optimized_onnx_model,
        export_static_quantized_openvino_model,
    )
    from sentrs.cross_encoder.model import CrossEncoder
    from sentrs.sentence_transformer.model import SentenceTransformer
    from sentrs.sparse_encoder.model import SparseEncoder
    from sentrs.util.hard_negatives import mine_hard_negatives
    from sentrs.util.quantization import quantize_embeddings
    from sentrs.util.similarity import SimilarityFunction

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
