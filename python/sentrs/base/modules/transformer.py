"""The input module: a Hugging Face transformers model and its tokenizer.

Tokenization runs in the Rust core from the tokenizer's own ``tokenizer.json`` description, with padding and
truncation set explicitly (pad to the longest row of a batch, longest-first truncation at ``max_seq_length``), so
ids match what the reference feeds its model. The forward pass is the transformers model in torch.

A module whose ``modality_config`` has a ``message`` entry (the default for a folder whose tokenizer has a chat
template) renders every input through the chat template first, as the reference does: a (query, document) pair
becomes a ``query`` and a ``document`` message, a single text a ``user`` message, and a prompt a ``system`` message
in front. The rendered strings are tokenized without the tokenizer's own special tokens, and rows that truncation cut
get the template's closing tokens written back over their last tokens.

Images, audio and video go through the folder's transformers processor (``AutoProcessor``) and the model method that
``modality_config`` names for their modality (CLIP: ``get_image_features``), as in the reference; see
:mod:`sentrs.base.modules.multimodal`. On a model with a ``message`` modality and a processor (a vision-language chat
model such as Qwen2-VL), a batch holding media becomes chat conversations that the processor's
``apply_chat_template`` renders and tokenizes, media placeholders included. Text batches keep the Rust tokenizer.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from typing import Any, ClassVar, Literal, cast

import numpy as np
from typing_extensions import NotRequired, TypedDict

from sentrs import ops
from sentrs.base.formats import (
    TRANSFORMER_CONFIG_FILES,
    TRANSFORMER_TASKS,
    file_named_in_errors,
    has_lowercase,
    read_json_object,
)
from sentrs.base.inputs import check_pair, split_pairs
from sentrs.base.modality import (
    InputFormatter,
    folder_has_processor,
    format_modality,
    is_message_dict,
    may_name_media,
    parse_modality_key,
    raise_unsupported_modality_error,
)
from sentrs.base.modules import multimodal
from sentrs.base.modules.tokenized_input import TokenizedTextInput, encode_text_batch
from sentrs.base.peft_mixin import load_transformer_config
from sentrs.exceptions import TokenizerError

__all__ = ["QueryExpansionConfig", "Transformer", "normalize_query_expansion"]

logger = logging.getLogger(__name__)

TransformerTask = Literal["feature-extraction", "fill-mask", "sequence-classification", "text-generation", "retrieval"]
MessageFormat = Literal["flat", "structured"]

_TASKS = TRANSFORMER_TASKS
_CONFIG_FILES = TRANSFORMER_CONFIG_FILES
# Tasks whose model reads the last position (causal LMs): the tokenizer pads on the left for them.
_CAUSAL_TASKS = ("text-generation",)
_MODALITIES = ("text", "image", "audio", "video", "message")
_MEDIA_MODALITIES = frozenset({"image", "audio", "video"})
_PROCESSING_KWARGS_KEYS = frozenset({"common", "text", "audio", "image", "video", "chat_template"})

# How the reference lays out message content: model types it pins, then template text that indexes typed parts
# ("structured": ``[{"type": "text", "text": ...}]``); any other template takes plain strings ("flat").
_PINNED_MESSAGE_FORMATS: dict[str, MessageFormat] = {
    "apertus": "flat",
    "deepseek_v3": "flat",
    "gpt_oss": "flat",
    "seed_oss": "flat",
}
_STRUCTURED_TEMPLATE_HINTS = ("content[0]", ".type", "'type'", '"type"', "item.type", "message.content[")
# apply_chat_template keywords that size the tokenization rather than reach the template.
_CHAT_SIZE_KEYS = frozenset({"padding", "truncation", "max_length", "return_tensors"})
# Two renders of a conversation with different stand-in contents share exactly the template's closing tokens.
_SUFFIX_FILLERS = ("0", "1 2 3 4")
_SUFFIX_CACHE_SIZE = 256
_NO_TRUNCATION = 2**31 - 1


def _is_conversation(item: Any) -> bool:
    """A chat input: a message dict, or a list of them."""
    return is_message_dict(item) or (isinstance(item, list) and bool(item) and is_message_dict(item[0]))


def _is_text_only_conversation(item: Any) -> bool:
    messages = [item] if is_message_dict(item) else item
    return InputFormatter.is_text_only_messages([messages])


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


def resolve_retrieval_model_class(config: Any) -> Any:
    """The transformers class of a ``*ForRetrieval`` checkpoint (ColPali, ColQwen2, ColModernVBert), for
    ``transformer_task="retrieval"``: transformers' retrieval mapping first, then the base model of a PEFT adapter,
    then a ``*ForRetrieval`` class that ``config.architectures`` names, then ``AutoModel`` for a remote-code checkpoint
    that maps one in ``auto_map``. Raises ValueError for any other config.

    transformers has no ``AutoModelForRetrieval``, and its retrieval mapping lacks some of these models (ColQwen2).
    Unlike the reference, an ``architectures`` entry that is not a retriever (``BertModel``) is refused here, when the
    folder loads, instead of failing at the first encode for want of an ``embeddings`` output.
    """
    import transformers

    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_RETRIEVAL_MAPPING

        return MODEL_FOR_RETRIEVAL_MAPPING[type(config)]
    except (ImportError, KeyError):
        pass
    base = getattr(config, "base_model_name_or_path", None)
    if isinstance(base, str) and base:
        return resolve_retrieval_model_class(transformers.AutoConfig.from_pretrained(base))
    architectures = list(getattr(config, "architectures", None) or [])
    for name in architectures:
        found = getattr(transformers, name, None) if name.endswith("ForRetrieval") else None
        if found is not None:
            return found
    if "AutoModel" in (getattr(config, "auto_map", None) or {}):
        return transformers.AutoModel  # from_pretrained still needs trust_remote_code to run the folder's code
    raise ValueError(
        f"transformer_task='retrieval' needs a transformers *ForRetrieval checkpoint (ColPali, ColQwen2, "
        f"ColModernVBert), got model_type={getattr(config, 'model_type', None)!r} with architectures={architectures}; "
        "use transformer_task='feature-extraction' for a plain encoder"
    )


# Encoder-decoder configs whose encoder alone is what a feature-extraction Transformer loads, as the reference does:
# (transformers config class name, module holding the encoder class, encoder class name). A subclass of a listed config
# matches too. Names missing from the installed transformers are skipped.
_ENCODER_ONLY_CLASSES: tuple[tuple[str, str, str], ...] = (
    ("T5Config", "transformers", "T5EncoderModel"),
    ("MT5Config", "transformers", "MT5EncoderModel"),
    ("UMT5Config", "transformers", "UMT5EncoderModel"),
    ("UdopConfig", "transformers", "UdopEncoderModel"),
    ("LongT5Config", "transformers", "LongT5EncoderModel"),
    ("ProphetNetConfig", "transformers", "ProphetNetEncoder"),
    ("SwitchTransformersConfig", "transformers", "SwitchTransformersEncoderModel"),
    ("BlenderbotConfig", "transformers.models.blenderbot.modeling_blenderbot", "BlenderbotEncoder"),
    (
        "BlenderbotSmallConfig",
        "transformers.models.blenderbot_small.modeling_blenderbot_small",
        "BlenderbotSmallEncoder",
    ),
    ("M2M100Config", "transformers.models.m2m_100.modeling_m2m_100", "M2M100Encoder"),
    ("PegasusConfig", "transformers.models.pegasus.modeling_pegasus", "PegasusEncoder"),
    ("PegasusXConfig", "transformers.models.pegasus_x.modeling_pegasus_x", "PegasusXEncoder"),
    ("MoonshineConfig", "transformers.models.moonshine.modeling_moonshine", "MoonshineEncoder"),
    ("WhisperConfig", "transformers.models.whisper.modeling_whisper", "WhisperEncoder"),
    ("MarianConfig", "transformers.models.marian.modeling_marian", "MarianEncoder"),
    ("T5Gemma2TextConfig", "transformers.models.t5gemma2.modeling_t5gemma2", "T5Gemma2Encoder"),
)
# Class attributes are patched for the length of one load; loads in other threads wait.
_class_attrs_lock = threading.Lock()


def _is_config(config: Any, class_name: str) -> bool:
    import transformers

    cls = getattr(transformers, class_name, None)
    return isinstance(cls, type) and isinstance(config, cls)


def load_encoder_only_model(model_name_or_path: str, config: Any, model_kwargs: dict[str, Any]) -> Any | None:
    """The encoder of an encoder-decoder checkpoint (T5, mT5, Whisper, ...), without its decoder weights, for
    ``transformer_task="feature-extraction"``; None when ``config`` is not such an architecture (``AutoModel`` then).

    The checkpoint's ``decoder.*`` weights are expected and skipped quietly. T5Gemma loads as an encoder-only model
    (``is_encoder_decoder`` off); a full T5Gemma2 checkpoint loads its encoder from the ``encoder`` sub-config.
    """
    attrs: dict[str, Any] = {}
    load_config = config
    if _is_config(config, "T5GemmaConfig"):
        module, name = "transformers", "T5GemmaEncoderModel"
        config.is_encoder_decoder = False
    elif _is_config(config, "T5Gemma2Config"):
        module, name = "transformers.models.t5gemma2.modeling_t5gemma2", "T5Gemma2Encoder"
        load_config = config.encoder
        attrs["base_model_prefix"] = "model.encoder"
    else:
        found = next(((m, n) for config_name, m, n in _ENCODER_ONLY_CLASSES if _is_config(config, config_name)), None)
        if found is None:
            return None
        module, name = found
    encoder_cls = getattr(importlib.import_module(module), name)
    attrs["_keys_to_ignore_on_load_unexpected"] = ["decoder.*"]
    with _class_attrs_lock:
        saved = {key: encoder_cls.__dict__[key] for key in attrs if key in encoder_cls.__dict__}
        try:
            for key, value in attrs.items():
                setattr(encoder_cls, key, value)
            return encoder_cls.from_pretrained(model_name_or_path, config=load_config, **model_kwargs)
        finally:
            for key in attrs:
                if key in saved:
                    setattr(encoder_cls, key, saved[key])
                else:
                    delattr(encoder_cls, key)


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


def _modality_key(key: Any) -> Any:
    """A ``modality_config`` key as a modality: ``"image+text"`` and lists become tuples; None when unknown."""
    if isinstance(key, str):
        return parse_modality_key(key)
    if isinstance(key, (tuple, list)) and key and all(isinstance(k, str) and k in _MODALITIES for k in key):
        return tuple(key)
    return None


def _checked_modality_config(modality_config: Any) -> dict[Any, dict[str, Any]]:
    """A copy of a ``modality_config`` with tuple keys for combined modalities, after checking its entries."""
    if not isinstance(modality_config, dict) or not modality_config:
        raise ValueError(f"modality_config must be a non-empty dict, got {modality_config!r}")
    checked: dict[Any, dict[str, Any]] = {}
    for key, params in modality_config.items():
        modality = _modality_key(key)
        if modality is None:
            raise ValueError(
                f"modality_config key {key!r} is not a modality; the keys are {list(_MODALITIES)} or combinations "
                "like 'image+text'"
            )
        if not isinstance(params, dict) or "method" not in params or "method_output_name" not in params:
            raise ValueError(
                f"Invalid modality_config entry for {key!r}: each entry must be a dict with 'method' and "
                f"'method_output_name' keys, but got {params!r}"
            )
        if not isinstance(params["method"], str):
            raise ValueError(f"modality_config[{key!r}]['method'] must be a str, got {params['method']!r}")
        checked[modality] = dict(params)
    return checked


class RenderedEncoding:
    """The Rust encoding of chat-template renders, padded like :class:`sentrs.ops.Encoding`, whose :meth:`pad` writes
    the template's closing tokens back over the last real tokens of the rows that truncation cut (a causal LM reads
    the last position, so it must see the template's end, not the middle of a long document).

    Args:
        encoding: the renders tokenized without the tokenizer's special tokens.
        suffixes: row -> closing token ids, for the truncated rows.
        left_padded: whether padding goes on the left (the real tokens then end at the batch width).
    """

    def __init__(self, encoding: ops.Encoding, suffixes: dict[int, list[int]], left_padded: bool) -> None:
        self.encoding = encoding
        self.suffixes = suffixes
        self.left_padded = left_padded

    def __len__(self) -> int:
        return len(self.encoding)

    def lengths(self) -> Any:
        return self.encoding.lengths()

    def ids(self, row: int) -> list[int]:
        ids = self.encoding.ids(row)
        suffix = self.suffixes.get(row)
        if suffix:
            keep = min(len(suffix), len(ids))
            ids[len(ids) - keep :] = suffix[len(suffix) - keep :]
        return ids

    def pad(
        self, rows: list[int] | None = None, *, pad_to: int | None = None, pad_to_multiple_of: int | None = None
    ) -> tuple[Any, Any, Any]:
        input_ids, attention_mask, token_type_ids = self.encoding.pad(
            rows, pad_to=pad_to, pad_to_multiple_of=pad_to_multiple_of
        )
        if self.suffixes:
            width = input_ids.shape[1]
            for out_row, row in enumerate(range(len(self.encoding)) if rows is None else rows):
                suffix = self.suffixes.get(int(row))
                if not suffix:
                    continue
                real = int(attention_mask[out_row].sum())
                keep = min(len(suffix), real)
                end = width if self.left_padded else real
                input_ids[out_row, end - keep : end] = suffix[len(suffix) - keep :]
        return input_ids, attention_mask, token_type_ids


# Tokenizer files that are JSON objects, checked in this order to name the broken one when a tokenizer fails to load.
_TOKENIZER_JSON_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "processor_config.json",
    "preprocessor_config.json",
)


def tokenizer_load_error(path: str, exc: BaseException) -> TokenizerError:
    """A TokenizerError for a tokenizer of ``path`` that failed to load with ``exc``, naming the broken file."""
    for name in _TOKENIZER_JSON_FILES:
        file = os.path.join(path, name)
        if not os.path.lexists(file):
            continue
        problem = ""
        if os.path.isdir(file):
            problem = "is a folder, expected a JSON file"
        else:
            try:
                with open(file, encoding="utf-8") as f:
                    content = json.load(f)
            except (OSError, ValueError) as parse_exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                problem = f"is not valid JSON ({parse_exc})"
            else:
                if not isinstance(content, dict):
                    problem = f"must hold a JSON object, got {type(content).__name__}"
        if problem:
            return TokenizerError(f"cannot load the tokenizer of {path}: {file} {problem}")
    return TokenizerError(f"cannot load the tokenizer of {path} ({type(exc).__name__}: {exc})")


# Tokenizer files read whole by transformers; none of a real tokenizer comes near the cap (tokenizer.json of large
# multilingual vocabularies: tens of MB), so a larger one is refused before it is read into memory.
_TOKENIZER_FILES = (*_TOKENIZER_JSON_FILES, "vocab.txt", "merges.txt", "spiece.model", "tokenizer.model")
_MAX_TOKENIZER_FILE_BYTES = 1 << 30


def _check_tokenizer_files(path: str) -> None:
    """TokenizerError naming a tokenizer file of ``path`` that is a folder (transformers would silently build a
    tokenizer of special tokens only) or too large to be one (bounded work on a hostile folder)."""
    if not os.path.isdir(path):
        return
    for name in _TOKENIZER_FILES:
        file = os.path.join(path, name)
        if os.path.isdir(file):
            raise TokenizerError(f"{file} is a folder, expected a file")
        if os.path.isfile(file) and os.path.getsize(file) > _MAX_TOKENIZER_FILE_BYTES:
            raise TokenizerError(
                f"{file} is {os.path.getsize(file)} bytes, more than any tokenizer file ({_MAX_TOKENIZER_FILE_BYTES} "
                "bytes at most); refusing to read it"
            )


def _check_tokenizer_has_vocabulary(tokenizer: Any, path: str) -> None:
    """Raises TokenizerError for a tokenizer made of its special tokens only: what transformers builds, without a
    word of warning, for a folder whose vocabulary files are missing or unreadable (every text would become
    ``[UNK]``: a silently wrong model)."""
    special_ids = getattr(tokenizer, "all_special_ids", None)
    if tokenizer is None or not special_ids:
        return
    try:
        size = len(tokenizer)
    except TypeError:
        return
    if size <= len(set(special_ids)):
        raise TokenizerError(
            f"the tokenizer of {path} has no vocabulary, only its {size} special tokens: its tokenizer.json (or "
            "vocab.txt, vocab.json, ...) is missing or unreadable"
        )


def _weights_file_name(model_dir: str) -> str:
    """The weights file ``from_pretrained`` reads in ``model_dir`` (for error messages)."""
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"):
        if os.path.exists(os.path.join(model_dir, name)):
            return os.path.join(model_dir, name)
    return model_dir


class Transformer(TokenizedTextInput):
    """Wraps a transformers model (``AutoModel`` by default) and its tokenizer.

    Args:
        model_name_or_path: a local folder with ``config.json``, weights and tokenizer files.
        transformer_task: ``feature-extraction`` (token embeddings), ``fill-mask`` (MLM logits),
            ``sequence-classification`` (classification logits as ``scores``) or ``text-generation`` (a causal LM's
            next-token logits as ``causal_logits``, ``(batch, logits_to_keep, vocab)``; the tokenizer pads on the
            left, and ``processing_kwargs["text"]["logits_to_keep"]`` (default 1, 0 for every position) is passed to
            the model), or ``retrieval``: a transformers ``*ForRetrieval`` model (ColPali, ColQwen2, ColModernVBert)
            whose ``embeddings`` (projected, unit-length, zero at padding) become ``token_embeddings``; its processor
            reads text (rendered as a query) and images, both through ``forward``.
        model_kwargs: passed to ``from_pretrained`` of the model (``dtype``, ``attn_implementation``, ...).
        processor_kwargs: passed to ``AutoTokenizer.from_pretrained`` (``model_max_length``, ...).
        config_kwargs: passed to ``AutoConfig.from_pretrained``.
        processing_kwargs: per-modality call settings; ``{"text": {"max_length": N, "truncation": ...}}``, and
            ``{"chat_template": {...}}``: keywords of ``apply_chat_template`` (``restore_suffix=False`` keeps
            truncated rows as cut).
        backend: ``"torch"``, or ``"onnx"``/``"openvino"`` for the embedding and classification tasks.
        modality_config: ``{"text": {"method": "forward", "method_output_name": ...}}``, with a ``"message"`` entry
            (``"format": "flat" | "structured"``) to render inputs through the tokenizer's chat template. By default
            the message entry is there when the tokenizer has a chat template, as in the reference.
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
        if transformer_task in _CAUSAL_TASKS and backend != "torch":
            from sentrs.exceptions import UnsupportedFeatureError

            raise UnsupportedFeatureError(
                f"transformer_task={transformer_task!r} (LLM rerankers) runs with backend='torch' only in sentrs, got "
                f"backend={backend!r}"
            )
        if transformer_task == "retrieval" and backend != "torch":
            from sentrs.exceptions import UnsupportedFeatureError

            raise UnsupportedFeatureError(
                f"transformer_task='retrieval' (ColPali-style *ForRetrieval models) runs with backend='torch' only, "
                f"got backend={backend!r}: neither sentrs nor sentence_transformers exports these models"
            )
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
            self.modality_config = _checked_modality_config(modality_config)
            if module_output_name is None:
                raise ValueError("a custom modality_config also needs module_output_name")
        self.module_output_name = module_output_name or default_key

        model_kwargs = dict(model_kwargs or {})
        processor_kwargs = {**_strip_remote_code(tokenizer_kwargs), **_strip_remote_code(processor_kwargs)}
        config_kwargs = dict(config_kwargs or {})
        if cache_dir is not None:
            model_kwargs.setdefault("cache_dir", cache_dir)
            processor_kwargs.setdefault("cache_dir", cache_dir)
            config_kwargs.setdefault("cache_dir", cache_dir)
        config_kwargs.setdefault("use_cache", False)
        config = load_transformer_config(model_name_or_path, backend, config_kwargs)
        if (
            transformer_task == "sequence-classification"
            and "num_labels" not in config_kwargs
            and not any(a.endswith("ForSequenceClassification") for a in (config.architectures or []))
        ):
            config.num_labels = 1
        if max_seq_length is not None and "model_max_length" not in processor_kwargs:
            processor_kwargs["model_max_length"] = max_seq_length
        self._processor: Any = None  # a multi-part or non-text processor; None when the tokenizer is the processor
        tokenizer_path = tokenizer_name_or_path or model_name_or_path
        _check_tokenizer_files(tokenizer_path)
        try:
            self.tokenizer = self._load_processor(tokenizer_path, processor_kwargs)
        except (OSError, ImportError, NotImplementedError):  # missing files or packages: already named
            raise
        except Exception as exc:
            raise tokenizer_load_error(tokenizer_path, exc) from exc
        _check_tokenizer_has_vocabulary(self.tokenizer, tokenizer_path)
        if backend == "torch":
            if transformer_task == "retrieval":
                auto_cls = resolve_retrieval_model_class(config)
            else:
                auto_cls = getattr(transformers, auto_name)
            with file_named_in_errors(_weights_file_name(model_name_or_path)):
                encoder = (
                    load_encoder_only_model(model_name_or_path, config, model_kwargs)
                    if transformer_task == "feature-extraction"
                    else None
                )
                self.model = (
                    encoder
                    if encoder is not None
                    else auto_cls.from_pretrained(model_name_or_path, config=config, **model_kwargs)
                )
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
        tokenizer = self.tokenizer
        if (
            tokenizer is not None
            and "model_max_length" not in processor_kwargs
            and isinstance(max_pos, int)
            and max_pos > 0
        ):
            tokenizer.model_max_length = min(tokenizer.model_max_length, max_pos)
        if do_lower_case and tokenizer is not None:
            self._add_lowercase()
        if transformer_task in _CAUSAL_TASKS and tokenizer is not None:
            # The last position must be a real token for every row: logits_to_keep=1 and LogitScore read it.
            tokenizer.padding_side = "left"
        requested_format = (modality_config or {}).get("message", {}).get("format", "auto")
        if requested_format not in ("auto", "flat", "structured"):
            raise ValueError(
                f"modality_config message format must be 'flat', 'structured' or 'auto', got {requested_format!r}"
            )
        self.message_format: MessageFormat = (
            requested_format if requested_format != "auto" else self._infer_message_format(config.model_type)
        )
        if modality_config is None and self._processor is None:
            self.modality_config = {"text": {"method": "forward", "method_output_name": default_output}}
            if getattr(self.tokenizer, "chat_template", None) is not None:
                self.modality_config["message"] = {
                    "method": "forward",
                    "method_output_name": default_output,
                    "format": self.message_format,
                }
        elif modality_config is None:
            # A folder with a processor: its parts and the model decide, as in the reference.
            self.modality_config, self.module_output_name = multimodal.infer_modality_config(
                self.model, self._processor, transformer_task, default_output, default_key, self.message_format
            )
            if not self.modality_config:
                raise ValueError(
                    f"Could not tell which inputs {type(self.model).__name__} reads from its processor "
                    f"{type(self._processor).__name__}; pass modality_config and module_output_name"
                )
        self._check_backend_modalities()
        self._check_processor_modalities()
        self._input_formatter = InputFormatter(
            getattr(config, "model_type", "") or "",
            self.message_format,
            supported_modalities=list(self.modality_config),
        )
        self._method_params: dict[str, set[str] | None] = {}
        self._media_names: frozenset[str] | None = None
        self._input_names = self._forward_input_names()
        self._takes_logits_to_keep = transformer_task in _CAUSAL_TASKS and self._forward_takes("logits_to_keep")
        self._suffix_cache: dict[tuple[str, ...], list[int]] = {}
        self._pair_probe: tuple[tuple[str, str], str | None] | None = None
        self._init_tokenizer_state()
        self.query_expansion = query_expansion

    def _load_processor(self, path: str, processor_kwargs: dict[str, Any]) -> Any:
        """Loads the tokenizer, and for a folder with processor files the whole processor (kept in ``_processor``);
        returns the tokenizer (None for a processor without one, e.g. an image-only model)."""
        import transformers

        if not folder_has_processor(path):
            return transformers.AutoTokenizer.from_pretrained(path, **processor_kwargs)
        if self.backend != "torch":
            from sentrs.exceptions import UnsupportedFeatureError

            raise UnsupportedFeatureError(
                f"backend={self.backend!r} runs text models only in sentrs, and {path} has a processor for image, "
                "audio or video inputs; load it with backend='torch'"
            )
        try:
            processor = transformers.AutoProcessor.from_pretrained(path, **processor_kwargs)
        except Exception as exc:  # a processor part needing a missing package: text still works via the tokenizer
            logger.warning(
                "Could not load the processor of %s (%s: %s); loading its tokenizer only, so it reads text only",
                path,
                type(exc).__name__,
                exc,
            )
            return transformers.AutoTokenizer.from_pretrained(path, **processor_kwargs)
        if isinstance(processor, transformers.PreTrainedTokenizerBase):
            return processor
        self._processor = processor
        return getattr(processor, "tokenizer", None)

    def _check_processor_modalities(self) -> None:
        """Every modality of ``modality_config`` must be one the processor reads (a text model's tokenizer reads
        text, and chat messages rendered from it)."""
        readable = multimodal.processor_modalities(self.processor)
        if "text" in readable:
            readable.append("message")
        for modality in self.modality_config:
            parts = modality if isinstance(modality, tuple) else (modality,)
            if all(part in readable for part in parts):
                continue
            quoted = [repr(m) for m in readable]
            allowed = " and ".join(quoted) if len(quoted) <= 2 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
            raise ValueError(
                f"modality_config names {format_modality(modality)!r}, but the processor of this model "
                f"({type(self.processor).__name__}) does not read it: modality_config may hold {allowed} entries"
            )

    def _check_backend_modalities(self) -> None:
        """ONNX / OpenVINO exports run the text forward pass only."""
        if self.backend == "torch":
            return
        from sentrs.exceptions import UnsupportedFeatureError

        for modality, params in self.modality_config.items():
            if modality not in ("text", "message") or params.get("method") != "forward":
                raise UnsupportedFeatureError(
                    f"backend={self.backend!r} runs the text forward pass only in sentrs, and this model reads "
                    f"{format_modality(modality)!r} inputs with {params.get('method')!r}; load it with "
                    "backend='torch'"
                )

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
        """The transformers processor (``AutoProcessor``): for text models, the tokenizer."""
        return self._processor if self._processor is not None else self.tokenizer

    @property
    def modalities(self) -> list[Any]:
        """The input modalities this module takes: ``"text"``, ``"image"``, ``"audio"``, ``"video"``, ``"message"``
        and tuples such as ``("image", "text")`` for combined inputs."""
        return list(self.modality_config)

    @property
    def max_seq_length(self) -> int | None:
        """Truncation length in tokens, special tokens included (None: no limit). Without a tokenizer (an image-only
        model): the text config's ``max_position_embeddings``, if any."""
        if self.tokenizer is not None:
            return TokenizedTextInput.max_seq_length.fget(self)  # type: ignore[attr-defined]
        config = self.model.config
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        value = getattr(text_config, "max_position_embeddings", None)
        return value if isinstance(value, int) else None

    @max_seq_length.setter
    def max_seq_length(self, value: int | None) -> None:
        if self.tokenizer is not None:
            TokenizedTextInput.max_seq_length.fset(self, value)  # type: ignore[attr-defined]

    @property
    def renders_messages(self) -> bool:
        """Whether inputs go through the tokenizer's chat template (a ``message`` entry in ``modality_config``)."""
        return "message" in self.modality_config

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
        names = list(getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
        if self.backend != "torch":
            return [n for n in names if n in self.model.input_names]
        return [n for n in names if self._forward_takes(n)]

    def _forward_takes(self, name: str) -> bool:
        import inspect

        return name in inspect.signature(self.model.forward).parameters

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
        """Checks a causal LM's batch is left-padded and sets its ``logits_to_keep``; expands a query batch: pads it
        to the expansion length, puts the expansion token in the padding within that length and marks those
        positions in ``query_expansion_positions``."""
        if self.transformer_task in _CAUSAL_TASKS:
            logits_to_keep = self._logits_to_keep()
            attention_mask = features.get("attention_mask")
            if attention_mask is not None and attention_mask.ndim == 2 and not bool(attention_mask[:, -1].all()):
                raise ValueError(
                    "At least one row of the batch ends in padding, but a causal LM is read at its last position "
                    "(logits_to_keep, LogitScore), so it needs left padding. The Transformer sets "
                    "tokenizer.padding_side = 'left' when it loads and it was changed since; set it back with "
                    "model[0].tokenizer.padding_side = 'left'"
                )
            features["logits_to_keep"] = logits_to_keep
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

    def _logits_to_keep(self) -> int:
        value = self._text_kwargs().get("logits_to_keep", 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"logits_to_keep must be a non-negative integer, got {value!r}")
        return value

    # ------------------------------------------------------------------ chat-template inputs
    def _infer_message_format(self, model_type: str | None) -> MessageFormat:
        """How the chat template wants message content: the reference's pinned model types, else structured when
        the template indexes typed content parts or there is no template, flat otherwise."""
        if model_type in _PINNED_MESSAGE_FORMATS:
            return _PINNED_MESSAGE_FORMATS[model_type]
        template = getattr(self._chat_source, "chat_template", None)
        if not isinstance(template, str) or not template:
            return "structured"
        return "structured" if any(hint in template for hint in _STRUCTURED_TEMPLATE_HINTS) else "flat"

    def _message(self, role: str, text: str) -> dict[str, Any]:
        if self.message_format == "flat":
            return {"role": role, "content": text}
        return {"role": role, "content": [{"type": "text", "text": text}]}

    @property
    def _chat_source(self) -> Any:
        """What renders chat templates: the processor when it has its own template, else the tokenizer."""
        if self._processor is not None and getattr(self._processor, "chat_template", None) is not None:
            return self._processor
        return self.tokenizer

    def conversations(self, inputs: list[Any], prompt: str | None = None) -> list[list[dict[str, Any]]]:
        """The chat messages of each input: a ``query`` and a ``document`` message for a (query, document) pair, a
        ``user`` message for a single text, the messages themselves for a message dict or a conversation (a list of
        them), after a ``system`` message holding ``prompt`` when one is given."""
        head = [self._message("system", prompt)] if prompt else []
        if any(_is_conversation(item) for item in inputs):
            out = []
            for i, item in enumerate(inputs):
                if is_message_dict(item):
                    out.append([*head, item])
                elif _is_conversation(item):
                    out.append([*head, *item])
                else:
                    out.extend(self.conversations([check_pair(item, i)], prompt))
            return out
        texts, pairs = split_pairs(inputs)
        conversations = []
        for i, text in enumerate(texts):
            pair = pairs[i] if pairs is not None else None
            if pair is None:
                conversations.append([*head, self._message("user", text)])
            else:
                conversations.append([*head, self._message("query", text), self._message("document", pair)])
        return conversations

    def _chat_template_kwargs(self, call_kwargs: dict[str, Any]) -> dict[str, Any]:
        """``apply_chat_template`` keywords: the module's ``processing_kwargs["chat_template"]`` updated by the
        call's, and ``task`` when the template reads it."""
        chat = dict(self.processing_kwargs.get("chat_template", {}))
        processing = call_kwargs.get("processing_kwargs")
        if isinstance(processing, dict):
            chat.update(processing.get("chat_template", {}))
        task = call_kwargs.get("task")
        if task is not None and "task" not in chat and self._template_reads_task():
            chat["task"] = task
        return chat

    def _template_reads_task(self) -> bool:
        try:
            from transformers.utils.chat_template_utils import _get_template_variables
        except ImportError:  # without the introspection, an extra template variable does no harm
            return True
        template = getattr(self._chat_source, "chat_template", None)
        templates = template.values() if isinstance(template, dict) else [template]
        return any(isinstance(t, str) and "task" in _get_template_variables(t) for t in templates)

    def _render(self, conversations: list[list[dict[str, Any]]], chat_kwargs: dict[str, Any]) -> list[str]:
        rendered = self._chat_source.apply_chat_template(conversations, tokenize=False, **chat_kwargs)
        return [rendered] if isinstance(rendered, str) else [str(r) for r in rendered]

    def _pair_roles_failure(self, chat_kwargs: dict[str, Any]) -> str | None:
        """Why the chat template cannot carry a query/document pair (None when it can): found by rendering probe
        pairs and checking that changing either side changes the render. Cached per template and keywords."""
        template = getattr(self._chat_source, "chat_template", None)
        if template is None:
            return "the tokenizer has no chat template"
        key = (repr(template), repr(sorted(chat_kwargs.items())))
        if self._pair_probe is not None and self._pair_probe[0] == key:
            return self._pair_probe[1]
        probes = [("first query", "first document"), ("other query text", "first document")]
        probes.append(("first query", "other document text"))
        try:
            base, new_query, new_document = self._render(
                [[self._message("query", q), self._message("document", d)] for q, d in probes], chat_kwargs
            )
        except Exception as exc:
            failure: str | None = f"rendering a pair raised {type(exc).__name__}: {exc}"
        else:
            lost = [role for role, render in (("query", new_query), ("document", new_document)) if render == base]
            failure = f"the {' and '.join(repr(r) for r in lost)} content does not reach the render" if lost else None
        self._pair_probe = (key, failure)
        return failure

    def _check_pair_roles(self, conversations: list[list[dict[str, Any]]], chat_kwargs: dict[str, Any]) -> None:
        has_pair = any({"query", "document"} <= {m.get("role") for m in c} for c in conversations)
        if not has_pair:
            return
        failure = self._pair_roles_failure(chat_kwargs)
        if failure is None:
            return
        if self.message_format == "flat":
            query = '{{ messages | selectattr("role", "eq", "query") | map(attribute="content") | first }}'
            document = '{{ messages | selectattr("role", "eq", "document") | map(attribute="content") | first }}'
        else:
            query = '{{ (messages | selectattr("role", "eq", "query") | first).content[0].text }}'
            document = '{{ (messages | selectattr("role", "eq", "document") | first).content[0].text }}'
        raise ValueError(
            f"The chat template of {getattr(self.config, 'name_or_path', None) or 'this model'} cannot render a "
            f"(query, document) pair: {failure}. A pair becomes a 'query' and a 'document' message, so the template "
            f"must render both roles, e.g. with\n    Query: {query}\n    Document: {document}\n"
            "Set it with processor_kwargs={'chat_template': ...} when loading, model[0].tokenizer.chat_template = ... "
            "afterwards, or a chat_template.jinja file in the model folder."
        )

    def _suffix_ids(self, conversation: list[dict[str, Any]], chat_kwargs: dict[str, Any]) -> list[int]:
        """The closing tokens the template puts after a conversation's contents (cached per conversation shape):
        the common token tail of two renders whose non-system contents are different stand-ins."""

        def skeleton(filler: str) -> list[dict[str, Any]]:
            out = []
            for message in conversation:
                if message.get("role") == "system":
                    out.append(message)
                else:
                    content = (
                        [{"type": "text", "text": filler}] if isinstance(message.get("content"), list) else filler
                    )
                    out.append({**message, "content": content})
            return out

        key = (repr(sorted(chat_kwargs.items())), repr(skeleton("")))
        cached = self._suffix_cache.get(key)
        if cached is not None:
            return cached
        suffix: list[int] = []
        try:
            first, second = (
                list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
                for text in self._render([skeleton(f) for f in _SUFFIX_FILLERS], chat_kwargs)
            )
            common = 0
            for a, b in zip(reversed(first), reversed(second)):
                if a != b:
                    break
                common += 1
            if 0 < common < min(len(first), len(second)):  # renders that never differ tell nothing
                suffix = first[len(first) - common :]
        except Exception as exc:  # the restore is a repair: never fail tokenization over it
            logger.debug("Could not find the chat template's closing tokens: %s", exc)
        if len(self._suffix_cache) >= _SUFFIX_CACHE_SIZE:
            self._suffix_cache.pop(next(iter(self._suffix_cache)))
        self._suffix_cache[key] = suffix
        return suffix

    def encode_texts(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> ops.Encoding:
        """Tokenizes every input once (unpadded). With a ``message`` modality the inputs are rendered through the
        chat template first (see the module docstring); the result then pads like an encoding."""
        if not self.renders_messages:
            return super().encode_texts(inputs, prompt=prompt, **kwargs)
        if kwargs.get("task") == "query" and self._query_expansion is not None:
            raise ValueError(
                "query_expansion cannot be combined with a chat-template (message) Transformer: the queries are "
                "rendered through the template and then cut to the expansion length. Let the template append its "
                "own query tokens (it gets task='query'), or use a text-only modality_config"
            )
        chat_kwargs = self._chat_template_kwargs(kwargs)
        restore_suffix = bool(chat_kwargs.pop("restore_suffix", True))
        sizes = {key: chat_kwargs.pop(key) for key in _CHAT_SIZE_KEYS & chat_kwargs.keys()}
        conversations = self.conversations(inputs, prompt)
        self._check_pair_roles(conversations, chat_kwargs)
        rendered = self._render(conversations, chat_kwargs)
        truncation = sizes.get("truncation", self._text_kwargs().get("truncation", "longest_first"))
        max_length = sizes.get("max_length")
        if max_length is None:
            max_length = self.call_max_length(**kwargs)
        if max_length is None:
            max_length = self.max_seq_length
        if truncation in (False, None, "do_not_truncate") or max_length is None:
            tok = self.rust_tokenizer(max_length=_NO_TRUNCATION, truncation="longest_first")
            restore_suffix = False
        else:
            strategy = "longest_first" if truncation is True else str(truncation)
            tok = self.rust_tokenizer(max_length=int(max_length), truncation=strategy)
        encoding = encode_text_batch(tok, rendered, None, False)
        suffixes: dict[int, list[int]] = {}
        if restore_suffix and max_length is not None:
            for row in np.flatnonzero(encoding.lengths() >= int(max_length)):
                suffix = self._suffix_ids(conversations[int(row)], chat_kwargs)
                if suffix:
                    suffixes[int(row)] = suffix
        # Duck-typed: the batching code only calls lengths() and, through features_from_encoding, pad().
        return cast("ops.Encoding", RenderedEncoding(encoding, suffixes, self.tokenizer.padding_side == "left"))

    def prompt_length(self, prompt: str) -> int:
        """Tokens of the prompt alone (0 when inputs are chat-rendered: the prompt is a system message there, not a
        prefix, and the reference does not track its length)."""
        if self.renders_messages:
            return 0
        return super().prompt_length(prompt)

    def preprocess(self, inputs: list[Any], prompt: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """Turns a batch into model inputs: texts are tokenized into padded tensors (``input_ids``,
        ``attention_mask``, ...; ``logits_to_keep`` for a causal LM; chat-rendered batches are marked
        ``modality="message"``, as in the reference); images, audio and video go through the processor
        (``pixel_values``, ``input_features``, ...). ``features["modality"]`` says which it was."""
        if isinstance(inputs, (str, tuple)):
            inputs = [inputs]
        inputs = list(inputs)
        if not self.reads_as_text(inputs):
            if self.transformer_task == "retrieval":
                return self._retrieval_features(inputs, prompt, **kwargs)
            return self._processor_features(inputs, prompt, **kwargs)
        features = super().preprocess(inputs, prompt=prompt, **kwargs)
        if self.renders_messages:
            features.pop("prompt_length", None)
            features["modality"] = "message"
        return features

    @property
    def _reads_media(self) -> bool:
        return any(
            part in _MEDIA_MODALITIES
            for modality in self.modality_config
            for part in (modality if isinstance(modality, tuple) else (modality,))
        )

    def reads_as_text(self, inputs: list[Any]) -> bool:
        """Whether a batch goes through the Rust tokenizer: always for a text-only module (it reports what it cannot
        read); for a multimodal one, when every input is a text or a (text, text) pair (chat messages with text only,
        for a chat-template model), not a media file or URL of a modality it reads. Never for a retrieval model: its
        processor renders text as a query (prefix, augmentation tokens)."""
        if self.transformer_task == "retrieval":
            return False
        if not self._reads_media:
            return True
        for item in inputs:
            if isinstance(item, str):
                if may_name_media(item) and self._input_formatter.parse_inputs([item])[0] != "text":
                    return False
            elif isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(x, str) for x in item):
                continue
            elif not (self.renders_messages and _is_conversation(item) and _is_text_only_conversation(item)):
                return False
        return True

    def _merged_processing_kwargs(self, per_call: Any) -> dict[str, dict[str, Any]]:
        """The module's ``processing_kwargs`` with a call's on top, per key (``text``, ``image``, ``common``, ...)."""
        if not per_call:
            return {key: dict(value) for key, value in self.processing_kwargs.items() if isinstance(value, dict)}
        if not isinstance(per_call, dict):
            raise ValueError(f"processing_kwargs must be a dict, got {type(per_call).__name__}")
        unknown = set(per_call) - _PROCESSING_KWARGS_KEYS
        if unknown:
            _warn_once(
                f"Unknown keys in per-call `processing_kwargs`: {unknown}. Valid keys are: "
                f"{sorted(_PROCESSING_KWARGS_KEYS)}. Unknown keys will be ignored."
            )
        merged: dict[str, dict[str, Any]] = {}
        for key in _PROCESSING_KWARGS_KEYS:
            combined = {**self.processing_kwargs.get(key, {}), **per_call.get(key, {})}
            if combined:
                merged[key] = combined
        return merged

    def _processor_features(self, inputs: list[Any], prompt: str | None, **kwargs: Any) -> dict[str, Any]:
        """Model inputs for a batch with images, audio or video, from the processor (the reference's settings). A
        model with a ``message`` modality gets every batch as chat conversations rendered by the processor's
        ``apply_chat_template`` (with ``prompt`` as a system message), as in the reference."""
        if not inputs:
            return {}
        modality, grouped, extra = self._input_formatter.parse_inputs(inputs)
        renders = "message" in self.modality_config
        if not renders and modality not in self.modality_config:
            raise_unsupported_modality_error(inputs, modality, self.modalities, "Transformer module")
        model_type = getattr(self.model.config, "model_type", "") or ""
        common, per_modality = multimodal.default_processing_kwargs(model_type)
        task = kwargs.get("task")
        text_max_length = kwargs.get("max_length")
        if text_max_length is None:
            text_max_length = self.task_max_length(task)
        if text_max_length is not None:
            per_modality["text"]["max_length"] = text_max_length
        merged = self._merged_processing_kwargs(kwargs.get("processing_kwargs"))
        common.update(merged.get("common", {}))
        for key, settings in per_modality.items():
            settings.update(merged.get(key, {}))
        logits_to_keep = per_modality["text"].pop("logits_to_keep", 1)
        for key, settings in extra.items():
            per_modality[key].update(settings)
        with multimodal.video_decoding_hint():
            if renders:
                if modality != "message":
                    grouped = self._input_formatter.batch_to_message(modality, grouped)[1]
                    modality = "message"
                features = self._chat_processor_features(grouped["message"], prompt, per_modality, common, kwargs)
            else:
                features = multimodal.call_processor(
                    self.processor, model_type, modality, grouped, per_modality, common
                )
        features["modality"] = modality
        if self.transformer_task in _CAUSAL_TASKS:
            if isinstance(logits_to_keep, bool) or not isinstance(logits_to_keep, int) or logits_to_keep < 0:
                raise ValueError(f"logits_to_keep must be a non-negative integer, got {logits_to_keep!r}")
            attention_mask = features.get("attention_mask")
            if attention_mask is not None and attention_mask.ndim == 2 and not bool(attention_mask[:, -1].all()):
                raise ValueError(
                    "At least one row of the batch ends in padding, but a causal LM is read at its last position "
                    "(logits_to_keep, LogitScore), so it needs left padding; set the processor's tokenizer back "
                    "with model[0].processor.tokenizer.padding_side = 'left' and drop any padding_side from "
                    "processing_kwargs"
                )
            features["logits_to_keep"] = logits_to_keep
        return features

    def _chat_processor_features(
        self,
        conversations: list[list[dict[str, Any]]],
        prompt: str | None,
        per_modality: dict[str, dict[str, Any]],
        common: dict[str, Any],
        call_kwargs: dict[str, Any],
    ) -> dict[str, Any]:
        """Chat conversations holding media, tokenized by the processor's chat template. Text-only rows that
        truncation cut get the template's closing tokens written back over their last tokens (rows with media keep
        theirs as cut: their placeholder tokens must match their media features)."""
        chat_kwargs = self._chat_template_kwargs(call_kwargs)
        restore_suffix = bool(chat_kwargs.pop("restore_suffix", True))
        render_kwargs = {k: v for k, v in chat_kwargs.items() if k not in _CHAT_SIZE_KEYS}
        self._check_pair_roles(conversations, render_kwargs)
        if prompt:
            conversations = self._input_formatter.prepend_prompt_to_messages(conversations, prompt)
        text = per_modality["text"]
        truncation = chat_kwargs.get("truncation", text.get("truncation", common.get("truncation")))
        max_length = chat_kwargs.get("max_length", text.get("max_length", common.get("max_length")))
        truncating = bool(truncation) or (truncation is None and max_length is not None)
        features = multimodal.apply_chat_template(self.processor, conversations, per_modality, common, chat_kwargs)
        if restore_suffix and truncating and truncation != "do_not_truncate":
            if max_length is None:
                max_length = self.max_seq_length
            self._restore_processor_suffixes(features, conversations, render_kwargs, int(max_length or 0))
        images, videos = multimodal.count_media_per_sample(conversations)
        import torch

        if "pixel_values" in features:
            features["num_images_per_sample"] = torch.tensor(images, dtype=torch.long)
        if "video_grid_thw" in features:
            features["num_videos_per_sample"] = torch.tensor(videos, dtype=torch.long)
        return features

    def _restore_processor_suffixes(
        self,
        features: dict[str, Any],
        conversations: list[list[dict[str, Any]]],
        chat_kwargs: dict[str, Any],
        max_length: int,
    ) -> None:
        """Writes the chat template's closing tokens back over the last real tokens of each text-only row whose
        length reached ``max_length`` (0: every row), in place, on either padding side."""
        input_ids: Any = features.get("input_ids")
        attention_mask: Any = features.get("attention_mask")
        if getattr(input_ids, "ndim", None) != 2 or getattr(attention_mask, "ndim", None) != 2:
            return
        width = int(input_ids.shape[1])
        if width < max_length:
            return
        import torch

        lengths = attention_mask.long().sum(dim=1).tolist()
        left_padded = (attention_mask[:, 0] == 0).tolist()
        for row, conversation in enumerate(conversations[: int(input_ids.shape[0])]):
            if lengths[row] < max_length or not InputFormatter.is_text_only_messages([conversation]):
                continue
            suffix = self._suffix_ids(conversation, chat_kwargs)
            keep = min(len(suffix), int(lengths[row]))
            if keep == 0:
                continue
            end = width if left_padded[row] else int(lengths[row])
            input_ids[row, end - keep : end] = torch.as_tensor(suffix[-keep:], dtype=input_ids.dtype)

    def _retrieval_features(self, inputs: list[Any], prompt: str | None, **kwargs: Any) -> dict[str, Any]:
        """Model inputs of a ``*ForRetrieval`` model, as the reference makes them: texts (after ``prompt``) go to the
        processor, which renders them as queries, with a warning when they were asked for as anything but queries;
        image paths and URLs are loaded first (these processors take only decoded images)."""
        if not inputs:
            return {}
        modality, grouped, _ = self._input_formatter.parse_inputs(inputs)
        task = kwargs.get("task")
        prompt_length = None
        if modality == "text":
            if task is not None and task != "query":
                _warn_once(
                    f"A *ForRetrieval model's processor renders every text as a query (query prefix and augmentation "
                    f"tokens), so these task={task!r} texts are encoded as queries; such models take their documents "
                    "as images"
                )
            if prompt:
                inputs = self._input_formatter.prepend_prompt_to_texts(grouped["text"], prompt)
                prompt_length = self._retrieval_prompt_length(prompt, kwargs)
        elif modality == "image" and any(isinstance(item, str) for item in grouped["image"]):
            from transformers.image_utils import load_image

            inputs = [load_image(item) if isinstance(item, str) else item for item in grouped["image"]]
        features = self._processor_features(inputs, None, **kwargs)
        if prompt_length is not None:
            features["prompt_length"] = prompt_length
        return features

    def _retrieval_prompt_length(self, prompt: str, kwargs: dict[str, Any]) -> int | None:
        """Width of the prompt's own processor output without a trailing special token (the reference measures a
        retrieval model's prompt this way, query rendering included)."""
        untasked = {key: value for key, value in kwargs.items() if key != "task"}
        input_ids = self._processor_features([prompt], None, **untasked).get("input_ids")
        if input_ids is None:
            return None
        length = int(input_ids.shape[-1])
        special = getattr(self.tokenizer, "all_special_ids", None) or []
        if length and int(input_ids[..., -1].reshape(-1)[0]) in special:
            length -= 1
        return length

    # ------------------------------------------------------------------ forward
    def _method_parameters(self, name: str) -> set[str] | None:
        """The keyword names a model method takes (None for a ``forward`` that takes ``**kwargs``)."""
        if name not in self._method_params:
            import inspect

            params = inspect.signature(getattr(self.model, name)).parameters
            open_ended = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
            self._method_params[name] = None if open_ended and name == "forward" else set(params)
        return self._method_params[name]

    def forward(self, features: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        modality: Any = features.get("modality") or "text"
        if modality not in self.modality_config and modality in ("text", "message"):
            modality = "message" if self.renders_messages else "text"
        if modality not in self.modality_config:
            raise ValueError(
                f"This Transformer has no modality_config entry for {format_modality(modality)!r} inputs; it reads "
                f"{', '.join(format_modality(m) for m in self.modality_config)}"
            )
        params = self.modality_config[modality]
        method_name = params["method"]
        if (
            method_name == "forward"
            and modality in ("text", "message")
            and self.transformer_task != "retrieval"
            and not self._holds_media(features)
        ):
            model_inputs = {k: features[k] for k in self._input_names if k in features}
            if self._takes_logits_to_keep:
                model_inputs["logits_to_keep"] = features.get("logits_to_keep", self._logits_to_keep())
            output = self.model(**model_inputs, return_dict=True)
        else:
            output = self._call_method(method_name, params["method_output_name"], features, kwargs)
        features[self.module_output_name] = multimodal.read_output(output, params["method_output_name"])
        if getattr(self.model.config, "output_hidden_states", False) and isinstance(output, dict):
            if "hidden_states" in output:
                features["all_layer_embeddings"] = output["hidden_states"]
        return features

    def _holds_media(self, features: dict[str, Any]) -> bool:
        """Whether a batch holds inputs the processor makes beyond the tokenizer's (pixel values, video grids, ...):
        a chat-rendered batch with media, which goes to the model with all of them."""
        if self._processor is None:
            return False
        if self._media_names is None:
            self._media_names = multimodal.media_input_names(self._processor)
        return any(key in self._media_names for key in features)

    def _call_method(self, name: str, output_name: Any, features: dict[str, Any], kwargs: dict[str, Any]) -> Any:
        """Calls the model method a modality is read with, on the features it takes."""
        method = getattr(self.model, name, None)
        if method is None:
            raise ValueError(f"Model does not have the requested '{name}' method")
        candidates = {**features, **kwargs, "return_dict": True}
        accepted = self._method_parameters(name)
        if accepted is None:
            call = {k: v for k, v in candidates.items() if k not in multimodal.NON_MODEL_FEATURE_KEYS}
        else:
            if name == "forward":
                accepted = accepted | {"input_ids", "attention_mask", "token_type_ids", "inputs_embeds", "return_dict"}
            call = {k: v for k, v in candidates.items() if k in accepted}
        path = [output_name] if isinstance(output_name, str) else list(output_name or [])
        if "hidden_states" in path:
            call["output_hidden_states"] = True
        return method(**call)

    def get_embedding_dimension(self) -> int:
        config = self.model.config
        if self.transformer_task == "retrieval" and getattr(config, "embedding_dim", None) is not None:
            return int(config.embedding_dim)  # the *ForRetrieval head's projection, not the backbone's width
        if self.transformer_task == "fill-mask":
            return int(config.vocab_size)
        if self.transformer_task == "sequence-classification":
            return int(config.num_labels)
        hidden = self._config_width(config)
        if hidden is None and hasattr(config, "text_config"):
            hidden = self._config_width(config.text_config)
        for name in getattr(config, "sub_configs", None) or {}:
            if hidden is None:
                hidden = self._config_width(getattr(config, name, None))
        if hidden is None and hasattr(config, "get_text_config"):
            hidden = getattr(config.get_text_config(), "hidden_size", None)
        if hidden is None:
            raise ValueError(f"cannot tell the hidden size of a {type(config).__name__}")
        return int(hidden)

    def _config_width(self, config: Any) -> int | None:
        """The output width a config declares: its projection for a module that outputs sentence embeddings (CLIP),
        else its hidden size (or the last of the stage widths of a vision backbone)."""
        if config is None:
            return None
        if self.module_output_name == "sentence_embedding" and getattr(config, "projection_dim", None) is not None:
            return int(config.projection_dim)
        if getattr(config, "hidden_size", None) is not None:
            return int(config.hidden_size)
        for name in ("neck_hidden_sizes", "hidden_sizes", "embed_dims"):
            value = getattr(config, name, None)
            if isinstance(value, list) and value:
                return int(value[-1])
            if isinstance(value, int):
                return value
        value = getattr(config, "hidden_dim", None)
        return int(value) if isinstance(value, int) else None

    # ------------------------------------------------------------------ save / load
    def get_config_dict(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "transformer_task": self.transformer_task,
            "modality_config": {format_modality(m): dict(p) for m, p in self.modality_config.items()},
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
        self.processor.save_pretrained(output_path)
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
        if isinstance(config.get("modality_config"), dict):
            parsed: dict[Any, Any] = {}
            for key, params in config["modality_config"].items():
                modality = _modality_key(key)
                if modality is None:
                    logger.warning("Ignoring unknown modality key %r in modality_config", key)
                    continue
                parsed[modality] = params
            config["modality_config"] = parsed
        if "modality_config" not in config:
            # Saved by a text-only release: keep it text-only, even if its tokenizer has a chat template.
            task = config.get("transformer_task", init.get("transformer_task", "feature-extraction"))
            default = cls._default_modality_config(task)
            if default is not None:
                config["modality_config"], config["module_output_name"] = default
        init.update(config)
        init["model_kwargs"] = {**legacy_model, **(model_kwargs or {})}
        init["processor_kwargs"] = {**legacy_tok, **(processor_kwargs or {})}
        init["config_kwargs"] = {**legacy_cfg, **(config_kwargs or {})}
        init["backend"] = backend
        return cls(model_dir, **init)

    # The reference's helper names, for code written against them.
    _infer_method_output_name = staticmethod(multimodal.output_name_if_declared)
    _get_method_output_fields = staticmethod(multimodal.method_output_fields)

    @classmethod
    def _get_default_modality_config(cls, config: dict[str, Any]) -> tuple[dict[Any, dict[str, Any]], str] | None:
        """The default modality config and output name for a saved config dict (its ``transformer_task``)."""
        return cls._default_modality_config(config.get("transformer_task", "feature-extraction"))

    @classmethod
    def _default_modality_config(cls, task: str) -> tuple[dict[Any, dict[str, Any]], str] | None:
        """The modality config (and output name) of a saved module whose config has none: a text-only release's."""
        if task not in _TASKS:
            return None
        _, output, key = _TASKS[task]
        if task == "retrieval":
            return {m: {"method": "forward", "method_output_name": output} for m in ("text", "image")}, key
        return {"text": {"method": "forward", "method_output_name": output}}, key

    def __repr__(self) -> str:
        config = self.get_config_dict()
        config["architecture"] = type(self.model).__name__
        return f"Transformer({config})"
