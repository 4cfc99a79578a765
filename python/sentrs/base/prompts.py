"""Prompts and the query/document entry points, shared by the torch model classes and the torch-free ones."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["QueryDocumentMixin", "check_default_prompt_name", "merge_prompts", "resolve_prompt"]

logger = logging.getLogger(__name__)


def merge_prompts(
    defaults: dict[str, str | None], saved: dict[str, str] | None, user: dict[str, str | None] | None
) -> dict[str, str]:
    """Class defaults updated with the user's prompts; saved prompts then fill every key that is missing or still
    None (so ``{"query": None}`` asks for the saved query prompt, and ``""`` is kept); a None left becomes ``""``."""
    merged: dict[str, str | None] = dict(defaults)
    merged.update(user or {})
    for key, value in (saved or {}).items():
        if merged.get(key) is None:
            merged[key] = value
    return {k: ("" if v is None else v) for k, v in merged.items()}


def check_default_prompt_name(name: str | None, prompts: dict[str, str]) -> None:
    if name is not None and name not in prompts:
        raise ValueError(
            f"Default prompt name '{name}' not found in the configured prompts dictionary "
            f"with keys {list(prompts.keys())!r}."
        )


def resolve_prompt(
    prompts: dict[str, str], default_prompt_name: str | None, prompt: str | None, prompt_name: str | None
) -> str | None:
    """The prompt text an encode call uses: ``prompt``, else ``prompts[prompt_name]``, else the default prompt."""
    if prompt is None:
        if prompt_name is not None:
            if prompt_name not in prompts:
                raise ValueError(
                    f"Prompt name '{prompt_name}' not found in the configured prompts dictionary with keys "
                    f"{list(prompts.keys())!r}."
                )
            return prompts[prompt_name]
        if default_prompt_name is not None:
            return prompts.get(default_prompt_name)
        return None
    if prompt_name is not None:
        logger.warning("Both prompt and prompt_name were given; using prompt and ignoring prompt_name")
    return prompt


class QueryDocumentMixin:
    """``encode_query`` / ``encode_document`` for embedding models (they pick the prompt and the task).

    Like the reference, they call ``encode`` with every argument by keyword (``inputs=...``, each of ``encode``'s
    parameters with its default unless given, and ``task``), so subclasses and mocks see the same call.
    """

    prompts: dict[str, str]

    def encode(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        raise TypeError(f"{type(self).__name__} must define encode()")  # every embedding model overrides this

    def _encode_for(
        self, task: str, inputs: Any, prompt_name: str | None, prompt: str | None, kwargs: dict[str, Any]
    ) -> Any:
        import inspect

        if "sentences" in kwargs and inputs is None:
            inputs = kwargs.pop("sentences")
        # The parameters of this model type's own encode (a user subclass may override encode with *args/**kwargs).
        own = next(
            vars(klass)["encode"]
            for klass in type(self).__mro__
            if "encode" in vars(klass) and klass.__module__.startswith("sentrs.")
        )
        call: dict[str, Any] = {}
        for name, parameter in inspect.signature(own).parameters.items():
            if name in ("self", "inputs", "prompt_name", "prompt") or parameter.kind in (
                parameter.VAR_KEYWORD,
                parameter.VAR_POSITIONAL,
            ):
                continue
            if parameter.default is not parameter.empty:
                call[name] = parameter.default
        call.update(kwargs)
        call["task"] = task
        return self.encode(inputs=inputs, prompt_name=prompt_name, prompt=prompt, **call)

    def encode_query(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        """:meth:`encode` with the ``query`` prompt (when configured) and ``task="query"``."""
        if prompt is None and prompt_name is None and "query" in self.prompts:
            prompt_name = "query"
        return self._encode_for("query", inputs, prompt_name, prompt, kwargs)

    def encode_document(
        self, inputs: Any = None, prompt_name: str | None = None, prompt: str | None = None, **kwargs: Any
    ) -> Any:
        """:meth:`encode` with the first of the ``document``/``passage``/``corpus`` prompts and ``task="document"``."""
        if prompt is None and prompt_name is None:
            for candidate in ("document", "passage", "corpus"):
                if candidate in self.prompts:
                    prompt_name = candidate
                    break
        return self._encode_for("document", inputs, prompt_name, prompt, kwargs)
