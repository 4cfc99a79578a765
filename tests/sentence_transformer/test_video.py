"""Video inputs against the reference, on two tiny random video models built here and saved as plain transformers
folders:

- a VideoMAE (video only: a ``VideoMAEVideoProcessor`` and ``forward``'s token states, mean-pooled), and
- a Qwen2-VL (text, image and video towers, a ``Qwen2VLProcessor`` with a word-level tokenizer made here and a chat
  template): every input, text or not, is rendered through the chat template, so a video becomes a ``user`` message
  with a video part, expanded by the processor into its ``<|video_pad|>`` tokens.

Videos are decoded frames: ``(frames, height, width, channels)`` uint8 arrays (or torch tensors, or lists of PIL
images); no video decoding library is installed, so a video file path must fail with an ImportError saying what to
install, as in the reference.

Tolerance: the same weights and the same processor outputs run the same torch ops, so embeddings agree to float32
round-off (atol 1e-5; batches sorted or padded differently may change the last bits of a matmul).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (the `fixtures` extra; transformers' video processors need it)
from PIL import Image

import sentrs

ATOL = 1e-5
QWEN_WORDS = "the a cat dog sat ran in house man video of frame clip what is this".split()
QWEN_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Qwen2-VL's own template, cut down: each content part renders as text or as its vision placeholder.
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _close(ours: Any, theirs: Any) -> None:
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL, rtol=0)


def _videos(shapes: list[tuple[int, int, int]], seed: int = 0) -> list[np.ndarray]:
    """uint8 videos of the given ``(frames, height, width)``, channels last."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (t, h, w, 3), dtype=np.uint8) for t, h, w in shapes]


def _frames(video: np.ndarray) -> list[Any]:
    return [Image.fromarray(frame) for frame in video]


