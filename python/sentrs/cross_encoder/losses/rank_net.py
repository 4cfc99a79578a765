"""``RankNetLoss``: an unweighted pairwise logistic loss between a query's documents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from sentrs.cross_encoder.losses.lambda_loss import LambdaLoss, NoWeightingScheme

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["RankNetLoss"]


class RankNetLoss(LambdaLoss):
    """RankNet: for each query, ``-log sigmoid(sigma * (s_i - s_j))`` on every pair of documents whose labels say
    ``i`` should rank above ``j``, averaged over the pairs of the batch (:class:`LambdaLoss` with every pair weighing
    1).

    Args:
        model: the CrossEncoder to train; it must have one output label.
        k: only pairs with a document in the model's current top ``k`` count; None uses every document.
        sigma: the steepness of the logistic.
        eps: numerical floor (see :class:`LambdaLoss`).
        reduction_log: ``"binary"`` measures the loss in bits (log2), ``"natural"`` in nats.
        activation_fn: applied to the logits before the loss; identity by default (None: identity).
        mini_batch_size: (query, document) pairs per forward pass. None: as many as there are queries in the batch;
            ``<= 0``: all pairs in one pass. Smaller uses less memory; the loss is the same.

    Requirements:
        1. A query with several documents.
        2. A relevance label per document, binary or graded.

    Inputs:
        +----------------------------------------+--------------------------------+-------------------------------+
        | Texts                                  | Labels                         | Number of model output labels |
        +========================================+================================+===============================+
        | (query, [doc1, doc2, ..., docN])       | [score1, score2, ..., scoreN]  | 1                             |
        +----------------------------------------+--------------------------------+-------------------------------+

    Relations:
        - :class:`LambdaLoss` weighs each pair by its effect on NDCG; its default scheme usually trains better
          rerankers.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import RankNetLoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = RankNetLoss(model)
            queries = ["What are pandas?"]
            documents = [["Pandas are a kind of bear.", "Pandas are kind of like fish."]]
            loss([queries, documents], [torch.tensor([1, 0])]).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the reference's default object
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__(
            model,
            weighting_scheme=NoWeightingScheme(),
            k=k,
            sigma=sigma,
            eps=eps,
            reduction_log=reduction_log,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        config = super().get_config_dict()
        del config["weighting_scheme"]
        return config

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{burges2005learning,
  title={Learning to Rank using Gradient Descent},
  author={Burges, Chris and Shaked, Tal and Renshaw, Erin and Lazier, Ari and Deeds, Matt and Hamilton, Nicole and Hullender, Greg},
  booktitle={Proceedings of the 22nd international conference on Machine learning},
  pages={89--96},
  year={2005}
}
"""  # noqa: E501
