"""Token pooling: fewer vectors per document for a smaller late-interaction index.

A pooling runs as the last module of a :class:`~sentrs.MultiVectorEncoder` (saved with the model), per call through
``encode(..., token_pooling=...)``, or on its own with :meth:`BaseTokenPooling.pool` over encoded embeddings. Each
application pools again: pooling twice is not the same as pooling once.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from sentrs.base.modules.module import Module

__all__ = ["BaseTokenPooling", "HierarchicalTokenPooling", "LambdaTokenPooling"]


def _split_padded(embeddings: Tensor, attention_mask: Tensor | None, padding_side: str) -> list[Tensor]:
    """``(B, T, D)`` -> per-row ``(t_i, D)``: by the mask, or else by the span between the first and last non-zero
    rows on the padding side."""
    if attention_mask is not None:
        if tuple(attention_mask.shape) != tuple(embeddings.shape[:2]):
            raise ValueError(
                f"attention_mask must have shape {tuple(embeddings.shape[:2])} (batch, tokens), got "
                f"{tuple(attention_mask.shape)}"
            )
        return [row[keep] for row, keep in zip(embeddings, attention_mask.bool())]
    rows = []
    for row in embeddings:
        real = torch.nonzero(row.abs().sum(dim=-1) > 0).flatten()
        if real.numel() == 0:
            rows.append(row[:0])
        elif padding_side == "right":
            rows.append(row[: int(real[-1]) + 1])
        else:
            rows.append(row[int(real[0]) :])
    return rows


def _pad_rows(rows: list[Tensor], padding_side: str) -> Tensor:
    """Per-row ``(t_i, D)`` -> zero-padded ``(B, max t_i, D)``, padded on ``padding_side``."""
    width = max(row.shape[0] for row in rows)
    out = rows[0].new_zeros((len(rows), width, rows[0].shape[-1]))
    for i, row in enumerate(rows):
        n = row.shape[0]
        if n:
            if padding_side == "right":
                out[i, :n] = row
            else:
                out[i, width - n :] = row
    return out


class BaseTokenPooling(Module):
    """A token pooling: subclasses implement :meth:`pool_one` (one ``(tokens, dim)`` matrix in, fewer rows out).

    Args:
        tasks: the tasks it pools (default ``["document"]``; an input without a task counts as a document).
    """

    config_keys: ClassVar[list[str]] = ["tasks"]
    forward_kwargs: ClassVar[set[str]] = {"task"}

    def __init__(self, *, tasks: str | list[str] | None = None) -> None:
        super().__init__()
        if isinstance(tasks, str):
            tasks = [tasks]
        self.tasks: list[str] = list(tasks) if tasks is not None else ["document"]

    def applies_to(self, task: str | None) -> bool:
        """Whether inputs encoded for ``task`` are pooled."""
        return (task or "document") in self.tasks

    @abstractmethod
    def pool_one(self, embedding: Tensor, **kwargs: Any) -> Tensor:
        """Pools one ``(tokens, dim)`` matrix into ``(pooled_tokens, dim)``."""

    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if not self.applies_to(task):
            return features
        tokens = features["token_embeddings"]
        if tokens.shape[0] == 0:
            return features
        rows = [self.pool_one(row[keep]) for row, keep in zip(tokens, features["attention_mask"].bool())]
        lengths = torch.tensor([row.shape[0] for row in rows], device=tokens.device)
        features["token_embeddings"] = _pad_rows(rows, "right").to(tokens.device)
        features["attention_mask"] = torch.arange(int(lengths.max()), device=tokens.device)[None, :] < lengths[:, None]
        return features

    def pool(
        self,
        embeddings: list[Tensor] | Tensor,
        *,
        task: str | None = None,
        attention_mask: Tensor | None = None,
        padding_side: str = "right",
    ) -> list[Tensor] | Tensor:
        """Pools encoded embeddings: a list of ``(tokens_i, dim)`` tensors (returns a list) or a padded
        ``(batch, tokens, dim)`` tensor (returns one padded on ``padding_side``). Without ``attention_mask`` a padded
        tensor's all-zero rows at the ``padding_side`` end are padding. Embeddings of a task this pooling does not
        apply to come back unchanged."""
        if not self.applies_to(task):
            return embeddings
        if isinstance(embeddings, Tensor):
            if embeddings.dim() != 3:
                raise ValueError(
                    f"embeddings must be a (batch, tokens, dim) tensor or a list of (tokens, dim) tensors, got a "
                    f"tensor of shape {tuple(embeddings.shape)}"
                )
            if padding_side not in ("left", "right"):
                raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
            if embeddings.shape[0] == 0:
                return embeddings.new_zeros((0, 0, embeddings.shape[-1]))
            rows = _split_padded(embeddings, attention_mask, padding_side)
            return _pad_rows([self.pool_one(row) for row in rows], padding_side)
        if isinstance(embeddings, list):
            for i, row in enumerate(embeddings):
                if not isinstance(row, Tensor) or row.dim() != 2:
                    shape = tuple(row.shape) if isinstance(row, Tensor) else type(row).__name__
                    raise ValueError(f"embeddings[{i}] must be a (tokens, dim) tensor, got {shape}")
            return [self.pool_one(row) for row in embeddings]
        raise ValueError(
            "embeddings must be a (batch, tokens, dim) tensor or a list of (tokens, dim) tensors, got "
            f"{type(embeddings).__name__}"
        )

    def save(self, output_path: str, safe_serialization: bool = True, **kwargs: Any) -> None:
        self.save_config(output_path)


@functools.cache
def _ward_linkage() -> Callable[..., np.ndarray]:
    """fastcluster's Ward linkage when installed (the same merges, faster), else scipy's."""
    try:
        from fastcluster import linkage
    except (ImportError, OSError, RuntimeError):
        try:
            from scipy.cluster.hierarchy import linkage
        except ImportError as exc:
            raise ImportError(
                "HierarchicalTokenPooling clusters with scipy; install it with `pip install scipy`"
            ) from exc
    return linkage


def _unit_rows(x: Tensor) -> Tensor:
    if x.dtype in (torch.float16, torch.bfloat16):
        return torch.nn.functional.normalize(x.float(), dim=-1).to(x.dtype)
    return torch.nn.functional.normalize(x, dim=-1)


def ward_pool(embedding: Tensor, pool_factor: float, num_protected_tokens: int, normalize: bool) -> Tensor:
    """Ward clustering of the unprotected rows of ``embedding`` on cosine distance into ``n // pool_factor`` groups
    (at least one); each group becomes its mean (gradients flow through the means). Protected rows stay first."""
    from scipy.cluster.hierarchy import fcluster
    from scipy.spatial.distance import squareform

    head = embedding[:num_protected_tokens]
    rest = embedding[num_protected_tokens:]
    n = rest.shape[0]
    groups = max(int(n // pool_factor), 1)
    if groups < n:
        values = rest.detach().float().cpu()
        distances = (1.0 - values @ values.T).clamp_(0.0, 2.0).numpy()
        tree = _ward_linkage()(squareform(distances, checks=False), method="ward")
        labels = torch.from_numpy(fcluster(tree, t=groups, criterion="maxclust").astype(np.int64))
        _, inverse = torch.unique(labels, return_inverse=True)
        count = int(inverse.max()) + 1
        rest_cpu = rest.cpu()
        sums = rest_cpu.new_zeros((count, rest.shape[1])).index_add_(0, inverse, rest_cpu)
        sizes = torch.bincount(inverse, minlength=count).to(rest_cpu.dtype)
        embedding = torch.cat([head, (sums / sizes[:, None]).to(embedding.device)], dim=0)
    return _unit_rows(embedding) if normalize else embedding


class HierarchicalTokenPooling(BaseTokenPooling):
    """Merges similar document tokens: Ward hierarchical clustering on cosine distance, each cluster replaced by its
    mean (PyLate's token pooling). Expects unit-length token vectors (put it after a token-level Normalize).

    Args:
        pool_factor: keep about ``1 / pool_factor`` of the tokens (``1.0``: no merging; fractions allowed).
        num_protected_tokens: leading tokens (``[CLS]``) kept out of the clustering.
        normalize_embeddings: make every output vector unit length (a saved config without the key loads False,
            as the reference does, so old indexes stay reproducible).
        tasks: the tasks it pools (default ``["document"]``).
    """

    config_keys: ClassVar[list[str]] = ["pool_factor", "num_protected_tokens", "normalize_embeddings", "tasks"]
    reference_type: ClassVar[str] = (
        "sentence_transformers.multi_vector_encoder.modules.token_pooling.HierarchicalTokenPooling"
    )

    def __init__(
        self,
        pool_factor: float = 1.0,
        *,
        num_protected_tokens: int = 1,
        normalize_embeddings: bool = True,
        tasks: str | list[str] | None = None,
    ) -> None:
        super().__init__(tasks=tasks)
        if isinstance(pool_factor, bool) or not isinstance(pool_factor, (int, float)) or not pool_factor >= 1:
            raise ValueError(f"pool_factor must be a number >= 1, got {pool_factor!r}")
        protected = num_protected_tokens
        if isinstance(protected, bool) or not isinstance(protected, int) or protected < 0:
            raise ValueError(f"num_protected_tokens must be an int >= 0, got {num_protected_tokens!r}")
        self.pool_factor = pool_factor
        self.num_protected_tokens = num_protected_tokens
        self.normalize_embeddings = normalize_embeddings

    @classmethod
    def load_config(cls, model_dir: str, config_filename: str | None = None) -> dict[str, Any]:
        config = super().load_config(model_dir, config_filename)
        config.setdefault("normalize_embeddings", False)
        return config

    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs: Any) -> dict[str, Any]:
        if self.pool_factor <= 1:
            if self.normalize_embeddings and self.applies_to(task):
                features["token_embeddings"] = _unit_rows(features["token_embeddings"])
            return features
        return super().forward(features, task=task)

    def pool_one(self, embedding: Tensor, **kwargs: Any) -> Tensor:
        return ward_pool(embedding, self.pool_factor, self.num_protected_tokens, self.normalize_embeddings)


class LambdaTokenPooling(BaseTokenPooling):
    """A pooling given as a function ``(tokens, dim) -> (pooled_tokens, dim)``, applied to each input.

    It cannot be saved (a Python function is not a config); use it per call or on its own.

    Args:
        pool_fn: the pooling function.
        tasks: the tasks it pools (default ``["document"]``).
    """

    def __init__(self, pool_fn: Callable[[Tensor], Tensor], *, tasks: str | list[str] | None = None) -> None:
        super().__init__(tasks=tasks)
        if not callable(pool_fn):
            raise ValueError(f"pool_fn must be callable, got {type(pool_fn).__name__}")
        self.pool_fn = pool_fn

    def pool_one(self, embedding: Tensor, **kwargs: Any) -> Tensor:
        return self.pool_fn(embedding)

    def save(self, output_path: str, safe_serialization: bool = True, **kwargs: Any) -> None:
        raise NotImplementedError(
            "LambdaTokenPooling holds a Python function and cannot be saved; pass it per call "
            "(encode(..., token_pooling=...)) or subclass BaseTokenPooling for a pooling that saves"
        )
