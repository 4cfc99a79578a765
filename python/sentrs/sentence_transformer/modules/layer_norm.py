"""Layer normalisation of the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

from sentrs.base.modules.module import Module

__all__ = ["LayerNorm"]


class LayerNorm(Module):
    """``nn.LayerNorm(dimension)`` (learned scale and shift) on ``sentence_embedding`` ``(batch, dimension)``.

    Args:
        dimension: the size of the sentence embedding.
    """

    config_keys: ClassVar[list[str]] = ["dimension"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.layer_norm.LayerNorm"

    def __init__(self, dimension: int) -> None:
        super().__init__()
        self.dimension = dimension
        self.norm = nn.LayerNorm(dimension)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        features["sentence_embedding"] = self.norm(features["sentence_embedding"])
        return features

    def get_embedding_dimension(self) -> int:
        return self.dimension

    def save(self, output_path: str, *args: Any, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> LayerNorm:
        module = cls(**cls.load_config(model_dir))
        module.load_torch_weights(model_dir)
        return module
