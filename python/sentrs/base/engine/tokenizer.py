"""The tokenizer of a model folder, configured from its files alone (no transformers, so no torch).

transformers builds a fast tokenizer from ``tokenizer.json`` and applies ``tokenizer_config.json`` and
``special_tokens_map.json`` on top: the pad token, the padding and truncation sides and ``model_max_length``. This
module reads the same settings and hands them to the Rust tokenizer. Settings that transformers turns into changes of
the tokenizer pipeline itself (``add_bos_token``, ``add_eos_token``, a differing ``add_prefix_space``) are not
re-implemented: such folders raise :class:`NeedsTorch` and load through transformers instead.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sentrs import ops
from sentrs.base.formats import has_lowercase, read_json_object
from sentrs.exceptions import TokenizerError

__all__ = ["FolderTokenizer", "NeedsTorch"]

# Tokenizers without a length limit report a huge model_max_length (transformers' VERY_LARGE_INTEGER is 1e30).
_NO_LIMIT = 10**12
_PIPELINE_KEYS = ("add_bos_token", "add_eos_token")


class NeedsTorch(Exception):
    """This folder or call needs the torch model classes; the message says why (logged at debug level)."""


def _token_content(value: Any) -> str | None:
    """A special token as written in the config files: a str or an AddedToken dict with ``content``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return str(value["content"])
    return None


def _find_values(node: Any, key: str) -> list[Any]:
    """Every value of ``key`` anywhere inside a JSON tree."""
    found: list[Any] = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                found.append(v)
            found.extend(_find_values(v, key))
    elif isinstance(node, list):
        for item in node:
            found.extend(_find_values(item, key))
    return found


class FolderTokenizer:
    """Batch tokenization of a folder's ``tokenizer.json`` with its saved settings, padded into numpy arrays.

    Args:
        folder: the folder with ``tokenizer.json`` (and usually ``tokenizer_config.json``).
        max_seq_length: truncation length; None takes ``model_max_length`` capped by ``max_position_embeddings``.
        do_lower_case: lower-case text first (the legacy ``sentence_bert_config.json`` key).
        max_position_embeddings: the model's position limit, from ``config.json``.
        add_special_tokens: run the post-processor (``[CLS] ... [SEP]``).
    """

    def __init__(
        self,
        folder: str,
        *,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        max_position_embeddings: int | None = None,
        add_special_tokens: bool = True,
    ) -> None:
        path = os.path.join(folder, "tokenizer.json")
        if not os.path.isfile(path):
            raise NeedsTorch(f"{folder} has no tokenizer.json")
        try:
            spec = read_json_object(path)
        except ValueError as exc:
            raise TokenizerError(str(exc)) from exc
        config_path = os.path.join(folder, "tokenizer_config.json")
        config = read_json_object(config_path) if os.path.isfile(config_path) else {}
        for key in _PIPELINE_KEYS:
            if key in config:
                raise NeedsTorch(f"tokenizer_config.json sets {key}, which transformers applies to the pipeline")
        if "add_prefix_space" in config:
            values = set(_find_values(spec.get("pre_tokenizer"), "add_prefix_space"))
            if values != {config["add_prefix_space"]}:
                raise NeedsTorch("tokenizer_config.json add_prefix_space differs from tokenizer.json")
        special_map_path = os.path.join(folder, "special_tokens_map.json")
        special_map = read_json_object(special_map_path) if os.path.isfile(special_map_path) else {}

        if do_lower_case and not has_lowercase(spec.get("normalizer")):
            current = spec.get("normalizer")
            parts = [{"type": "Lowercase"}] + ([current] if current else [])
            spec["normalizer"] = {"type": "Sequence", "normalizers": parts}
        self._json = json.dumps(spec)
        self.padding_side = str(config.get("padding_side", "right"))
        self.truncation_side = str(config.get("truncation_side", "right"))
        self.add_special_tokens = add_special_tokens

        try:
            probe = ops.Tokenizer.from_str(self._json)
        except TokenizerError as exc:
            raise TokenizerError(f"{path}: {exc}") from exc
        pad = _token_content(config.get("pad_token")) or _token_content(special_map.get("pad_token"))
        pad_id = probe.token_to_id(pad) if pad is not None else None
        if pad_id is None:
            padding = spec.get("padding")
            if not (isinstance(padding, dict) and "pad_id" in padding):
                # GPT-2 style: every batch is padded, which transformers refuses without a pad token; the torch
                # path raises that error when a batch is tokenized (padding with id 0 gave made-up embeddings).
                raise NeedsTorch("the tokenizer has no pad token")
            pad_id = int(padding["pad_id"])
        self.pad_token_id = int(pad_id)
        self.all_special_ids = {
            int(t["id"]) for t in spec.get("added_tokens", []) or [] if isinstance(t, dict) and t.get("special")
        }

        if max_seq_length is None:
            limit = config.get("model_max_length")
            limit = int(limit) if isinstance(limit, (int, float)) and limit < _NO_LIMIT else None
            if isinstance(max_position_embeddings, int) and max_position_embeddings > 0:
                limit = max_position_embeddings if limit is None else min(limit, max_position_embeddings)
            max_seq_length = limit
        self._max_seq_length = max_seq_length
        self._rust: ops.Tokenizer | None = None
        self._prompt_lengths: dict[str, int] = {}

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens, special tokens included (None: no limit)."""
        return self._max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"max_seq_length must be a positive integer or None, got {value!r}")
        self._max_seq_length = value
        self._rust = None
        self._prompt_lengths = {}

    def rust(self, max_length: int | None = None) -> ops.Tokenizer:
        """The Rust tokenizer (truncating at ``max_length`` when given, else at :attr:`max_seq_length`)."""
        if max_length is not None and max_length != self._max_seq_length:
            return self._build(max_length)
        if self._rust is None:
            self._rust = self._build(self._max_seq_length)
        return self._rust

    def _build(self, max_length: int | None) -> ops.Tokenizer:
        return ops.Tokenizer.from_str(
            self._json,
            max_length=max_length,
            truncation_strategy="longest_first",
            truncation_side=self.truncation_side,
            pad_id=self.pad_token_id,
            pad_type_id=0,
            padding_side=self.padding_side,
        )

    def encode(
        self, texts: list[str], pairs: list[str | None] | None = None, max_length: int | None = None
    ) -> ops.Encoding:
        """Tokenizes every text (or pair) once, unpadded."""
        return self.rust(max_length).encode(texts, pairs, add_special_tokens=self.add_special_tokens)

    def prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, without a trailing special token (for ``include_prompt=False``)."""
        if prompt not in self._prompt_lengths:
            ids = self.rust().encode([prompt]).ids(0)  # with special tokens, as the torch modules count it
            length = len(ids)
            if ids and ids[-1] in self.all_special_ids:
                length -= 1
            self._prompt_lengths[prompt] = length
        return self._prompt_lengths[prompt]
