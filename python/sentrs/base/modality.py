"""What modality an input is, how a batch of inputs is grouped for a processor, and the errors for unsupported ones.

The rules follow the reference (sentence-transformers 6.2), from the input's type and shape alone:

- a str is text, unless it names an image, video or audio file (an existing local file, or an ``http(s)`` URL, with a
  media extension; ``data:image/`` URIs; YouTube links) and the model takes that modality;
- a (text, text) pair (a 2-item list or tuple of str) is text;
- a PIL image is an image; a numpy array or torch tensor is audio (1-D, 2-D), an image (3-D) or a video (4-D, 5-D);
- ``{"array": ..., "sampling_rate": ...}`` is audio, ``{"array": ..., "video_metadata": ...}`` a video;
- a dict with ``role`` and ``content`` (or a list of such dicts) is a chat ``message``;
- a dict keyed by modality names is those modalities: ``{"image": img}`` is an image, ``{"text": t, "image": img}``
  the sorted tuple ``("image", "text")``.

Nothing here imports torch, PIL or torchcodec: an object of one of their types can only exist once its library was
imported, so the checks look the types up in ``sys.modules``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Literal, NoReturn
from urllib.parse import urlparse

import numpy as np

from sentrs._lazy import is_tensor
from sentrs.base.modality_types import MULTIMODAL_DICT_KEYS, MessageFormat, Modality

__all__ = [
    "InputFormatter",
    "folder_has_processor",
    "format_modality",
    "infer_batch_modality",
    "infer_modality",
    "is_audio_url_or_path",
    "is_image_url_or_path",
    "is_message_dict",
    "is_non_text_pair",
    "is_video_url_or_path",
    "raise_unsupported_modality_error",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".wmv", ".flv", ".mkv")
AUDIO_EXTENSIONS = (".mp3", ".wav", ".ogg", ".flac", ".aac")
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS + AUDIO_EXTENSIONS
_VIDEO_HOSTS = frozenset({"www.youtube.com", "youtube.com", "youtu.be", "m.youtube.com"})
_URL_PREFIXES = ("http://", "https://")

# The message layout of model types whose chat template the heuristic in InputFormatter misreads.
PINNED_MESSAGE_FORMATS: dict[str, Literal["structured", "flat"]] = {
    "apertus": "flat",
    "deepseek_v3": "flat",
    "gpt_oss": "flat",
    "seed_oss": "flat",
}
# Template text that indexes typed content parts, so the template wants ``[{"type": "text", "text": ...}]``.
STRUCTURED_TEMPLATE_HINTS = ("content[0]", ".type", "'type'", '"type"', "item.type", "message.content[")
PAIR_ROLES = ("query", "document")
# Files a transformers processor beyond the tokenizer saves (processor_config.json also holds image processors in v5).
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "video_preprocessor_config.json")


def folder_has_processor(folder: str) -> bool:
    """Whether a model folder has a processor beyond its tokenizer: the model reads images, audio or video."""
    return any(os.path.isfile(os.path.join(folder, name)) for name in PROCESSOR_FILES)


# ------------------------------------------------------------------ types that live in optional libraries
def pil_image_type() -> type | None:
    """``PIL.Image.Image`` when PIL was imported (no PIL image can exist before), else None."""
    module = sys.modules.get("PIL.Image")
    image_type = getattr(module, "Image", None) if module is not None else None
    return image_type if isinstance(image_type, type) else None


def _decoder_type(name: str) -> Any:
    module = sys.modules.get("torchcodec.decoders")
    decoder = getattr(module, name, None) if module is not None else None
    return decoder if isinstance(decoder, type) else None


def is_pil_image(value: Any) -> bool:
    image_type = pil_image_type()
    return image_type is not None and isinstance(value, image_type)


def _is_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) or is_tensor(value)


# ------------------------------------------------------------------ strings that name media
def _looks_like_url(text: str) -> bool:
    return text.startswith(_URL_PREFIXES) and " " not in text


def _names_media(text: str, extensions: tuple[str, ...]) -> bool:
    """An http(s) URL whose path ends with one of ``extensions``, or an existing local file that does."""
    if _looks_like_url(text):
        try:
            path = urlparse(text).path
        except ValueError:  # a malformed URL such as "https://[x"
            return False
        return path.lower().endswith(extensions)
    return text.lower().endswith(extensions) and os.path.isfile(text)


def is_image_url_or_path(text: str) -> bool:
    """Whether ``text`` is an image URL, an existing image file, or a ``data:image/`` URI."""
    return text.startswith("data:image/") or _names_media(text, IMAGE_EXTENSIONS)


def is_video_url_or_path(text: str) -> bool:
    """Whether ``text`` is a video URL (a video file, or a YouTube link) or an existing video file."""
    if _names_media(text, VIDEO_EXTENSIONS):
        return True
    if not _looks_like_url(text):
        return False
    try:
        return urlparse(text).netloc in _VIDEO_HOSTS
    except ValueError:
        return False


def is_audio_url_or_path(text: str) -> bool:
    """Whether ``text`` is an audio URL or an existing audio file."""
    return _names_media(text, AUDIO_EXTENSIONS)


def may_name_media(text: str) -> bool:
    """A cheap pre-check: False guarantees ``text`` is plain text whatever the model supports (no file system or
    URL parsing), so a batch of ordinary sentences is recognised without inspecting each one further."""
    if text.startswith(_URL_PREFIXES) or text.startswith("data:image/"):
        return True
    return text[-6:].lower().endswith(MEDIA_EXTENSIONS)


def is_message_dict(value: Any) -> bool:
    """A chat message: a dict with ``"role"`` and ``"content"`` keys."""
    return isinstance(value, dict) and "role" in value and "content" in value


# ------------------------------------------------------------------ inference
def _is_str_pair(sample: Any) -> bool:
    return (
        isinstance(sample, Sequence)
        and not isinstance(sample, (str, bytes, bytearray))
        and len(sample) == 2
        and isinstance(sample[0], str)
        and isinstance(sample[1], str)
    )


def _media_string_modality(text: str, supported_modalities: Sequence[Any] | None) -> Modality:
    for modality, check in (
        ("image", is_image_url_or_path),
        ("video", is_video_url_or_path),
        ("audio", is_audio_url_or_path),
    ):
        if check(text):
            if supported_modalities is not None and modality not in supported_modalities:
                return "text"  # a text-only model reads it as the text it is
            return modality  # type: ignore[return-value]
    return "text"


def _dict_modality(sample: dict[Any, Any]) -> Modality:
    if "array" in sample:
        if "sampling_rate" in sample:
            return "audio"
        if "video_metadata" in sample:
            return "video"
        raise ValueError(
            "Dict input with 'array' key must also include 'sampling_rate' (for audio) or 'video_metadata' (for "
            f"video). Got keys: {sorted(sample.keys(), key=str)}"
        )
    if not sample:
        raise ValueError("Empty dict input is not a valid input sample.")
    unknown = set(sample) - MULTIMODAL_DICT_KEYS
    if unknown:
        hints = []
        if "video_metadata" in unknown:
            hints.append(
                "To attach per-sample video metadata, pass the video itself as a dict, and keep processor options "
                'in processing_kwargs, e.g.:\n{"video": {"array": frames, "video_metadata": {"fps": 15, '
                '"total_num_frames": 3}}}\nprocessing_kwargs={"video": {"do_sample_frames": False}}'
            )
        if "sampling_rate" in unknown:
            hints.append(
                'To attach the sampling rate, pass the audio itself as a dict, e.g.:\n{"audio": {"array": '
                'waveform, "sampling_rate": 16000}}'
            )
        hint = (" " + "\n\n".join(hints)) if hints else ""
        raise ValueError(
            f"Multimodal dict input contains unrecognized modality keys: {sorted(unknown, key=str)}. "
            f"Expected keys from: {sorted(MULTIMODAL_DICT_KEYS)}.{hint}"
        )
    if len(sample) == 1:
        return next(iter(sample))
    return tuple(sorted(sample))


def infer_modality(sample: Any, supported_modalities: Sequence[Any] | None = None) -> Modality:
    """The modality of one input, from its type and shape (the module docstring has the rules).

    Args:
        sample: one input.
        supported_modalities: the model's modalities; when given, a str naming a media file of a modality the model
            does not take is text.

    Returns:
        ``"text"``, ``"image"``, ``"audio"``, ``"video"`` or ``"message"``, or a sorted tuple of modality names for a
        dict input with several.

    Raises:
        ValueError: for an input of no known modality (naming its type), or a malformed dict input.
    """
    if is_pil_image(sample):
        return "image"
    audio_decoder, video_decoder = _decoder_type("AudioDecoder"), _decoder_type("VideoDecoder")
    if audio_decoder is not None and isinstance(sample, audio_decoder):
        return "audio"
    if video_decoder is not None and isinstance(sample, video_decoder):
        return "video"
    if isinstance(sample, str):
        return _media_string_modality(sample, supported_modalities)
    if _is_str_pair(sample):
        return "text"
    if is_message_dict(sample):
        return "message"
    if isinstance(sample, list) and sample and is_message_dict(sample[0]):
        return "message"
    if isinstance(sample, dict):
        return _dict_modality(sample)
    if _is_array(sample):
        ndim = sample.ndim
        if ndim in (1, 2):
            return "audio"
        if ndim == 3:
            return "image"
        if ndim in (4, 5):
            return "video"
        raise ValueError(
            f"Unsupported tensor dimensionality: {ndim}D. Expected 1-2D for audio, 3D for image, or 4-5D for video."
        )
    raise ValueError(
        f"Unsupported input type: {type(sample).__name__}. "
        "Expected one of: str, dict, PIL.Image.Image, np.ndarray, torch.Tensor"
    )


def infer_batch_modality(samples: Sequence[Any], supported_modalities: Sequence[Any] | None = None) -> Modality:
    """The modality of a batch: the one its inputs share, ``"message"`` when they differ, ``"text"`` when empty."""
    if not samples:
        return "text"
    found = {infer_modality(sample, supported_modalities=supported_modalities) for sample in samples}
    return found.pop() if len(found) == 1 else "message"


def format_modality(modality: Modality | str | tuple[str, ...]) -> str:
    """A modality for messages and config keys: ``("image", "text")`` is ``"image+text"``."""
    return "+".join(modality) if isinstance(modality, tuple) else modality


def parse_modality_key(key: str) -> Modality | None:
    """The modality a ``modality_config`` key names (``"image+text"`` -> ``("image", "text")``), or None when a
    part is not a modality."""
    valid = (*MULTIMODAL_DICT_KEYS, "message")
    if "+" in key:
        parts = tuple(key.split("+"))
        return parts if all(part in valid for part in parts) else None  # type: ignore[return-value]
    return key if key in valid else None  # type: ignore[return-value]


def raise_unsupported_modality_error(
    inputs: Sequence[Any], modality: Modality, supported_modalities: Sequence[Any], source: str
) -> NoReturn:
    """Raises the ``ValueError`` that explains why a batch of ``modality`` cannot be encoded by ``source``.

    ``source`` names what refuses the batch (``"SentenceTransformer model"``, ``"Transformer module"``). A batch
    inferred as ``"message"`` is looked at input by input, to tell chat inputs apart from a batch that mixes
    modalities.
    """
    supported = ", ".join(format_modality(m) for m in supported_modalities)
    if modality == "message":
        try:
            per_input: set[Any] = {infer_modality(x, supported_modalities=supported_modalities) for x in inputs}
        except (ValueError, TypeError):
            per_input = set()
        if per_input == {"message"}:
            raise ValueError(
                f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with "
                f"'role' and 'content'). Supported modalities: {supported}."
            )
        if "message" in per_input:
            raise ValueError(
                f"This {source} does not support chat-style 'message' inputs (dicts or lists of dicts with 'role' "
                f"and 'content'), which this batch mixes with other modalities. Supported modalities: {supported}."
            )
        if per_input:
            present = ", ".join(format_modality(m) for m in sorted(per_input, key=format_modality))
            parts = {part for m in per_input for part in (m if isinstance(m, tuple) else (m,))}
            missing = sorted(part for part in parts if part not in supported_modalities)
            if missing:
                raise ValueError(
                    f"This batch mixes multiple modalities ({present}), but this {source} does not support "
                    f"{', '.join(missing)}. Supported modalities: {supported}."
                )
            raise ValueError(
                f"This batch mixes multiple modalities ({present}), which this {source} cannot encode in a single "
                "batch. Encode each modality separately (one call per modality)."
            )
    if isinstance(modality, tuple) and all(part in supported_modalities for part in modality):
        raise ValueError(
            f"This {source} supports {' and '.join(modality)} individually, but cannot combine them in a single "
            "input. Encode each modality separately (one call per modality)."
        )
    raise ValueError(
        f"Modality '{format_modality(modality)}' is not supported by this {source}. Supported modalities: {supported}."
    )


def describe_input_types(inputs: Sequence[Any], limit: int = 3) -> str:
    """The distinct types of a batch for an error message: ``"PIL.Image.Image, str"``."""
    names: list[str] = []
    for item in inputs:
        cls = type(item)
        name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
        if name not in names:
            names.append(name)
            if len(names) > limit:
                return ", ".join(names[:limit]) + ", ..."
    return ", ".join(names)


# ------------------------------------------------------------------ grouping a batch for a processor
def is_non_text_pair(sample: Any) -> bool:
    """A 2-item list/tuple that is not a (text, text) pair nor a conversation: an (image, text) pair, say."""
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        return False
    if isinstance(sample[0], str) and isinstance(sample[1], str):
        return False
    return not any(is_message_dict(x) or (isinstance(x, list) and x and isinstance(x[0], dict)) for x in sample)


def _as_list(value: Any) -> list[Any] | tuple[Any, ...]:
    return value if isinstance(value, (list, tuple)) else [value]


def _note_sampling_rate(rate: int, extra: dict[str, dict[str, Any]]) -> None:
    seen = extra["audio"].get("sampling_rate")
    if seen is not None and seen != rate:
        raise ValueError(
            f"This batch mixes audio with different sampling rates ({seen} and {rate}), but the processor accepts "
            "a single sampling rate per batch. Resample the audio to a common rate, or encode each sampling rate in "
            "a separate call."
        )
    extra["audio"]["sampling_rate"] = rate


def _unwrap_audio(value: Any, extra: dict[str, dict[str, Any]]) -> Any:
    """The raw waveform(s) of an audio input, recording its sampling rate in ``extra["audio"]``."""
    if isinstance(value, (list, tuple)):
        return [_unwrap_audio(item, extra) for item in value]
    if isinstance(value, dict):
        if "sampling_rate" in value:
            _note_sampling_rate(value["sampling_rate"], extra)
        return value["array"]
    decoder = _decoder_type("AudioDecoder")
    if decoder is not None and isinstance(value, decoder):
        samples = value.get_all_samples()
        _note_sampling_rate(samples.sample_rate, extra)
        return samples.data.mean(dim=0).numpy()  # channels averaged to mono
    return value


def _is_frame_list(value: Any) -> bool:
    if not isinstance(value, (list, tuple)) or not value:
        return False
    try:
        return all(infer_modality(frame) == "image" for frame in value)
    except ValueError:
        return False


def _unwrap_video(value: Any, extra: dict[str, dict[str, Any]]) -> Any:
    """The raw frames of a video input; appends one metadata entry (or None) per video to
    ``extra["video"]["video_metadata"]`` (resolved for the whole batch by :func:`_settle_video_metadata`)."""
    if _is_frame_list(value):
        value = {"array": value, "video_metadata": None}
    if isinstance(value, (list, tuple)):
        return [video for item in value for video in _as_list(_unwrap_video(item, extra))]
    metadata = extra["video"].setdefault("video_metadata", [])
    if isinstance(value, dict):
        metadata.append(value.get("video_metadata"))
        frames = value["array"]
        return [list(frames)] if isinstance(frames, (list, tuple)) else frames
    decoder = _decoder_type("VideoDecoder")
    if decoder is not None and isinstance(value, decoder):
        batch = value.get_frames_in_range(0, len(value))
        metadata.append(
            {
                "fps": value.metadata.average_fps,
                "total_num_frames": value.metadata.num_frames,
                "duration": value.metadata.duration_seconds,
                "frames_indices": list(range(batch.data.shape[0])),
            }
        )
        return batch.data
    metadata.append(None)
    return value


def _settle_video_metadata(typed: list[tuple[Any, Any]], extra: dict[str, dict[str, Any]]) -> None:
    """Drops the per-video metadata when no video has any; otherwise fills the gaps from in-memory frame counts."""
    video = extra.get("video")
    if not video or "video_metadata" not in video:
        return
    metadata = video["video_metadata"]
    if all(entry is None for entry in metadata):
        del video["video_metadata"]
        if not video:
            del extra["video"]
        return
    videos = [
        clip
        for modality, value in typed
        if modality == "video" or (isinstance(modality, tuple) and "video" in modality)
        for clip in _as_list(value["video"] if isinstance(modality, tuple) else value)
    ]
    for i, (entry, clip) in enumerate(zip(metadata, videos, strict=True)):
        if entry is not None:
            continue
        if isinstance(clip, str) or not hasattr(clip, "__len__"):
            raise ValueError(
                "This batch mixes videos that carry per-sample 'video_metadata' with videos that do not. Default "
                "metadata can only be inferred for in-memory videos (frame arrays or lists), so either pass "
                "'video_metadata' for every video in the batch or for none of them."
            )
        n = len(clip)
        metadata[i] = {"total_num_frames": n, "fps": None, "duration": None, "frames_indices": list(range(n))}


class InputFormatter:
    """Groups a batch by modality for a transformers processor, and builds chat messages from inputs.

    Args:
        model_type: ``config.model_type`` of the model (some types pin their message format).
        message_format: ``"structured"`` (content as ``[{"type": "text", "text": ...}]``), ``"flat"`` (content as
            the value itself) or ``"auto"`` (read from the processor's chat template; structured without one).
        processor: the processor or tokenizer whose chat template decides ``"auto"``.
        supported_modalities: the model's modalities; strings naming media of other modalities stay text.
    """

    def __init__(
        self,
        model_type: str,
        message_format: MessageFormat = "auto",
        processor: Any = None,
        supported_modalities: list[Any] | None = None,
    ) -> None:
        self.model_type = model_type
        self.processor = processor
        self.supported_modalities = supported_modalities
        if message_format == "auto":
            self.message_format: Literal["structured", "flat"] = (
                self._infer_format(processor) if processor is not None else "structured"
            )
        else:
            self.message_format = message_format

    def _infer_format(self, processor: Any) -> Literal["structured", "flat"]:
        if self.model_type in PINNED_MESSAGE_FORMATS:
            return PINNED_MESSAGE_FORMATS[self.model_type]
        template = getattr(processor, "chat_template", None)
        if not isinstance(template, str) or not template:
            return "structured"
        return "structured" if any(hint in template for hint in STRUCTURED_TEMPLATE_HINTS) else "flat"

    def parse_inputs(self, inputs: Sequence[Any]) -> tuple[Modality, dict[str, Any], defaultdict[str, dict[str, Any]]]:
        """Groups a batch for the processor: ``(modality, {modality: [values]}, {modality: extra processor kwargs})``.

        A batch of one modality comes back under that key (a multimodal dict batch under each of its keys); a batch
        that mixes modalities, or holds a non-text pair, becomes chat messages under ``"message"``. Audio and video
        dicts are unwrapped to their arrays, their ``sampling_rate`` / ``video_metadata`` going to the extra kwargs.
        """
        extra: defaultdict[str, dict[str, Any]] = defaultdict(dict)
        if not inputs:
            return "text", {"text": []}, extra
        typed: list[tuple[Any, Any]] = []
        has_pairs = False
        for item in inputs:
            if is_non_text_pair(item):
                typed.append(("pair", item))
                has_pairs = True
                continue
            modality = infer_modality(item, supported_modalities=self.supported_modalities)
            if isinstance(item, dict) and modality in MULTIMODAL_DICT_KEYS and item.keys() == {modality}:
                item = item[modality]  # {"image": img} is img
            if modality == "audio":
                value = _unwrap_audio(item, extra)
            elif modality == "video":
                value = _unwrap_video(item, extra)
            elif isinstance(modality, tuple):
                value = dict(item)
                if "audio" in value:
                    value["audio"] = _unwrap_audio(value["audio"], extra)
                if "video" in value:
                    value["video"] = _unwrap_video(value["video"], extra)
            elif modality == "message" and isinstance(item, dict):
                value = [item]
            else:
                value = item
            typed.append((modality, value))
        _settle_video_metadata(typed, extra)

        if has_pairs:
            messages = []
            for modality, value in typed:
                if modality == "pair" or (modality == "text" and self.is_text_pair(value)):
                    messages.append(self.pair_to_messages(value))
                elif modality == "message":
                    messages.append(value)
                else:
                    messages.append(self.to_message(value if isinstance(modality, tuple) else {modality: value}))
            return "message", {"message": messages}, extra

        modalities = {modality for modality, _ in typed}
        values = [value for _, value in typed]
        if len(modalities) > 1:
            logger.debug("Mixed modalities %s in one batch: converting them to messages", modalities)
            messages = [self.to_message(v if isinstance(m, tuple) else {m: v}) for m, v in typed]
            return "message", {"message": messages}, extra
        modality = modalities.pop()
        if isinstance(modality, str):
            return modality, {modality: values}, extra
        keys = tuple(values[0])
        if (self.supported_modalities is None or "message" in self.supported_modalities) and any(
            tuple(v) != keys for v in values[1:]
        ):
            return "message", {"message": [self.to_message(v) for v in values]}, extra
        return modality, {key: [v[key] for v in values] for key in keys}, extra

    def pair_to_messages(self, pair: Sequence[Any]) -> list[dict[str, Any]]:
        """A ``query`` and a ``document`` message for the two sides of a pair."""
        messages: list[dict[str, Any]] = []
        for role, item in zip(PAIR_ROLES, pair, strict=True):
            if self.message_format == "flat":
                messages.append({"role": role, "content": item})
                continue
            modality = infer_modality(item)
            keyed = isinstance(item, dict) and (isinstance(modality, tuple) or item.keys() == {modality})
            messages.extend(self.to_message(item if keyed else {modality: item}, role=role))
        return messages

    def to_message(self, typed_input: dict[Any, Any], role: str = "user") -> list[dict[str, Any]]:
        """One message (in a list) holding every value of ``{modality: value(s)}``."""
        if self.message_format == "flat":
            if len(typed_input) == 1:
                return [{"role": role, "content": next(iter(typed_input.values()))}]
            logger.warning(
                "Flat message format requested but multiple modalities detected. Falling back to structured format."
            )
        content: list[dict[str, Any]] = []
        for modality, value in typed_input.items():
            if modality == "video":
                items = [value] if _is_frame_list(value) else list(_as_list(value))
                items = [list(item) if isinstance(item, tuple) else item for item in items]
            else:
                items = list(_as_list(value)) if modality in MULTIMODAL_DICT_KEYS else [value]
            content.extend({"type": modality, modality: item} for item in items)
        return [{"role": role, "content": content}]

    def batch_to_message(self, modality: Modality, processor_inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """A grouped batch (:meth:`parse_inputs`) as chat messages: ``("message", {"message": [...]})``."""
        if not processor_inputs:
            return "message", {"message": []}
        names = (modality,) if isinstance(modality, str) else modality
        size = len(next(iter(processor_inputs.values())))
        messages = []
        for i in range(size):
            typed = {key: processor_inputs[key][i] for key in processor_inputs if key in names}
            if len(typed) == 1:
                key, value = next(iter(typed.items()))
                if key == "text" and self.is_text_pair(value):
                    messages.append(self.pair_to_messages(value))
                    continue
            messages.append(self.to_message(typed))
        return "message", {"message": messages}

    @staticmethod
    def is_text_pair(value: Any) -> bool:
        """Whether one input is a (query, document) pair of str."""
        return isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, str) for v in value)

    @staticmethod
    def is_text_only_messages(messages_batch: list[list[dict[str, Any]]]) -> bool:
        """Whether every message of every conversation holds text only (flat or structured)."""
        for messages in messages_batch:
            for message in messages:
                content = message.get("content")
                if isinstance(content, str):
                    continue
                if not isinstance(content, list) or any(part.get("type", "text") != "text" for part in content):
                    return False
        return True

    def normalize_messages(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages in this formatter's format (flat <-> structured where possible); invalid ones are skipped."""
        out = []
        for message in messages:
            if "role" not in message or "content" not in message:
                logger.warning("Invalid message format: %s. Skipping.", message)
                continue
            content = message["content"]
            structured = isinstance(content, list) and bool(content) and isinstance(content[0], dict)
            if self.message_format == "flat" and structured:
                if len(content) == 1 and "text" in content[0]:
                    out.append({**message, "content": content[0]["text"]})
                else:
                    logger.warning(
                        "Cannot convert structured message to flat format: contains %d content items. Keeping "
                        "structured.",
                        len(content),
                    )
                    out.append(message)
            elif self.message_format == "structured" and not structured and isinstance(content, str):
                out.append({**message, "content": [{"type": "text", "text": content}]})
            else:
                out.append(message)
        return out

    def prepend_prompt_to_messages(self, messages: list[list[dict[str, Any]]], prompt: str) -> list[list[Any]]:
        """Each conversation with a ``system`` message holding ``prompt`` in front."""
        content: Any = prompt if self.message_format == "flat" else [{"type": "text", "text": prompt}]
        return [[{"role": "system", "content": content}, *conversation] for conversation in messages]

    def prepend_prompt_to_texts(self, texts: list[Any], prompt: str) -> list[Any]:
        """``prompt`` before each text (before the first side of a pair)."""
        return [prompt + t if isinstance(t, str) else [prompt + t[0], *t[1:]] for t in texts]
