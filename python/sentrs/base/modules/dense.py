"""A feed-forward layer on the sentence embedding."""

from __future__ import annotations

import logging
import os
from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.modules.module import Module
from sentrs.base.registry import fullname, import_from_string

__all__ = ["Dense"]

logger = logging.getLogger(__name__)


def _activation_from_config(name: str | None, trust_remote_code: bool = False) -> nn.Module:
    if name is None:
        return nn.Identity()
    if not name.startswith("torch.") and not trust_remote_code:
        raise ValueError(
            f"Dense activation_function {name!r} is not a torch class; loading it runs custom code, so pass "
            "trust_remote_code=True if you trust this model"
        )
    cls = import_from_string(name)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"Dense activation_function must name an nn.Module class, got {name!r}")
    return cls()


class Dense(Module):
    """``out = activation(W x + b)`` on ``features[module_input_name]`` (plus a residual when asked).

    Args:
        in_features: input size.
        out_features: output size.
        bias: whether the layer has a bias.
        activation_function: an ``nn.Module`` instance (default ``nn.Tanh()``); None means identity.
        init_weight: optional initial ``(out, in)`` weight.
        init_bias: optional initial ``(out,)`` bias.
        module_input_name: the feature read.
        module_output_name: the feature written (default: ``module_input_name``, so a Dense on a custom key
            writes back to it).
        use_residual: add the input (projected when sizes differ) to the output.
    """

    config_keys: ClassVar[list[str]] = [
        "in_features",
        "out_features",
        "bias",
        "activation_function",
        "module_input_name",
        "module_output_name",
    ]
    reference_type: ClassVar[str] = "sentence_transformers.base.modules.dense.Dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: nn.Module | None = nn.Tanh(),  # noqa: B008 - the reference's default
        init_weight: torch.Tensor | None = None,
        init_bias: torch.Tensor | None = None,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
        use_residual: bool = False,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.bias = bias
        self.activation_function = activation_function if activation_function is not None else nn.Identity()
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name if module_output_name is not None else module_input_name
        self.use_residual = use_residual
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        if init_weight is not None:
            self.linear.weight = nn.Parameter(init_weight)
        if init_bias is not None:
            self.linear.bias = nn.Parameter(init_bias)
        if use_residual and in_features != out_features:
            self.residual = nn.Linear(in_features, out_features, bias=False)

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        x = features[self.module_input_name]
        out = self.activation_function(self.linear(x))
        if self.use_residual:
            out = out + (self.residual(x) if hasattr(self, "residual") else x)
        features[self.module_output_name] = out
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias,
            "activation_function": fullname(self.activation_function),
            "module_input_name": self.module_input_name,
            "module_output_name": self.module_output_name,
        }
        if self.use_residual:
            config["use_residual"] = True
        return config

    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        self.save_config(output_path)
        self.save_torch_weights(output_path, safe_serialization=safe_serialization)

    @classmethod
    def load(cls, model_dir: str, trust_remote_code: bool = False, **kwargs: Any) -> Dense:
        config = cls.load_config(model_dir)
        known = {*cls.config_keys, "use_residual"}
        unknown = set(config) - known
        if unknown:
            logger.warning("Dense config in %s has unknown keys %s; ignoring them", model_dir, sorted(unknown))
        for key in ("in_features", "out_features"):
            if key not in config:
                raise ValueError(f"Dense config in {model_dir} lacks the required key {key!r}")
        activation = _activation_from_config(config.get("activation_function"), trust_remote_code)
        module = cls(
            in_features=config["in_features"],
            out_features=config["out_features"],
            bias=config.get("bias", True),
            activation_function=activation,
            module_input_name=config.get("module_input_name", "sentence_embedding"),
            module_output_name=config.get("module_output_name", "sentence_embedding"),
            use_residual=config.get("use_residual", False),
        )
        if not os.path.isdir(model_dir):
            raise FileNotFoundError(f"Dense module folder not found: {model_dir}")
        module.load_torch_weights(model_dir)
        return module
