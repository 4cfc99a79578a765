"""How a :class:`~sentrs.base.modules.transformer.Transformer` reads images, audio and video, as the reference does.

Two things decide it:

- the **modality config**: for each modality the model method that reads it and the output field kept
  (``{"image": {"method": "get_image_features", "method_output_name": "pooler_output"}}``). A folder saved by
  either library carries it in ``sentence_bert_config.json``; for a plain transformers folder it is inferred from the
  processor's parts (tokenizer -> text, image processor -> image, feature extractor -> audio, video processor ->
  video), the model's forward output, and a table of model types the general rule gets wrong;
- the **processor** (``AutoProcessor``), called on each batch with the reference's per-modality settings (through
  its ``apply_chat_template`` for a chat model, which puts each image's or video's placeholder tokens in the text).

Text-only batches never come here: the Transformer tokenizes them in the Rust core.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import typing
from collections.abc import Callable, Iterator
from typing import Any

from sentrs.base.modality import format_modality
from sentrs.base.modality_types import MODALITY_TO_PROCESSOR_ARG

__all__ = [
    "NON_MODEL_FEATURE_KEYS",
    "apply_chat_template",
    "call_processor",
    "count_media_per_sample",
    "default_processing_kwargs",
    "infer_modality_config",
    "is_processor_mixin",
    "media_input_names",
    "method_output_fields",
    "output_name_if_declared",
    "processor_modalities",
    "read_output",
    "video_decoding_hint",
]

logger = logging.getLogger(__name__)

ModalityConfig = dict[Any, dict[str, Any]]

# Features keys that are sentrs' and the reference's own bookkeeping, never model inputs.
NON_MODEL_FEATURE_KEYS = frozenset(
    {
        "modality",
        "num_images_per_sample",
        "num_videos_per_sample",
        "prompt_length",
        "query_expansion_positions",
        "task",
        "offset_mapping",
        "overflow_to_sample_mapping",
        "special_tokens_mask",
    }
)
# apply_chat_template keywords that size the tokenization; the reference moves them into the text settings.
CHAT_SIZE_KEYS = frozenset({"padding", "truncation", "max_length", "return_tensors"})
# Processors older than the per-modality keyword convention: they take one flat set of keywords.
_FLAT_KWARGS_MODEL_TYPES = frozenset({"clipseg", "whisper", "sam3"})


def _entry(method: str, output: str | None) -> dict[str, Any]:
    return {"method": method, "method_output_name": output}


def _forward_each(output: str, *modalities: Any) -> ModalityConfig:
    return {modality: _entry("forward", output) for modality in modalities}


_SPEECH_ENCODER = (_forward_each("last_hidden_state", "audio", ("audio", "text")), "token_embeddings", False)

# model_type -> (modality config, module output name, whether each output name must be checked against the method's
# declared return type), per transformer task: the model types whose modalities the general rule gets wrong.
SPECIAL_CASES: dict[str, dict[str, tuple[ModalityConfig, str, bool]]] = {
    "feature-extraction": {
        "blip": (
            {
                "text": _entry("get_text_features", "pooler_output"),
                "image": _entry("get_image_features", "pooler_output"),
                ("image", "text"): _entry("get_multimodal_features", "pooler_output"),
            },
            "sentence_embedding",
            True,
        ),
        "blip-2": (
            {
                "text": _entry("get_text_features", "last_hidden_state"),
                "image": _entry("get_image_features", "last_hidden_state"),
            },
            "token_embeddings",
            True,
        ),
        "sam3": (
            {
                "text": _entry("get_text_features", "last_hidden_state"),
                "image": _entry("get_vision_features", "last_hidden_state"),
            },
            "token_embeddings",
            True,
        ),
        "flava": (
            {
                "text": _entry("get_text_features", "pooler_output"),
                "image": _entry("get_image_features", "pooler_output"),
            },
            "token_embeddings",
            True,
        ),
        "git": (_forward_each("last_hidden_state", "text", ("image", "text")), "token_embeddings", False),
        "visual_bert": (_forward_each("last_hidden_state", "text", ("image", "text")), "token_embeddings", False),
        "kosmos-2": (_forward_each("last_hidden_state", ("image", "text")), "token_embeddings", False),
        "grounding-dino": (_forward_each("last_hidden_state", ("image", "text")), "token_embeddings", False),
        "paligemma": (_forward_each("last_hidden_state", ("image", "text")), "token_embeddings", False),
        "vilt": (_forward_each("last_hidden_state", ("image", "text")), "token_embeddings", False),
        "layoutlmv3": (_forward_each("last_hidden_state", "image", ("image", "text")), "token_embeddings", False),
        "idefics": (
            _forward_each("last_hidden_state", "text", "image", ("image", "text")),
            "token_embeddings",
            False,
        ),
        **dict.fromkeys(
            (
                "hubert",
                "moonshine",
                "sew",
                "sew-d",
                "unispeech-sat",
                "unispeech",
                "wav2vec2",
                "wav2vec2-conformer",
                "wavlm",
                "whisper",
                "voxtral_realtime",
            ),
            _SPEECH_ENCODER,
        ),
    },
    "fill-mask": {"wav2vec2": (_forward_each("logits", "audio"), "token_embeddings", False)},
    "text-generation": {
        "git": (_forward_each("logits", "text", ("image", "text")), "causal_logits", False),
        "whisper": (_forward_each("logits", "text"), "causal_logits", False),
    },
}

_PART_MODALITIES = {
    "tokenizer": "text",
    "image_processor": "image",
    "feature_extractor": "audio",
    "video_processor": "video",
}


def is_processor_mixin(processor: Any) -> bool:
    """Whether ``processor`` is a transformers multi-part processor (``ProcessorMixin``)."""
    from transformers import ProcessorMixin

    return isinstance(processor, ProcessorMixin)


def processor_modalities(processor: Any) -> list[str]:
    """The modalities a processor reads, from its parts (a ``ProcessorMixin``) or its own type."""
    from transformers import PreTrainedTokenizerBase
    from transformers.feature_extraction_utils import FeatureExtractionMixin
    from transformers.image_processing_utils import ImageProcessingMixin
    from transformers.video_processing_utils import BaseVideoProcessor

    if is_processor_mixin(processor):
        getter = getattr(processor, "get_attributes", None)
        parts = getter() if callable(getter) else getattr(processor, "attributes", None) or []
        return [modality for part, modality in _PART_MODALITIES.items() if part in parts]
    for modality, kind in (
        ("text", PreTrainedTokenizerBase),
        ("audio", FeatureExtractionMixin),
        ("video", BaseVideoProcessor),
        ("image", ImageProcessingMixin),
    ):
        if isinstance(processor, kind):
            return [modality]
    logger.warning("Could not tell the modalities of a %s processor; it gets none", type(processor).__name__)
    return []


def method_output_fields(method: Callable[..., Any]) -> list[str] | None:
    """The fields of the ``ModelOutput`` a model method declares it returns, or None when it declares none."""
    from transformers.utils import ModelOutput

    def output_class(annotation: Any) -> type | None:
        if isinstance(annotation, type) and issubclass(annotation, ModelOutput):
            return annotation
        for inner in typing.get_args(annotation):
            found = output_class(inner)
            if found is not None:
                return found
        return None

    try:
        annotation = typing.get_type_hints(method).get("return")
    except Exception:  # unresolvable annotations: nothing declared
        return None
    cls = output_class(annotation)
    if cls is None or not dataclasses.is_dataclass(cls):
        return None
    return [field.name for field in dataclasses.fields(cls)]


def output_name_if_declared(name: str, method: Callable[..., Any]) -> str | None:
    """``name`` when the method's declared output has that field, else None (the method's output is then used as
    it is: older transformers returned bare tensors from ``get_*_features``)."""
    return name if name in (method_output_fields(method) or []) else None


def infer_modality_config(
    model: Any, processor: Any, task: str, default_output: str, default_key: str, message_format: str
) -> tuple[ModalityConfig, str]:
    """The modality config and module output name of a plain transformers folder, as the reference infers them.

    Args:
        model: the loaded transformers model.
        processor: its processor (or tokenizer).
        task: the transformer task.
        default_output: the task's output field (``last_hidden_state``, ``logits``).
        default_key: the task's features key (``token_embeddings``, ...).
        message_format: the chat message layout, stored in a ``message`` entry.
    """
    has_template = getattr(processor, "chat_template", None) is not None
    special = SPECIAL_CASES.get(task, {}).get(getattr(model.config, "model_type", ""))
    if special is not None:
        raw, output_key, check_names = special
        config: ModalityConfig = {}
        for modality, params in raw.items():
            if not check_names:
                config[modality] = dict(params)
                continue
            method = getattr(model, params["method"], None)
            if method is None:
                logger.warning("The model has no method %r for modality %r; skipping it", params["method"], modality)
                continue
            config[modality] = _entry(params["method"], output_name_if_declared(params["method_output_name"], method))
        if has_template and "message" not in config:
            config["message"] = {**config.get("text", _entry("forward", default_output)), "format": message_format}
        return config, output_key

    modalities: list[Any] = processor_modalities(processor)
    if has_template:
        modalities.append("message")
    fields = method_output_fields(model.forward)
    if fields is None or default_output in fields:
        config = {}
        for modality in modalities:
            config[modality] = _entry("forward", default_output)
            if modality == "message":
                config[modality]["format"] = message_format
        return config, default_key
    if task == "feature-extraction":
        # No token states from forward (CLIP-like dual encoders): each modality's get_<modality>_features.
        config = {}
        for modality in modalities:
            method = getattr(model, f"get_{modality}_features", None) if modality != "message" else None
            if method is not None:
                config[modality] = _entry(f"get_{modality}_features", output_name_if_declared("pooler_output", method))
        return config, "sentence_embedding"
    return {modality: _entry("forward", default_output) for modality in modalities}, default_key


def default_processing_kwargs(model_type: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``(common, per-modality)`` processor settings before a module's and a call's ``processing_kwargs``."""
    per_modality: dict[str, dict[str, Any]] = {
        "text": {"padding": True, "truncation": "longest_first"},
        "audio": {"padding": True},
        "image": {},
        "video": {},
    }
    if model_type == "whisper":
        per_modality["audio"]["padding"] = "max_length"  # Whisper reads exactly 30 s windows
    return {"return_tensors": "pt"}, per_modality


