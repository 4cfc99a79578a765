"""Input modules whose text goes through the Rust tokenizer, built from the tokenizer's own ``tokenizer.json``.

Padding and truncation are set explicitly (pad to the longest row of a batch, longest-first truncation at
``max_seq_length``), so the ids match what the reference gets from the transformers tokenizer.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

import torch

from sentrs import ops
from sentrs.base.inputs import split_pairs
from sentrs.base.modules.module import InputModule

__all__ = ["TokenizedTextInput", "encode_text_batch", "split_pairs"]

# Tokenizers without a length limit report a huge model_max_length.
_NO_LIMIT = 10**12

# Guards the cached Rust tokenizer and its key, which threads sharing a module read and replace together (a thread
# must never get a tokenizer built for another thread's truncation length).
_rust_tokenizer_lock = threading.Lock()


def encode_text_batch(
    tokenizer: ops.Tokenizer, texts: list[str], pairs: list[str | None] | None, add_special_tokens: bool
) -> ops.Encoding:
    """``tokenizer.encode`` that names the input holding text no UTF-8 can carry (a lone surrogate such as
    ``"\\ud800"``, which Python strings allow), instead of a bare UnicodeEncodeError."""
    try:
        return tokenizer.encode(texts, pairs, add_special_tokens=add_special_tokens)
    except UnicodeEncodeError as exc:
        for row, parts in enumerate(zip(texts, pairs or [None] * len(texts), strict=True)):
            for text in parts:
                if text is None:
                    continue
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError as bad:
                    raise ValueError(
                        f"input {row} is not valid Unicode text: {bad.reason} ({text[bad.start : bad.end]!r} at "
                        f"character {bad.start} of {text[:60]!r}); expected a str that encodes to UTF-8"
                    ) from exc
        raise


class TokenizedTextInput(InputModule):
    """An input module with a transformers ``tokenizer`` whose batches are tokenized by the Rust core.

    Subclasses set ``self.tokenizer`` and call :meth:`_init_tokenizer_state`; ``add_special_tokens`` says whether the
    tokenizer's post-processor (``[CLS] ... [SEP]``) runs.
    """

    add_special_tokens: ClassVar[bool] = True
    tokenizer: Any
    processing_kwargs: dict[str, Any]
    _input_names: list[str]

    def _init_tokenizer_state(self) -> None:
        self._normalizer_version = getattr(self, "_normalizer_version", 0)  # bumped when the normalizer changes
        self._rust_tokenizer: ops.Tokenizer | None = None
        self._rust_key: tuple[Any, ...] | None = None
        self._prompt_lengths: dict[str, int] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the Rust tokenizer (rebuilt on first use): multi-process pools send modules to workers."""
        state = dict(super().__getstate__())
        state["_rust_tokenizer"] = None
        state["_rust_key"] = None
        return state

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens, special tokens included (None: no limit)."""
        n = self.tokenizer.model_max_length
        return None if n is None or n >= _NO_LIMIT else int(n)

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"max_seq_length must be a positive integer or None, got {value!r}")
        self.tokenizer.model_max_length = value if value is not None else int(1e30)

    def _text_kwargs(self) -> dict[str, Any]:
        return dict(self.processing_kwargs.get("text", {}))

    def rust_tokenizer(self, max_length: int | None = None, truncation: str | None = None) -> ops.Tokenizer:
        """The Rust tokenizer for the current tokenizer settings (rebuilt when they change)."""
        tok = self.tokenizer
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"sentrs needs a fast (tokenizers-backed) tokenizer, got {type(tok).__name__} without one"
            )
        text_kwargs = self._text_kwargs()
        if max_length is None:
            max_length = text_kwargs.get("max_length", self.max_seq_length)
        if truncation is None:
            trunc = text_kwargs.get("truncation", "longest_first")
            truncation = "longest_first" if trunc is True else str(trunc)
        pad_id = tok.pad_token_id
        if pad_id is None:
            # Every batch is padded (to its longest row), so a tokenizer without a pad token cannot tokenize one, as
            # transformers refuses a padded call in the reference (GPT-2 ships without a pad token).
            raise ValueError(
                f"the tokenizer ({type(tok).__name__}) has no pad token, which padding a batch needs; got "
                f"pad_token=None. Set one, e.g. `model[0].tokenizer.pad_token = model[0].tokenizer.eos_token`, or "
                "add one with `tokenizer.add_special_tokens({'pad_token': '[PAD]'})`"
            )
        # The backend object is stable per tokenizer; `backend.normalizer` is a fresh wrapper on every access.
        key = (
            id(tok),
            id(backend),
            self._normalizer_version,
            max_length,
            truncation,
            pad_id,
            getattr(tok, "pad_token_type_id", 0),
            tok.padding_side,
            tok.truncation_side,
        )
        with _rust_tokenizer_lock:
            if self._rust_tokenizer is None or key != self._rust_key:
                self._rust_tokenizer = ops.Tokenizer.from_str(
                    backend.to_str(),
                    max_length=max_length,
                    truncation_strategy=truncation,
                    truncation_side=tok.truncation_side,
                    pad_id=pad_id,
                    pad_type_id=getattr(tok, "pad_token_type_id", 0),
                    padding_side=tok.padding_side,
                )
                self._rust_key = key
            return self._rust_tokenizer

    def call_max_length(self, **kwargs: Any) -> int | None:
        """The truncation length of one call, as the reference ranks the settings: ``max_length`` in the call's or the
        module's ``processing_kwargs["text"]``, then a ``max_length`` keyword (the trainer's), then the task's length
        (:meth:`task_max_length`); None leaves the module's ``max_seq_length``."""
        processing = kwargs.get("processing_kwargs") or {}
        call_text = processing.get("text", {}) if isinstance(processing, dict) else {}
        for value in (call_text.get("max_length"), self._text_kwargs().get("max_length"), kwargs.get("max_length")):
            if value is not None:
                return int(value)
        return self.task_max_length(kwargs.get("task"))

    def task_max_length(self, task: str | None) -> int | None:
        """A per-task truncation length (the Transformer's ``query_length`` / ``document_length``)."""
        return None

    def encode_texts(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> ops.Encoding:
        """Tokenizes every input once (unpadded); inputs are strings or ``(text, text_pair)`` pairs."""
        tok = self.rust_tokenizer(max_length=self.call_max_length(**kwargs))
        texts, pairs = split_pairs(inputs)
        if prompt:
            texts = [prompt + t for t in texts]
        return encode_text_batch(tok, texts, pairs, self.add_special_tokens)

    def prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone, without a trailing special token (for ``include_prompt=False``)."""
        if prompt not in self._prompt_lengths:
            ids = self.rust_tokenizer().encode([prompt]).ids(0)
            length = len(ids)
            if ids and ids[-1] in set(self.tokenizer.all_special_ids):
                length -= 1
            self._prompt_lengths[prompt] = length
        return self._prompt_lengths[prompt]

    def features_from_encoding(
        self, encoding: ops.Encoding, rows: Any = None, task: str | None = None
    ) -> dict[str, Any]:
        """Pads ``rows`` of an encoding into a features dict of CPU int64 tensors (zero-copy from numpy); ``task`` is
        the encode task (``query``, ``document``), which subclasses may shape the batch by."""
        row_list = None if rows is None else [int(r) for r in rows]
        input_ids, attention_mask, token_type_ids = encoding.pad(row_list)
        features: dict[str, Any] = {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask),
        }
        if "token_type_ids" in self._input_names:
            features["token_type_ids"] = torch.from_numpy(token_type_ids)
        return self.finish_features(features, task)

    def finish_features(self, features: dict[str, Any], task: str | None) -> dict[str, Any]:
        """Hook on a padded batch (the Transformer expands ColBERT-style queries here)."""
        return features

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Tokenizes a batch into padded tensors ``input_ids``, ``attention_mask`` (+ ``token_type_ids``)."""
        if isinstance(inputs, (str, tuple)):
            inputs = [inputs]
        features = self.features_from_encoding(
            self.encode_texts(list(inputs), prompt=prompt, **kwargs), task=kwargs.get("task")
        )
        if prompt:
            features["prompt_length"] = self.prompt_length(prompt)
        features["modality"] = "text"
        return features
