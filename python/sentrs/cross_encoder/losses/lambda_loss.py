"""``LambdaLoss``: pairwise logistic losses between a query's documents, weighted to optimize NDCG, with its
weighting schemes (``NoWeightingScheme``, ``NDCGLoss1Scheme``, ``NDCGLoss2Scheme``, ``LambdaRankScheme``,
``NDCGLoss2PPScheme``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, score_lists

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = [
    "BaseWeightingScheme",
    "LambdaLoss",
    "LambdaRankScheme",
    "NDCGLoss1Scheme",
    "NDCGLoss2PPScheme",
    "NDCGLoss2Scheme",
    "NoWeightingScheme",
]


class BaseWeightingScheme(nn.Module):
    """A weighting scheme of :class:`LambdaLoss`: the weight of each ordered pair of positions ``(i, j)`` in the
    ranking predicted for a query.

    Subclasses implement :meth:`forward`. Its arguments, for ``b`` queries of at most ``n`` documents each:

    - ``gain``: ``(b, n)``, ``(2 ** label - 1) / maxDCG`` of the document at each predicted rank;
    - ``discount``: ``(1, n)``, ``log2(1 + rank)`` for ranks 1..n;
    - ``true_sorted``: ``(b, n)``, the labels in predicted order (padding clamped to 0).

    It returns weights that broadcast against ``(b, n, n)``.
    """

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        """The pair weights (see the class docstring)."""
        raise NotImplementedError


class NoWeightingScheme(BaseWeightingScheme):
    """Every pair weighs 1: plain RankNet."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        return torch.tensor(1.0, device=gain.device)


class NDCGLoss1Scheme(BaseWeightingScheme):
    """NDCG-Loss1: pair ``(i, j)`` weighs ``gain_i / discount_i``. A loose bound of NDCG; the LambdaLoss paper found
    :class:`NDCGLoss2Scheme` and :class:`NDCGLoss2PPScheme` better."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        return (gain / discount).unsqueeze(2)


class NDCGLoss2Scheme(BaseWeightingScheme):
    """NDCG-Loss2: pair ``(i, j)`` weighs ``|1/D(|i-j|) - 1/D(|i-j| + 1)| * |gain_i - gain_j|``, with ``D`` the
    discount of a rank: a tighter bound of NDCG than :class:`NDCGLoss1Scheme`."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        n = gain.shape[1]
        positions = torch.arange(n, device=gain.device)
        distance = (positions.unsqueeze(1) - positions.unsqueeze(0)).abs()  # |i - j|, 0..n-1
        inverse = discount[0].abs().reciprocal()  # 1 / D(rank), rank 1..n at index 0..n-1
        # 1/D(|i-j|) - 1/D(|i-j| + 1): index |i-j| - 1 and |i-j|; the diagonal (|i-j| = 0) weighs 0.
        delta = (inverse[(distance - 1).clamp_min(0)] - inverse[distance]).abs()
        delta = delta.masked_fill(distance == 0, 0.0)
        return delta.unsqueeze(0) * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class LambdaRankScheme(BaseWeightingScheme):
    """LambdaRank: pair ``(i, j)`` weighs ``|1/D(i) - 1/D(j)| * |gain_i - gain_j|``, the NDCG change of swapping the
    two documents (a coarse upper bound of NDCG)."""

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        inverse = discount.reciprocal()
        return (inverse.unsqueeze(2) - inverse.unsqueeze(1)).abs() * (gain.unsqueeze(2) - gain.unsqueeze(1)).abs()


class NDCGLoss2PPScheme(BaseWeightingScheme):
    """NDCG-Loss2++: ``mu * NDCG-Loss2 + LambdaRank``, the strongest scheme in the LambdaLoss paper.

    Args:
        mu: the weight of the NDCG-Loss2 term.
    """

    def __init__(self, mu: float = 10.0) -> None:
        super().__init__()
        self.mu = mu
        self.ndcg_loss2 = NDCGLoss2Scheme()
        self.lambda_rank = LambdaRankScheme()

    def forward(self, gain: Tensor, discount: Tensor, true_sorted: Tensor) -> Tensor:
        ndcg2 = self.ndcg_loss2(gain, discount, true_sorted)
        return self.mu * ndcg2 + self.lambda_rank(gain, discount, true_sorted)


