"""Modality inference and the unsupported-modality errors, compared with the reference's functions on the same
inputs (the same return values, the same exception types and messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sentrs.base import modality as ours

ref = pytest.importorskip("sentence_transformers.base.modality")
Image = pytest.importorskip("PIL.Image")


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args, **kwargs)
    except Exception as exc:  # the comparison is the point: type and message
        return type(exc).__name__, str(exc)


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("media")
    paths = {}
    for name in ("photo.png", "PHOTO.JPEG", "clip.mp4", "sound.wav", "notes.txt"):
        path = folder / name
        path.write_bytes(b"\0")
        paths[name] = str(path)
    return paths


def _samples(media_files: dict[str, str]) -> list[Any]:
    image = Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8))
    return [
        "plain text",
        "",
        ("a", "b"),
        ["a", "b"],
        ("a", "b", "c"),
        ["a"],
        [],
        (),
        media_files["photo.png"],
        media_files["PHOTO.JPEG"],
        media_files["clip.mp4"],
        media_files["sound.wav"],
        media_files["notes.txt"],
        "missing_file.png",
        "https://example.com/cat.PNG?size=2",
        "https://example.com/movie.mkv",
        "https://youtu.be/abc",
        "https://example.com/a.mp3",
        "https://example.com/page",
        "https://exa mple.com/cat.png",
        "https://[broken/cat.png",
        "data:image/png;base64,AAAA",
        image,
        np.zeros(10),
        np.zeros((2, 10)),
        np.zeros((4, 5, 3)),
        np.zeros((2, 3, 4, 5)),
        np.zeros((1, 2, 3, 4, 5)),
        np.zeros((1, 1, 1, 1, 1, 1)),
        np.array(3.0),
        torch.zeros(3, 8, 8),
        torch.zeros(16000),
        {"role": "user", "content": "hi"},
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        {"array": np.zeros(5), "sampling_rate": 16000},
        {"array": np.zeros((2, 3, 4, 4)), "video_metadata": None},
        {"array": np.zeros(5)},
        {"text": "a"},
        {"image": image},
        {"text": "a", "image": image},
        {"image": image, "text": "a", "audio": np.zeros(4)},
        {"text": "a", "video_metadata": {}},
        {"text": "a", "sampling_rate": 1},
        {"nonsense": 1, 2: 3},
        {},
        object(),
        1,
        1.5,
        None,
        b"bytes",
        ("a", image),
        [image, "a"],
    ]


def test_infer_modality_matches_the_reference(media_files: dict[str, str]) -> None:
    for sample in _samples(media_files):
        for supported in (None, ["text"], ["text", "image"], ["audio", "video", "message"]):
            assert _outcome(ours.infer_modality, sample, supported) == _outcome(
                ref.infer_modality, sample, supported
            ), (
                sample,
                supported,
            )


def test_url_and_path_checks_match_the_reference(media_files: dict[str, str]) -> None:
    strings = [s for s in _samples(media_files) if isinstance(s, str)]
    for text in strings:
        for name in ("is_image_url_or_path", "is_video_url_or_path", "is_audio_url_or_path"):
            assert getattr(ours, name)(text) == getattr(ref, name)(text), (name, text)
        if not ours.may_name_media(text):
            assert ours.infer_modality(text) == "text"


def test_batch_modality_and_format_match_the_reference(media_files: dict[str, str]) -> None:
    image = Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8))
    batches: list[list[Any]] = [
        [],
        ["a", "b"],
        [image, image],
        ["a", image],
        [("a", "b"), "c"],
        [{"text": "a", "image": image}, {"image": image, "text": "b"}],
        [{"role": "user", "content": "x"}, "a"],
        [object()],
        [media_files["photo.png"], "a"],
    ]
    for batch in batches:
        for supported in (None, ["text"], ["text", "image"]):
            assert _outcome(ours.infer_batch_modality, batch, supported) == _outcome(
                ref.infer_batch_modality, batch, supported
            ), (batch, supported)
    for modality in ("text", ("image", "text"), ("audio", "text", "video")):
        assert ours.format_modality(modality) == ref.format_modality(modality)


def test_unsupported_modality_errors_match_the_reference() -> None:
    image = Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8))
    message = {"role": "user", "content": "x"}
    cases: list[tuple[list[Any], Any, list[Any]]] = [
        ([image], "image", ["text"]),
        (["a", image], "message", ["text"]),
        (["a", image], "message", ["text", "image"]),
        ([message], "message", ["text", "image"]),
        ([message, "a"], "message", ["text"]),
        ([("a", image)], "message", ["text"]),
        ([{"text": "a", "image": image}], ("image", "text"), ["text", "image"]),
        ([{"text": "a", "audio": np.zeros(3)}], ("audio", "text"), ["text", "image"]),
        ([np.zeros(3)], "audio", [("image", "text"), "text"]),
        ([{"text": "a", "image": image}, np.zeros(3)], "message", ["text", "image"]),
    ]
    for inputs, modality, supported in cases:
        for source in ("SentenceTransformer model", "Transformer module"):
            mine = _outcome(ours.raise_unsupported_modality_error, inputs, modality, supported, source)
            theirs = _outcome(ref.raise_unsupported_modality_error, inputs, modality, supported, source)
            assert mine == theirs
            assert mine[0] == "ValueError"


def test_parse_inputs_groups_like_the_reference(media_files: dict[str, str]) -> None:
    image = Image.fromarray(np.zeros((4, 5, 3), dtype=np.uint8))
    wave = np.zeros(8, dtype=np.float32)
    frames = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    batches: list[list[Any]] = [
        ["a", ("b", "c")],
        [image, {"image": image}],
        [{"array": wave, "sampling_rate": 16000}, wave],
        [{"array": wave, "sampling_rate": 16000}, {"array": wave, "sampling_rate": 8000}],
        [{"text": "a", "image": image}, {"image": image, "text": "b"}],
        [{"text": "a", "image": image}, {"text": "b", "image": image}],
        ["a", image],
        [(image, "a"), "b"],
        [{"array": frames, "video_metadata": {"fps": 1}}, frames],
        [{"array": frames, "video_metadata": {"fps": 1}}, media_files["clip.mp4"]],
        [[image, image]],
        [{"role": "user", "content": "x"}],
    ]
    for message_format in ("structured", "flat"):
        for supported in (None, ["text", "image", "audio", "video"]):
            mine_formatter = ours.InputFormatter("bert", message_format, supported_modalities=supported)
            ref_formatter = ref.InputFormatter("bert", message_format, supported_modalities=supported)
            for batch in batches:
                mine = _outcome(mine_formatter.parse_inputs, batch)
                theirs = _outcome(ref_formatter.parse_inputs, batch)
                assert _plain(mine) == _plain(theirs), (batch, message_format, supported)


def _plain(value: Any) -> Any:
    """A comparable form: arrays as (shape, list), PIL images by size, defaultdicts as dicts."""
    if isinstance(value, np.ndarray):
        return ("array", value.shape, value.tolist())
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value) if not hasattr(value, "_fields") else value
    if type(value).__module__.startswith("PIL."):
        return ("image", value.size)
    return value


def test_message_helpers_match_the_reference() -> None:
    for message_format in ("structured", "flat"):
        mine = ours.InputFormatter("bert", message_format)
        theirs = ref.InputFormatter("bert", message_format)
        conversations = [
            [{"role": "user", "content": "x"}],
            [{"role": "user", "content": [{"type": "text", "text": "y"}]}],
        ]
        assert mine.prepend_prompt_to_messages(conversations, "P: ") == theirs.prepend_prompt_to_messages(
            conversations, "P: "
        )
        assert mine.prepend_prompt_to_texts(["a", ("b", "c")], "P: ") == theirs.prepend_prompt_to_texts(
            ["a", ("b", "c")], "P: "
        )
        assert mine.normalize_messages(conversations[1] + conversations[0]) == theirs.normalize_messages(
            conversations[1] + conversations[0]
        )
        assert mine.is_text_only_messages(conversations) == theirs.is_text_only_messages(conversations)
        assert mine.batch_to_message("text", {"text": ["a", ("b", "c")]}) == theirs.batch_to_message(
            "text", {"text": ["a", ("b", "c")]}
        )


def test_nothing_heavy_is_imported(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from sentrs.base import modality, modality_types\n"
        "assert modality.infer_modality('x') == 'text'\n"
        "assert not {'torch', 'PIL', 'transformers'} & set(sys.modules), sorted(sys.modules)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