# ------------------------------------------------------------------ the models
@pytest.fixture(scope="session")
def videomae_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random VideoMAE (hidden 32, 2 layers, 4 frames of 32x32 in 2x8x8 tubelets) with its video processor."""
    from transformers import VideoMAEConfig, VideoMAEModel
    from transformers.models.videomae.video_processing_videomae import VideoMAEVideoProcessor

    torch.manual_seed(0)
    config = VideoMAEConfig(
        image_size=32,
        patch_size=8,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
    )
    out = tmp_path_factory.mktemp("tiny_videomae")
    VideoMAEModel(config).save_pretrained(out)
    VideoMAEVideoProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def qwen_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random Qwen2-VL (text hidden 32, 2 layers; vision depth 2, 14-pixel patches merged 2x2, 2-frame temporal
    patches) with a Qwen2VLProcessor: a word-level tokenizer with Qwen's special tokens, image and video processors
    sized for 28..56-pixel frames, and a chat template."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLModel,
        Qwen2VLProcessor,
    )
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(QWEN_WORDS)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.add_special_tokens(QWEN_SPECIALS)
    ids = {token: backend.token_to_id(token) for token in QWEN_SPECIALS}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        model_max_length=512,
    )
    torch.manual_seed(1)
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": backend.get_vocab_size(),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            # head size 8: the multimodal rotary sections (time, height, width) share its 4 frequencies
            "rope_parameters": {"rope_type": "default", "mrope_section": [1, 1, 2], "rope_theta": 10000.0},
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": 2,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 4,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    out = tmp_path_factory.mktemp("tiny_qwen2_vl")
    Qwen2VLModel(config).save_pretrained(out)
    size = {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}
    Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(size=size, cap_pixels_per_frame=True),
        chat_template=QWEN_TEMPLATE,
    ).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def videomaes(videomae_dir: str) -> tuple[Any, Any]:
    """``(reference, sentrs)`` SentenceTransformers on the tiny VideoMAE folder."""
    import sentence_transformers

    return (
        sentence_transformers.SentenceTransformer(videomae_dir, device="cpu"),
        sentrs.SentenceTransformer(videomae_dir, device="cpu"),
    )


@pytest.fixture(scope="session")
def qwens(qwen_vl_dir: str) -> tuple[Any, Any]:
    """``(reference, sentrs)`` SentenceTransformers on the tiny Qwen2-VL folder."""
    import sentence_transformers

    return (
        sentence_transformers.SentenceTransformer(qwen_vl_dir, device="cpu"),
        sentrs.SentenceTransformer(qwen_vl_dir, device="cpu"),
    )


# ------------------------------------------------------------------ VideoMAE: a video-only model
def test_video_only_model_loads_as_the_reference(videomaes: tuple[Any, Any]) -> None:
    ref, ours = videomaes
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref] == ["Transformer", "Pooling"]
    assert ours[0].modality_config == ref[0].modality_config
    assert ours[0].modality_config == {"video": {"method": "forward", "method_output_name": "last_hidden_state"}}
    assert ours[0].module_output_name == ref[0].module_output_name == "token_embeddings"
    assert ours.modalities == ref.modalities == ["video"]
    for modality in ("video", "text", "image", "audio", ("text", "video"), "message"):
        assert ours.supports(modality) == ref.supports(modality), modality
    assert ours.supports("video") and not ours.supports("text")
    assert type(ours[0].processor) is type(ref[0].processor)
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 32


def test_video_only_model_embeddings_match(videomaes: tuple[Any, Any]) -> None:
    ref, ours = videomaes
    videos = _videos([(4, 40, 48), (4, 32, 32), (4, 57, 35)])
    _close(ours.encode(videos), ref.encode(videos))
    _close(ours.encode(videos, batch_size=2), ref.encode(videos, batch_size=2))
    single = ours.encode(videos[0])
    assert single.shape == (32,)
    _close(single, ref.encode(videos[0]))
    # The same videos as {"video": ...} dicts, torch tensors, channels-first tensors, lists of PIL frames, and
    # {"array", "video_metadata"} dicts.
    for inputs in (
        [{"video": video} for video in videos],
        [torch.from_numpy(video) for video in videos],
        [torch.from_numpy(video).permute(0, 3, 1, 2) for video in videos],
        [{"video": _frames(video)} for video in videos],
        [{"array": video, "video_metadata": {"fps": 2.0, "total_num_frames": 4}} for video in videos],
    ):
        _close(ours.encode(inputs), ref.encode(inputs))
    _close(ours.encode(videos), ours.encode([{"video": _frames(video)} for video in videos]))
    ours_features, ref_features = ours.preprocess(videos), ref.preprocess(videos)
    assert ours_features["modality"] == ref_features["modality"] == "video"
    _close(ours_features["pixel_values"], ref_features["pixel_values"])
    # Per-token output: the processor gives no attention_mask, which the reference reads to cut padding (KeyError).
    with pytest.raises(KeyError, match="attention_mask"):
        ref.encode(videos, output_value="token_embeddings")
    ours_features = ours[0](ours.preprocess(videos))
    ref_features = ref[0](ref.preprocess(videos))
    assert ours_features["token_embeddings"].shape == (3, 32, 32)
    _close(ours_features["token_embeddings"].detach(), ref_features["token_embeddings"].detach())


def test_video_only_model_refuses_other_inputs_as_the_reference(videomaes: tuple[Any, Any]) -> None:
    ref, ours = videomaes
    video = _videos([(4, 32, 32)])[0]
    cases: list[tuple[Any, str]] = [
        (["a text"], r"Modality 'text' is not supported by this SentenceTransformer model\. Supported modalities: "),
        ([Image.fromarray(video[0])], r"Modality 'image' is not supported by this SentenceTransformer model\."),
        (["a text", video], r"This batch mixes multiple modalities \(text, video\), but this SentenceTransformer "),
        ([video[None, None]], r"Unsupported tensor dimensionality: 6D\. Expected 1-2D for audio, 3D for image"),
        ([{"array": video}], r"Dict input with 'array' key must also include 'sampling_rate' \(for audio\) or "),
        ([{"video": video, "video_metadata": {"fps": 2}}], r"To attach per-sample video metadata, pass the video"),
    ]
    for inputs, message in cases:
        for model in (ref, ours):
            with pytest.raises(ValueError, match=message):
                model.encode(inputs)


def test_video_file_path_needs_a_decoder_as_in_the_reference(
    videomaes: tuple[Any, Any], qwens: tuple[Any, Any], tmp_path: Path
) -> None:
    """A path to a video file is a video (as in the reference) that transformers decodes with torchcodec, which is
    not installed here: both libraries raise ImportError, and sentrs' message says what to install."""
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    for ref, ours in (videomaes, qwens):
        with pytest.raises(ImportError, match="torchcodec"):
            ref.encode([str(path)])
        with pytest.raises(ImportError, match=r"(?s)torchcodec.*pip install torchcodec.*\(frames, height, width"):
            ours.encode([str(path)])
        # A path that is no file stays text (the video-only model then refuses text).
        missing = str(tmp_path / "missing.mp4")
        assert ours[0]._input_formatter.parse_inputs([missing])[0] == "text"


