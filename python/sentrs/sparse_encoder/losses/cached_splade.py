"""``CachedSpladeLoss``: :class:`SpladeLoss` with gradient caching, for batches far larger than one forward pass."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._gradcache import GradCacheMixin, validate_mini_batch_num_tokens
from sentrs.sparse_encoder.losses.splade import SpladeLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["CachedSpladeLoss"]


class CachedSpladeLoss(GradCacheMixin, SpladeLoss):  # type: ignore[misc]
    """:class:`SpladeLoss` computed with GradCache: the same value and gradients, at the memory of one mini-batch.

    Every column is embedded ``mini_batch_size`` rows (or ``mini_batch_num_tokens`` real tokens) at a time without a
    graph; the base loss and both regularizers are computed on the whole batch of embeddings and backpropagated to
    them; during the outer ``backward`` each mini-batch is embedded again, with the random state of its first pass,
    and its cached gradient flows through it. Only the embedding passes are mini-batched: the base loss still sees
    the full batch (its score matrix is not chunked).

    The returned dict has the components of :class:`SpladeLoss`; their sum is the loss that carries the gradient
    (the first component is adjusted so the sum is exact; the others are detached values for logging).

    Args:
        model: the SparseEncoder to train.
        loss: the base loss (see :class:`SpladeLoss`).
        document_regularizer_weight: weight of the document regularizer. Required.
        query_regularizer_weight: weight of the query regularizer; None: queries are not regularized.
        document_regularizer: the document regularizer; None builds a :class:`FlopsLoss`.
        query_regularizer: the query regularizer; None builds a :class:`FlopsLoss`.
        document_regularizer_threshold: ``threshold`` of the default document regularizer.
        query_regularizer_threshold: ``threshold`` of the default query regularizer.
        use_document_regularizer_only: regularize every column as a document.
        mini_batch_size: rows per embedding pass; the larger, the faster and the more memory.
        mini_batch_num_tokens: when set, mini-batches are cut by this many real (non-padding) tokens instead.
        show_progress_bar: show a progress bar over the mini-batches.

    Raises:
        ValueError: as :class:`SpladeLoss`, or ``mini_batch_num_tokens`` is not a positive number.

    Relations:
        - :class:`SpladeLoss` embeds the whole batch at once: faster, more memory.

    Example:
        ::

            from sentrs import SparseEncoder
            from sentrs.sparse_encoder.losses import CachedSpladeLoss, SparseMultipleNegativesRankingLoss

            model = SparseEncoder("naver/splade-cocondenser-ensembledistil")
            loss = CachedSpladeLoss(
                model,
                loss=SparseMultipleNegativesRankingLoss(model),
                document_regularizer_weight=3e-5,
                query_regularizer_weight=5e-5,
                mini_batch_size=8,
            )
    """

    def __init__(
        self,
        model: SparseEncoder,
        loss: nn.Module,
        document_regularizer_weight: float,
        query_regularizer_weight: float | None = None,
        document_regularizer: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        document_regularizer_threshold: int | None = None,
        query_regularizer_threshold: int | None = None,
        use_document_regularizer_only: bool = False,
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
    ) -> None:
        super().__init__(
            model=model,
            loss=loss,
            document_regularizer_weight=document_regularizer_weight,
            query_regularizer_weight=query_regularizer_weight,
            document_regularizer=document_regularizer,
            query_regularizer=query_regularizer,
            document_regularizer_threshold=document_regularizer_threshold,
            query_regularizer_threshold=query_regularizer_threshold,
            use_document_regularizer_only=use_document_regularizer_only,
        )
        validate_mini_batch_num_tokens(mini_batch_num_tokens)
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar
        self._component_values: dict[str, float] = {}

    def calculate_loss(
        self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False
    ) -> Tensor:
        """The total loss (base loss + weighted regularizers) from ``reps[column][mini_batch]`` embeddings; with
        ``with_backward`` it is backpropagated to the embeddings and returned detached."""
        components = self._loss_components([torch.cat(column) for column in reps], labels)
        self._component_values = {key: value.detach().item() for key, value in components.items()}
        total = _sum(components.values())
        if with_backward:
            total.backward()
            total = total.detach()
        return total

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> dict[str, Tensor]:
        """The loss components of a batch (see the class docstring); their sum carries the gradient."""
        total = self.forward_cached(sentence_features, labels)
        # float32 scalars on purpose: the adjustment below keeps sum(values) == total exactly.
        components = {key: torch.tensor(value, device=total.device) for key, value in self._component_values.items()}
        first = next(iter(components))
        others = _sum([value for key, value in components.items() if key != first], like=total)
        components[first] = total - others
        return components

    def get_config_dict(self) -> dict[str, Any]:
        """:meth:`SpladeLoss.get_config_dict` plus the mini-batch settings."""
        config = super().get_config_dict()
        config["mini_batch_size"] = self.mini_batch_size
        config["mini_batch_num_tokens"] = self.mini_batch_num_tokens
        return config

    @property
    def citation(self) -> str:
        """BibTeX of GradCache and of the SPLADE training setup."""
        return CITATION


def _sum(values: Iterable[Tensor], like: Tensor | None = None) -> Tensor:
    """The sum of ``values`` in order (0 of ``like``'s kind when there are none)."""
    total: Tensor | None = None
    for value in values:
        total = value if total is None else total + value
    if total is None:
        assert like is not None
        return torch.zeros_like(like)
    return total if like is None else torch.zeros_like(like) + total


CITATION = """
@misc{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    primaryClass={cs.LG}
}
@misc{formal2022distillationhardnegativesampling,
    title={From Distillation to Hard Negative Sampling: Making Sparse Neural IR Models More Effective},
    author={Thibault Formal and Carlos Lassance and Benjamin Piwowarski and St\\'ephane Clinchant},
    year={2022},
    eprint={2205.04733},
    archivePrefix={arXiv},
    primaryClass={cs.IR},
}
"""
