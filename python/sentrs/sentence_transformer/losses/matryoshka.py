"""``MatryoshkaLoss``: another loss, applied to the embeddings truncated to several dimensions (Matryoshka
Representation Learning), so that their leading dimensions work on their own."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._gradcache import truncating_calculate_loss, uses_gradient_cache

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["MatryoshkaLoss"]

logger = logging.getLogger(__name__)


def shrink(tensor: Tensor, dim: int) -> Tensor:
    """The first ``dim`` entries of the last axis, L2-normalized.

    Raises:
        ValueError: ``dim`` exceeds the embedding dimension.
    """
    if dim > tensor.shape[-1]:
        raise ValueError(
            f"Dimension {dim} in matryoshka_dims cannot be greater than the model's embedding dimension: "
            f"{tensor.shape[-1]}"
        )
    return F.normalize(tensor[..., :dim], p=2, dim=-1)


class _TruncatingForward:
    """Stands in for the model's ``forward`` during one :class:`MatryoshkaLoss` step: the first dimension's pass runs
    the model and keeps each output; the other dimensions' passes replay them in call order. Every output goes back
    with its ``sentence_embedding`` shrunk to the current dimension."""

    def __init__(self, forward: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.forward = forward
        self.outputs: list[dict[str, Any]] = []
        self.dim = 0
        self.calls = 0
        self.replaying = False

    def set_dim(self, dim: int) -> None:
        """Start the pass of one dimension (the first call runs the model, the later ones replay)."""
        self.replaying = self.dim != 0
        self.dim = dim
        self.calls = 0

    def __call__(self, features: dict[str, Any]) -> dict[str, Any]:
        if self.replaying:
            output = self.outputs[self.calls]
        else:
            output = self.forward(features)
            self.outputs.append(output)
        self.calls += 1
        return {**output, "sentence_embedding": shrink(output["sentence_embedding"], self.dim)}


class MatryoshkaLoss(nn.Module):
    """Sum over ``matryoshka_dims`` of ``weight * loss`` on the embeddings truncated to that dimension (and
    L2-normalized), with one forward pass of the model for all of them.

    Args:
        model: the SentenceTransformer to train.
        loss: the loss to apply at every dimension (built on the same ``model``), e.g.
            :class:`MultipleNegativesRankingLoss`.
        matryoshka_dims: the dimensions to train, e.g. ``[768, 512, 256, 128, 64]``; include the model's full
            dimension, or it is not trained.
        matryoshka_weights: one weight per dimension; 1 each by default.
        n_dims_per_step: how many dimensions (drawn at random) each step trains; -1 for all of them.

    Requirements:
        1. Whatever the wrapped loss requires.

    Inputs:
        +-------+--------+
        | Texts | Labels |
        +=======+========+
        | any   | any    |
        +-------+--------+

    Labels of the embedding dimension (teacher embeddings, ``(batch_size, dim)`` or ``(batch_size, n, dim)``) are
    truncated along with the embeddings.

    A cached loss (``Cached*``, or ``MegaBatchMarginLoss`` in its mini-batched version) embeds again during the
    backward pass, out of reach of a replaced ``forward``; for it, this loss wraps the cached loss's
    ``calculate_loss`` instead (the wrapped loss object is changed in place), so its loss is the weighted sum over
    the truncated dimensions and its gradient caching stays that of the full embeddings. Labels are not truncated
    then.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import MatryoshkaLoss, MultipleNegativesRankingLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = MatryoshkaLoss(model, MultipleNegativesRankingLoss(model), [384, 256, 128, 64])
            columns = [["A man eats."], ["Someone is eating."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        loss: nn.Module,
        matryoshka_dims: Sequence[int],
        matryoshka_weights: Sequence[float] | Sequence[int] | None = None,
        n_dims_per_step: int = -1,
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        if not matryoshka_dims:
            raise ValueError("You must provide at least one dimension in matryoshka_dims.")
        if any(dim <= 0 for dim in matryoshka_dims):
            raise ValueError("All dimensions passed to a matryoshka loss must be > 0.")
        if matryoshka_weights is None:
            matryoshka_weights = [1] * len(matryoshka_dims)
        elif len(matryoshka_weights) != len(matryoshka_dims):
            raise ValueError("matryoshka_weights must be the same length as matryoshka_dims.")
        full_dim = model.get_embedding_dimension()
        if full_dim is not None:
            if any(dim > full_dim for dim in matryoshka_dims):
                raise ValueError(
                    f"Dimensions in matryoshka_dims cannot exceed the model's embedding dimension of {full_dim}."
                )
            if full_dim not in matryoshka_dims:
                logger.warning(
                    f"The model's embedding dimension {full_dim} is not included in matryoshka_dims: "
                    f"{matryoshka_dims}. This means that the full model dimension won't be trained, which may lead "
                    "to degraded performance when using the model without specifying a lower truncation dimension. "
                    f"It is strongly recommended to include {full_dim} in matryoshka_dims."
                )
        # Largest dimension first, each weight staying with its dimension.
        pairs = sorted(zip(matryoshka_dims, matryoshka_weights), key=lambda pair: pair[0], reverse=True)
        self.matryoshka_dims: tuple[int, ...] = tuple(dim for dim, _ in pairs)
        self.matryoshka_weights: tuple[float, ...] | tuple[int, ...] = tuple(weight for _, weight in pairs)
        self.n_dims_per_step = n_dims_per_step
        self.uses_gradient_cache = uses_gradient_cache(loss)
        if self.uses_gradient_cache:
            cached: Any = loss
            cached.calculate_loss = truncating_calculate_loss(
                cached.calculate_loss, self.matryoshka_dims, self.matryoshka_weights, n_dims_per_step, shrink
            )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The weighted sum of the wrapped loss over the (drawn) dimensions; ``sentence_features`` and ``labels`` are
        what the wrapped loss takes."""
        if self.uses_gradient_cache:
            return self.loss(sentence_features, labels)
        features = list(sentence_features)
        indices = list(range(len(self.matryoshka_dims)))
        if 0 < self.n_dims_per_step < len(indices):
            indices = sorted(random.sample(indices, self.n_dims_per_step))
        full_dim = self.model.get_embedding_dimension()
        own_forward = self.model.__dict__.get("forward")  # an instance-level forward, to put back afterwards
        truncating = _TruncatingForward(self.model.forward)
        self.model.forward = truncating  # type: ignore[method-assign,assignment]
        try:
            losses = []
            for index in indices:
                dim, weight = self.matryoshka_dims[index], self.matryoshka_weights[index]
                truncating.set_dim(dim)
                dim_labels = labels
                if isinstance(labels, Tensor) and labels.ndim in (2, 3) and labels.size(-1) == full_dim:
                    dim_labels = labels[..., :dim]
                losses.append(weight * self.loss(features, dim_labels))
        finally:
            if own_forward is None:
                del self.model.forward
            else:
                self.model.forward = own_forward  # type: ignore[method-assign]
        return sum(losses[1:], losses[0])

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "loss": type(self.loss).__name__,
            "matryoshka_dims": self.matryoshka_dims,
            "matryoshka_weights": self.matryoshka_weights,
            "n_dims_per_step": self.n_dims_per_step,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = (  # one string, in pieces only to fit the line length
    "\n@misc{kusupati2024matryoshka,\n"
    "    title={Matryoshka Representation Learning},\n"
    "    author={Aditya Kusupati and Gantavya Bhatt and Aniket Rege and Matthew Wallingford and Aditya Sinha and "
    "Vivek Ramanujan and William Howard-Snyder and Kaifeng Chen and Sham Kakade and Prateek Jain and Ali Farhadi},\n"
    "    year={2024},\n"
    "    eprint={2205.13147},\n"
    "    archivePrefix={arXiv},\n"
    "    primaryClass={cs.LG}\n"
    "}\n"
)
