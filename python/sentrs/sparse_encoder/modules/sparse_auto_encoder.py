"""``SparseAutoEncoder``: a top-k sparse autoencoder over dense embeddings (CSR, "Beyond Matryoshka")."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from sentrs.base.modules.module import Module

__all__ = ["SparseAutoEncoder"]


class _TiedTranspose(nn.Module):
    """The decoder: the encoder's weight, transposed (shared, not copied)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.linear.weight.t())


class SparseAutoEncoder(Module):
    """Encodes a dense embedding into ``hidden_dim`` latents and keeps the ``k`` largest (after ReLU).

    At inference: ``z = W (x - pre_bias) + latent_bias``, top-k of ``z`` scattered into zeros, then ReLU. With
    ``normalize=True`` the input is standardised first. Outside ``torch.inference_mode`` (training, or an evaluation
    loss under ``no_grad``) the features also carry the 4k and auxiliary latents and the reconstructions the CSR
    losses need; in training with gradients each forward also advances the dead-latent counters (twice, for the k
    and the 4k selection, as the reference).

    Args:
        input_dim: dimension of the dense input.
        hidden_dim: number of latents (the sparse width).
        k: latents kept per embedding (``max_active_dims`` in encode overrides it).
        k_aux: latents of the auxiliary (dead-latent) reconstruction during training.
        normalize: standardise the input (mean 0, std 1) before encoding.
        dead_threshold: steps without activation after which a latent counts as dead.
    """

    config_keys: ClassVar[list[str]] = ["input_dim", "hidden_dim", "k", "k_aux", "normalize", "dead_threshold"]
    forward_kwargs: ClassVar[set[str]] = {"max_active_dims"}
    reference_type: ClassVar[str] = (
        "sentence_transformers.sparse_encoder.modules.sparse_auto_encoder.SparseAutoEncoder"
    )

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        k: int = 8,
        k_aux: int = 512,
        normalize: bool = False,
        dead_threshold: int = 30,
    ) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim), ("k", k)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.k = k
        self.k_aux = k_aux
        self.normalize = normalize
        self.dead_threshold = dead_threshold
        self.pre_bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(hidden_dim))
        self.decoder = _TiedTranspose(self.encoder)
        self.stats_last_nonzero: torch.Tensor
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))

    def get_embedding_dimension(self) -> int:
        """``hidden_dim``; only ``k`` of them are non-zero per embedding."""
        return self.hidden_dim

    # ------------------------------------------------------------------ pieces
    def _standardise(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self.normalize:
            return x, {}
        mu = x.mean(dim=-1, keepdim=True)
        centred = x - mu
        std = centred.std(dim=-1, keepdim=True)
        return centred / (std + 1e-5), {"mu": mu, "std": std}

    def encode_pre_act(self, x: torch.Tensor) -> torch.Tensor:
        """Latents before the top-k: ``(batch, hidden_dim)``."""
        return F.linear(x - self.pre_bias, self.encoder.weight, self.latent_bias)

    def top_k(self, latents: torch.Tensor, k: int) -> torch.Tensor:
        """Keeps the ``k`` largest latents of each row (others zero), then ReLU."""
        k = min(k, latents.shape[-1])
        best = torch.topk(latents, k=k, dim=-1)
        return F.relu(torch.zeros_like(latents).scatter_(-1, best.indices, best.values))

    def _record_firing(self, pre_act: torch.Tensor, k: int) -> None:
        """In training (with gradients), one step of the dead-latent counters: reset for the latents among the
        ``k`` largest that fire (> 1e-5), incremented for every latent."""
        if not (self.training and torch.is_grad_enabled()):
            return
        best = torch.topk(pre_act, k=min(k, pre_act.shape[-1]), dim=-1)
        fired = torch.zeros_like(self.stats_last_nonzero)
        fired.scatter_add_(0, best.indices.reshape(-1), (best.values > 1e-5).to(fired.dtype).reshape(-1))
        self.stats_last_nonzero *= 1 - fired.clamp(max=1)
        self.stats_last_nonzero += 1

    def decode(self, latents: torch.Tensor, info: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Reconstruction of the (un-standardised) input from latents."""
        out = self.decoder(latents) + self.pre_bias
        if self.normalize:
            if not info:
                raise ValueError("decode needs the mean and std of the input when normalize=True")
            out = out * info["std"] + info["mu"]
        return out

    def forward(self, features: dict[str, Any], max_active_dims: int | None = None, **kwargs: Any) -> dict[str, Any]:
        k = max_active_dims if max_active_dims is not None else self.k
        x = features["sentence_embedding"]
        prepared, info = self._standardise(x)
        pre_act = self.encode_pre_act(prepared)
        latents_k = self.top_k(pre_act, k)
        if torch.is_inference_mode_enabled():  # under plain no_grad (an evaluation loss) the CSR outputs are needed
            features["sentence_embedding"] = latents_k
            return features
        self._record_firing(pre_act, k)
        latents_aux = None
        if self.k_aux:
            dead = pre_act * (self.stats_last_nonzero > self.dead_threshold)
            latents_aux = self.top_k(dead, self.k_aux)
        latents_4k = self.top_k(pre_act, 4 * k)
        self._record_firing(pre_act, 4 * k)  # the reference counts the 4k selection as a step of its own too
        recons_k = self.decode(latents_k, info)
        decoder_bias = self.pre_bias * info["std"] if self.normalize else self.pre_bias
        recons_aux = None
        if latents_aux is not None:
            recons_aux = self.decoder(latents_aux) + self.pre_bias
            if self.normalize:
                recons_aux = recons_aux * info["std"]
        features.update(
            {
                "sentence_embedding_backbone": x,
                "sentence_embedding_encoded": pre_act,
                "sentence_embedding_encoded_4k": latents_4k,
                "auxiliary_embedding": latents_aux,
                "decoded_embedding_k": recons_k,
                "decoded_embedding_4k": self.decode(latents_4k, info),
                "decoded_embedding_aux": recons_aux,
                "decoded_embedding_k_pre_bias": recons_k - decoder_bias,
                "sentence_embedding": latents_k,
            }
        )
        return features

    # ------------------------------------------------------------------ save / load
    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> SparseAutoEncoder:
        module = cls(**cls.load_config(model_dir))
        module.load_torch_weights(model_dir)
        return module
