"""The input module: a Hugging Face transformers model and its tokenizer.

Tokenization runs in the Rust core from the tokenizer's own ``tokenizer.json`` description, with padding and
truncation set explicitly (pad to the longest row of a batch, longest-first truncation at ``max_seq_length``), so
ids match what the reference feeds its model. The forward pass is the transformers model in torch.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any, ClassVar, Literal

from typing_extensions import NotRequired, TypedDict

from sentrs.base.formats import TRANSFORMER_CONFIG_FILES, TRANSFORMER_TASKS, has_lowercase, read_json_object
from sentrs.base.modules.tokenized_input import TokenizedTextInput

__all__ = ["QueryExpansionConfig", "Transformer", "normalize_query_expansion"]

logger = logging.getLogger(__name__)

TransformerTask = Literal["feature-extraction", "fill-mask", "sequence-classification"]

_TASKS = TRANSFORMER_TASKS
_CONFIG_FILES = TRANSFORMER_CONFIG_FILES


def _strip_remote_code(d: dict[str, Any] | None) -> dict[str, Any]:
    d = dict(d or {})
    d.pop("trust_remote_code", None)
    return d


class QueryExpansionConfig(TypedDict):
    """ColBERT-style query expansion settings (see :attr:`Transformer.query_expansion`)."""

    strategy: Literal["fixed", "min"]
    attend: NotRequired[bool]
    token: NotRequired[str | None]
    length: NotRequired[int]


_EXPANSION_KEYS = ("strategy", "attend", "token", "length")
_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def _optional_length(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {value!r}")
    return value


def normalize_query_expansion(value: Any) -> QueryExpansionConfig | None:
    """Checks a ``query_expansion`` setting and fills its defaults (``attend=False``, ``token=None``)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError(f"query_expansion must be a dict or None, got {type(value).__name__}")
    unknown = sorted(set(value) - set(_EXPANSION_KEYS))
    if unknown:
        raise ValueError(f"query_expansion has unknown keys {unknown}; the keys are {list(_EXPANSION_KEYS)}")
    strategy = value.get("strategy")
    if strategy not in ("fixed", "min"):
        raise ValueError(f"query_expansion['strategy'] must be 'fixed' or 'min', got {strategy!r}")
    attend = value.get("attend", False)
    if not isinstance(attend, bool):
        raise ValueError(f"query_expansion['attend'] must be a bool, got {attend!r}")
    token = value.get("token")
    if token is not None and not isinstance(token, str):
        raise ValueError(f"query_expansion['token'] must be a str or None, got {token!r}")
    length = value.get("length")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(
            f"query_expansion['length'] must be a positive int (the queries' width after expansion; ColBERT uses "
            f"32), got {length!r}"
        )
    return {"strategy": strategy, "attend": attend, "token": token, "length": length}


