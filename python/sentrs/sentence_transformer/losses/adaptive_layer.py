"""``AdaptiveLayerLoss``: another loss, applied to the embeddings of the transformer's earlier layers too, so that a
model cut after fewer layers still works (the layer half of 2D Matryoshka)."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sentrs.sentence_transformer.losses._gradcache import uses_gradient_cache
from sentrs.sentence_transformer.losses._inputs import column_merging_disabled

if TYPE_CHECKING:
    from sentrs.sentence_transformer.model import SentenceTransformer

__all__ = ["AdaptiveLayerLoss", "LayerWeighting"]

LayerWeighting = Literal["uniform", "log", "linear"]


class _LayerReplay:
    """Stands in for the Transformer module's ``forward`` during one :class:`AdaptiveLayerLoss` step.

    The first pass (no layer set) runs the module and keeps, per call, the hidden states of every layer. Once a
    layer is set, the calls replay those, in call order, and hand on that layer's states as the token embeddings.
    """

    def __init__(self, transformer: Any, forward: Callable[..., dict[str, Any]]) -> None:
        self.transformer = transformer
        self.forward = forward
        self.hidden: list[Sequence[Tensor]] = []
        self.layer: int | None = None
        self.calls = 0

    @property
    def num_layers(self) -> int:
        """Hidden states per call: the embedding layer's output and each transformer layer's."""
        return len(self.hidden[0]) if self.hidden else 0

    def set_layer(self, layer: int) -> None:
        """Replay ``layer``'s states from the next call on."""
        self.layer = layer
        self.calls = 0

    def __call__(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if self.layer is None:
            return self._run_keeping_layers(features, **kwargs)
        if self.calls >= len(self.hidden):
            raise RuntimeError(
                "AdaptiveLayerLoss: the wrapped loss ran the model more often for an earlier layer than for the last "
                f"one ({self.calls + 1} calls, {len(self.hidden)} recorded); its forward passes must not depend on "
                "the layer."
            )
        states = self.hidden[self.calls]
        self.calls += 1
        output_name = getattr(self.transformer, "module_output_name", "token_embeddings")
        return {**features, output_name: states[self.layer]}

    def _run_keeping_layers(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        auto_model = self.transformer.auto_model
        captured: list[Any] = []
        handle = auto_model.register_forward_hook(lambda module, args, output: captured.append(output))
        config = auto_model.config
        previous = getattr(config, "output_hidden_states", False)
        try:
            config.output_hidden_states = True
            output = self.forward(features, **kwargs)
        finally:
            config.output_hidden_states = previous
            handle.remove()
        hidden = _hidden_states(captured[-1]) if captured else None
        if hidden is None:
            raise RuntimeError(
                f"AdaptiveLayerLoss needs the hidden states of every layer, but {type(auto_model).__name__} returned "
                "none with output_hidden_states=True."
            )
        self.hidden.append(hidden)
        return output


def _hidden_states(output: Any) -> Sequence[Tensor] | None:
    if isinstance(output, dict) or hasattr(output, "keys"):
        return output.get("hidden_states")
    return getattr(output, "hidden_states", None)


class _EmbeddingRecorder:
    """Stands in for the model's ``forward``: runs it and keeps each call's ``sentence_embedding``."""

    def __init__(self, forward: Callable[..., dict[str, Any]]) -> None:
        self.forward = forward
        self.embeddings: list[Tensor] = []

    def __call__(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        output = self.forward(features, **kwargs)
        self.embeddings.append(output["sentence_embedding"])
        return output

    def take(self) -> Tensor:
        """The embeddings of the calls since the last ``take``, stacked along the rows."""
        embeddings = torch.cat(self.embeddings, dim=0)
        self.embeddings = []
        return embeddings


def unwrap_model(model: nn.Module, loss_name: str) -> Any:
    """The sentrs model inside DistributedDataParallel or ``torch.compile`` wrappers.

    Raises:
        TypeError: ``model`` is neither a sentrs model nor such a wrapper around one.
    """
    from sentrs.base.model import BaseModel

    inner: Any = model
    while not isinstance(inner, BaseModel):
        if hasattr(inner, "_orig_mod"):
            inner = inner._orig_mod
        elif hasattr(inner, "module"):
            inner = inner.module
        else:
            raise TypeError(
                f"{loss_name} could not unwrap {type(model).__name__} to a sentrs model (stopped at "
                f"{type(inner).__name__}); expected DistributedDataParallel, torch.compile's OptimizedModule, or a "
                "model."
            )
    return inner


class AdaptiveLayerLoss(nn.Module):
    """The wrapped loss on the final embeddings, plus the same loss on the embeddings pooled from earlier
    transformer layers, plus a KL term that pulls each earlier layer's embedding distribution towards the last's.

    Each step runs the model once: the earlier layers' hidden states come from that same pass (the pooling and the
    later modules run again on each). The total is ``last_layer_weight * loss(last layer)`` plus, for each of
    ``n_layers_per_step`` randomly drawn earlier layers, ``prior_layers_weight * layer_weight(layer) *
    loss(layer) / n_drawn`` and ``kl_div_weight * kl_temperature * KL(softmax(last / T) || softmax(layer / T))``.

    Under this loss every column gets its own forward pass, as in the reference (the other losses share one pass
    among the candidate columns, see :func:`~sentrs.sentence_transformer.losses._inputs.embed_columns`), so in
    train mode dropout draws the same masks as the reference's.

    Args:
        model: the SentenceTransformer to train; its first module must be a Transformer.
        loss: the loss to apply at each layer (built on the same ``model``); a cached (``Cached*``) loss does not
            work here (a warning says so).
        n_layers_per_step: earlier layers drawn per step; 0 or less for all of them.
        last_layer_weight: weight of the last layer's loss.
        prior_layers_weight: weight of the earlier layers' losses.
        kl_div_weight: weight of the KL term; the term is left out when ``kl_temperature`` is 0.
        kl_temperature: temperature of the softmax over embedding dimensions in the KL term.
        layer_weighting: per-layer weight of the earlier layers' losses: ``"uniform"`` (1), ``"log"``
            (``1 / (1 + ln(1 + layer))``), ``"linear"`` (``1 / (1 + layer)``), or a callable of the layer index.

    Raises:
        ValueError: ``layer_weighting`` is unknown, or the model's first module is not a Transformer.

    Requirements:
        1. The model's first module is a Transformer (its hidden states are read per layer).

    Inputs:
        +-------+--------+
        | Texts | Labels |
        +=======+========+
        | any   | any    |
        +-------+--------+

    Relations:
        - :class:`Matryoshka2dLoss` combines it with :class:`MatryoshkaLoss`.

    Example:
        ::

            from sentrs import SentenceTransformer
            from sentrs.sentence_transformer.losses import AdaptiveLayerLoss, MultipleNegativesRankingLoss

            model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
            loss = AdaptiveLayerLoss(model, MultipleNegativesRankingLoss(model))
            columns = [["A man eats."], ["Someone is eating."]]
            loss([model.preprocess(texts) for texts in columns], None).backward()
    """

    def __init__(
        self,
        model: SentenceTransformer,
        loss: nn.Module,
        n_layers_per_step: int = 1,
        last_layer_weight: float = 1.0,
        prior_layers_weight: float = 1.0,
        kl_div_weight: float = 1.0,
        kl_temperature: float = 0.3,
        layer_weighting: LayerWeighting | Callable[[int], float] = "uniform",
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.n_layers_per_step = n_layers_per_step
        self.last_layer_weight = last_layer_weight
        self.prior_layers_weight = prior_layers_weight
        self.kl_div_weight = kl_div_weight
        self.kl_temperature = kl_temperature
        self.layer_weighting = layer_weighting
        if not callable(layer_weighting) and layer_weighting not in ("uniform", "log", "linear"):
            raise ValueError(
                f'layer_weighting must be "uniform", "log", "linear", or a callable, but got {layer_weighting!r}.'
            )
        first = unwrap_model(model, type(self).__name__)[0]
        if not hasattr(first, "auto_model"):
            raise ValueError(
                f"{type(self).__name__} needs a model whose first module is a Transformer (it reads the hidden "
                f"states of each layer), got {type(first).__name__}."
            )
        if uses_gradient_cache(loss):
            warnings.warn(f"AdaptiveLayerLoss is not compatible with {type(loss).__name__}.", stacklevel=2)

    def get_layer_weight(self, layer_idx: int) -> float:
        """The weight of layer ``layer_idx``'s loss under ``layer_weighting``."""
        if not isinstance(self.layer_weighting, str):
            return self.layer_weighting(layer_idx)
        if self.layer_weighting == "log":
            return 1.0 / (1.0 + math.log(1 + layer_idx))
        if self.layer_weighting == "linear":
            return 1.0 / (1 + layer_idx)
        return 1.0

    def forward(self, sentence_features: Iterable[dict[str, Any]], labels: Tensor | None) -> Tensor:
        """The total over the last layer and the drawn earlier layers; ``sentence_features`` and ``labels`` are
        what the wrapped loss takes."""
        features = list(sentence_features)
        model = unwrap_model(self.model, type(self).__name__)
        transformer = model[0]
        own_transformer_forward = transformer.__dict__.get("forward")
        own_model_forward = model.__dict__.get("forward")
        replay = _LayerReplay(transformer, transformer.forward)
        recorder = _EmbeddingRecorder(model.forward)
        transformer.forward = replay
        model.forward = recorder
        merging_off = column_merging_disabled()
        merging_off.__enter__()
        try:
            loss = self.loss(features, labels) * self.last_layer_weight
            if self.kl_temperature > 0:
                target = F.softmax(recorder.take() / self.kl_temperature, dim=-1).detach()
            layers: Sequence[int] = range(replay.num_layers - 1)
            if 0 < self.n_layers_per_step < len(layers):
                layers = random.sample(layers, self.n_layers_per_step)
            for layer in layers:
                replay.set_layer(layer)
                layer_loss = self.loss(features, labels)
                weight = self.get_layer_weight(layer)
                loss = loss + layer_loss * weight / len(layers) * self.prior_layers_weight
                if self.kl_temperature > 0:
                    log_probs = F.log_softmax(recorder.take() / self.kl_temperature, dim=-1)
                    kl = F.kl_div(log_probs, target, reduction="batchmean")
                    loss = loss + kl * self.kl_temperature * self.kl_div_weight
        finally:
            merging_off.__exit__(None, None, None)
            _restore(transformer, own_transformer_forward)
            _restore(model, own_model_forward)
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        """The loss's arguments, for the model card."""
        layer_weighting: str
        if isinstance(self.layer_weighting, str):
            layer_weighting = self.layer_weighting
        else:
            layer_weighting = getattr(self.layer_weighting, "__name__", "custom")
        return {
            "loss": type(self.loss).__name__,
            "n_layers_per_step": self.n_layers_per_step,
            "last_layer_weight": self.last_layer_weight,
            "prior_layers_weight": self.prior_layers_weight,
            "kl_div_weight": self.kl_div_weight,
            "kl_temperature": self.kl_temperature,
            "layer_weighting": layer_weighting,
        }

    @property
    def citation(self) -> str:
        """BibTeX of the 2D Matryoshka paper."""
        return CITATION


def _restore(module: Any, own_forward: Any) -> None:
    """Puts back the ``forward`` a module had before (an instance-level one, or the class's)."""
    if own_forward is None:
        module.__dict__.pop("forward", None)
    else:
        module.forward = own_forward


CITATION = """
@misc{li20242d,
    title={2D Matryoshka Sentence Embeddings},
    author={Xianming Li and Zongxi Li and Jing Li and Haoran Xie and Qing Li},
    year={2024},
    eprint={2402.14776},
    archivePrefix={arXiv},
    primaryClass={cs.CL}
}
"""
