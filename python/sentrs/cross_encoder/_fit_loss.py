"""``FitMixinLoss``: how :meth:`CrossEncoder.fit <sentrs.cross_encoder.fit_mixin.FitMixin.fit>` trains with a plain
torch loss (``loss_fct``) that takes logits and labels.

It imports torch, so it lives apart from :mod:`sentrs.cross_encoder.fit_mixin` (which the model class imports) and
loads from there on first use, under the reference's name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from sentrs.cross_encoder.losses._scoring import check_cross_encoder, pair_logits

if TYPE_CHECKING:
    from sentrs.cross_encoder.model import CrossEncoder

__all__ = ["FitMixinLoss"]


class FitMixinLoss(nn.Module):
    """Scores each (text, text) pair of a batch with the cross-encoder and applies ``loss_fct(logits, labels)``.

    With one label, the logits are flattened to ``(batch,)`` and the labels made float (as ``nn.BCEWithLogitsLoss``
    or ``nn.MSELoss`` want); with several, the logits stay ``(batch, num_labels)`` and the labels become class ids
    (int64, as ``nn.CrossEntropyLoss`` wants). ``activation_fn`` is applied to the logits first.

    Args:
        model: the cross-encoder to train.
        loss_fct: a torch loss over ``(logits, labels)``.
        activation_fn: applied to the logits before the loss; default identity.
    """

    def __init__(self, model: CrossEncoder, loss_fct: nn.Module, activation_fn: nn.Module | None = None) -> None:
        super().__init__()
        self.model = model
        self.loss_fct = loss_fct
        self.activation_fn = nn.Identity() if activation_fn is None else activation_fn
        check_cross_encoder(self, model)

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Any:
        """The loss of a batch: ``inputs`` is ``[texts_a, texts_b]`` (two columns of ``batch`` texts), ``labels``
        one number per pair.

        Raises:
            ValueError: not two text columns.
        """
        if len(inputs) != 2:
            raise ValueError(
                f"CrossEncoder.fit() with a `loss_fct` expects examples with two texts, but got a dataset with "
                f"{len(inputs)} columns."
            )
        logits = pair_logits(self.model, list(zip(inputs[0], inputs[1])), prompt, task)
        if self.model.num_labels == 1:
            logits, labels = logits.view(-1), labels.float()
        else:
            labels = labels.long()
        return self.loss_fct(self.activation_fn(logits), labels)
