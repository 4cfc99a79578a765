"""``SparseCosineSimilarityLoss``: regress the cosine similarity of a sparse pair onto its label."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentrs.sentence_transformer.losses.cosine_similarity import CosineSimilarityLoss

if TYPE_CHECKING:
    from sentrs.sparse_encoder.model import SparseEncoder

__all__ = ["SparseCosineSimilarityLoss"]


class SparseCosineSimilarityLoss(CosineSimilarityLoss):
    """:class:`~sentrs.sentence_transformer.losses.CosineSimilarityLoss` for sparse models:
    ``loss_fct(cos_score_transformation(cos(u, v)), label)``, mean squared error by default.

    Building the loss sets the model's ``similarity_fn_name`` to ``"cosine"``. A base loss: wrap it in
    :class:`SpladeLoss` or :class:`CSRLoss`.

    Args:
        model: the SparseEncoder to train.
        loss_fct: compares the transformed cosine with the label; ``nn.MSELoss()`` by default.
        cos_score_transformation: applied to the cosine first; the identity by default.

    Requirements:
        1. Used inside :class:`SpladeLoss` or :class:`CSRLoss`.
        2. Pairs with a similarity score in ``[0, 1]``.

    Inputs:
        +--------------------------------+------------------------+
        | Texts                          | Labels                 |
        +================================+========================+
        | (sentence_A, sentence_B) pairs | float similarity score |
        +--------------------------------+------------------------+

    Relations:
        - :class:`SparseCoSENTLoss` learns the order of the scores instead and usually trains better.
    """

    def __init__(
        self,
        model: SparseEncoder,
        loss_fct: nn.Module = nn.MSELoss(),  # noqa: B008 - the reference's default object
        cos_score_transformation: nn.Module = nn.Identity(),  # noqa: B008
    ) -> None:
        model.similarity_fn_name = "cosine"
        super().__init__(
            model,  # type: ignore[arg-type]
            loss_fct=loss_fct,
            cos_score_transformation=cos_score_transformation,
        )

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor) -> Tensor:
        """Not a loss on its own.

        Raises:
            AttributeError: always; wrap the loss in SpladeLoss or CSRLoss.
        """
        raise AttributeError("SparseCosineSimilarityLoss should not be used alone. Use it with SpladeLoss or CSRLoss.")
