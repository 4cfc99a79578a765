"""Type stubs for the Rust extension ``sentrs._core``."""

from os import PathLike
from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "Encoding",
    "SparseIndex",
    "SpladeHeadWeights",
    "Tokenizer",
    "__version__",
    "_mark_forked",
    "candidate_search",
    "code_dot_topk_i8",
    "code_dot_topk_u8",
    "community_detection",
    "cpu_features",
    "dense_to_csr",
    "detected_simd_level",
    "hamming_topk",
    "intern_str_columns",
    "intern_u64",
    "maxsim",
    "maxsim_amx_supported",
    "maxsim_pairwise",
    "maxsim_topk",
    "mine_pairs",
    "no_duplicates_batches",
    "normalize",
    "num_threads",
    "plan_batches",
    "pool",
    "rescore_bits",
    "rescore_rows",
    "set_simd_ceiling",
    "simd_level",
    "similarity_matrix",
    "similarity_pairwise",
    "splade_max_head",
    "splade_pool",
    "supported_simd_levels",
    "token_assign",
    "token_inverted_lists",
    "token_kmeans",
    "topk_last_pass",
    "topk_search",
    "topk_self_search",
]

__version__: str

def _mark_forked() -> None: ...
def num_threads() -> int: ...
def simd_level() -> str: ...
def detected_simd_level() -> str: ...
def supported_simd_levels() -> list[str]: ...
def set_simd_ceiling(level: str | None = None) -> None: ...
def cpu_features() -> list[tuple[str, bool]]: ...
def topk_last_pass() -> tuple[str, int, int]: ...

