"""``ListMLELoss``: the Plackett-Luce likelihood of a query's documents in label order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import nn

from sentrs.cross_encoder.losses.plist_mle import PListMLELoss

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["ListMLELoss"]


class ListMLELoss(PListMLELoss):
    """ListMLE: the negative log-likelihood, under the Plackett-Luce model of the scores, of picking each query's
    documents in their relevance order, averaged over the queries (:class:`PListMLELoss` without position weights).

    Args:
        model: the CrossEncoder to train; it must have one output label.
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

    Relations:
        - :class:`PListMLELoss` weighs the ranks and usually does better.
        - :class:`LambdaLoss` takes the same inputs and usually trains better rerankers.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import ListMLELoss

            model = CrossEncoder("microsoft/mpnet-base")
            loss = ListMLELoss(model)
            queries = ["What are pandas?"]
            documents = [["Pandas are a kind of bear.", "Pandas are kind of like fish."]]
            loss([queries, documents], [torch.tensor([1, 0])]).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module | None = nn.Identity(),  # noqa: B008 - the reference's default object
        mini_batch_size: int | None = None,
        respect_input_order: bool = True,
    ) -> None:
        super().__init__(
            model,
            lambda_weight=None,
            activation_fn=activation_fn,
            mini_batch_size=mini_batch_size,
            respect_input_order=respect_input_order,
        )

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        config = super().get_config_dict()
        del config["lambda_weight"]
        return config

    @property
    def citation(self) -> str:
        """BibTeX of the paper that introduced the loss."""
        return CITATION


CITATION = """
@inproceedings{10.1145/1390156.1390306,
    title = {Listwise Approach to Learning to Rank - Theory and Algorithm},
    author = {Xia, Fen and Liu, Tie-Yan and Wang, Jue and Zhang, Wensheng and Li, Hang},
    booktitle = {Proceedings of the 25th International Conference on Machine Learning},
    pages = {1192-1199},
    year = {2008},
    url = {https://doi.org/10.1145/1390156.1390306},
}
"""
