"""The reference's ``util`` API: similarity, tensor helpers, quantisation, hard-negative mining, files, environment.

Host (CPU, float32, no autograd) data is computed by the Rust core; everything else stays in torch. Names load
on first use, so importing this package imports no torch. The reference's names sentrs lacks (module classes from
custom code, ``ORIGINAL_TRANSFORMER_MODELS``) raise
:class:`~sentrs.exceptions.NotYetAvailableError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sentrs._lazy import lazy_module_attrs
from sentrs._unavailable import unavailable_getattr

_LAZY = {
    "resolve_ids": "sentrs.util.dataset",
    "save_to_hub_args_decorator": "sentrs.util.decorators",
    "all_gather": "sentrs.util.distributed",
    "all_gather_with_grad": "sentrs.util.distributed",
    "all_gather_padded": "sentrs.util.distributed",
    "cat_padded_token_embeddings": "sentrs.util.tensor",
    "repad_flattened_features": "sentrs.util.tensor",
    "stack_padded_token_embeddings": "sentrs.util.tensor",
    "get_rank": "sentrs.util.distributed",
    "get_world_size": "sentrs.util.distributed",
    "check_package_availability": "sentrs.util.environment",
    "check_version_requirements": "sentrs.util.environment",
    "get_device_name": "sentrs.util.environment",
    "is_accelerate_available": "sentrs.util.environment",
    "is_datasets_available": "sentrs.util.environment",
    "is_dist_initialized": "sentrs.util.environment",
    "is_training_available": "sentrs.util.environment",
    "disabled_tqdm": "sentrs.util.file_io",
    "http_get": "sentrs.util.file_io",
    "is_sentence_transformer_model": "sentrs.util.file_io",
    "load_dir_path": "sentrs.util.file_io",
    "load_file_path": "sentrs.util.file_io",
    "mine_hard_negatives": "sentrs.util.hard_negatives",
    "LoggingHandler": "sentrs.util.logging",
    "install_logger": "sentrs.util.logging",
    "append_to_last_row": "sentrs.util.misc",
    "check_teacher_targets": "sentrs.util.misc",
    "disable_datasets_caching": "sentrs.util.misc",
    "disable_logging": "sentrs.util.misc",
    "fullname": "sentrs.util.misc",
    "import_from_string": "sentrs.util.misc",
    "similarity_fct_name": "sentrs.util.misc",
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
    "maxsim": "sentrs.util.similarity",
    "maxsim_pairwise": "sentrs.util.similarity",
    "mean_maxsim": "sentrs.util.similarity",
    "mean_maxsim_pairwise": "sentrs.util.similarity",
    "dot_score": "sentrs.util.similarity",
    "euclidean_sim": "sentrs.util.similarity",
    "manhattan_sim": "sentrs.util.similarity",
    "pairwise_angle_sim": "sentrs.util.similarity",
    "pairwise_cos_sim": "sentrs.util.similarity",
    "pairwise_dot_score": "sentrs.util.similarity",
    "pairwise_euclidean_sim": "sentrs.util.similarity",
    "pairwise_manhattan_sim": "sentrs.util.similarity",
    "pytorch_cos_sim": "sentrs.util.similarity",
    "_convert_to_batch": "sentrs.util.tensor",
    "_convert_to_batch_tensor": "sentrs.util.tensor",
    "_convert_to_tensor": "sentrs.util.tensor",
    "_move_tensors_to_cpu": "sentrs.util.tensor",
    "batch_to_device": "sentrs.util.tensor",
    "compute_count_vector": "sentrs.util.tensor",
    "normalize_embeddings": "sentrs.util.tensor",
    "select_max_active_dims": "sentrs.util.tensor",
    "to_scipy_coo": "sentrs.util.tensor",
    "truncate_embeddings": "sentrs.util.tensor",
}

# The reference's names that sentrs does not implement yet, by the feature they belong to.
_NOT_YET = {
    "import_module_class": "module classes from custom code",
    "ORIGINAL_TRANSFORMER_MODELS": "the reference's list of model names without an organisation (sentrs matches "
    "name families, see sentrs.base.hub)",
}

__getattr__, __dir__ = lazy_module_attrs(__name__, _LAZY, missing=unavailable_getattr(__name__, _NOT_YET))

if TYPE_CHECKING:
    from sentrs.util.dataset import resolve_ids
    from sentrs.util.decorators import save_to_hub_args_decorator
    from sentrs.util.distributed import all_gather, all_gather_padded, all_gather_with_grad, get_rank, get_world_size
    from sentrs.util.environment import (
        check_package_availability,
        check_version_requirements,
        get_device_name,
        is_accelerate_available,
        is_datasets_available,
        is_dist_initialized,
        is_training_available,
    )
    from sentrs.util.file_io import (
        disabled_tqdm,
        http_get,
        is_sentence_transformer_model,
        load_dir_path,
        load_file_path,
    )
    from sentrs.util.hard_negatives import mine_hard_negatives
    from sentrs.util.logging import LoggingHandler, install_logger
    from sentrs.util.misc import (
        append_to_last_row,
        check_teacher_targets,
        disable_datasets_caching,
        disable_logging,
        fullname,
        import_from_string,
        similarity_fct_name,
    )
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
        maxsim,
        maxsim_pairwise,
        mean_maxsim,
        mean_maxsim_pairwise,
        pairwise_angle_sim,
        pairwise_cos_sim,
        pairwise_dot_score,
        pairwise_euclidean_sim,
        pairwise_manhattan_sim,
        pytorch_cos_sim,
    )
    from sentrs.util.tensor import (
        _convert_to_batch,
        _convert_to_batch_tensor,
        _convert_to_tensor,
        _move_tensors_to_cpu,
        batch_to_device,
        cat_padded_token_embeddings,
        compute_count_vector,
        normalize_embeddings,
        repad_flattened_features,
        select_max_active_dims,
        stack_padded_token_embeddings,
        to_scipy_coo,
        truncate_embeddings,
    )

__all__ = [
    "LoggingHandler",
    "QuantizedIndex",
    "SimilarityFunction",
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "all_gather",
    "all_gather_padded",
    "all_gather_with_grad",
    "append_to_last_row",
    "batch_to_device",
    "cat_padded_token_embeddings",
    "check_package_availability",
    "check_teacher_targets",
    "check_version_requirements",
    "community_detection",
    "compute_count_vector",
    "cos_sim",
    "disable_datasets_caching",
    "disable_logging",
    "disabled_tqdm",
    "dot_score",
    "euclidean_sim",
    "fullname",
    "get_device_name",
    "get_rank",
    "get_world_size",
    "http_get",
    "import_from_string",
    "information_retrieval",
    "install_logger",
    "is_accelerate_available",
    "is_datasets_available",
    "is_dist_initialized",
    "is_sentence_transformer_model",
    "is_training_available",
    "load_dir_path",
    "load_file_path",
    "manhattan_sim",
    "maxsim",
    "maxsim_pairwise",
    "mean_maxsim",
    "mean_maxsim_pairwise",
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
    "repad_flattened_features",
    "resolve_ids",
    "save_to_hub_args_decorator",
    "select_max_active_dims",
    "semantic_search",
    "semantic_search_faiss",
    "semantic_search_usearch",
    "similarity_fct_name",
    "stack_padded_token_embeddings",
    "to_scipy_coo",
    "truncate_embeddings",
]
