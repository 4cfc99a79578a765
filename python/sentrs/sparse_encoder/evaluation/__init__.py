"""Evaluators for sparse embedding models, as in the reference's ``sparse_encoder.evaluation``.

They subclass the dense evaluators (:mod:`sentrs.sentence_transformer.evaluation`): ``max_active_dims`` replaces
``truncate_dim``, the embeddings stay sparse (pairwise scores over the active dimensions, retrieval on the Rust
inverted index), and the metrics gain sparsity statistics (``active_dims``, ``sparsity_ratio``, per side where there
are several, and ``avg_flops`` for retrieval):

- :class:`SparseInformationRetrievalEvaluator`, :class:`SparseNanoBEIREvaluator` (downloads its data from the
  Hugging Face Hub), :class:`SparseRerankingEvaluator`;
- :class:`SparseEmbeddingSimilarityEvaluator`, :class:`SparseBinaryClassificationEvaluator`,
  :class:`SparseTripletEvaluator`, :class:`SparseTranslationEvaluator`, :class:`SparseMSEEvaluator`;
- :class:`ReciprocalRankFusionEvaluator`, which fuses precomputed dense and sparse rankings (hybrid search).

Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_PACKAGE = "sentrs.sparse_encoder.evaluation"

_LAZY = {
    "ReciprocalRankFusionEvaluator": f"{_PACKAGE}.reciprocal_rank_fusion",
    "SparseBinaryClassificationEvaluator": f"{_PACKAGE}.sparse_binary_classification",
    "SparseEmbeddingSimilarityEvaluator": f"{_PACKAGE}.sparse_embedding_similarity",
    "SparseInformationRetrievalEvaluator": f"{_PACKAGE}.sparse_information_retrieval",
    "SparseMSEEvaluator": f"{_PACKAGE}.sparse_mse",
    "SparseNanoBEIREvaluator": f"{_PACKAGE}.sparse_nano_beir",
    "SparseRerankingEvaluator": f"{_PACKAGE}.sparse_reranking",
    "SparseTranslationEvaluator": f"{_PACKAGE}.sparse_translation",
    "SparseTripletEvaluator": f"{_PACKAGE}.sparse_triplet",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.sparse_encoder.evaluation.reciprocal_rank_fusion import ReciprocalRankFusionEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_binary_classification import SparseBinaryClassificationEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_embedding_similarity import SparseEmbeddingSimilarityEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_information_retrieval import SparseInformationRetrievalEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_mse import SparseMSEEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_nano_beir import SparseNanoBEIREvaluator
    from sentrs.sparse_encoder.evaluation.sparse_reranking import SparseRerankingEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_translation import SparseTranslationEvaluator
    from sentrs.sparse_encoder.evaluation.sparse_triplet import SparseTripletEvaluator

__all__ = [
    "ReciprocalRankFusionEvaluator",
    "SparseBinaryClassificationEvaluator",
    "SparseEmbeddingSimilarityEvaluator",
    "SparseInformationRetrievalEvaluator",
    "SparseMSEEvaluator",
    "SparseNanoBEIREvaluator",
    "SparseRerankingEvaluator",
    "SparseTranslationEvaluator",
    "SparseTripletEvaluator",
]
