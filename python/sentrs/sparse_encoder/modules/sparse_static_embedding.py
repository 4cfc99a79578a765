"""``SparseStaticEmbedding``: the inference-free side of asymmetric sparse models (one weight per vocabulary token)."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.tokenized_input import TokenizedTextInput

__all__ = ["SparseStaticEmbedding"]


class SparseStaticEmbedding(TokenizedTextInput):
    """Embeds a text as ``presence(token) * weight[token]`` over the vocabulary, with no model forward pass.

    The text is tokenized without special tokens (Rust core); every token present gets its static weight (an idf
    value, say). A ``sentence_embedding`` already in the features multiplies the result, as in the reference.

    Args:
        tokenizer: a transformers tokenizer (fast).
        weight: ``(vocab,)`` weights; ones when None.
        frozen: whether the weights are excluded from training.
    """

    config_keys: ClassVar[list[str]] = ["frozen"]
    add_special_tokens: ClassVar[bool] = False
    reference_type: ClassVar[str] = (
        "sentence_transformers.sparse_encoder.modules.sparse_static_embedding.SparseStaticEmbedding"
    )

    def __init__(self, tokenizer: Any, weight: Any = None, frozen: bool = False) -> None:
        super().__init__()
        if tokenizer is None or not hasattr(tokenizer, "get_vocab"):
            raise TypeError(f"tokenizer must be a transformers tokenizer, got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        if weight is None:
            weight = torch.ones(len(tokenizer.get_vocab()))
        weight = torch.as_tensor(weight)
        if weight.ndim != 1:
            raise ValueError(f"weight must be a 1-D (vocab,) tensor, got shape {tuple(weight.shape)}")
        if not weight.is_floating_point():
            weight = weight.float()
        self.weight = nn.Parameter(weight, requires_grad=not frozen)
        self.frozen = frozen
        self.processing_kwargs: dict[str, Any] = {}
        self._input_names = ["input_ids", "attention_mask"]
        self._init_tokenizer_state()

    @property
    def num_dimensions(self) -> int:
        return int(self.weight.shape[0])

    def get_embedding_dimension(self) -> int:
        return self.num_dimensions

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        input_ids = features["input_ids"]
        mask = features["attention_mask"]
        if input_ids.numel() and int(input_ids.max()) >= self.num_dimensions:
            raise ValueError(
                f"token id {int(input_ids.max())} is outside the {self.num_dimensions} static weights; the "
                "tokenizer and the weights do not match"
            )
        presence = torch.zeros(
            input_ids.shape[0], self.num_dimensions, dtype=self.weight.dtype, device=input_ids.device
        )
        # amax: a token counts as present when any attended position holds it (padding never clears it).
        presence.scatter_reduce_(1, input_ids, mask.to(self.weight.dtype), reduce="amax")
        embeddings = presence * self.weight
        previous = features.get("sentence_embedding")
        if previous is not None:
            embeddings = embeddings * previous
        features["sentence_embedding"] = embeddings
        return features

    # ------------------------------------------------------------------ construction, save / load
    @classmethod
    def from_json(
        cls,
        json_path: str,
        tokenizer: Any,
        token: bool | str | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        local_files_only: bool = False,
        **config: Any,
    ) -> SparseStaticEmbedding:
        """Weights from a ``{token: weight}`` JSON file, or from ``idf.json`` of a Hub repository id."""
        path = os.fspath(json_path)
        if not os.path.exists(path):
            from huggingface_hub import hf_hub_download

            try:
                path = hf_hub_download(
                    path,
                    "idf.json",
                    revision=revision,
                    token=token,
                    cache_dir=cache_folder,
                    local_files_only=local_files_only,
                )
            except Exception as exc:
                raise ValueError(
                    f"json_path must be a JSON file or a Hub repository with idf.json, got {json_path!r}: {exc}"
                ) from exc
        with open(path, encoding="utf-8") as f:
            mapping = json.load(f)
        if not isinstance(mapping, dict):
            raise ValueError(f"{path} must hold a JSON object of token -> weight, got {type(mapping).__name__}")
        weight = torch.zeros(len(tokenizer.get_vocab()), dtype=torch.float32)
        if mapping:
            ids = tokenizer.convert_tokens_to_ids(list(mapping))
            weight[torch.tensor(ids, dtype=torch.int64)] = torch.tensor(list(mapping.values()), dtype=torch.float32)
        return cls(tokenizer, weight=weight, **config)

    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        self.tokenizer.save_pretrained(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)
        self.save_config(output_path)

    @classmethod
    def load(
        cls,
        model_dir: str,
        processor_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> SparseStaticEmbedding:
        import transformers

        config = cls.load_config(model_dir)
        tokenizer_kwargs = {k: v for k, v in (processor_kwargs or {}).items() if k != "trust_remote_code"}
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, **tokenizer_kwargs)
        json_path = config.pop("path", None)
        if isinstance(json_path, str) and json_path.endswith(".json"):
            if not os.path.isabs(json_path) and os.path.exists(os.path.join(model_dir, json_path)):
                json_path = os.path.join(model_dir, json_path)
            return cls.from_json(json_path, tokenizer, **config)
        return cls(tokenizer, weight=_read_weight(model_dir), **config)

    def __repr__(self) -> str:
        return (
            f"SparseStaticEmbedding({self.get_config_dict()}, dim={self.num_dimensions}, "
            f"tokenizer={type(self.tokenizer).__name__})"
        )


def _read_weight(model_dir: str) -> torch.Tensor:
    """The saved ``weight`` tensor (its own length, whatever the tokenizer's vocabulary size)."""
    from sentrs.base.modules.module import read_weights_file

    state = read_weights_file(model_dir)
    if "weight" not in state:
        raise ValueError(f"the weights in {model_dir} have no 'weight' tensor, got keys {sorted(state)}")
    return state["weight"]
