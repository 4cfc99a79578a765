"""SPLADE pooling: MLM logits to one sparse vocabulary-sized vector."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import Tensor

from sentrs import ops
from sentrs.base.modules.flattened import flattened_rows
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

    Besides the padded layout (``token_embeddings: (batch, seq, vocab)`` with ``attention_mask: (batch, seq)``)
    it takes the flattened one that flash-attention unpadding produces: ``token_embeddings: (1, total, vocab)``
    holding the sequences back to back, and ``cu_seq_lens_q: (batch + 1,)`` their cumulative lengths (no
    attention mask). Those are pooled one sequence at a time, never copied into a padded tensor.
    """

    SPLADE_POOLING_MODES: ClassVar[tuple[str, ...]] = ("sum", "max")

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
        if "cu_seq_lens_q" in features:
            return self._pool_flattened_to_csr(logits, features["cu_seq_lens_q"], max_active_dims)
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
        if "cu_seq_lens_q" in features:
            features["sentence_embedding"] = self._pool_flattened(logits, features["cu_seq_lens_q"])
            return features
        mask = features["attention_mask"].unsqueeze(-1).to(logits.dtype)
        batch, seq, vocab = logits.shape
        if self.pooling_strategy == "max":
            pooled = torch.full((batch, vocab), float("-inf"), dtype=logits.dtype, device=logits.device)
        else:
            pooled = torch.zeros((batch, vocab), dtype=logits.dtype, device=logits.device)
        step = seq if not self.chunk_size or self.chunk_size <= 0 else self.chunk_size
        for start in range(0, seq, step):
            # The masked product is a fresh tensor, so relu in place saves one vocabulary-sized buffer per chunk.
            x = torch.log1p((logits[:, start : start + step] * mask[:, start : start + step]).relu_())
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

    def _pool_flattened(self, logits: Tensor, cu_seq_lens: Any) -> Tensor:
        """Torch pooling of flattened logits ``(1, total, vocab)``, one sequence at a time (bounded memory)."""
        flat, bounds = flattened_rows(logits, cu_seq_lens, "vocab")
        pooled: list[Tensor] = []
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            x = torch.log1p(torch.relu(flat[start:end]))
            if self.activation_function == "log1p_relu":
                x = torch.log1p(x)
            pooled.append(x.amax(dim=0) if self.pooling_strategy == "max" else x.sum(dim=0))
        if self.embedding_dimension is None:
            self.embedding_dimension = int(flat.shape[-1])
        return torch.stack(pooled) if pooled else flat.new_zeros((0, flat.shape[-1]))

    def _pool_flattened_to_csr(
        self, logits: Tensor, cu_seq_lens: Any, max_active_dims: int | None
    ) -> ops.CsrArrays | None:
        """The Rust path for flattened logits: each sequence is a zero-copy ``(1, length, vocab)`` view."""
        flat, bounds = flattened_rows(logits, cu_seq_lens, "vocab")
        host = host_float32(flat)
        if host is None:
            return None
        if self.embedding_dimension is None:
            self.embedding_dimension = int(flat.shape[-1])
        parts = []
        for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            ones = np.ones((1, end - start), dtype=np.int64)
            parts.append(
                ops.splade_pool(
                    host[None, start:end], ones, self.pooling_strategy, self.activation_function, max_active_dims
                )
            )
        return concat_csr(parts)


def concat_csr(parts: list[ops.CsrArrays]) -> ops.CsrArrays:
    """CSR blocks of consecutive rows, stacked into one ``(indptr, indices, values)``."""
    indptr = [np.zeros(1, dtype=np.int64)]
    for row_ptr, _, _ in parts:
        indptr.append(row_ptr[1:] + indptr[-1][-1])
    return (
        np.concatenate(indptr),
        np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64),
        np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=np.float32),
    )
