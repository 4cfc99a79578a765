"""Dropout on the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from sentrs.base.modules.module import Module

__all__ = ["Dropout"]


class Dropout(Module):
    """Zeroes entries of ``sentence_embedding`` with probability ``dropout`` while training (scaling the rest by
    ``1 / (1 - dropout)``); the identity in eval mode, so ``encode`` is unaffected.

    Args:
        dropout: the drop probability.
    """

    config_keys: ClassVar[list[str]] = ["dropout"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.dropout.Dropout"

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        self.dropout = dropout
        self.dropout_layer = nn.Dropout(dropout)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = self.dropout_layer(features["sentence_embedding"])
        return features

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
