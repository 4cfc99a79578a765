"""Folder-format facts shared by the torch modules and the torch-free pipeline (no torch here)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["TRANSFORMER_CONFIG_FILES", "TRANSFORMER_TASKS", "read_json_object"]

# transformer_task -> (transformers auto class name, model output field, features key written)
TRANSFORMER_TASKS: dict[str, tuple[str, str, str]] = {
    "feature-extraction": ("AutoModel", "last_hidden_state", "token_embeddings"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "token_embeddings"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits", "scores"),
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
