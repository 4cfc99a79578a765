"""``PListMLELoss``: the Plackett-Luce likelihood of a query's documents in label order, position-weighted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, score_lists

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["PListMLELambdaWeight", "PListMLELoss"]

# 2.0 ** 127 is the largest power of two whose sums over a list stay finite in float32.
_MAX_EXPONENT = 127


class PListMLELambdaWeight(nn.Module):
    """The position weights of :class:`PListMLELoss`: how much the choice at each rank counts.

    Args:
        rank_discount_fn: maps the ``(batch_size, max_documents)`` bool mask of real positions to
            ``(batch_size, max_documents)`` weights, zero at the padded positions. None: ``2 ** (n - rank) - 1`` for a
            list of ``n`` documents and ranks 1..n, so the first choices weigh most.
    """

    def __init__(self, rank_discount_fn: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        self.rank_discount_fn = rank_discount_fn

    def forward(self, mask: Tensor) -> Tensor:
        """``(batch_size, max_documents)`` weights for the positions of ``mask`` (0 where it is False).

        The default weights of a list longer than 127 documents are divided by a common power of two, so that they
        and their sum stay finite; :class:`PListMLELoss` normalizes each list's weights, so nothing else changes.
        """
        if self.rank_discount_fn is not None:
            return self.rank_discount_fn(mask)
        n_docs = mask.sum(dim=1, keepdim=True)
        ranks = torch.arange(1, mask.shape[1] + 1, device=mask.device).expand_as(mask)
        shift = (n_docs - _MAX_EXPONENT).clamp_min(0)  # 2 ** -shift rescales long lists
        weights = torch.pow(2.0, n_docs - ranks - shift) - torch.pow(2.0, -shift)
        return weights * mask


class PListMLELoss(nn.Module):
    """Position-aware ListMLE (p-ListMLE): the negative log-likelihood, under the Plackett-Luce model of the scores, of
    picking each query's documents in their relevance order, with each pick weighted by its rank.

    At rank ``i`` the model "picks" the document that belongs there among those not picked yet, with probability
    ``exp(s_i) / sum_{j >= i} exp(s_j)``. The log-probabilities are weighted by ``lambda_weight`` (normalized to sum
    to 1 per query), summed per query and averaged over the queries. Without a ``lambda_weight`` this is ListMLE.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        lambda_weight: the position weights; None weighs every rank alike (ListMLE).
        activation_fn: applied to the logits before the loss; identity by default (None: identity).
        mini_batch_size: (query, document) pairs per forward pass. None: as many as there are queries in the batch;
            ``<= 0``: all pairs in one pass. Smaller uses less memory; the loss is the same.
        respect_input_order: True takes each list's order as the relevance order (most relevant first); False
            sorts each list by its labels, highest first.

    Requirements:
        1. A query with several documents (listwise).
        2. A relevance label per document, binary or graded.
        3. The documents in relevance order, unless ``respect_input_order=False``.

    Inputs:
        +----------------------------------------+--------------------------------+-------------------------------+
        | Texts                                  | Labels                         | Number of model output labels |
        +========================================+================================+===============================+
        | (query, [doc1, doc2, ..., docN])       | [score1, score2, ..., scoreN]  | 1                             |
        +----------------------------------------+--------------------------------+-------------------------------+

    Recommendations:
        - :func:`sentrs.util.mine_hard_negatives` with ``output_format="labeled-list"`` builds such lists.

    Relations:
        - :class:`ListMLELoss` is this loss without position weights; this one usually does better.
        - :class:`LambdaLoss` takes the same inputs and usually trains better rerankers.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import PListMLELambdaWeight, PListMLELoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = PListMLELoss(model, lambda_weight=PListMLELambdaWeight())
            queries = ["What are pandas?", "What is the capital of France?"]
            documents = [
                ["Pandas are a kind of bear.", "Pandas are kind of like fish."],
                ["The capital of France is Paris.", "Paris is the capital of France.", "Paris is quite large."],
            ]
            loss([queries, documents], [torch.tensor([1, 0]), torch.tensor([1, 1, 0])]).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        lambda_weight: PListMLELambdaWeight | None = PListMLELambdaWeight(),  # noqa: B008 - the reference's default object
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.lambda_weight = lambda_weight
        self.activation_fn = activation_fn or nn.Identity()
        self.mini_batch_size = mini_batch_size
        self.respect_input_order = respect_input_order
        self.eps = 1e-10
        check_cross_encoder(self, model)
        check_one_label(self, model)

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
        scores = scored.padded(scored.logits, 1e-16)
        mask = scored.mask()
        if not self.respect_input_order:
            # Highest label first; padded positions (label -inf) stay at the end.
            _, order = scored.padded(scored.labels, float("-inf")).sort(descending=True, dim=1)
            scores = scores.gather(1, order)
            ordered_mask = mask.gather(1, order)
        else:
            ordered_mask = mask
        # log P(pick i at rank i) = s_i - logsumexp(s_i, ..., s_n): a reversed cumulative logsumexp, with the padded
        # positions at the lowest float so that they add nothing.
        remaining = scores.masked_fill(~ordered_mask, torch.finfo(scores.dtype).min)
        log_norms = remaining.flip(1).logcumsumexp(dim=1).flip(1)
        log_probs = scores - log_norms
        if self.lambda_weight is not None:
            weights = self.lambda_weight(mask)
            log_probs = log_probs * (weights / (weights.sum(dim=1, keepdim=True) + self.eps))
        per_query = -log_probs.masked_fill(~ordered_mask, 0.0).sum(dim=1)
        if not torch.any(per_query):
            # Nothing to learn (every list has a single document): a constant loss, as the reference returns.
            return torch.tensor(0.0, device=scores.device, requires_grad=True)
        return per_query.mean()

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "lambda_weight": None if self.lambda_weight is None else fullname(self.lambda_weight),
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
            "respect_input_order": self.respect_input_order,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{lan2014position,
  title={Position-Aware ListMLE: A Sequential Learning Process for Ranking},
  author={Lan, Yanyan and Zhu, Yadong and Guo, Jiafeng and Niu, Shuzi and Cheng, Xueqi},
  booktitle={UAI},
  volume={14},
  pages={449--458},
  year={2014}
}
"""
