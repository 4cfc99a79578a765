"""SPLADE pooling: MLM logits to one sparse vocabulary-sized vector."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch

from sentrs import ops
from sentrs.base.modules.module import Module
from sentrs.base.tensors import host_float32

__all__ = ["SpladePooling"]


class SpladePooling(Module):
    """``pool_t log1p(relu(logits))`` over attended tokens (``log1p`` twice for ``log1p_relu``).

    Args:
        pooling_strategy: ``max`` or ``sum`` over the sequence.
        activation_function: ``relu`` or ``log1p_relu``.
        embedding_dimension: vocabulary size (filled on the first forward when None).
        chunk_size: sequence chunk for the torch path (memory); not saved, as in the reference.

    On the CPU at inference time the pooling runs in the Rust core in one pass over the logits.
    """

    config_keys: ClassVar[list[str]] = ["pooling_strategy", "activation_function", "embedding_dimension"]
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}
    reference_type: ClassVar[str] = "sentence_transformers.sparse_encoder.modules.splade_pooling.SpladePooling"

    def __init__(
        self,
        pooling_strategy: Literal["max", "sum"] = "max",
        activation_function: Literal["relu", "log1p_relu"] = "relu",
        embedding_dimension: int | None = None,
        chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if pooling_strategy not in ("max", "sum"):
            raise ValueError(f"pooling_strategy must be 'max' or 'sum', got {pooling_strategy!r}")
        if activation_function not in ("relu", "log1p_relu"):
            raise ValueError(f"activation_function must be 'relu' or 'log1p_relu', got {activation_function!r}")
        self.pooling_strategy = pooling_strategy
        self.activation_function = activation_function
        self.embedding_dimension = embedding_dimension
        self.chunk_size = chunk_size

    def get_embedding_dimension(self) -> int | None:
        return self.embedding_dimension

    def pool_to_csr(self, features: dict[str, Any], max_active_dims: int | None) -> ops.CsrArrays | None:
        """The Rust path: CSR rows straight from host float32 logits, or None when they live elsewhere."""
        logits = features["token_embeddings"]
        host = host_float32(logits)
        mask = features["attention_mask"]
        if host is None or mask.device.type != "cpu":
            return None
        if self.embedding_dimension is None:
            self.embedding_dimension = int(logits.shape[-1])
        return ops.splade_pool(
            host, mask.to(torch.int64).numpy(), self.pooling_strategy, self.activation_function, max_active_dims
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits = features["token_embeddings"]
        mask = features["attention_mask"].unsqueeze(-1).to(logits.dtype)
        batch, seq, vocab = logits.shape
        if self.pooling_strategy == "max":
            pooled = torch.full((batch, vocab), float("-inf"), dtype=logits.dtype, device=logits.device)
        else:
            pooled = torch.zeros((batch, vocab), dtype=logits.dtype, device=logits.device)
        step = seq if not self.chunk_size or self.chunk_size <= 0 else self.chunk_size
        for start in range(0, seq, step):
            x = torch.log1p(torch.relu(logits[:, start : start + step] * mask[:, start : start + step]))
            if self.activation_function == "log1p_relu":
                x = torch.log1p(x)
            if self.pooling_strategy == "max":
                pooled = torch.maximum(pooled, x.max(dim=1).values)
            else:
                pooled = pooled + x.sum(dim=1)
        if self.embedding_dimension is None:
            self.embedding_dimension = vocab
        features["sentence_embedding"] = pooled
        return features