def call_processor(
    processor: Any,
    model_type: str,
    modality: Any,
    inputs: dict[str, list[Any]],
    per_modality: dict[str, dict[str, Any]],
    common: dict[str, Any],
) -> dict[str, Any]:
    """Runs the processor on a grouped batch (``{modality: [values]}``) with the per-modality and common settings,
    the way each kind of processor takes them."""
    if is_processor_mixin(processor):
        named = {MODALITY_TO_PROCESSOR_ARG.get(key, key): value for key, value in inputs.items()}
        if modality == "image" and _is_retrieval_processor(processor):
            # ColPali-family processors prepare document pages with process_images, which also writes each page's
            # visual prompt: their __call__ does so too for ColPali and ColQwen2 (the reference calls that), but
            # ColModernVBert's returns pixels only, which its model cannot read.
            return dict(
                processor.process_images(
                    **named,
                    text_kwargs=per_modality["text"],
                    images_kwargs=per_modality["image"],
                    audio_kwargs=per_modality["audio"],
                    videos_kwargs=per_modality["video"],
                    common_kwargs=common,
                )
            )
        if model_type in _FLAT_KWARGS_MODEL_TYPES:
            if modality == ("audio", "text"):
                flat = {**per_modality["text"], **per_modality["audio"]}  # audio's padding wins for Whisper
            else:
                flat = dict(per_modality.get(modality, {})) if isinstance(modality, str) else {}
            return dict(processor(**named, **flat, **common))
        return dict(
            processor(
                **named,
                text_kwargs=per_modality["text"],
                images_kwargs=per_modality["image"],
                audio_kwargs=per_modality["audio"],
                videos_kwargs=per_modality["video"],
                common_kwargs=common,
            )
        )
    from transformers import PreTrainedTokenizerBase
    from transformers.feature_extraction_utils import FeatureExtractionMixin
    from transformers.image_processing_utils import ImageProcessingMixin
    from transformers.video_processing_utils import BaseVideoProcessor

    for kind_modality, kind in (
        ("text", PreTrainedTokenizerBase),
        ("audio", FeatureExtractionMixin),
        ("video", BaseVideoProcessor),
        ("image", ImageProcessingMixin),
    ):
        if not isinstance(processor, kind):
            continue
        call: Callable[..., Any] = processor  # type: ignore[assignment]
        kwargs = {**per_modality[kind_modality], **common}
        rest = dict(inputs)
        if kind_modality in rest:
            primary = rest.pop(kind_modality)
            return dict(call(primary, **rest, **kwargs))
        return dict(call(**rest, **kwargs))
    raise RuntimeError(
        f"Could not determine how to call processor of type {type(processor).__name__} for modality "
        f"'{format_modality(modality)}'"
    )


