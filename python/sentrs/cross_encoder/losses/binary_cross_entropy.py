"""``BinaryCrossEntropyLoss``: one logit per (query, document) pair against a 0/1 (or [0, 1]) label."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["BinaryCrossEntropyLoss"]


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy on the model's logit of each pair: relevant pairs are pushed up, irrelevant ones down.

    The classic loss of rerankers trained on (query, passage, relevant?) data such as MS MARCO. The logits go through
    ``activation_fn`` and then :class:`torch.nn.BCEWithLogitsLoss` (which applies the sigmoid itself).

    Args:
        model: the CrossEncoder to train; it must have one output label.
        activation_fn: applied to the ``(batch_size,)`` logits before the loss; identity by default.
        pos_weight: weight of the positive class, a tensor such as ``torch.tensor(4.0)``; None weighs both alike.
        **kwargs: passed on to :class:`torch.nn.BCEWithLogitsLoss` (``reduction``, ``weight``).

    Requirements:
        1. A model with ``num_labels=1``.

    Inputs:
        +---------------------------------------+------------------------------+-------------------------------+
        | Texts                                 | Labels                       | Number of model output labels |
        +=======================================+==============================+===============================+
        | (query, document) pairs               | 1 if relevant, 0 if not      | 1                             |
        +---------------------------------------+------------------------------+-------------------------------+
        | (text_a, text_b) pairs                | a similarity in [0, 1]       | 1                             |
        +---------------------------------------+------------------------------+-------------------------------+

    Recommendations:
        - :func:`sentrs.util.mine_hard_negatives` with ``output_format="labeled-pair"`` turns (query, answer) pairs
          into labelled pairs with hard negatives.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import BinaryCrossEntropyLoss

            model = CrossEncoder("cross-encoder/ms-marco-MiniLM-L6-v2")
            loss = BinaryCrossEntropyLoss(model)
            queries = ["What are pandas?", "What are pandas?"]
            answers = ["Pandas are a kind of bear.", "Pandas are a kind of fish."]
            loss([queries, answers], torch.tensor([1, 0])).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the reference's default object
        pos_weight: Tensor | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.activation_fn = activation_fn
        self.pos_weight = pos_weight
        self.bce_with_logits_loss = nn.BCEWithLogitsLoss(pos_weight=pos_weight, **kwargs)
        check_cross_encoder(self, model)
        check_one_label(self, model)

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[texts_a, texts_b]`` (two columns of ``batch_size`` texts),
        ``labels`` one number per pair.

        Raises:
            ValueError: not two text columns, or not one label per pair.
        """
        if len(inputs) != 2:
            raise ValueError(
                f"BinaryCrossEntropyLoss expects a dataset with two non-label columns, but got a dataset with "
                f"{len(inputs)} columns."
            )
        logits = self.activation_fn(pair_logits(self.model, list(zip(inputs[0], inputs[1])), prompt, task).view(-1))
        if labels.numel() != logits.shape[0]:
            raise ValueError(
                f"BinaryCrossEntropyLoss expects {logits.shape[0]} labels (one per example), "
                f"but got {labels.numel()} labels with shape {tuple(labels.shape)}."
            )
        loss: Tensor = self.bce_with_logits_loss(logits, labels.view(-1).float())
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        pos_weight: Any = self.pos_weight
        if pos_weight is not None:
            pos_weight = pos_weight.item() if pos_weight.numel() == 1 else pos_weight.tolist()
        return {"activation_fn": fullname(self.activation_fn), "pos_weight": pos_weight}
