"""PEFT adapters (LoRA, IA³, ...) on the transformers model inside a model's first Transformer module.

The adapters live where the reference puts them: transformers' own PEFT integration on
:attr:`~sentrs.base.model.BaseModel.transformers_model`. Each method of :class:`PeftAdapterMixin` hands over to the
same-named method there, after the checks sentrs adds:

- a model running its exported ONNX/OpenVINO file without torch modules has nothing to put an adapter on;
- without the optional ``peft`` package the call stops with an ``ImportError`` that says how to install it;
- an adapter name that is not loaded is refused with the names that are.

Saving needs nothing here: transformers' ``save_pretrained`` writes ``adapter_config.json`` and
``adapter_model.safetensors`` (and no ``config.json``) in the Transformer's folder when adapters are loaded.
Loading such a folder needs the base model's config, which :func:`load_transformer_config` resolves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sentrs.exceptions import SentrsError

if TYPE_CHECKING:
    from peft import PeftConfig
    from transformers import PretrainedConfig

__all__ = ["PeftAdapterMixin", "UnknownAdapterError", "load_transformer_config", "require_peft"]

_INSTALL_HINT = "install it with `pip install peft` (or `pip install sentrs[peft]`)"


class UnknownAdapterError(SentrsError, ValueError, KeyError):
    """An adapter name that is not loaded on the model.

    A ``ValueError`` as transformers raises for ``delete_adapter``, and a ``KeyError`` as the reference's
    ``get_adapter_state_dict`` raises (from inside peft).
    """

    __str__ = ValueError.__str__  # the message as written, not KeyError's repr of it


def require_peft(what: str) -> None:
    """Raises ``ImportError`` naming ``what`` and the install command when the ``peft`` package is missing."""
    try:
        import peft  # noqa: F401 - only its presence is checked
    except ImportError as exc:
        raise ImportError(f"{what} requires the `peft` package; {_INSTALL_HINT}") from exc


def load_transformer_config(
    model_name_or_path: str, backend: str = "torch", config_kwargs: dict[str, Any] | None = None
) -> PretrainedConfig:
    """The transformers config for a Transformer folder, which may hold a PEFT adapter instead of a full model.

    An adapter folder (``adapter_config.json``, saved by ``save_pretrained`` of a model with adapters) has no
    ``config.json``: its config is the one of the base model that ``base_model_name_or_path`` names, as in the
    reference. ``AutoModel.from_pretrained`` on the folder then loads that base model and the adapter itself.

    Raises:
        ValueError: for an adapter folder with a backend other than ``"torch"`` (the reference's message).
        ImportError: for an adapter folder without the ``peft`` package.
    """
    import transformers
    from transformers.utils.peft_utils import find_adapter_config_file

    config_kwargs = dict(config_kwargs or {})
    adapter_config_file = find_adapter_config_file(
        model_name_or_path,
        cache_dir=config_kwargs.get("cache_dir"),
        token=config_kwargs.get("token"),
        revision=config_kwargs.get("revision"),
        subfolder=config_kwargs.get("subfolder", ""),
        local_files_only=config_kwargs.get("local_files_only", False),
    )
    if adapter_config_file is None:
        return transformers.AutoConfig.from_pretrained(model_name_or_path, **config_kwargs)
    if backend != "torch":
        raise ValueError(
            "PEFT models can currently only be loaded with the `torch` backend. To use other backends, load the "
            'model with `backend="torch"`, call `model.transformers_model.merge_and_unload()`, save that model with '
            "`model.save_pretrained()` and then load the model with the desired backend."
        )
    require_peft(f"Loading the PEFT adapter in {model_name_or_path}")
    from peft import PeftConfig

    adapter_config = PeftConfig.from_pretrained(model_name_or_path, **config_kwargs)
    # revision and subfolder locate the adapter, not its base model.
    base_kwargs = {k: v for k, v in config_kwargs.items() if k not in ("revision", "subfolder")}
    return transformers.AutoConfig.from_pretrained(adapter_config.base_model_name_or_path, **base_kwargs)


class PeftAdapterMixin:
    """Adds transformers' PEFT adapter methods to a model; mixed into :class:`~sentrs.base.model.BaseModel`.

    Requires the optional ``peft`` package. See https://huggingface.co/docs/peft for the adapter methods themselves.
    """

    # ------------------------------------------------------------------ compatibility
    def has_peft_compatible_model(self) -> bool:
        """Whether the model's transformers model takes adapters (it has transformers' PEFT integration)."""
        model: Any = self
        if getattr(model, "_engine", None) is not None:
            return False  # the exported file the engine runs is no torch model (and torch stays unimported)
        from transformers.integrations.peft import PeftAdapterMixin as TransformersPeftAdapterMixin

        return isinstance(model.transformers_model, TransformersPeftAdapterMixin)

    def check_peft_compatible_model(self) -> None:
        """Raises ``ValueError`` unless :meth:`has_peft_compatible_model`."""
        if not self.has_peft_compatible_model():
            raise ValueError(
                "PEFT methods are only supported for Sentence Transformer models that use the Transformer module."
            )

    def _peft_target(self, method: str, delegate: str | None = None) -> Any:
        """The transformers model that ``method`` hands over to (its ``delegate`` method, by default the same name),
        after the checks every adapter method makes."""
        model: Any = self
        model._need_torch_modules(f"{method}()")
        self.check_peft_compatible_model()
        require_peft(f"{type(self).__name__}.{method}()")
        target = model.transformers_model
        delegate = delegate or method
        if not callable(getattr(target, delegate, None)):
            raise AttributeError(
                f"The transformers model ({type(target).__name__}) has no `{delegate}` method; the installed "
                "transformers or peft version may be incompatible"
            )
        return target

    @staticmethod
    def _check_loaded(target: Any, names: str | Iterable[str], action: str) -> None:
        """Raises :class:`UnknownAdapterError` naming the requested adapters that are not loaded, and the loaded."""
        if not getattr(target, "_hf_peft_config_loaded", False):
            return  # transformers says "No adapter loaded. Please load an adapter first."
        loaded = list(getattr(target, "peft_config", None) or {})
        requested = [names] if isinstance(names, str) else list(names)
        missing = [name for name in requested if name not in loaded]
        if missing:
            raise UnknownAdapterError(
                f"The following adapter(s) are not present and cannot be {action}: {', '.join(map(str, missing))}; "
                f"the loaded adapters are {loaded}"
            )

    # ------------------------------------------------------------------ adding, loading and removing
    def add_adapter(self, adapter_config: PeftConfig, adapter_name: str | None = None) -> None:
        """Adds a new adapter, initialised for training, and makes it the active one.

        Args:
            adapter_config: a ``peft.PeftConfig`` (``LoraConfig``, ``IA3Config``, ...; not prompt learning).
            adapter_name: its name; ``"default"`` when omitted, as in PEFT.
        """
        self._peft_target("add_adapter").add_adapter(adapter_config, adapter_name=adapter_name)

    def load_adapter(self, *args: Any, **kwargs: Any) -> None:
        """Loads saved adapter weights (a local folder or a Hub id with ``adapter_config.json``) and activates them.

        Takes the arguments of transformers' ``PeftAdapterMixin.load_adapter``: ``peft_model_id``,
        ``adapter_name``, ``is_trainable``, ``peft_config`` with ``adapter_state_dict``, ...
        """
        self._peft_target("load_adapter").load_adapter(*args, **kwargs)

    def delete_adapter(self, adapter_names: list[str] | str) -> None:
        """Removes the adapter(s) ``adapter_names`` and their layers from the model."""
        target = self._peft_target("delete_adapter")
        self._check_loaded(target, adapter_names, "deleted")
        target.delete_adapter(adapter_names)

    # ------------------------------------------------------------------ choosing adapters
    def set_adapter(self, adapter_name: list[str] | str) -> None:
        """Makes ``adapter_name`` (or the list of names) the active adapter(s); the others are switched off."""
        # transformers' own message already names the missing adapter(s) and the loaded ones
        self._peft_target("set_adapter").set_adapter(adapter_name)

    def enable_adapters(self) -> None:
        """Switches the active adapters back on after :meth:`disable_adapters`."""
        self._peft_target("enable_adapters").enable_adapters()

    def disable_adapters(self) -> None:
        """Switches every adapter off: the model computes with its base weights only."""
        self._peft_target("disable_adapters").disable_adapters()

    def active_adapters(self) -> list[str]:
        """The names of the active adapters (several when adapters are combined)."""
        names: list[str] = self._peft_target("active_adapters").active_adapters()
        return names

    def active_adapter(self) -> str:
        """The active adapter (the first one when adapters are combined); prefer :meth:`active_adapters`.

        transformers 5 dropped its own ``active_adapter``, so the reference raises ``AttributeError`` there; sentrs
        answers with the first of :meth:`active_adapters`.
        """
        target = self._peft_target("active_adapter", "active_adapters")
        own = getattr(target, "active_adapter", None)
        if callable(own):
            name: str = own()
            return name
        return str(target.active_adapters()[0])

    # ------------------------------------------------------------------ weights
    def get_adapter_state_dict(
        self, adapter_name: str | None = None, state_dict: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The weights of one adapter (default: the first active one), keyed as PEFT saves them.

        Args:
            adapter_name: the adapter; the first active one when None.
            state_dict: the model's state dict to take them from; ``transformers_model.state_dict()`` when None.
        """
        target = self._peft_target("get_adapter_state_dict")
        if adapter_name is not None:
            self._check_loaded(target, adapter_name, "read")
        weights: dict[str, Any] = target.get_adapter_state_dict(adapter_name=adapter_name, state_dict=state_dict)
        return weights
