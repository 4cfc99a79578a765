"""``MSELoss``: the model's score of each pair regresses onto a target score (distillation from a teacher)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentrs.base.registry import fullname
from sentrs.cross_encoder.losses._scoring import check_cross_encoder, check_one_label, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["MSELoss"]


class MSELoss(nn.Module):
    """Mean squared error between the model's score of each pair and a target score, usually a teacher
    cross-encoder's (knowledge distillation) or gold similarity labels.

    Mind the scale of both: if the teacher's scores went through a sigmoid, give this loss
    ``activation_fn=nn.Sigmoid()`` so that the student's are bounded the same way.

    Args:
        model: the CrossEncoder to train; it must have one output label.
        activation_fn: applied to the ``(batch_size,)`` logits before the loss; identity by default.
        **kwargs: passed on to :class:`torch.nn.MSELoss` (``reduction``).

    Requirements:
        1. A model with ``num_labels=1``.
        2. Target scores, typically from a fine-tuned teacher cross-encoder.

    Inputs:
        +---------------------------------------+------------------------------+-------------------------------+
        | Texts                                 | Labels                       | Number of model output labels |
        +=======================================+==============================+===============================+
        | (text_a, text_b) pairs                | target score                 | 1                             |
        +---------------------------------------+------------------------------+-------------------------------+

    Relations:
        - :class:`MarginMSELoss` regresses score differences between two documents of a query instead.

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import MSELoss

            student = CrossEncoder("microsoft/mpnet-base")
            loss = MSELoss(student)
            queries = ["What are pandas?", "What is the capital of France?"]
            answers = ["Pandas are a kind of bear.", "The capital of France is Paris."]
            loss([queries, answers], torch.tensor([7.2, 9.1])).backward()
    """

    def __init__(
        self,
        model: CrossEncoder,
        activation_fn: nn.Module = nn.Identity(),  # noqa: B008 - the reference's default object
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.activation_fn = activation_fn
        self.loss_fct = nn.MSELoss(**kwargs)
        check_cross_encoder(self, model)
        check_one_label(self, model)

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[texts_a, texts_b]``, ``labels`` one target score per pair.

        Raises:
            ValueError: not two text columns, or not one label per pair.
        """
        if len(inputs) != 2:
            raise ValueError(
                f"MSELoss expects a dataset with two non-label columns, but got a dataset with {len(inputs)} columns."
            )
        logits = self.activation_fn(pair_logits(self.model, list(zip(inputs[0], inputs[1])), prompt, task).view(-1))
        if labels.numel() != logits.shape[0]:
            raise ValueError(
                f"MSELoss expects {logits.shape[0]} labels (one per example), "
                f"but got {labels.numel()} labels with shape {tuple(labels.shape)}."
            )
        loss: Tensor = self.loss_fct(logits, labels.view(-1).detach().float())
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        return {"activation_fn": fullname(self.activation_fn)}