class Transformer(TokenizedTextInput):
    """Wraps a transformers model (``AutoModel`` by default) and its tokenizer.

    Args:
        model_name_or_path: a local folder with ``config.json``, weights and tokenizer files.
        transformer_task: ``feature-extraction`` (token embeddings), ``fill-mask`` (MLM logits) or
            ``sequence-classification`` (classification logits as ``scores``).
        model_kwargs: passed to ``from_pretrained`` of the model (``dtype``, ``attn_implementation``, ...).
        processor_kwargs: passed to ``AutoTokenizer.from_pretrained`` (``model_max_length``, ...).
        config_kwargs: passed to ``AutoConfig.from_pretrained``.
        processing_kwargs: per-modality call settings; ``{"text": {"max_length": N, "truncation": ...}}``.
        backend: only ``"torch"`` is supported so far.
        modality_config: ``{"text": {"method": "forward", "method_output_name": ...}}``.
        module_output_name: the features key the output is written to.
        max_seq_length: truncation length (special tokens included); defaults to the tokenizer's
            ``model_max_length``, capped at the model's ``max_position_embeddings``.
        do_lower_case: lower-case the text before tokenizing.
        tokenizer_name_or_path: a different folder for the tokenizer.
    """

    config_file_name: ClassVar[str] = "sentence_bert_config.json"
    config_keys: ClassVar[list[str]] = [
        "transformer_task",
        "modality_config",
        "module_output_name",
        "query_length",
        "document_length",
        "query_expansion",
    ]
    save_in_root: ClassVar[bool] = True
    reference_type: ClassVar[str] = "sentence_transformers.base.modules.transformer.Transformer"

    def __init__(
        self,
        model_name_or_path: str,
        *,
        transformer_task: TransformerTask | str = "feature-extraction",
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        processing_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        modality_config: dict[str, Any] | None = None,
        module_output_name: str | None = None,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        tokenizer_name_or_path: str | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        cache_dir: str | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        query_expansion: QueryExpansionConfig | None = None,
        **unused: Any,
    ) -> None:
        super().__init__()
        import transformers

        if transformer_task not in _TASKS:
            raise ValueError(
                f"transformer_task must be one of {sorted(_TASKS)} in sentrs so far, got {transformer_task!r}"
            )
        if backend not in ("torch", "onnx", "openvino"):
            raise ValueError(f"backend must be 'torch', 'onnx' or 'openvino', got {backend!r}")
        self.query_length = _optional_length(query_length, "query_length")
        self.document_length = _optional_length(document_length, "document_length")
        self._query_expansion: QueryExpansionConfig | None = None
        for key in ("unpad_inputs",):
            if unused.get(key) not in (None, False):
                logger.warning(
                    "Transformer option %s=%r is not supported by sentrs yet; ignoring it", key, unused[key]
                )
        self.transformer_task = transformer_task
        self._normalizer_version = 0  # bumped when the tokenizer's normalizer is replaced
        self.backend = backend
        self.do_lower_case = do_lower_case
        self.processing_kwargs: dict[str, Any] = dict(processing_kwargs or {})
        auto_name, default_output, default_key = _TASKS[transformer_task]
        if modality_config is not None:
            text = modality_config.get("text")
            if not isinstance(text, dict) or "method_output_name" not in text:
                raise ValueError(
                    "sentrs supports text models only: modality_config needs a 'text' entry with "
                    f"'method' and 'method_output_name', got {modality_config!r}"
                )
            if text.get("method", "forward") != "forward":
                raise ValueError(f"modality_config text method must be 'forward', got {text.get('method')!r}")
            if module_output_name is None:
                raise ValueError("a custom modality_config also needs module_output_name")
            self.modality_config = {"text": dict(text)}
        else:
            self.modality_config = {"text": {"method": "forward", "method_output_name": default_output}}
        self.module_output_name = module_output_name or default_key

        model_kwargs = dict(model_kwargs or {})
        processor_kwargs = {**_strip_remote_code(tokenizer_kwargs), **_strip_remote_code(processor_kwargs)}
        config_kwargs = dict(config_kwargs or {})
        if cache_dir is not None:
            model_kwargs.setdefault("cache_dir", cache_dir)
            processor_kwargs.setdefault("cache_dir", cache_dir)
            config_kwargs.setdefault("cache_dir", cache_dir)
        config_kwargs.setdefault("use_cache", False)
        config = transformers.AutoConfig.from_pretrained(model_name_or_path, **config_kwargs)
        if (
            transformer_task == "sequence-classification"
            and "num_labels" not in config_kwargs
            and not any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        ):
            config.num_labels = 1
        if max_seq_length is not None and "model_max_length" not in processor_kwargs:
            processor_kwargs["model_max_length"] = max_seq_length
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(
            tokenizer_name_or_path or model_name_or_path, **processor_kwargs
        )
        if backend == "torch":
            auto_cls = getattr(transformers, auto_name)
            self.model = auto_cls.from_pretrained(model_name_or_path, config=config, **model_kwargs)
        else:
            from sentrs.backend import load_backend_model

            input_names = [
                n
                for n in getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"])
                if n in ("input_ids", "attention_mask", "token_type_ids")
            ]
            self.model = load_backend_model(
                model_name_or_path, backend, transformer_task, config, input_names, model_kwargs
            )
        max_pos = getattr(config, "max_position_embeddings", None)
        if "model_max_length" not in processor_kwargs and isinstance(max_pos, int) and max_pos > 0:
            self.tokenizer.model_max_length = min(self.tokenizer.model_max_length, max_pos)
        if do_lower_case:
            self._add_lowercase()
        self._input_names = self._forward_input_names()
        self._init_tokenizer_state()
        self.query_expansion = query_expansion

    # ------------------------------------------------------------------ the reference's attribute names
    @property
    def auto_model(self) -> Any:
        """The transformers model (``model``; the reference keeps both names)."""
        return self.model

    @property
    def config(self) -> Any:
        """The transformers config of the model."""
        return self.model.config

    @property
    def processor(self) -> Any:
        """The processor: for text models, the tokenizer."""
        return self.tokenizer

    @property
    def modalities(self) -> list[Any]:
        """The input modalities this module takes (sentrs: text)."""
        return list(self.modality_config)

    # ------------------------------------------------------------------ tokenizer
    def _add_lowercase(self) -> None:
        from tokenizers import normalizers

        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ValueError("do_lower_case=True needs a fast (tokenizers-backed) tokenizer")
        current = backend.normalizer
        if has_lowercase(json.loads(backend.to_str()).get("normalizer")):
            return
        parts = [normalizers.Lowercase()]
        if current is not None:
            parts.append(current)
        backend.normalizer = normalizers.Sequence(parts)
        self._normalizer_version += 1

    def _forward_input_names(self) -> list[str]:
        import inspect

        names = list(getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
        if self.backend != "torch":
            return [n for n in names if n in self.model.input_names]
        params = inspect.signature(self.model.forward).parameters
        return [n for n in names if n in params]

    # ------------------------------------------------------------------ late interaction (ColBERT) knobs
    @property
    def query_expansion(self) -> QueryExpansionConfig | None:
        """ColBERT-style query expansion, or None: ``{"strategy": "fixed" | "min", "length": int, "attend": bool,
        "token": str | None}``. ``fixed`` makes every query exactly ``length`` tokens (shorter ones are padded with
        ``token``, default the tokenizer's mask token, else its eos token; longer ones truncated); ``min`` only pads up
        to ``length``. The padded positions are marked in ``query_expansion_positions`` for
        :class:`~sentrs.multi_vector_encoder.modules.MultiVectorMask`; ``attend=True`` also lets the encoder attend
        to them."""
        return self._query_expansion

    @query_expansion.setter
    def query_expansion(self, value: QueryExpansionConfig | dict[str, Any] | None) -> None:
        expansion = normalize_query_expansion(value)
        if expansion is not None:
            self._expansion_token_id(expansion)  # raises when the tokenizer cannot provide the token
            if self.query_length is not None and self.query_length < expansion["length"]:
                raise ValueError(
                    f"query_length={self.query_length} is smaller than query_expansion['length']="
                    f"{expansion['length']}: the expansion length is the queries' minimum width; raise "
                    "query_length, drop it, or lower the expansion length"
                )
        self._query_expansion = expansion

    def _expansion_token_id(self, expansion: QueryExpansionConfig) -> int:
        tok = self.tokenizer
        token = expansion.get("token")
        if token is None:
            token_id = tok.mask_token_id if tok.mask_token_id is not None else tok.eos_token_id
            if token_id is None:
                raise ValueError(
                    "query_expansion token=None uses the tokenizer's mask token, else its eos token, and this "
                    "tokenizer has neither; set query_expansion['token'] to a token of its vocabulary"
                )
            return int(token_id)
        token_id = tok.convert_tokens_to_ids(token)
        if token_id is None or (token_id == tok.unk_token_id and token != tok.unk_token):
            raise ValueError(f"query_expansion token={token!r} is not a token of this tokenizer's vocabulary")
        return int(token_id)

    def task_max_length(self, task: str | None) -> int | None:
        if task == "query":
            return self.query_length
        if task == "document":
            return self.document_length
        return None

    def call_max_length(self, **kwargs: Any) -> int | None:
        expansion = self._query_expansion if kwargs.get("task") == "query" else None
        if expansion is None:
            return super().call_max_length(**kwargs)
        processing = kwargs.get("processing_kwargs") or {}
        call_text = processing.get("text", {}) if isinstance(processing, dict) else {}
        override = call_text.get("max_length", self._text_kwargs().get("max_length"))
        floor = expansion["length"]
        if expansion["strategy"] == "fixed":
            asked = override if override is not None else kwargs.get("max_length")
            if asked is not None and int(asked) != floor:
                _warn_once(
                    f"query_expansion makes every query {floor} tokens long; max_length={asked} is ignored for "
                    "query batches"
                )
            return floor
        if override is not None:
            return int(override)
        ceiling = kwargs.get("max_length", self.query_length)
        if ceiling is None:
            return None
        if int(ceiling) < floor:
            _warn_once(
                f"query_expansion keeps queries at least {floor} tokens long; max_length={ceiling} is raised to it "
                "for query batches"
            )
        return max(int(ceiling), floor)

    def finish_features(self, features: dict[str, Any], task: str | None) -> dict[str, Any]:
        """Expands a query batch: pads it to the expansion length, puts the expansion token in the padding within
        that length and marks those positions in ``query_expansion_positions``."""
        expansion = self._query_expansion if task == "query" else None
        if expansion is None or "input_ids" not in features or "attention_mask" not in features:
            return features
        import torch

        floor = expansion["length"]
        input_ids = features["input_ids"]
        attention_mask = features["attention_mask"]
        missing = floor - input_ids.shape[1]
        if missing > 0:
            # `fixed` pads on the tokenizer's side (as padding="max_length" does); `min` widens on the right.
            left = expansion["strategy"] == "fixed" and self.tokenizer.padding_side == "left"
            sides = (missing, 0) if left else (0, missing)
            pad_id = self.tokenizer.pad_token_id if expansion["strategy"] == "fixed" else 0
            pad = torch.nn.functional.pad
            features["input_ids"] = input_ids = pad(input_ids, sides, value=int(pad_id or 0))
            features["attention_mask"] = attention_mask = pad(attention_mask, sides, value=0)
            if "token_type_ids" in features:
                type_id = getattr(self.tokenizer, "pad_token_type_id", 0) if expansion["strategy"] == "fixed" else 0
                features["token_type_ids"] = pad(features["token_type_ids"], sides, value=int(type_id or 0))
        positions = (attention_mask == 0) & (torch.arange(input_ids.shape[1]) < floor)
        if expansion["strategy"] == "fixed" and not bool(positions.any(dim=-1).all()):
            _warn_once(
                f"One or more queries filled the whole query_expansion length of {floor} tokens; the rest of "
                "them was truncated"
            )
        features["input_ids"] = input_ids.masked_fill(positions, self._expansion_token_id(expansion))
        features["query_expansion_positions"] = positions
        if expansion["attend"]:
            features["attention_mask"] = attention_mask.masked_fill(positions, 1)
        return features

    # ------------------------------------------------------------------ forward
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        model_inputs = {k: features[k] for k in self._input_names if k in features}
        output = self.model(**model_inputs, return_dict=True)
        path = self.modality_config["text"]["method_output_name"]
        value: Any = output
        for part in [path] if isinstance(path, str) else list(path):
            value = value[part] if isinstance(value, dict) or hasattr(value, "keys") else getattr(value, part)
        features[self.module_output_name] = value
        if getattr(self.model.config, "output_hidden_states", False) and "hidden_states" in output:
            features["all_layer_embeddings"] = output["hidden_states"]
        return features

    def get_embedding_dimension(self) -> int:
        config = self.model.config
        if self.transformer_task == "fill-mask":
            return int(config.vocab_size)
        if self.transformer_task == "sequence-classification":
            return int(config.num_labels)
        hidden = getattr(config, "hidden_size", None)
        if hidden is None and hasattr(config, "get_text_config"):
            hidden = getattr(config.get_text_config(), "hidden_size", None)
        if hidden is None:
            raise ValueError(f"cannot tell the hidden size of a {type(config).__name__}")
        return int(hidden)

    # ------------------------------------------------------------------ save / load
    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "transformer_task": self.transformer_task,
            "modality_config": self.modality_config,
            "module_output_name": self.module_output_name,
        }
        if self.processing_kwargs:
            config["processing_kwargs"] = self.processing_kwargs
        # The multi-vector knobs are written only when set, as the reference does.
        for key in ("query_length", "document_length", "query_expansion"):
            if getattr(self, key) is not None:
                config[key] = getattr(self, key)
        return config

    def save(self, output_path: str, safe_serialization: bool = True) -> None:
        self.model.save_pretrained(output_path)
        self.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load_config(cls, model_dir: str, config_filename: str | None = None) -> dict[str, Any]:
        names = (config_filename,) if config_filename else _CONFIG_FILES
        for name in names:
            path = os.path.join(model_dir, name)
            if os.path.exists(path):
                return read_json_object(path)
        return {}

    @classmethod
    def load(
        cls,
        model_dir: str,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str = "torch",
        init_defaults: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Transformer:
        config = cls.load_config(model_dir)
        init = dict(init_defaults or {})
        # Legacy (<= 5.3) keys.
        legacy_model = _strip_remote_code(config.pop("model_args", None))
        legacy_tok = _strip_remote_code(config.pop("tokenizer_args", None))
        legacy_cfg = _strip_remote_code(config.pop("config_args", None))
        if "max_seq_length" in config:
            max_len = config.pop("max_seq_length")
            if max_len is not None:
                legacy_tok.setdefault("model_max_length", max_len)
        init.update(config)
        init["model_kwargs"] = {**legacy_model, **(model_kwargs or {})}
        init["processor_kwargs"] = {**legacy_tok, **(processor_kwargs or {})}
        init["config_kwargs"] = {**legacy_cfg, **(config_kwargs or {})}
        init["backend"] = backend
        return cls(model_dir, **init)

    def __repr__(self) -> str:
        config = self.get_config_dict()
        config["architecture"] = type(self.model).__name__
        return f"Transformer({config})"
