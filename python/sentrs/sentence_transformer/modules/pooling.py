"""Pooling of token embeddings into one sentence embedding."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from sentrs import ops
from sentrs.base.formats import POOLING_LEGACY_KEYS, legacy_pooling_config
from sentrs.base.modules.module import Module
from sentrs.base.tensors import host_float32

__all__ = ["Pooling"]

PoolingMode = Literal["cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]

POOLING_MODES: tuple[str, ...] = ops.POOLING_MODES


class Pooling(Module):
    """Pools ``token_embeddings`` under the attention mask into ``sentence_embedding``.

    Args:
        embedding_dimension: size of each token embedding.
        pooling_mode: one of ``cls``, ``max``, ``mean``, ``mean_sqrt_len_tokens``, ``weightedmean``,
            ``lasttoken``, or a list of them (outputs concatenated in that order).
        include_prompt: when False, the prompt's tokens are left out of the pooling.

    The legacy keyword arguments (``word_embedding_dimension``, ``pooling_mode_mean_tokens=True``, ...) are
    accepted too. On the CPU at inference time the pooling runs in the Rust core; on other devices and under
    autograd it runs in torch, with the same definitions.
    """

    config_keys: ClassVar[list[str]] = ["embedding_dimension", "pooling_mode", "include_prompt"]
    reference_type: ClassVar[str] = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"

    def __init__(
        self,
        embedding_dimension: int | None = None,
        pooling_mode: PoolingMode | str | list[str] | tuple[str, ...] = "mean",
        include_prompt: bool = True,
        **legacy: Any,
    ) -> None:
        super().__init__()
        config = dict(legacy)
        if embedding_dimension is not None:
            config["embedding_dimension"] = embedding_dimension
        if pooling_mode != "mean" or not any(key in config for key, _ in POOLING_LEGACY_KEYS):
            config["pooling_mode"] = pooling_mode
        config = legacy_pooling_config(config)
        unknown = set(config) - {"embedding_dimension", "pooling_mode"}
        if unknown:
            raise TypeError(f"Pooling got unexpected keyword arguments {sorted(unknown)}")
        if "embedding_dimension" not in config:
            raise TypeError("Pooling needs embedding_dimension (the size of the token embeddings)")
        mode = config["pooling_mode"]
        if isinstance(mode, (list, tuple)):
            mode = mode[0] if len(mode) == 1 else tuple(mode)
        modes = (mode,) if isinstance(mode, str) else mode
        if not modes:
            raise ValueError(f"pooling_mode must name at least one mode of {POOLING_MODES}, got none")
        for m in modes:
            if m not in POOLING_MODES:
                raise ValueError(f"Invalid pooling mode: {m!r}. Valid pooling modes are: {POOLING_MODES}.")
        self.embedding_dimension = int(config["embedding_dimension"])
        self.pooling_mode = mode
        self.include_prompt = include_prompt
        self.pooling_output_dimension = len(modes) * self.embedding_dimension

    @property
    def modes(self) -> tuple[str, ...]:
        """The active modes, in output order."""
        return (self.pooling_mode,) if isinstance(self.pooling_mode, str) else tuple(self.pooling_mode)

    @classmethod
    def load_config(cls, model_dir: str, config_filename: str | None = None) -> dict[str, Any]:
        return legacy_pooling_config(super().load_config(model_dir, config_filename))

    def get_config_dict(self) -> dict[str, Any]:
        mode = self.pooling_mode if isinstance(self.pooling_mode, str) else list(self.pooling_mode)
        return {
            "embedding_dimension": self.embedding_dimension,
            "pooling_mode": mode,
            "include_prompt": self.include_prompt,
        }

    def get_embedding_dimension(self) -> int:
        return self.pooling_output_dimension

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        tokens: Tensor = features["token_embeddings"]
        prompt_length = 0
        if not self.include_prompt and "prompt_length" in features:
            pl = features["prompt_length"]
            prompt_length = int(pl.reshape(-1)[0].item()) if isinstance(pl, Tensor) else int(pl)
        mask = features.get("attention_mask")
        if mask is None or mask.shape[-1] != tokens.shape[1]:
            mask = torch.ones(tokens.shape[:-1], device=tokens.device, dtype=torch.int64)
        special = "cls_token_embeddings" in features or "token_weights_sum" in features
        host = None if special else host_float32(tokens)
        if host is not None and mask.device.type == "cpu":
            mask_np = mask.to(torch.int64).numpy()
            pooled = ops.pool(host, mask_np, list(self.modes), prompt_length)
            features["sentence_embedding"] = torch.from_numpy(pooled)
        else:
            features["sentence_embedding"] = torch.cat(self._pool_torch(tokens, mask, features, prompt_length), -1)
        return features

    def _pool_torch(self, tokens: Tensor, mask: Tensor, features: dict[str, Any], prompt_length: int) -> list[Tensor]:
        """The same definitions in torch, for CUDA tensors and the gradient path."""
        acc_dtype = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
        original = mask
        start = original.to(torch.int32).argmax(dim=1)
        if prompt_length:
            positions = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0)
            mask = mask.masked_fill(positions < (start + prompt_length).unsqueeze(1), 0)
        outputs: list[Tensor] = []
        hidden = tokens.shape[-1]
        for mode in self.modes:
            if mode == "cls":
                if "cls_token_embeddings" in features:
                    outputs.append(features["cls_token_embeddings"])
                    continue
                first = mask.to(torch.int32).argmax(dim=1)
                idx = first.view(-1, 1, 1).expand(-1, 1, hidden)
                outputs.append(torch.gather(tokens, 1, idx).squeeze(1))
            elif mode == "max":
                m = mask.unsqueeze(-1).expand_as(tokens)
                outputs.append(tokens.masked_fill(m == 0, float("-inf")).max(dim=1).values)
            elif mode in ("mean", "mean_sqrt_len_tokens"):
                m = mask.unsqueeze(-1).to(tokens.dtype)
                total = (tokens * m).sum(dim=1, dtype=acc_dtype)
                if "token_weights_sum" in features:
                    count = features["token_weights_sum"].unsqueeze(-1).to(acc_dtype)
                else:
                    count = m.sum(dim=1, dtype=acc_dtype)
                count = torch.clamp(count, min=1e-9)
                denom = count if mode == "mean" else torch.sqrt(count)
                outputs.append((total / denom).to(tokens.dtype))
            elif mode == "weightedmean":
                m = mask.unsqueeze(-1).to(acc_dtype)
                weights = torch.arange(1, tokens.shape[1] + 1, device=tokens.device, dtype=acc_dtype).view(1, -1, 1)
                weights = weights - start.view(-1, 1, 1).to(acc_dtype)
                wm = m * weights
                total = (tokens * wm).sum(dim=1)
                denom = features["token_weights_sum"].unsqueeze(-1) if "token_weights_sum" in features else wm.sum(1)
                outputs.append((total / torch.clamp(denom, min=1e-9)).to(tokens.dtype))
            else:  # lasttoken
                seq = tokens.shape[1]
                values, rev = mask.flip(1).max(1)
                rev = torch.where(values == 0, seq - 1, rev)
                idx = (seq - rev - 1).view(-1, 1, 1).expand(-1, 1, hidden)
                m = mask.unsqueeze(-1).to(tokens.dtype)
                outputs.append(torch.gather(tokens * m, 1, idx).squeeze(1))
        return outputs