def media_input_names(processor: Any) -> frozenset[str]:
    """The model inputs a multi-part processor makes beyond its tokenizer's (``pixel_values_videos``,
    ``video_grid_thw``, ...): a batch holding one of them came from the processor, not the text tokenizer."""
    if not is_processor_mixin(processor):
        return frozenset()
    tokenizer = getattr(processor, "tokenizer", None)
    text_names = set(getattr(tokenizer, "model_input_names", None) or [])
    return frozenset(set(getattr(processor, "model_input_names", None) or []) - text_names)


def count_media_per_sample(conversations: list[list[dict[str, Any]]]) -> tuple[list[int], list[int]]:
    """``(images, videos)`` per conversation, counted from the typed content parts of its messages. Processors that
    flatten every image (or video) patch of a batch into one tensor lose which row each came from; these counts keep
    it, as the reference's ``num_images_per_sample`` / ``num_videos_per_sample``."""
    images: list[int] = []
    videos: list[int] = []
    for conversation in conversations:
        parts = [
            part
            for message in conversation
            if isinstance(message.get("content"), list)
            for part in message["content"]
            if isinstance(part, dict)
        ]
        images.append(sum(part.get("type") == "image" for part in parts))
        videos.append(sum(part.get("type") == "video" for part in parts))
    return images, videos