@final
class Tokenizer:
    @staticmethod
    def from_str(
        json: str,
        *,
        max_length: int | None = None,
        truncation_strategy: str = "longest_first",
        truncation_side: str = "right",
        pad_id: int = 0,
        pad_type_id: int = 0,
        padding_side: str = "right",
    ) -> Tokenizer: ...
    @staticmethod
    def from_file(
        path: str | PathLike[str],
        *,
        max_length: int | None = None,
        truncation_strategy: str = "longest_first",
        truncation_side: str = "right",
        pad_id: int = 0,
        pad_type_id: int = 0,
        padding_side: str = "right",
    ) -> Tokenizer: ...
    @property
    def max_length(self) -> int | None: ...
    @property
    def vocab_size(self) -> int: ...
    def token_to_id(self, token: str) -> int | None: ...
    def encode(
        self, texts: list[str], pairs: list[str | None] | None = None, *, add_special_tokens: bool = True
    ) -> Encoding: ...
    def embed_mean(self, texts: list[str], weights: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

@final
class Encoding:
    def __len__(self) -> int: ...
    def lengths(self) -> npt.NDArray[np.int64]: ...
    def ids(self, row: int) -> list[int]: ...
    def flat(self, rows: list[int] | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
    def pad(
        self, rows: list[int] | None = None, *, pad_to: int | None = None, pad_to_multiple_of: int | None = None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...

def plan_batches(
    lengths: list[int], batch_size: int, max_tokens: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def pool(
    token_embeddings: npt.NDArray[np.float32],
    attention_mask: npt.NDArray[np.int64],
    modes: list[str],
    skip_first: int = 0,
) -> npt.NDArray[np.float32]: ...
def normalize(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
def similarity_matrix(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], similarity_fn_name: str
) -> npt.NDArray[np.float32]: ...
def similarity_pairwise(
    a: npt.NDArray[np.float32], b: npt.NDArray[np.float32], similarity_fn_name: str
) -> npt.NDArray[np.float32]: ...
def maxsim(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = ...,
    kernel: str = "auto",
) -> npt.NDArray[np.float32]: ...
def maxsim_amx_supported() -> bool: ...
def maxsim_topk(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    k: int,
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = ...,
    kernel: str = "auto",
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def token_kmeans(
    data: npt.NDArray[np.float32], k: int, iterations: int = 8, seed: int = 0
) -> npt.NDArray[np.float32]: ...
def token_assign(data: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32]) -> npt.NDArray[np.uint32]: ...
def token_inverted_lists(
    codes: npt.NDArray[np.uint32], document_offsets: npt.NDArray[np.int64], n_centroids: int
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]: ...
def candidate_search(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    centroids: npt.NDArray[np.float32],
    codes: npt.NDArray[np.uint32],
    list_ids: npt.NDArray[np.uint32],
    list_offsets: npt.NDArray[np.int64],
    k: int,
    nprobe: int,
    candidates: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def maxsim_pairwise(
    queries: npt.NDArray[np.float32],
    query_offsets: npt.NDArray[np.int64],
    documents: npt.NDArray[np.float32],
    document_offsets: npt.NDArray[np.int64],
    query_weights: npt.NDArray[np.float32] | None = None,
    empty_score: float = ...,
) -> npt.NDArray[np.float32]: ...
def topk_search(
    queries: npt.NDArray[np.float32],
    corpus: npt.NDArray[np.float32],
    k: int,
    score_function: str = "cosine",
    corpus_chunk_size: int = 8192,
    exclude_self: bool = False,
    *,
    force_fp32: bool = False,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def community_detection(
    embeddings: npt.NDArray[np.float32],
    threshold: float = 0.75,
    min_community_size: int = 10,
    batch_size: int = 1024,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def mine_pairs(
    ids: npt.NDArray[np.int64], scores: npt.NDArray[np.float32], max_pairs: int
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def hamming_topk(
    queries: npt.NDArray[np.uint8], corpus: npt.NDArray[np.uint8], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint32]]: ...
def code_dot_topk_u8(
    queries: npt.NDArray[np.uint8], corpus: npt.NDArray[np.uint8], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def code_dot_topk_i8(
    queries: npt.NDArray[np.int8], corpus: npt.NDArray[np.int8], k: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def splade_pool(
    logits: npt.NDArray[np.float32],
    attention_mask: npt.NDArray[np.int64],
    pooling_strategy: str = "max",
    activation_function: str = "relu",
    max_active_dims: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def splade_max_head(
    hidden: npt.NDArray[np.float32],
    attention_mask: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float32],
    bias: npt.NDArray[np.float32] | None = None,
    activation_function: str = "relu",
    max_active_dims: int | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]] | None: ...
def dense_to_csr(
    x: npt.NDArray[np.float32], max_active_dims: int | None = None
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def rescore_bits(
    queries: npt.NDArray[np.float32], corpus: npt.NDArray[np.uint8], ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]: ...
def rescore_rows(
    queries: npt.NDArray[np.float32], corpus: npt.NDArray[np.float32], ids: npt.NDArray[np.int64]
) -> npt.NDArray[np.float32]: ...

@final
class SpladeHeadWeights:
    def __new__(
        cls, weight: npt.NDArray[np.float32], bias: npt.NDArray[np.float32] | None = None
    ) -> SpladeHeadWeights: ...
    @property
    def vocab(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def max_pool(
        self,
        hidden: npt.NDArray[np.float32],
        attention_mask: npt.NDArray[np.int64],
        activation_function: str = "relu",
        max_active_dims: int | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]] | None: ...

@final
class SparseIndex:
    def __new__(
        cls,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
        dim: int,
    ) -> SparseIndex: ...
    def __len__(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def search(
        self,
        indptr: npt.NDArray[np.int64],
        indices: npt.NDArray[np.int64],
        values: npt.NDArray[np.float32],
        k: int,
        score_function: str = "dot",
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...

def topk_self_search(
    embeddings: npt.NDArray[np.float32], k: int, score_function: str = "cosine"
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]: ...
def intern_str_columns(columns: list[list[str]]) -> tuple[npt.NDArray[np.uint32], int]: ...
def intern_u64(hashes: npt.NDArray[np.uint64]) -> tuple[npt.NDArray[np.uint32], int]: ...
def no_duplicates_batches(
    ids: npt.NDArray[np.uint32], num_values: int, order: npt.NDArray[np.int64], batch_size: int, drop_last: bool
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
