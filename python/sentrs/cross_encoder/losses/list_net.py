"""``ListNetLoss``: the cross-entropy between the softmax of a query's document scores and that of its labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, score_lists

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["ListNetLoss"]


class ListNetLoss(nn.Module):
    """ListNet (top-one probability): for each query, the cross-entropy between the softmax of the labels over its
    documents (the target distribution) and the softmax of the model's scores, averaged over the queries.

    Queries may have different numbers of documents; only real (query, document) pairs go through the model.

    Args:
        model: the CrossEncoder to train; it must have one output label.
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
        - :class:`LambdaLoss` takes the same inputs and usually trains better rerankers.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import ListNetLoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = ListNetLoss(model)
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
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the reference's default object
        mini_batch_size: int | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.activation_fn = activation_fn or nn.Identity()
        self.mini_batch_size = mini_batch_size
        self.cross_entropy_loss = nn.CrossEntropyLoss()
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
        # Positions past the end of a list: a score that vanishes in the softmax, and a target probability of 0.
        logits = scored.padded(scored.logits, -1e16)
        target = F.softmax(scored.padded(scored.labels, float("-inf")), dim=1)
        loss: Tensor = self.cross_entropy_loss(logits, target)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn), "mini_batch_size": self.mini_batch_size}

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{cao2007learning,
    title={Learning to Rank: From Pairwise Approach to Listwise Approach},
    author={Cao, Zhe and Qin, Tao and Liu, Tie-Yan and Tsai, Ming-Feng and Li, Hang},
    booktitle={Proceedings of the 24th international conference on Machine learning},
    pages={129--136},
    year={2007}
}
"""
