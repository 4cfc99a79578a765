"""sentrs: a Rust-accelerated, drop-in alternative to sentence-transformers.

``from sentrs import SentenceTransformer`` works like ``from sentence_transformers import SentenceTransformer``
and reads and writes the same model folders.

Importing sentrs imports nothing heavy: every public name is loaded on first use. The model classes themselves do
not import torch either: ``SentenceTransformer(path, backend="onnx")`` (or ``"openvino"``, and ``CrossEncoder``) on a
folder of plain modules runs the exported file in sentrs' engine without torch, and the same class loads its torch
modules for everything else (see :mod:`sentrs.base.model`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr
from sentrs.util.deprecated_import import setup_deprecated_module_imports

__version__ = "0.1.0"
__MODEL_HUB_ORGANIZATION__ = "sentence-transformers"

_LAZY = {
    "CrossEncoder": "sentrs.cross_encoder.model",
    "SentenceTransformer": "sentrs.sentence_transformer.model",
    "SparseEncoder": "sentrs.sparse_encoder.model",
    "MultiVectorEncoder": "sentrs.multi_vector_encoder.model",
    "MultiVectorEncoderModelCardData": "sentrs.multi_vector_encoder.model_card",
    "MultiVectorEncoderTrainer": "sentrs.multi_vector_encoder.trainer",
    "MultiVectorEncoderTrainingArguments": "sentrs.multi_vector_encoder.training_args",
    "SimilarityFunction": "sentrs.util.similarity",
    "mine_hard_negatives": "sentrs.util.hard_negatives",
    "resolve_ids": "sentrs.util.dataset",
    "quantize_embeddings": "sentrs.util.quantization",
    "export_dynamic_quantized_onnx_model": "sentrs.backend.export",
    "export_optimized_onnx_model": "sentrs.backend.export",
    "export_static_quantized_openvino_model": "sentrs.backend.export",
    "evaluation": "sentrs.evaluation:-",
    "losses": "sentrs.losses:-",
    "models": "sentrs.models:-",
    "util": "sentrs.util:-",
    # The subpackages the reference's __init__ imports, so ``sentence_transformers.cross_encoder.losses`` style
    # attribute paths work after a bare ``import sentence_transformers``.
    "base": "sentrs.base:-",
    "backend": "sentrs.backend:-",
    "sentence_transformer": "sentrs.sentence_transformer:-",
    "sparse_encoder": "sentrs.sparse_encoder:-",
    "cross_encoder": "sentrs.cross_encoder:-",
    "multi_vector_encoder": "sentrs.multi_vector_encoder:-",
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
    "install_as_sentence_transformers": "sentrs.compat",
    "DefaultBatchSampler": "sentrs.base.sampler",
    "MultiDatasetDefaultBatchSampler": "sentrs.base.sampler",
    "LoggingHandler": "sentrs.util.logging",
    "SentenceTransformerTrainer": "sentrs.sentence_transformer.trainer",
    "CrossEncoderTrainer": "sentrs.cross_encoder.trainer",
    "CrossEncoderTrainingArguments": "sentrs.cross_encoder.training_args",
    "SparseEncoderTrainer": "sentrs.sparse_encoder.trainer",
    "SparseEncoderTrainingArguments": "sentrs.sparse_encoder.training_args",
    "SentenceTransformerTrainingArguments": "sentrs.sentence_transformer.training_args",
    "SentenceTransformerModelCardData": "sentrs.sentence_transformer.model_card",
    "SparseEncoderModelCardData": "sentrs.sparse_encoder.model_card",
    "CrossEncoderModelCardData": "sentrs.cross_encoder.model_card",
    "InputExample": "sentrs.sentence_transformer.readers.input_example",
    "ParallelSentencesDataset": "sentrs.sentence_transformer.datasets.parallel_sentences",
    "SentencesDataset": "sentrs.sentence_transformer.datasets.sentences",
}

# The reference's top-level names that sentrs does not implement yet, by the feature they belong to.
_NOT_YET: dict[str, str] = {}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

# The reference's old import paths (sentrs.models, sentrs.losses, ...) keep working, with a DeprecationWarning.
setup_deprecated_module_imports()

if TYPE_CHECKING:
    from sentrs import util
    from sentrs.backend.export import (
        export_dynamic_quantized_onnx_model,
        export_optimized_onnx_model,
        export_static_quantized_openvino_model,
    )
    from sentrs.base.sampler import DefaultBatchSampler, MultiDatasetDefaultBatchSampler
    from sentrs.compat import install_as_sentence_transformers
    from sentrs.cross_encoder.model import CrossEncoder
    from sentrs.cross_encoder.model_card import CrossEncoderModelCardData
    from sentrs.cross_encoder.trainer import CrossEncoderTrainer
    from sentrs.cross_encoder.training_args import CrossEncoderTrainingArguments
    from sentrs.multi_vector_encoder.model import MultiVectorEncoder
    from sentrs.multi_vector_encoder.model_card import MultiVectorEncoderModelCardData
    from sentrs.multi_vector_encoder.trainer import MultiVectorEncoderTrainer
    from sentrs.multi_vector_encoder.training_args import MultiVectorEncoderTrainingArguments

    # The old paths sentrs.evaluation, sentrs.losses and sentrs.models (deprecated, as in the reference).
    from sentrs.sentence_transformer import evaluation as evaluation
    from sentrs.sentence_transformer import losses as losses
    from sentrs.sentence_transformer import modules as models  # noqa: F401 - the lazy attribute sentrs.models
    from sentrs.sentence_transformer.datasets.parallel_sentences import ParallelSentencesDataset
    from sentrs.sentence_transformer.datasets.sentences import SentencesDataset
    from sentrs.sentence_transformer.model import SentenceTransformer
    from sentrs.sentence_transformer.model_card import SentenceTransformerModelCardData
    from sentrs.sentence_transformer.readers.input_example import InputExample
    from sentrs.sentence_transformer.trainer import SentenceTransformerTrainer
    from sentrs.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from sentrs.sparse_encoder.model import SparseEncoder
    from sentrs.sparse_encoder.model_card import SparseEncoderModelCardData
    from sentrs.sparse_encoder.trainer import SparseEncoderTrainer
    from sentrs.sparse_encoder.training_args import SparseEncoderTrainingArguments
    from sentrs.util.dataset import resolve_ids
    from sentrs.util.hard_negatives import mine_hard_negatives
    from sentrs.util.logging import LoggingHandler
    from sentrs.util.quantization import quantize_embeddings
    from sentrs.util.similarity import SimilarityFunction

__all__ = [
    "CrossEncoder",
    "CrossEncoderModelCardData",
    "CrossEncoderTrainer",
    "CrossEncoderTrainingArguments",
    "DefaultBatchSampler",
    "InputExample",
    "LoggingHandler",
    "MultiDatasetDefaultBatchSampler",
    "MultiVectorEncoder",
    "MultiVectorEncoderModelCardData",
    "MultiVectorEncoderTrainer",
    "MultiVectorEncoderTrainingArguments",
    "ParallelSentencesDataset",
    "SentenceTransformer",
    "SentenceTransformerModelCardData",
    "SentenceTransformerTrainer",
    "SentenceTransformerTrainingArguments",
    "SentencesDataset",
    "SimilarityFunction",
    "SparseEncoder",
    "SparseEncoderModelCardData",
    "SparseEncoderTrainer",
    "SparseEncoderTrainingArguments",
    "__version__",
    "export_dynamic_quantized_onnx_model",
    "export_optimized_onnx_model",
    "export_static_quantized_openvino_model",
    "install_as_sentence_transformers",
    "mine_hard_negatives",
    "quantize_embeddings",
    "resolve_ids",
    "util",
]
