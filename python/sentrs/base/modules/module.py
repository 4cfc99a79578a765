"""The module contract every building block of a model follows (the reference's ``Module``/``InputModule``)."""

from __future__ import annotations

import json
import os
from abc import abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from sentrs.base.formats import file_named_in_errors, read_json_object

__all__ = ["InputModule", "Module", "load_pickled_weights", "read_json_object", "read_weights_file"]


def load_pickled_weights(path: str) -> Any:
    """The tensors of a ``pytorch_model.bin``, unpickled weights-only: a pickle holding anything but tensors and
    plain containers (code to run) is refused with ``pickle.UnpicklingError`` naming ``path``."""
    with file_named_in_errors(path, RuntimeError, EOFError):
        return torch.load(path, map_location="cpu", weights_only=True)


def read_weights_file(model_dir: str) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors`` (or, failing that, a weights-only ``pytorch_model.bin``) in
    ``model_dir``; a corrupt file raises its parse error naming it, a folder with neither FileNotFoundError."""
    st_path = os.path.join(model_dir, "model.safetensors")
    if os.path.isfile(st_path):
        from safetensors.torch import load_file

        with file_named_in_errors(st_path):
            return dict(load_file(st_path))
    bin_path = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        return dict(load_pickled_weights(bin_path))
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {model_dir}")


class Module(nn.Module):
    """A model building block that reads and writes a features dict and saves itself to a folder.

    Class attributes:
        config_keys: attributes written to ``config_file_name`` by :meth:`save`.
        config_file_name: the config file inside the module's folder.
        config_key_renames: legacy config keys mapped to current ones on load.
        save_in_root: whether the module saves into the model root (input modules) or a numbered folder.
        forward_kwargs: keyword arguments of ``encode`` routed to this module's ``forward``.
        reference_type: the reference's class path, written into ``modules.json`` so both libraries load it.
        takes_hub_kwargs: whether :meth:`load` accepts the model's loading options (``model_kwargs``, ...).
    """

    config_keys: ClassVar[list[str]] = []
    config_file_name: ClassVar[str] = "config.json"
    config_key_renames: ClassVar[dict[str, str]] = {}
    save_in_root: ClassVar[bool] = False
    forward_kwargs: ClassVar[set[str]] = set()
    reference_type: ClassVar[str] = ""
    takes_hub_kwargs: ClassVar[bool] = False

    @abstractmethod
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Reads inputs from ``features``, writes outputs into it and returns it."""

    def get_config_dict(self) -> dict[str, Any]:
        """The values saved in the config file."""
        return {key: getattr(self, key) for key in self.config_keys}

    def save_config(self, output_path: str) -> None:
        """Writes :meth:`get_config_dict` as JSON (indent 4, as the reference)."""
        with open(os.path.join(output_path, self.config_file_name), "w", encoding="utf-8") as f:
            json.dump(self.get_config_dict(), f, indent=4)

    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        """Saves config (and weights, for modules that have them) into ``output_path``."""
        self.save_config(output_path)

    def save_torch_weights(self, output_path: str, safe_serialization: bool = True) -> None:
        """Writes ``model.safetensors`` (or ``pytorch_model.bin`` when ``safe_serialization=False``)."""
        if safe_serialization:
            from safetensors.torch import save_model

            save_model(self, os.path.join(output_path, "model.safetensors"))
        else:
            torch.save(self.state_dict(), os.path.join(output_path, "pytorch_model.bin"))

    def load_torch_weights(self, model_dir: str) -> None:
        """Loads ``model.safetensors`` or ``pytorch_model.bin`` from ``model_dir`` (strict key check)."""
        st_path = os.path.join(model_dir, "model.safetensors")
        if os.path.exists(st_path):
            from safetensors.torch import load_model

            with file_named_in_errors(st_path):
                load_model(self, st_path, strict=True)
            return
        bin_path = os.path.join(model_dir, "pytorch_model.bin")
        if os.path.exists(bin_path):
            self.load_state_dict(load_pickled_weights(bin_path), strict=True)
            return
        raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {model_dir}")

    @classmethod
    def load_config(cls, model_dir: str, config_filename: str | None = None) -> dict[str, Any]:
        """Reads the module's config file (an empty dict if the folder or file is absent), applying renames."""
        path = os.path.join(model_dir, config_filename or cls.config_file_name)
        if not os.path.exists(path):
            return {}
        config = read_json_object(path)
        for old, new in cls.config_key_renames.items():
            if old in config and new not in config:
                config[new] = config.pop(old)
        return config

    @classmethod
    def load(cls, model_dir: str, **kwargs: Any) -> Module:
        """Builds the module from its folder; the default passes the config as keyword arguments."""
        return cls(**cls.load_config(model_dir))

    def get_embedding_dimension(self) -> int | None:
        """The output dimension, where the module fixes one."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.get_config_dict()})"


class InputModule(Module):
    """A module that turns raw inputs into tensors (it owns a tokenizer) and saves into the model root."""

    save_in_root: ClassVar[bool] = True
    takes_hub_kwargs: ClassVar[bool] = True

    @abstractmethod
    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenizes a batch of inputs into a features dict of tensors."""

    def tokenize(self, inputs: list[Any], **kwargs: Any) -> dict[str, Any]:
        """Deprecated alias of :meth:`preprocess`."""
        return self.preprocess(inputs, **kwargs)