def apply_chat_template(
    processor: Any,
    conversations: list[list[dict[str, Any]]],
    per_modality: dict[str, dict[str, Any]],
    common: dict[str, Any],
    chat_kwargs: dict[str, Any],
) -> dict[str, Any]:
    """Renders and tokenizes chat conversations holding images, audio or video with a multi-part processor's
    ``apply_chat_template``, routing the settings as the reference does: size keywords given for the chat template
    join the text settings, ``load_audio_from_video`` moves from the video settings to the template's keywords, and
    the per-modality settings go in ``processor_kwargs``."""
    chat_kwargs = dict(chat_kwargs)
    text = dict(per_modality["text"])
    for key in CHAT_SIZE_KEYS & chat_kwargs.keys():
        text[key] = chat_kwargs.pop(key)
    video = dict(per_modality["video"])
    chat_kwargs = {"load_audio_from_video": video.pop("load_audio_from_video", False), **chat_kwargs}
    return dict(
        processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_tensors=common.get("return_tensors"),
            processor_kwargs={
                "text_kwargs": text,
                "images_kwargs": per_modality["image"],
                "audio_kwargs": per_modality["audio"],
                "videos_kwargs": video,
                "common_kwargs": common,
            },
            **chat_kwargs,
        )
    )


# Words in the errors transformers raises when a video (or audio) file cannot be decoded for lack of a package.
_DECODER_ERROR_WORDS = ("torchcodec", "read_video", "pyav", "decord")


@contextlib.contextmanager
def video_decoding_hint() -> Iterator[None]:
    """Adds what to install to the ImportError transformers raises when it has nothing to decode a video (or audio)
    file or URL with (torchcodec is not installed), keeping its type; decoded arrays need no decoder."""
    try:
        yield
    except ImportError as exc:
        message = str(exc)
        if not any(word in message.lower() for word in _DECODER_ERROR_WORDS):
            raise
        raise ImportError(
            f"{message.strip()}\n\ntransformers decodes video (and audio) files and URLs with torchcodec: install it "
            "with `pip install torchcodec`, or pass decoded data instead: a video as a (frames, height, width, "
            "channels) array or a list of PIL images, audio as a waveform array."
        ) from exc


def _is_retrieval_processor(processor: Any) -> bool:
    """A ColPali-family processor (ColPali, ColQwen2, ColModernVBert): it prepares queries and document images."""
    return all(callable(getattr(processor, name, None)) for name in ("process_images", "process_queries"))


def read_output(output: Any, path: str | list[str] | tuple[str, ...] | None) -> Any:
    """The part of a model method's output that ``method_output_name`` names (a field, or a path of fields); the
    output itself for None. A 4-D ``(batch, channels, height, width)`` map comes back as ``(batch, h*w, channels)``
    tokens."""
    value = output
    for part in [] if path is None else [path] if isinstance(path, str) else list(path):
        try:
            value = value[part]
        except (KeyError, TypeError, IndexError):
            try:
                value = getattr(value, part)
            except AttributeError:
                raise AttributeError(
                    f"Could not access output key {part!r} via indexing or attribute access on {type(value).__name__}."
                ) from None
    if getattr(value, "ndim", None) == 4:
        value = value.flatten(2).transpose(1, 2)
    return value
