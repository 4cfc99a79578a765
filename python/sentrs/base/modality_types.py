"""The input types of every modality, and the names that tie modalities to processor arguments.

One input of a model is a text, an image, an audio clip, a video, a chat conversation, or a dict combining several
of those under their modality names (``{"text": ..., "image": ...}``). The aliases here describe each; they are for
annotations and documentation, and nothing here imports torch, PIL or torchcodec at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
from typing_extensions import TypedDict

if TYPE_CHECKING:
    import torch
    from PIL.Image import Image as PILImage
    from torchcodec.decoders import AudioDecoder, VideoDecoder

__all__ = [
    "MODALITY_TO_PROCESSOR_ARG",
    "MULTIMODAL_DICT_KEYS",
    "AudioDict",
    "AudioInput",
    "ImageInput",
    "MessageDict",
    "MessageFormat",
    "MessageInput",
    "Modality",
    "MultimodalInput",
    "PairInput",
    "PairableInput",
    "ProcessorArgName",
    "SingleInput",
    "TextInput",
    "VideoDict",
    "VideoInput",
]


class AudioDict(TypedDict):
    """A waveform with its sampling rate: ``{"array": (samples,) or (channels, samples), "sampling_rate": 16000}``."""

    array: np.ndarray | torch.Tensor
    sampling_rate: int


class VideoDict(TypedDict):
    """Video frames with optional metadata (``fps``, ``total_num_frames``, ...) for the video processor."""

    array: np.ndarray | torch.Tensor | list[ImageInput] | tuple[ImageInput, ...]
    video_metadata: dict[str, Any] | None


class MessageDict(TypedDict):
    """One chat message: a role and its content (a str, or a list of typed parts)."""

    role: str
    content: str | list[dict[str, Any]]


TextInput: TypeAlias = str
ImageInput: TypeAlias = "str | PILImage | np.ndarray | torch.Tensor"
"""A PIL image, an image file path / URL / ``data:image/`` URI, or a ``(H, W, C)`` / ``(C, H, W)`` array."""
AudioInput: TypeAlias = "str | np.ndarray | torch.Tensor | AudioDict | AudioDecoder"
"""A 1-D (mono) or 2-D (channels, samples) waveform, an :class:`AudioDict`, or an audio file path / URL."""
VideoInput: TypeAlias = (
    "str | np.ndarray | torch.Tensor | VideoDict | VideoDecoder | list[ImageInput] | tuple[ImageInput, ...]"
)
"""A 4-D ``(frames, C, H, W)`` (or 5-D) array, a list of frames, a :class:`VideoDict`, or a video path / URL."""
MessageInput: TypeAlias = "MessageDict | list[MessageDict]"


class MultimodalInput(TypedDict, total=False):
    """One input combining modalities; each key may also hold a list or tuple of items of its modality."""

    text: TextInput | list[TextInput] | tuple[TextInput, ...]
    image: ImageInput | list[ImageInput] | tuple[ImageInput, ...]
    audio: AudioInput | list[AudioInput] | tuple[AudioInput, ...]
    video: VideoInput | list[VideoInput] | tuple[VideoInput, ...]


SingleInput: TypeAlias = "TextInput | ImageInput | AudioInput | VideoInput | MessageInput | MultimodalInput"
PairableInput: TypeAlias = "TextInput | ImageInput | AudioInput | VideoInput | MultimodalInput"
PairInput: TypeAlias = "tuple[PairableInput, PairableInput] | list[PairableInput]"
"""A cross-encoder input: two inputs scored together."""

Modality: TypeAlias = (
    'Literal["text", "image", "audio", "video", "message"] | tuple[Literal["text", "image", "audio", "video"], ...]'
)
"""A modality name, or a sorted tuple of names for a dict input that combines several (``("image", "text")``)."""

ProcessorArgName: TypeAlias = Literal["text", "images", "audio", "videos", "message"]
MessageFormat: TypeAlias = Literal["auto", "structured", "flat"]

MODALITY_TO_PROCESSOR_ARG: dict[str, ProcessorArgName] = {
    "text": "text",
    "image": "images",
    "audio": "audio",
    "video": "videos",
    "message": "message",
}
"""The keyword a transformers processor takes each modality's inputs under."""

MULTIMODAL_DICT_KEYS: frozenset[str] = frozenset({"text", "image", "audio", "video"})
"""The keys a multimodal dict input may have."""