def test_video_to_a_text_only_model_is_refused_as_in_the_reference(tiny_bert_dir: str) -> None:
    import sentence_transformers

    ref = sentence_transformers.SentenceTransformer(tiny_bert_dir, device="cpu")
    ours = sentrs.SentenceTransformer(tiny_bert_dir, device="cpu")
    assert not ours.supports("video") and not ref.supports("video")
    video = _videos([(4, 32, 32)])[0]
    cases: list[tuple[Any, str]] = [
        (video, r"Modality 'video' is not supported by this SentenceTransformer model\. Supported modalities: text\."),
        ([video], r"Modality 'video' is not supported by this SentenceTransformer model\. Supported modalities: text"),
        ([{"text": "a", "video": video}], r"Modality 'text\+video' is not supported by this SentenceTransformer"),
        (["a", video], r"This batch mixes multiple modalities \(text, video\), but this SentenceTransformer model"),
    ]
    for inputs, message in cases:
        with pytest.raises(ValueError, match=message):
            ref.encode(inputs)
        with pytest.raises(ValueError, match=message) as info:
            ours.encode(inputs)
        assert "Received: " in str(info.value)  # sentrs also names the types it got
    with pytest.raises(ValueError, match=r"Received: numpy\.ndarray\."):
        ours.encode(video)


# ------------------------------------------------------------------ Qwen2-VL: videos through the chat template
def test_chat_vlm_loads_as_the_reference(qwens: tuple[Any, Any]) -> None:
    ref, ours = qwens
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref] == ["Transformer", "Pooling"]
    assert ours[0].modality_config == ref[0].modality_config
    assert ours.modalities == ref.modalities == ["text", "image", "video", "message"]
    for modality in ("video", "image", "text", "audio", ("text", "video"), ("image", "video"), ("audio", "text")):
        assert ours.supports(modality) == ref.supports(modality), modality
    assert ours.supports("video") and ours.supports(("text", "video"))
    assert ours[0].message_format == ref[0].input_formatter.message_format == "structured"


def test_chat_vlm_video_embeddings_match(qwens: tuple[Any, Any]) -> None:
    ref, ours = qwens
    # 4 to 8 frames (2-frame temporal patches), frames resized to 28..56 pixels: 2 to 16 video tokens each.
    videos = _videos([(4, 56, 56), (6, 56, 42), (8, 28, 28), (5, 40, 30)], seed=1)
    _close(ours.encode(videos), ref.encode(videos))
    _close(ours.encode(videos, batch_size=3), ref.encode(videos, batch_size=3))
    single = ours.encode(videos[1])
    assert single.shape == (32,)
    _close(single, ref.encode(videos[1]))
    for inputs in (
        [{"video": video} for video in videos],
        [torch.from_numpy(video).permute(0, 3, 1, 2) for video in videos],
        [{"video": _frames(video)} for video in videos],
    ):
        _close(ours.encode(inputs), ref.encode(inputs))
    ours_features, ref_features = ours.preprocess(videos), ref.preprocess(videos)
    assert ours_features["modality"] == ref_features["modality"] == "message"
    assert sorted(ours_features) == sorted(ref_features)
    for key in ("input_ids", "attention_mask", "video_grid_thw", "num_videos_per_sample"):
        assert torch.equal(ours_features[key], ref_features[key]), key
    _close(ours_features["pixel_values_videos"], ref_features["pixel_values_videos"])
    ours_tokens = ours.encode(videos, output_value="token_embeddings")
    ref_tokens = ref.encode(videos, output_value="token_embeddings")
    assert [tuple(t.shape) for t in ours_tokens] == [tuple(t.shape) for t in ref_tokens]
    for mine, theirs in zip(ours_tokens, ref_tokens):
        _close(mine, theirs)


def test_chat_vlm_video_metadata_and_processing_kwargs(qwens: tuple[Any, Any]) -> None:
    """Per-video metadata (``{"array", "video_metadata"}``) and per-call video settings (frame sampling) reach the
    video processor as in the reference."""
    ref, ours = qwens
    videos = _videos([(8, 56, 56), (6, 42, 56)], seed=2)
    with_metadata = [
        {"array": video, "video_metadata": {"fps": 4.0, "total_num_frames": len(video)}} for video in videos
    ]
    sampling = {"video": {"do_sample_frames": True, "fps": 2.0}}
    _close(
        ours.encode(with_metadata, processing_kwargs=sampling), ref.encode(with_metadata, processing_kwargs=sampling)
    )
    by_count = {"video": {"do_sample_frames": True, "num_frames": 4}}
    _close(ours.encode(videos, processing_kwargs=by_count), ref.encode(videos, processing_kwargs=by_count))
    # Sampling 4 of 8 frames is another video than all 8.
    assert not np.allclose(ours.encode(videos, processing_kwargs=by_count), ours.encode(videos), atol=1e-3)
    partial = [with_metadata[0], videos[1]]  # the missing metadata is filled from the frame count
    _close(ours.encode(partial), ref.encode(partial))


