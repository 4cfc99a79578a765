"""``CrossEntropyLoss``: the model's logits over ``num_labels`` classes against a class label per pair."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentrs.cross_encoder.losses._scoring import check_cross_encoder, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["CrossEntropyLoss"]


class CrossEntropyLoss(nn.Module):
    """Cross-entropy of the pair's ``num_labels`` logits against its class: a pair classifier (NLI, duplicates, ...).

    Args:
        model: the CrossEncoder to train; one output label per class (``num_labels >= 2``).
        activation_fn: applied to the ``(batch_size, num_labels)`` logits before the loss; identity by default.
        **kwargs: passed on to :class:`torch.nn.CrossEntropyLoss` (``weight``, ``ignore_index``,
            ``label_smoothing``, ...).

    Requirements:
        1. A model with ``num_labels`` equal to the number of classes (at least 2).
        2. Class labels ``0 .. num_labels - 1`` (or class probabilities, ``(batch_size, num_labels)`` floats).

    Inputs:
        +---------------------------------------+------------------------------+-------------------------------+
        | Texts                                 | Labels                       | Number of model output labels |
        +=======================================+==============================+===============================+
        | (text_a, text_b) pairs                | class                        | number of classes             |
        +---------------------------------------+------------------------------+-------------------------------+

    Example:
        ::

            import torch
            from sentrs import CrossEncoder
            from sentrs.cross_encoder.losses import CrossEntropyLoss

            model = CrossEncoder("microsoft/mpnet-base", num_labels=3)
            loss = CrossEntropyLoss(model)
            premises = ["A man eats.", "A man eats."]
            hypotheses = ["Someone is eating.", "Nobody eats."]
            loss([premises, hypotheses], torch.tensor([0, 2])).backward()
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
        self.ce_loss = nn.CrossEntropyLoss(**kwargs)
        check_cross_encoder(self, model)
        if model.num_labels < 2:
            raise ValueError(
                f"CrossEntropyLoss expects a model with one output label per class (at least 2), but got a model "
                f"with {model.num_labels} output label: its loss would always be 0. Load the model with "
                "num_labels=<number of classes>, or use BinaryCrossEntropyLoss for 0/1 labels."
            )

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        """The loss of a batch: ``inputs`` is ``[texts_a, texts_b]``, ``labels`` a class id per pair ``(batch_size,)``
        (or class probabilities ``(batch_size, num_labels)``).

        Raises:
            ValueError: not two text columns, or labels that are not classes of this model.
        """
        if len(inputs) != 2:
            raise ValueError(
                f"CrossEntropyLoss expects a dataset with two non-label columns, but got a dataset with "
                f"{len(inputs)} columns."
            )
        logits = self.activation_fn(pair_logits(self.model, list(zip(inputs[0], inputs[1])), prompt, task))
        loss: Tensor = self.ce_loss(logits, self._checked_labels(labels, logits))
        return loss

    def _checked_labels(self, labels: Tensor, logits: Tensor) -> Tensor:
        batch_size, num_labels = logits.shape
        if labels.is_floating_point():
            if labels.shape != (batch_size, num_labels):
                raise ValueError(
                    f"CrossEntropyLoss expects integer class labels of shape ({batch_size},) or class probabilities "
                    f"of shape ({batch_size}, {num_labels}), but got float labels of shape {tuple(labels.shape)}."
                )
            return labels
        if labels.shape == (batch_size, 1):
            labels = labels.view(-1)
        if labels.shape != (batch_size,):
            raise ValueError(
                f"CrossEntropyLoss expects one class label per pair, shape ({batch_size},), but got labels of shape "
                f"{tuple(labels.shape)}."
            )
        counted = labels[labels != self.ce_loss.ignore_index]
        if counted.numel() and (int(counted.min()) < 0 or int(counted.max()) >= num_labels):
            bad = sorted({int(v) for v in counted.tolist() if not 0 <= v < num_labels})
            raise ValueError(
                f"CrossEntropyLoss got class labels {bad}, but the model has {num_labels} output labels, so class "
                f"labels must be in 0..{num_labels - 1}. Load the model with num_labels=<number of classes>."
            )
        return labels
