"""Token embeddings as a learned weighted mean of a transformer's hidden layers."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.module import Module
from sentrs.util.decorators import deprecated_kwargs

__all__ = ["WeightedLayerPooling"]


class WeightedLayerPooling(Module):
    """Replaces ``token_embeddings`` by ``sum_l w_l * h_l / sum_l w_l`` over the hidden states ``h_l`` of layers
    ``layer_start`` to ``num_hidden_layers`` (``features["all_layer_embeddings"]``; index 0 is the embedding
    layer). The Transformer before it must run with ``output_hidden_states=True`` in its model config; without
    ``all_layer_embeddings`` the features pass through unchanged.

    Args:
        embedding_dimension: the hidden size (old name ``word_embedding_dimension``).
        num_hidden_layers: the transformer's layer count.
        layer_start: the first hidden state included.
        layer_weights: initial weights, one per included layer (default all ones); saved as ``layer_weights``.
    """

    config_keys: ClassVar[list[str]] = ["embedding_dimension", "layer_start", "num_hidden_layers"]
    config_key_renames: ClassVar[dict[str, str]] = {"word_embedding_dimension": "embedding_dimension"}
    reference_type: ClassVar[str] = (
        "sentence_transformers.sentence_transformer.modules.weighted_layer_pooling.WeightedLayerPooling"
    )

    @deprecated_kwargs(word_embedding_dimension="embedding_dimension")
    def __init__(
        self,
        embedding_dimension: int,
        num_hidden_layers: int = 12,
        layer_start: int = 4,
        layer_weights: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.embedding_dimension = embedding_dimension
        self.layer_start = layer_start
        self.num_hidden_layers = num_hidden_layers
        if layer_weights is None:
            layer_weights = torch.ones(num_hidden_layers + 1 - layer_start)
        # a Parameter even when given a plain tensor, so it trains and is saved
        self.layer_weights = layer_weights if isinstance(layer_weights, nn.Parameter) else nn.Parameter(layer_weights)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        hidden_states = features.get("all_layer_embeddings")
        if hidden_states is None:
            return features
        layers = torch.stack(list(hidden_states))[self.layer_start :]  # (layers, batch, words, dim)
        weights = self.layer_weights.view(-1, 1, 1, 1)
        features["token_embeddings"] = (weights * layers).sum(dim=0) / self.layer_weights.sum()
        return features

    def get_embedding_dimension(self) -> int:
        return self.embedding_dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> WeightedLayerPooling:
        module = cls(**cls.load_config(model_dir))
        module.load_torch_weights(model_dir)
        return module
