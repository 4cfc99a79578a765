"""The reference's ``util`` API: similarity, tensor helpers, quantisation, hard-negative mining.

Host (CPU, float32, no autograd) data is computed by the Rust core; everything else stays in torch. Names load
on first use, so importing this package imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs

_LAZY = {
    "mine_hard_negatives": "sentrs.util.hard_negatives",
    "fullname": "sentrs.util.misc",
    "import_from_string": "sentrs.util.misc",
    "QuantizedIndex": "sentrs.util.quantization",
    "quantize_embeddings": "sentrs.util.quantization",
    "semantic_search_faiss": "sentrs.util.quantization",
    "semantic_search_usearch": "sentrs.util.quantization",
    "community_detection": "sentrs.util.retrieval",
    "information_retrieval": "sentrs.util.retrieval",
    "paraphrase_mining": "sentrs.util.retrieval",
    "paraphrase_mining_embeddings": "sentrs.util.retrieval",
    "semantic_search": "sentrs.util.retrieval",
    "SimilarityFunction": "sentrs.util.similarity",
    "cos_sim": "sentrs.util.similarity",
    "dot_score": "sentrs.util.similarity",
    "euclidean_sim": "sentrs.util.similarity",
    "manhattan_sim": "sentrs.util.similarity",
    "pairwise_angle_sim": "sentrs.util.similarity",
    "pairwise_cos_sim": "sentrs.util.similarity",
    "pairwise_dot_score": "sentrs.util.similarity",
    "pairwise_euclidean_sim": "sentrs.util.similarity",
    "pairwise_manhattan_sim": "sentrs.util.similarity",
    "pytorch_cos_sim": "sentrs.util.similarity",
    "_convert_to_batch_tensor": "sentrs.util.tensor",
    "_convert_to_tensor": "sentrs.util.tensor",
    "batch_to_device": "sentrs.util.tensor",
    "compute_count_vector": "sentrs.util.tensor",
    "normalize_embeddings": "sentrs.util.tensor",
    "select_max_active_dims": "sentrs.util.tensor",
    "to_scipy_coo": "sentrs.util.tensor",
    "truncate_embeddings": "sentrs.util.tensor",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY)

if TYPE_CHECKING:
    from sentrs.util.hard_negatives import mine_hard_negatives
    from sentrs.util.misc import fullname, import_from_string
    from sentrs.util.quantization import (
        QuantizedIndex,
        quantize_embeddings,
        semantic_search_faiss,
        semantic_search_usearch,
    )
    from sentrs.util.retrieval import (
        community_detection,
        information_retrieval,
        paraphrase_mining,
        paraphrase_mining_embeddings,
        semantic_search,
    )
    from sentrs.util.similarity import (
        SimilarityFunction,
        cos_sim,
        dot_score,
        euclidean_sim,
        manhattan_sim,
        pairwise_angle_sim,
        pairwise_cos_sim,
        pairwise_dot_score,
        pairwise_euclidean_sim,
        pairwise_manhattan_sim,
        pytorch_cos_sim,
    )
    from sentrs.util.tensor import (
        _convert_to_batch_tensor,
        _convert_to_tensor,
        batch_to_device,
        compute_count_vector,
        normalize_embeddings,
        select_max_active_dims,
        to_scipy_coo,
        truncate_embeddings,
    )

__all__ = [
    "QuantizedIndex",
    "SimilarityFunction",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "batch_to_device",
    "community_detection",
    "compute_count_vector",
    "cos_sim",
    "dot_score",
    "euclidean_sim",
    "fullname",
    "import_from_string",
    "information_retrieval",
    "manhattan_sim",
    "mine_hard_negatives",
    "normalize_embeddings",
    "pairwise_angle_sim",
    "pairwise_cos_sim",
    "pairwise_dot_score",
    "pairwise_euclidean_sim",
    "pairwise_manhattan_sim",
    "paraphrase_mining",
    "paraphrase_mining_embeddings",
    "pytorch_cos_sim",
    "quantize_embeddings",
    "select_max_active_dims",
    "semantic_search",
    "semantic_search_faiss",
    "semantic_search_usearch",
    "to_scipy_coo",
    "truncate_embeddings",
]
