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

from sentrs.base.formats import TRANSFORMER_CONFIG_FILES, TRANSFORMER_TASKS, has_lowercase, read_json_object
from sentrs.base.modules.tokenized_input import TokenizedTextInput

__all__ = ["Transformer"]

logger = logging.getLogger(__name__)

TransformerTask = Literal["feature-extraction", "fill-mask", "sequence-classification"]

_TASKS = TRANSFORMER_TASKS
_CONFIG_FILES = TRANSFORMER_CONFIG_FILES


def _strip_remote_code(d: dict[str, Any] | None) -> dict[str, Any]:
    d = dict(d or {})
    d.pop("trust_remote_code", None)
    return d


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
    config_keys: ClassVar[list[str]] = ["transformer_task", "modality_config", "module_output_name"]
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
        for key in ("unpad_inputs", "query_length", "document_length", "query_expansion"):
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

    # ------------------------------------------------------------------ forward
    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        model_inputs = {k: features[k] for k in self._input_names if k in features}
        output = self.model(**model_inputs, return_dict=True)
        path = self.modality_config["text"]["method_output_name"]
        value: Any = output
        for part in [path] if isinstance(path, str) else list(path):
            value = value[part] if isinstance(value, dict) or hasattr(value, "keys") else getattr(value, part)
        features[self.module_output_name] = value
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
