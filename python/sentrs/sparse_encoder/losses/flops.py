"""``FlopsLoss``: the FLOPS regularizer that pushes sparse embeddings towards fewer active dimensions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["FlopsLoss"]


class FlopsLoss(nn.Module):
    """The FLOPS regularizer: ``sum over dimensions of (mean over the batch of the embedding value) ** 2``.

    A dimension that many texts of a batch activate costs quadratically more than one that few activate, which is
    what an inverted index pays at search time. The loss is a regularizer only: :class:`SpladeLoss` calls
    :meth:`compute_loss_from_embeddings` on the query and on the document embeddings and weighs the results.

    Args:
        model: the SparseEncoder being trained.
        threshold: when set, only embeddings with more than ``threshold`` active (non-zero) dimensions count; the
            others are zeroed before the mean (FLOPS with L0 masking), so already-sparse texts are left alone.

    Relations:
        - :class:`SpladeLoss` builds two of these (queries, documents) unless given other regularizers.
    """

    def __init__(self, model: SparseEncoder, threshold: float | None = None) -> None:
        super().__init__()
        self.model = model
        self.threshold = threshold

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a training loss on its own.

        Raises:
            NotImplementedError: always; use the loss inside :class:`SpladeLoss`.
        """
        raise NotImplementedError(
            "FlopsLoss is not intended to be used directly. Use it as a regularizer within the SpladeLoss class."
        )

    def compute_loss_from_embeddings(self, embeddings: Tensor) -> Tensor:
        """The regularizer of ``(batch_size, dim)`` embeddings, a scalar."""
        if self.threshold is not None:
            active = (embeddings != 0).sum(dim=1)
            embeddings = embeddings * (active > self.threshold).float().unsqueeze(1)
        return torch.sum(torch.mean(embeddings, dim=0) ** 2)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"threshold": self.threshold}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the regularizer."""
        return CITATION


CITATION = """
@article{paria2020minimizing,
    title={Minimizing flops to learn efficient sparse representations},
    author={Paria, Biswajit and Yeh, Chih-Kuan and Yen, Ian EH and Xu, Ning and Ravikumar, Pradeep and P{'o}czos, Barnab{'a}s},
    journal={arXiv preprint arXiv:2004.05665},
    year={2020}
}
"""  # noqa: E501
