"""``ADRMSELoss``: squared error between each document's true rank and a differentiable approximation of its predicted
rank, discounted as in NDCG."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, score_lists

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["ADRMSELoss"]


class ADRMSELoss(nn.Module):
    r"""ADR-MSE (approx discounted rank MSE): for every document, ``(true_rank - approx_rank) ** 2 /
    log2(1 + true_rank)``, averaged over the documents of the batch.

    The predicted rank is made differentiable with ApproxRank,
    :math:`\hat{\pi}(d_i) = 1 + \sum_{j \neq i} \sigma(\alpha (s_j - s_i))`. Documents with equal labels share the
    mean of their ranks as target, which the approximation reaches when the model gives them equal scores.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        alpha: temperature of the ApproxRank sigmoid: higher is closer to the hard rank, with weaker gradients for
            well-separated pairs. 1.0 as in Rank-DistiLLM.
        activation_fn: applied to the logits before the loss; identity by default (None: identity).
        mini_batch_size: (query, document) pairs per forward pass. None: as many as there are queries in the batch;
            ``<= 0``: all pairs in one pass. Smaller uses less memory; the loss is the same.

    Requirements:
        1. A query with several documents (listwise).
        2. A relevance label per document, binary or graded (e.g. a teacher's scores).

    Inputs:
        +----------------------------------------+--------------------------------+-------------------------------+
        | Texts                                  | Labels                         | Number of model output labels |
        +========================================+================================+===============================+
        | (query, [doc1, doc2, ..., docN])       | [score1, score2, ..., scoreN]  | 1                             |
        +----------------------------------------+--------------------------------+-------------------------------+

    Relations:
        - :class:`RankNetLoss` is the pairwise loss Rank-DistiLLM compares it with (marginally better there).
        - :class:`LambdaLoss` takes the same inputs.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import ADRMSELoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = ADRMSELoss(model)
            queries = ["What are pandas?"]
            documents = [["Pandas are a kind of bear.", "Pandas are kind of like fish."]]
            loss([queries, documents], [torch.tensor([0.95, 0.1])]).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        alpha: float = 1.0,
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the reference's default object
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.alpha = alpha
        self.activation_fn = activation_fn or nn.Identity()
        self.mini_batch_size = mini_batch_size
        check_cross_encoder(self, model)
        check_one_label(self, model)

    def approximate_ranks(self, scores: Tensor, mask: Tensor) -> Tensor:
        """``(batch_size, n)`` ApproxRank of each document: ``1 + sum_{j != i} sigmoid(alpha * (s_j - s_i))`` over
        the real documents ``j`` of ``mask``."""
        beats = torch.sigmoid(self.alpha * (scores.unsqueeze(1) - scores.unsqueeze(2)))  # [b, i, j]: s_j over s_i
        beats = beats * mask.unsqueeze(1).float()
        # The sum includes j = i, which adds sigmoid(0) = 0.5 for every real document.
        return 1.0 + beats.sum(dim=2) - 0.5 * mask.float()

    def forward(
        self,
        inputs: list[Any],
        labels: list[Tensor],
        prompt: str | None = None,
        task: str | None = None,
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[queries, documents_per_query]``, ``labels`` one tensor of
        labels per query, as long as its documents list.

        Raises:
            ValueError: the batch is not listwise (see :func:`~sentrs.cross_encoder.losses._scoring.score_lists`).
        """
        scored = score_lists(self, inputs, labels, self.mini_batch_size, self.activation_fn, prompt, task)
        scores = scored.padded(scored.logits, -1e16)
        mask = scored.mask()
        truth = scored.padded(scored.labels, 0.0)

        # True rank with ties averaged: 1 + (documents labelled higher) + (other documents with the same label) / 2.
        other = truth.unsqueeze(1)  # [b, i, j]: label of j
        own = truth.unsqueeze(2)  # label of i
        real = mask.unsqueeze(1)
        higher = ((other > own) & real).sum(dim=-1).float()
        same = ((other == own) & real).sum(dim=-1).float()  # counts i itself
        true_ranks = higher + (same + 1.0) / 2.0

        errors = (true_ranks - self.approximate_ranks(scores, mask)) ** 2 / torch.log2(true_ranks + 1.0)
        return (errors * mask.float()).sum() / mask.sum()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "alpha": self.alpha,
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{schlatt2025rankdistillm,
    title={Rank-DistiLLM: Closing the Effectiveness Gap Between Cross-Encoders and LLMs for Passage Re-ranking},
    author={Schlatt, Ferdinand and Fröbe, Maik and Scells, Harrisen and Zhuang, Shengyao and Koopman, Bevan and Zuccon, Guido and Stein, Benno and Potthast, Martin and Hagen, Matthias},
    booktitle={Advances in Information Retrieval (ECIR 2025)},
    year={2025},
    doi={10.1007/978-3-031-88714-7_31},
}
"""  # noqa: E501
