"""L2 normalisation of the sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from sentrs.base.modules.module import Module
from sentrs.base.tensors import normalize_embeddings

__all__ = ["Normalize"]


class Normalize(Module):
    """Normalises ``features[module_input_name]`` to unit L2 norm (``x / max(||x||, 1e-12)``)."""

    config_keys: ClassVar[list[str]] = ["module_input_name", "module_output_name"]
    reference_type: ClassVar[str] = "sentence_transformers.base.modules.normalize.Normalize"

    def __init__(
        self, module_input_name: str = "sentence_embedding", module_output_name: str = "sentence_embedding"
    ) -> None:
        super().__init__()
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x = features[self.module_input_name]
        if isinstance(x, torch.Tensor) and x.dim() == 2:
            features[self.module_output_name] = normalize_embeddings(x)
        else:
            features[self.module_output_name] = torch.nn.functional.normalize(x, p=2, dim=-1)
        return features
