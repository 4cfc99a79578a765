"""``CSRLoss`` and ``CSRReconstructionLoss``: training objectives of Contrastive Sparse Representation models
(a dense encoder with a top-k sparse autoencoder on top, :class:`~sentrs.sparse_encoder.modules.SparseAutoEncoder`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.sparse_encoder.losses.sparse_multiple_negatives_ranking import SparseMultipleNegativesRankingLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["CSRLoss", "CSRReconstructionLoss"]

# What the SparseAutoEncoder adds to a column's outputs when it is not in inference mode.
_AUTOENCODER_OUTPUTS = (
    "sentence_embedding_backbone",
    "decoded_embedding_k",
    "decoded_embedding_4k",
    "decoded_embedding_aux",
    "decoded_embedding_k_pre_bias",
)


def _variance_normalized_mse(reconstruction: Tensor, target: Tensor) -> Tensor:
    """``mse(reconstruction, target)`` divided by the batch variance of ``target`` (its mse to its column means);
    a plain mse when that variance is 0 or every row of ``target`` is the same."""
    variance = F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target)
    constant = (target == target[:1]).all()
    variance = torch.where((variance == 0) | constant, torch.ones_like(variance), variance)
    return F.mse_loss(reconstruction, target) / variance


class CSRReconstructionLoss(nn.Module):
    """The reconstruction part of the CSR objective, averaged over the input columns:

    1. ``reconstruction_loss_k``: mse between the backbone embedding and its reconstruction from the top-k latents;
    2. ``reconstruction_loss_4k``: the same from the top-4k latents, divided by 8;
    3. ``reconstruction_loss_aux``: ``beta`` times the variance-normalised mse of the auxiliary (dead-latent)
       reconstruction against the residual the top-k reconstruction leaves (0 without auxiliary latents).

    It is a component of :class:`CSRLoss`, which calls :meth:`compute_loss_from_embeddings`.

    Args:
        model: the SparseEncoder (with a SparseAutoEncoder on top) being trained.
        beta: the weight of the auxiliary term.
    """

    def __init__(self, model: SparseEncoder, beta: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.beta = beta

    def forward(self, sentence_features: Iterable[dict[str, Any]]) -> dict[str, Tensor]:
        """Not a loss on its own.

        Raises:
            NotImplementedError: always; use CSRLoss.
        """
        raise NotImplementedError(
            "CSRReconstructionLoss is not intended to be used standalone. Use it within CSRLoss instead."
        )

    def compute_loss_from_embeddings(self, outputs: list[dict[str, Any]]) -> dict[str, Tensor]:
        """The three components from each column's model outputs (the SparseAutoEncoder's training outputs).

        Raises:
            ValueError: the outputs lack the SparseAutoEncoder's reconstructions.
        """
        total_k: Tensor | float = 0.0
        total_4k: Tensor | float = 0.0
        total_aux: Tensor | float = 0.0
        for features in outputs:
            if missing := [key for key in _AUTOENCODER_OUTPUTS if key not in features]:
                raise ValueError(
                    f"{type(self).__name__} needs the reconstructions of a SparseAutoEncoder (CSR) module, but the "
                    f"model's outputs lack {missing}: train a Transformer + Pooling + SparseAutoEncoder model, "
                    "outside inference mode"
                )
            backbone = features["sentence_embedding_backbone"]
            loss_k = F.mse_loss(backbone, features["decoded_embedding_k"])
            loss_4k = F.mse_loss(backbone, features["decoded_embedding_4k"])
            aux = features["decoded_embedding_aux"]
            if aux is None:
                loss_aux = torch.zeros_like(loss_k)
            else:
                residual = backbone - features["decoded_embedding_k_pre_bias"].detach()
                loss_aux = _variance_normalized_mse(aux, residual)
            total_k = total_k + loss_k
            total_4k = total_4k + loss_4k
            total_aux = total_aux + loss_aux
        if outputs:
            total_k, total_4k, total_aux = (total / len(outputs) for total in (total_k, total_4k, total_aux))
        return {
            "reconstruction_loss_k": total_k,  # type: ignore[dict-item]
            "reconstruction_loss_4k": total_4k / 8.0,  # type: ignore[dict-item]
            "reconstruction_loss_aux": self.beta * total_aux,  # type: ignore[dict-item]
        }

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"beta": self.beta}


class CSRLoss(nn.Module):
    """The Contrastive Sparse Representation objective: :class:`CSRReconstructionLoss` plus ``gamma`` times a
    ranking loss on the sparse embeddings (:class:`SparseMultipleNegativesRankingLoss` by default).

    Each column goes through the model once; the reconstruction terms use the SparseAutoEncoder's training outputs,
    the base loss the sparse ``sentence_embedding``. The result is a dict of components: the three reconstruction
    terms, then ``base_loss`` (or the base loss's own components), each scaled by ``gamma``.

    Args:
        model: the SparseEncoder to train: a dense encoder + SparseAutoEncoder (CSR) model.
        loss: the base loss, any sparse loss with ``compute_loss_from_embeddings`` (not :class:`FlopsLoss` nor a
            reconstruction loss); None: :class:`SparseMultipleNegativesRankingLoss`.
        beta: the weight of the auxiliary reconstruction term.
        gamma: the weight of the base loss.

    Requirements:
        1. A model whose last module is a SparseAutoEncoder.
        2. The inputs (and labels) of the base loss.

    Inputs:
        +---------------------------------------+---------------------------+
        | Texts                                 | Labels                    |
        +=======================================+===========================+
        | those of the base loss                | those of the base loss    |
        +---------------------------------------+---------------------------+

    Relations:
        - :class:`CSRReconstructionLoss` is its reconstruction part.

    Example:
        ::

            from sentrs import SparseEncoder
            from sentrs.sparse_encoder.losses import CSRLoss

            model = SparseEncoder("sentence-transformers/all-MiniLM-L6-v2")  # a CSR head on a dense model
            loss = CSRLoss(model, beta=0.1, gamma=1.0)
            features = [model.preprocess(["What do men eat?"]), model.preprocess(["A man eats bread."])]
            components = loss(features, None)
    """

    def __init__(self, model: SparseEncoder, loss: nn.Module | None = None, beta: float = 0.1, gamma: float = 1.0):
        super().__init__()
        self.model = model
        self.beta = beta
        self.gamma = gamma
        self.reconstruction_loss = CSRReconstructionLoss(model=model, beta=beta)
        self.loss = loss if loss is not None else SparseMultipleNegativesRankingLoss(model=model)

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None = None) -> dict[str, Tensor]:
        """The loss components of a batch: ``sentence_features`` is one features dict per column."""
        outputs = [self.model(features) for features in sentence_features]
        components = self.reconstruction_loss.compute_loss_from_embeddings(outputs)
        base_loss: Any = self.loss
        base = base_loss.compute_loss_from_embeddings([output["sentence_embedding"] for output in outputs], labels)
        if isinstance(base, dict):
            components.update({key: value * self.gamma for key, value in base.items()})
        else:
            components["base_loss"] = base * self.gamma
        return components

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card (the base loss by class name)."""
        return {"beta": self.beta, "gamma": self.gamma, "loss": type(self.loss).__name__}

    @property
    def citation(self) -> str:
        """BibTeX of the CSR paper."""
        return CITATION


CITATION = """
@misc{wen2025matryoshkarevisitingsparsecoding,
      title={Beyond Matryoshka: Revisiting Sparse Coding for Adaptive Representation},
      author={Tiansheng Wen and Yifei Wang and Zequn Zeng and Zhong Peng and Yudi Su and Xinyang Liu and Bo Chen and Hongwei Liu and Stefanie Jegelka and Chenyu You},
      year={2025},
      eprint={2503.01776},
      archivePrefix={arXiv},
      primaryClass={cs.LG},
      url={https://arxiv.org/abs/2503.01776},
}
"""  # noqa: E501
