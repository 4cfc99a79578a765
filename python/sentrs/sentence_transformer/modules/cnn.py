"""1-D convolutions over token embeddings, one per kernel size, concatenated."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.module import Module
from sentrs.util.decorators import deprecated_kwargs

__all__ = ["CNN"]


class CNN(Module):
    """Runs one ``nn.Conv1d`` per kernel size over ``token_embeddings`` and concatenates their channels.

    Each convolution pads ``(kernel_size - 1) // 2`` on both sides, so odd kernels with stride 1 keep the sequence
    length; the output ``token_embeddings`` are ``(batch, words, out_channels * len(kernel_sizes))``.

    Args:
        in_embedding_dimension: the size of the incoming token embeddings (old name
            ``in_word_embedding_dimension``).
        out_channels: channels of each convolution.
        kernel_sizes: one convolution per size.
        stride_sizes: the stride of each convolution (default 1 for all).
    """

    config_keys: ClassVar[list[str]] = ["in_embedding_dimension", "out_channels", "kernel_sizes", "stride_sizes"]
    config_file_name: ClassVar[str] = "cnn_config.json"
    config_key_renames: ClassVar[dict[str, str]] = {"in_word_embedding_dimension": "in_embedding_dimension"}
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.cnn.CNN"

    @deprecated_kwargs(in_word_embedding_dimension="in_embedding_dimension")
    def __init__(
        self,
        in_embedding_dimension: int,
        out_channels: int = 256,
        kernel_sizes: list[int] = [1, 3, 5],  # noqa: B006 - the reference's default; copied, never mutated
        stride_sizes: list[int] | None = None,
    ) -> None:
        super().__init__()
        kernel_sizes = list(kernel_sizes)
        stride_sizes = [1] * len(kernel_sizes) if stride_sizes is None else list(stride_sizes)
        if len(stride_sizes) != len(kernel_sizes):
            raise ValueError(
                f"stride_sizes must have one stride per kernel size, got {len(stride_sizes)} strides for "
                f"{len(kernel_sizes)} kernel sizes"
            )
        self.in_embedding_dimension = in_embedding_dimension
        self.out_channels = out_channels
        self.kernel_sizes = kernel_sizes
        self.stride_sizes = stride_sizes
        self.embeddings_dimension = out_channels * len(kernel_sizes)
        self.convs = nn.ModuleList(
            nn.Conv1d(in_embedding_dimension, out_channels, kernel_size=k, stride=s, padding=(k - 1) // 2)
            for k, s in zip(kernel_sizes, stride_sizes)
        )

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        channels_first = features["token_embeddings"].transpose(1, -1)  # (batch, dim, words)
        out = torch.cat([conv(channels_first) for conv in self.convs], 1)
        features["token_embeddings"] = out.transpose(1, -1)
        return features

    def get_embedding_dimension(self) -> int:
        return self.embeddings_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> CNN:
        module = cls(**cls.load_config(model_dir))
        module.load_torch_weights(model_dir)
        return module
