"""Folder-format facts shared by the torch modules and the torch-free pipeline (no torch here)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "POOLING_LEGACY_KEYS",
    "TRANSFORMER_CONFIG_FILES",
    "TRANSFORMER_TASKS",
    "file_named_in_errors",
    "folder_has_chat_template",
    "has_lowercase",
    "legacy_pooling_config",
    "module_folder",
    "read_json_object",
]

# transformer_task -> (transformers auto class name, model output field, features key written). transformers has no
# auto class for retrieval: the Transformer resolves the checkpoint's own ``*ForRetrieval`` class (ColPali, ...).
TRANSFORMER_TASKS: dict[str, tuple[str, str, str]] = {
    "feature-extraction": ("AutoModel", "last_hidden_state", "token_embeddings"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "token_embeddings"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits", "scores"),
    "text-generation": ("AutoModelForCausalLM", "logits", "causal_logits"),  # LLM rerankers (CrossEncoder)
    "retrieval": ("*ForRetrieval", "embeddings", "token_embeddings"),  # ColPali-style (MultiVectorEncoder)
}

# Config files older releases wrote for the Transformer module, newest name first.
TRANSFORMER_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)


def folder_has_chat_template(folder: str) -> bool:
    """Whether the tokenizer saved in ``folder`` has a chat template (``chat_template.jinja``, ``chat_template.json``,
    ``additional_chat_templates/`` or a ``chat_template`` in ``tokenizer_config.json``): the reference then renders
    the inputs of a Transformer it builds without a saved ``modality_config`` through that template."""
    for name in ("chat_template.jinja", "chat_template.json", "additional_chat_templates"):
        if os.path.exists(os.path.join(folder, name)):
            return True
    path = os.path.join(folder, "tokenizer_config.json")
    if not os.path.isfile(path):
        return False
    try:
        config = read_json_object(path)
    except (OSError, ValueError):
        return False
    return bool(config.get("chat_template"))


def read_json_object(path: str) -> dict[str, Any]:
    """Reads a JSON config file that must hold an object; raises ValueError naming the file otherwise."""
    with open(path, encoding="utf-8") as f:
        try:
            config = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def module_folder(model_dir: str, sub: Any, source: str) -> str:
    """The folder of module ``sub`` listed in ``source`` (``modules.json``, a router config), inside ``model_dir``.

    Raises ValueError naming ``source`` when ``sub`` is not a relative path, is rooted (POSIX or Windows syntax), has a
    ``..`` component or a NUL byte, or resolves (through symlinks) to a place outside ``model_dir``. Files inside a
    module folder may still be symlinks (the Hugging Face cache links every file to its blob store).
    """
    from pathlib import PurePosixPath, PureWindowsPath

    if not isinstance(sub, str):
        raise ValueError(f"{source}: module path must be a str relative to the model folder, got {sub!r}")
    windows = PureWindowsPath(sub)
    if "\0" in sub or windows.anchor or PurePosixPath(sub).is_absolute() or ".." in windows.parts:
        raise ValueError(
            f"{source}: module path must be a relative folder without '..' inside the model folder, got {sub!r}"
        )
    folder = os.path.join(model_dir, sub) if sub else model_dir
    root = os.path.realpath(model_dir)
    resolved = os.path.realpath(folder)
    if resolved != root and not resolved.startswith(root.rstrip(os.sep) + os.sep):
        raise ValueError(
            f"{source}: module path {sub!r} resolves to {resolved}, outside the model folder {root} (a symlink "
            "leaving the folder); refusing to load it"
        )
    if sub and os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{source}: module path {sub!r} is a file, {folder}; expected a module folder")
    return folder


@contextmanager
def file_named_in_errors(path: str, *classes: type[BaseException]) -> Iterator[None]:
    """Re-raises a parse error of the file ``path`` (a safetensors header, a pickle, ``classes``) as the same class,
    so callers' ``except`` clauses still match, with ``path`` leading its message."""
    try:
        yield
    except Exception as exc:
        if not (type(exc).__name__ in _FILE_PARSE_ERRORS or isinstance(exc, classes)) or path in str(exc):
            raise
        try:
            renamed = type(exc)(f"{path} could not be read: {exc}")
        except Exception:  # an exception class with a different constructor: keep it as it is
            renamed = None
        if renamed is None:
            raise
        raise renamed from exc


# Parse errors of weight files whose messages do not say which file (matched by name: no import of their packages).
_FILE_PARSE_ERRORS = frozenset({"SafetensorError", "UnpicklingError"})


def has_lowercase(normalizer: Any) -> bool:
    """Whether a serialized ``tokenizer.json`` normalizer already lower-cases (a Lowercase step or a lower-casing
    BertNormalizer)."""
    if not isinstance(normalizer, dict):
        return False
    kind = normalizer.get("type")
    if kind == "Lowercase" or (kind == "BertNormalizer" and normalizer.get("lowercase")):
        return True
    return any(has_lowercase(n) for n in normalizer.get("normalizers", []) or [])


# Legacy boolean Pooling config keys, in the order the reference concatenates their outputs.
POOLING_LEGACY_KEYS: tuple[tuple[str, str], ...] = (
    ("pooling_mode_cls_token", "cls"),
    ("pooling_mode_max_tokens", "max"),
    ("pooling_mode_mean_tokens", "mean"),
    ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens"),
    ("pooling_mode_weightedmean_tokens", "weightedmean"),
    ("pooling_mode_lasttoken", "lasttoken"),
)


def legacy_pooling_config(config: dict[str, Any]) -> dict[str, Any]:
    """Converts a Pooling config's legacy ``pooling_mode_*`` booleans and ``word_embedding_dimension`` in place."""
    if "word_embedding_dimension" in config and "embedding_dimension" not in config:
        config["embedding_dimension"] = config.pop("word_embedding_dimension")
    legacy = {key: config.pop(key) for key, _ in POOLING_LEGACY_KEYS if key in config}
    if "pooling_mode" not in config and legacy:
        active = [mode for key, mode in POOLING_LEGACY_KEYS if legacy.get(key)]
        if not active:
            raise ValueError("Pooling config enables no pooling mode: every pooling_mode_* key is false")
        config["pooling_mode"] = active[0] if len(active) == 1 else active
    return config