class LambdaLoss(nn.Module):
    """The LambdaLoss framework: for each query, a logistic loss ``-log sigmoid(sigma * (s_i - s_j))`` on every pair
    of documents whose labels say ``i`` should rank above ``j``, weighted by ``weighting_scheme`` so that the sum
    bounds an NDCG-based loss; averaged over the pairs of the batch.

    Pairs are formed in the order the model currently ranks the documents; with ``k``, only pairs with at least one
    document in that top ``k`` count (NDCG@k). Queries may have different numbers of documents.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        weighting_scheme: the pair weights: :class:`NoWeightingScheme` (RankNet), :class:`NDCGLoss1Scheme`,
            :class:`NDCGLoss2Scheme`, :class:`LambdaRankScheme` or :class:`NDCGLoss2PPScheme` (default, the
            strongest in the paper, :class:`NDCGLoss2Scheme` close behind). None: no weighting.
        k: the cut-off of NDCG@k; None uses every document.
        sigma: the steepness of the logistic.
        eps: floor of each query's ideal DCG (queries without relevant documents).
        reduction_log: ``"binary"`` measures the loss in bits (log2), ``"natural"`` in nats.
        activation_fn: applied to the logits before the loss; identity by default (None: identity).
        mini_batch_size: (query, document) pairs per forward pass. None: as many as there are queries in the batch;
            ``<= 0``: all pairs in one pass. Smaller uses less memory; the loss is the same.

    Requirements:
        1. A query with several documents (listwise).
        2. A relevance label per document, binary or graded.

    Inputs:
        +----------------------------------------+--------------------------------+-------------------------------+
        | Texts                                  | Labels                         | Number of model output labels |
        +========================================+================================+===============================+
        | (query, [doc1, doc2, ..., docN])       | [score1, score2, ..., scoreN]  | 1                             |
        +----------------------------------------+--------------------------------+-------------------------------+

    Recommendations:
        - :func:`sentrs.util.mine_hard_negatives` with ``output_format="labeled-list"`` builds such lists.

    Relations:
        - :class:`RankNetLoss` is this loss without weights.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import LambdaLoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = LambdaLoss(model)
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
        weighting_scheme: BaseWeightingScheme | None = NDCGLoss2PPScheme(),  # noqa: B008 - the reference's default object
        k: int | None = None,
        sigma: float = 1.0,
        eps: float = 1e-10,
        reduction_log: Literal["natural", "binary"] = "binary",
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.weighting_scheme = weighting_scheme or NoWeightingScheme()
        self.k = k
        self.sigma = sigma
        self.eps = eps
        self.reduction_log = reduction_log
        self.activation_fn = activation_fn or nn.Identity()
        self.mini_batch_size = mini_batch_size
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
        n = scored.max_documents
        device = scored.logits.device
        scores = scored.padded(scored.logits, -1e16)
        truth = scored.padded(scored.labels, float("-inf"))

        # Documents in the model's order, and the labels that land at each predicted rank.
        ranked_scores, order = scores.sort(descending=True, dim=-1)
        ideal, _ = truth.sort(descending=True, dim=-1)
        truth_ranked = truth.gather(1, order)

        # Pairs (i, j) that count: both real documents (finite label difference), i more relevant than j (not
        # required by NDCG-Loss1), and i or j in the top k.
        label_gaps = truth_ranked.unsqueeze(2) - truth_ranked.unsqueeze(1)
        counted = torch.isfinite(label_gaps)
        if not isinstance(self.weighting_scheme, NDCGLoss1Scheme):
            counted &= label_gaps > 0
        k = self.k or n
        in_top_k = torch.zeros((n, n), dtype=torch.bool, device=device)
        in_top_k[:k, :] = True
        in_top_k[:, :k] = True

        truth_ranked = truth_ranked.clamp(min=0.0)
        ideal = ideal.clamp(min=0.0)
        discount = torch.log2(1.0 + torch.arange(1, n + 1, device=device).float()).unsqueeze(0)
        max_dcg = ((torch.pow(2, ideal) - 1) / discount)[:, :k].sum(dim=-1).clamp(min=self.eps)
        gain = (torch.pow(2, truth_ranked) - 1) / max_dcg.unsqueeze(1)
        weights = self.weighting_scheme(gain, discount, truth_ranked)

        # log sigmoid of the score gaps directly (no probability that could underflow); padding gaps are clamped.
        score_gaps = (ranked_scores.unsqueeze(2) - ranked_scores.unsqueeze(1)).clamp(min=-1e8, max=1e8)
        score_gaps = score_gaps.nan_to_num(nan=0.0, posinf=1e8, neginf=-1e8)
        pair_losses = weights * F.logsigmoid(self.sigma * score_gaps)
        if self.reduction_log == "binary":
            pair_losses = pair_losses / math.log(2)
        selected = pair_losses[counted & in_top_k]
        return -selected.sum() / max(selected.numel(), 1)

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {
            "weighting_scheme": fullname(self.weighting_scheme),
            "k": self.k,
            "sigma": self.sigma,
            "eps": self.eps,
            "reduction_log": self.reduction_log,
            "activation_fn": fullname(self.activation_fn),
            "mini_batch_size": self.mini_batch_size,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{wang2018lambdaloss,
  title={The LambdaLoss Framework for Ranking Metric Optimization},
  author={Wang, Xuanhui and Li, Cheng and Golbandi, Nadav and Bendersky, Michael and Najork, Marc},
  booktitle={Proceedings of the 27th ACM international conference on information and knowledge management},
  pages={1313--1322},
  year={2018}
}
"""