def test_chat_vlm_text_and_video_together(qwens: tuple[Any, Any]) -> None:
    """A {"text", "video"} dict is one message with both parts; a batch mixing texts and videos becomes messages;
    a (text, video) pair becomes a query and a document message; a prompt becomes a system message."""
    ref, ours = qwens
    videos = _videos([(4, 56, 56), (6, 28, 56)], seed=3)
    image = Image.fromarray(videos[0][0])
    parts = [{"type": "video", "video": videos[1]}, {"type": "text", "text": "a"}]
    conversation = [{"role": "user", "content": parts}]
    for inputs in (
        [{"text": "the cat sat", "video": videos[0]}, {"text": "a dog ran", "video": videos[1]}],
        ["the cat sat in the house", videos[0], "a dog", videos[1]],
        [("what is this", videos[0]), ("a man", videos[1])],
        [{"text": "this clip", "video": [videos[0], videos[1]]}],
        [{"image": image, "video": videos[1], "text": "the frame of a clip"}],
        [image, videos[1]],
        conversation,
    ):
        _close(ours.encode(inputs), ref.encode(inputs))
        _close(ours.encode(inputs, prompt="a clip of "), ref.encode(inputs, prompt="a clip of "))
    _close(ours.encode(videos, prompt="the video : "), ref.encode(videos, prompt="the video : "))
    # Texts alone still go through the Rust tokenizer, with the ids the processor's chat template gives.
    texts = ["the cat sat", "a dog ran in the house"]
    _close(ours.encode(texts), ref.encode(texts))
    assert torch.equal(ours.preprocess(texts)["input_ids"], ref.preprocess(texts)["input_ids"])


def test_chat_vlm_truncation_restores_the_template_suffix_of_text_rows(qwen_vl_dir: str) -> None:
    """A text row cut by truncation in a batch with a video gets the template's closing token back, as in the
    reference; cutting a video's placeholder tokens is the processor's error in both. (Models of its own: the
    failed call leaves the transformers tokenizer's truncation state behind.)"""
    import sentence_transformers

    ref = sentence_transformers.SentenceTransformer(qwen_vl_dir, device="cpu")
    ours = sentrs.SentenceTransformer(qwen_vl_dir, device="cpu")
    small, large = _videos([(2, 28, 28), (4, 56, 56)], seed=4)  # 1 and 8 video tokens
    long_text = " ".join(["the cat sat in the house"] * 10)
    for model in (ref, ours):
        model.max_seq_length = 10
    ours_features, ref_features = ours.preprocess([long_text, small]), ref.preprocess([long_text, small])
    assert torch.equal(ours_features["input_ids"], ref_features["input_ids"])
    im_end = ours.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert int(ours_features["input_ids"][0, -1]) == im_end
    _close(ours.encode([long_text, small]), ref.encode([long_text, small]))
    keep_cut = {"chat_template": {"restore_suffix": False}}
    ours_cut = ours.preprocess([long_text, small], processing_kwargs=keep_cut)["input_ids"]
    assert torch.equal(ours_cut, ref.preprocess([long_text, small], processing_kwargs=keep_cut)["input_ids"])
    assert int(ours_cut[0, -1]) != im_end
    for model in (ref, ours):
        with pytest.raises(ValueError, match="Mismatch in `video` token count"):
            model.encode([long_text, large])


def test_chat_vlm_folders_load_both_ways(qwens: tuple[Any, Any], tmp_path: Path) -> None:
    import sentence_transformers

    ref, ours = qwens
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "ref"))
    for name in ("modules.json", "sentence_bert_config.json"):
        assert json.loads((tmp_path / "ours" / name).read_text()) == json.loads((tmp_path / "ref" / name).read_text())
    videos = _videos([(4, 56, 56), (6, 28, 42)], seed=5)
    inputs = [*videos, {"text": "the cat", "video": videos[0]}, "a dog"]
    expected = ref.encode(inputs)
    _close(sentence_transformers.SentenceTransformer(str(tmp_path / "ours"), device="cpu").encode(inputs), expected)
    _close(sentrs.SentenceTransformer(str(tmp_path / "ref"), device="cpu").encode(inputs), expected)
