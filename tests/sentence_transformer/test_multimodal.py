"""Multimodal inputs against the reference: a tiny random CLIP built here (text and image towers, a CLIPProcessor with
a byte-level BPE tokenizer and a 32-pixel image processor), a tiny ViT (image only) and a tiny wav2vec2 (audio),
each saved as a plain transformers folder and loaded by both libraries.

Tolerance: the same weights and the same preprocessing run the same torch ops, so embeddings agree to float32
round-off (atol 1e-5; batches sorted differently may change the last bits of a matmul).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs.exceptions import InputTypeError

Image = pytest.importorskip("PIL.Image")

ATOL = 1e-5
TEXTS = ["the cat sat", "a dog in the house", "x", "", "then the thin man ran in"]


def _byte_chars() -> list[str]:
    """The 256 printable stand-ins of byte-level BPE (GPT-2's byte-to-unicode table)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]
    chars = {b: chr(b) for b in keep}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random CLIP (hidden 32, 2 layers, 32-pixel images in 8-pixel patches, projection 16) with its processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    out = tmp_path_factory.mktemp("tiny_clip")
    files = tmp_path_factory.mktemp("tiny_clip_vocab")
    chars = _byte_chars()
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    merges = ["t h", "th e</w>", "a n", "i n"]
    for merge in merges:
        vocab[merge.replace(" ", "")] = len(vocab)
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (files / "vocab.json").write_text(json.dumps(vocab))
    (files / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(str(files / "vocab.json"), str(files / "merges.txt"), model_max_length=77)

    torch.manual_seed(0)
    eos = vocab["<|endoftext|>"]
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(out)
    images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def clips(clip_dir: str) -> tuple[Any, Any]:
    """``(reference, sentrs)`` SentenceTransformers on the tiny CLIP folder."""
    import sentence_transformers

    return (
        sentence_transformers.SentenceTransformer(clip_dir, device="cpu"),
        sentrs.SentenceTransformer(clip_dir, device="cpu"),
    )


def _images(n: int = 4, seed: int = 0) -> list[Any]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (30 + 7 * i, 41 + 3 * i, 3), dtype=np.uint8)) for i in range(n)]


def _close(ours: Any, theirs: Any) -> None:
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL, rtol=0)


# ------------------------------------------------------------------ CLIP: the same embeddings as the reference
def test_clip_loads_as_one_transformer_with_the_references_config(clips: tuple[Any, Any]) -> None:
    ref, ours = clips
    assert len(ours) == len(ref) == 1
    assert ours[0].modality_config == ref[0].modality_config
    assert ours[0].module_output_name == ref[0].module_output_name == "sentence_embedding"
    assert ours.modalities == ref.modalities == ["text", "image"]
    for modality in ("text", "image", "audio", ("image", "text"), "message"):
        assert ours.supports(modality) == ref.supports(modality), modality
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 16
    assert type(ours.processor) is type(ref.processor)
    assert type(ours.tokenizer) is type(ref.tokenizer)
    assert ours.max_seq_length == ref.max_seq_length


def test_clip_text_embeddings_match(clips: tuple[Any, Any]) -> None:
    ref, ours = clips
    _close(ours.encode(TEXTS), ref.encode(TEXTS))
    _close(ours.encode(TEXTS[0]), ref.encode(TEXTS[0]))
    _close(ours.encode(TEXTS, batch_size=2, normalize_embeddings=True), ref.encode(TEXTS, normalize_embeddings=True))
    # Text still goes through the Rust tokenizer, with the ids the processor gives the reference.
    features = ours[0].preprocess(TEXTS)
    assert torch.equal(features["input_ids"], ref.preprocess(TEXTS)["input_ids"])


def test_clip_image_embeddings_match(clips: tuple[Any, Any], tmp_path: Path) -> None:
    ref, ours = clips
    images = _images()
    _close(ours.encode(images), ref.encode(images))
    _close(ours.encode(images, batch_size=3), ref.encode(images, batch_size=3))
    single = ours.encode(images[0])
    assert single.shape == (16,)
    _close(single, ref.encode(images[0]))
    arrays = [np.asarray(image) for image in images]
    _close(ours.encode(arrays), ref.encode(arrays))
    _close(ours.encode(arrays[1]), ref.encode(arrays[1]))
    _close(ours.encode([{"image": image} for image in images]), ref.encode([{"image": image} for image in images]))
    path = tmp_path / "picture.png"
    images[2].save(path)
    _close(ours.encode(str(path)), ref.encode(str(path)))
    _close(ours.encode([str(path), str(path)]), ref.encode([str(path), str(path)]))
    tensor = ours.encode(images, convert_to_tensor=True)
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (4, 16)
    _close(ours.preprocess(images)["pixel_values"], ref.preprocess(images)["pixel_values"])
    assert ours.preprocess(images)["modality"] == "image"


def test_clip_similarity_of_text_and_images(clips: tuple[Any, Any]) -> None:
    ref, ours = clips
    images = _images()
    ours_scores = ours.similarity(ours.encode(TEXTS), ours.encode(images))
    ref_scores = ref.similarity(ref.encode(TEXTS), ref.encode(images))
    assert ours_scores.shape == (len(TEXTS), len(images))
    _close(ours_scores, ref_scores)


def test_clip_mixed_inputs_behave_as_the_reference(clips: tuple[Any, Any]) -> None:
    """CLIP has no chat template, so it cannot fuse text and image into one input, nor mix them in one batch; one
    input per batch works (each batch is checked on its own, as in the reference)."""
    ref, ours = clips
    image = _images(1)[0]
    with pytest.raises(ValueError, match="supports image and text individually, but cannot combine them"):
        ref.encode([{"text": "a cat", "image": image}])
    with pytest.raises(ValueError, match="supports image and text individually, but cannot combine them"):
        ours.encode([{"text": "a cat", "image": image}])
    for model in clips:
        with pytest.raises(ValueError, match=r"This batch mixes multiple modalities \(image, text\)"):
            model.encode(["a cat", image])
    _close(ours.encode(["a cat", image], batch_size=1), ref.encode(["a cat", image], batch_size=1))


# ------------------------------------------------------------------ folders, both ways
def _saved_configs(folder: Path) -> tuple[Any, Any]:
    return json.loads((folder / "modules.json").read_text()), json.loads(
        (folder / "sentence_bert_config.json").read_text()
    )


def test_clip_folders_load_both_ways(clips: tuple[Any, Any], tmp_path: Path) -> None:
    import sentence_transformers

    ref, ours = clips
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "ref"))
    assert _saved_configs(tmp_path / "ours") == _saved_configs(tmp_path / "ref")
    images = _images()
    ref_from_ours = sentence_transformers.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    ours_from_ref = sentrs.SentenceTransformer(str(tmp_path / "ref"), device="cpu")
    for model in (ref_from_ours, ours_from_ref):
        _close(model.encode(images), ref.encode(images))
        _close(model.encode(TEXTS), ref.encode(TEXTS))


def test_legacy_clip_model_folder_loads(clip_dir: str, tmp_path: Path) -> None:
    """A folder saved by an old release: modules.json type ``sentence_transformers.models.CLIPModel`` in
    ``0_CLIPModel/``, the image processor in ``preprocessor_config.json``, and no sentence_bert_config.json."""
    import sentence_transformers
    from transformers import AutoProcessor

    root = tmp_path / "legacy"
    module_dir = root / "0_CLIPModel"
    module_dir.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(clip_dir) / name, module_dir / name)
    processor = AutoProcessor.from_pretrained(clip_dir)
    processor.tokenizer.save_pretrained(module_dir)
    processor.image_processor.save_pretrained(module_dir)
    assert (module_dir / "preprocessor_config.json").exists()
    entry = {"idx": 0, "name": "0", "path": "0_CLIPModel", "type": "sentence_transformers.models.CLIPModel"}
    (root / "modules.json").write_text(json.dumps([entry]))
    ref = sentence_transformers.SentenceTransformer(str(root), device="cpu")
    ours = sentrs.SentenceTransformer(str(root), device="cpu")
    from sentrs.models import CLIPModel

    assert isinstance(ours[0], CLIPModel)
    assert ours[0].modality_config == ref[0].modality_config
    images = _images()
    _close(ours.encode(images), ref.encode(images))
    _close(ours.encode(TEXTS), ref.encode(TEXTS))
    # Saved again, it names the reference's current CLIPModel path and writes the modality config.
    ours.save(str(tmp_path / "resaved"))
    ref.save(str(tmp_path / "ref_resaved"))
    assert _saved_configs(tmp_path / "resaved") == _saved_configs(tmp_path / "ref_resaved")
    _close(
        sentence_transformers.SentenceTransformer(str(tmp_path / "resaved"), device="cpu").encode(images),
        ref.encode(images),
    )


def test_clip_model_module_built_directly(clip_dir: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import sentence_transformers
    from sentence_transformers.sentence_transformer.modules import CLIPModel as RefCLIPModel
    from sentrs.models import CLIPModel

    with caplog.at_level(logging.WARNING):
        ours = CLIPModel(clip_dir)
    assert "CLIPModel module is deprecated" in caplog.text
    ref = RefCLIPModel(clip_dir)
    assert ours.modality_config == ref.modality_config
    images = _images()
    with torch.inference_mode():
        _close(ours(ours.preprocess(images))["sentence_embedding"], ref(ref.preprocess(images))["sentence_embedding"])
    sentrs.SentenceTransformer(modules=[ours], device="cpu").save(str(tmp_path / "ours"))
    sentence_transformers.SentenceTransformer(modules=[ref], device="cpu").save(str(tmp_path / "ref"))
    assert _saved_configs(tmp_path / "ours") == _saved_configs(tmp_path / "ref")


# ------------------------------------------------------------------ Router: an image route and a text route
@pytest.fixture(scope="session")
def router_dir(tmp_path_factory: pytest.TempPathFactory, clip_dir: str, tiny_bert_dir: str) -> str:
    """A reference-saved Router: texts through the tiny BERT + mean pooling, images through CLIP + Dense(16 -> 32)."""
    import sentence_transformers
    from sentence_transformers.base.modules import Dense, Router, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    torch.manual_seed(2)
    router = Router(
        {"language": [Transformer(tiny_bert_dir), Pooling(32)], "vision": [Transformer(clip_dir), Dense(16, 32)]},
        default_route="language",
        route_mappings={(None, "image"): "vision", (None, "text"): "language"},
    )
    model = sentence_transformers.SentenceTransformer(modules=[router], device="cpu")
    out = tmp_path_factory.mktemp("router_text_image")
    model.save(str(out))
    return str(out)


def test_router_sends_each_modality_to_its_route(router_dir: str, tiny_bert_dir: str) -> None:
    import sentence_transformers

    ref = sentence_transformers.SentenceTransformer(router_dir, device="cpu")
    ours = sentrs.SentenceTransformer(router_dir, device="cpu")
    assert ours.modalities == ref.modalities
    images = _images()
    _close(ours.encode(TEXTS), ref.encode(TEXTS))
    _close(ours.encode(images), ref.encode(images))
    _close(ours.encode(images[0]), ref.encode(images[0]))
    # The text route is the BERT pipeline, the image route the CLIP one.
    router = ours[0]
    text_only = sentrs.SentenceTransformer(modules=list(router.sub_modules["language"].children()), device="cpu")
    _close(ours.encode(TEXTS), text_only.encode(TEXTS))
    vision = list(router.sub_modules["vision"].children())
    with torch.inference_mode():
        features = vision[1](vision[0](vision[0].preprocess(images)))
    _close(ours.encode(images), features["sentence_embedding"])
    assert ours.encode_query(images).shape == (4, 32)


# ------------------------------------------------------------------ other processors: image-only and audio models
@pytest.fixture(scope="session")
def vit_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(3)
    config = ViTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32, patch_size=8
    )
    out = tmp_path_factory.mktemp("tiny_vit")
    ViTModel(config).save_pretrained(out)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def wav2vec2_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2Model,
        Wav2Vec2Processor,
    )

    torch.manual_seed(4)
    config = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        conv_dim=(16, 16),
        conv_stride=(5, 2),
        conv_kernel=(10, 3),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        vocab_size=10,
    )
    out = tmp_path_factory.mktemp("tiny_wav2vec2")
    Wav2Vec2Model(config).save_pretrained(out)
    vocab = out / "ctc_vocab.json"
    vocab.write_text(json.dumps({t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C"])}))
    extractor = Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=Wav2Vec2CTCTokenizer(str(vocab))).save_pretrained(out)
    vocab.unlink()
    return str(out)


def test_image_only_model_matches(vit_dir: str) -> None:
    import sentence_transformers

    ref = sentence_transformers.SentenceTransformer(vit_dir, device="cpu")
    ours = sentrs.SentenceTransformer(vit_dir, device="cpu")
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref] == ["Transformer", "Pooling"]
    assert ours.modalities == ref.modalities == ["image"]
    images = _images(5, seed=1)
    _close(ours.encode(images, batch_size=2), ref.encode(images, batch_size=2))
    for model in (ref, ours):
        with pytest.raises(ValueError, match="Modality 'text' is not supported by this SentenceTransformer model"):
            model.encode(["a text"])


def test_audio_model_matches(wav2vec2_dir: str) -> None:
    import sentence_transformers

    ref = sentence_transformers.SentenceTransformer(wav2vec2_dir, device="cpu")
    ours = sentrs.SentenceTransformer(wav2vec2_dir, device="cpu")
    assert ours.modalities == ref.modalities == ["audio", ("audio", "text")]
    rng = np.random.default_rng(5)
    clips = [
        {"array": rng.standard_normal(1600 + 150 * i).astype(np.float32), "sampling_rate": 16000} for i in range(3)
    ]
    _close(ours.encode(clips), ref.encode(clips))
    _close(ours.encode(clips[1]), ref.encode(clips[1]))
    mixed_rates = [clips[0], {**clips[1], "sampling_rate": 8000}]
    with pytest.raises(ValueError, match="mixes audio with different sampling rates"):
        ours.encode(mixed_rates)


def test_chat_messages_on_a_chat_template_model(tmp_path: Path) -> None:
    """A text model with a chat template takes message dicts and conversations, rendered by the template (and a
    prompt as a system message), with the reference's embeddings."""
    import sentence_transformers

    from tests.cross_encoder.test_llm_reranker import CHAT_TEMPLATE, _build

    folder = _build(tmp_path / "llm", CHAT_TEMPLATE)
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    assert ours.modalities == ref.modalities == ["text", "message"]
    conversation = [
        {"role": "user", "content": "what is the capital of france"},
        {"role": "assistant", "content": "paris"},
    ]
    for inputs in (
        conversation,
        [conversation, [{"role": "user", "content": "cat"}]],
        [{"role": "user", "content": "dog"}],
    ):
        _close(ours.encode(inputs), ref.encode(inputs))
        _close(ours.encode(inputs, prompt="judge only : "), ref.encode(inputs, prompt="judge only : "))
    assert ours.encode(conversation).ndim == 1  # a conversation is one input


def test_reference_helper_names(clip_dir: str) -> None:
    from sentence_transformers.base.modules import Transformer as RefTransformer
    from transformers import CLIPModel as HFCLIPModel

    from sentrs.base.modules import Transformer

    for name in ("pooler_output", "last_hidden_state"):
        for method in (HFCLIPModel.get_text_features, HFCLIPModel.forward):
            assert Transformer._infer_method_output_name(name, method) == RefTransformer._infer_method_output_name(
                name, method
            )
    for task in ("feature-extraction", "fill-mask", "sequence-classification", "text-generation"):
        config = {"transformer_task": task}
        assert Transformer._get_default_modality_config(config) == RefTransformer._get_default_modality_config(config)


# ------------------------------------------------------------------ errors
def test_image_to_a_text_only_model(make_tiny_st: Any) -> None:
    import sentence_transformers

    folder = make_tiny_st()
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    image = _images(1)[0]
    message = "Modality 'image' is not supported by this SentenceTransformer model. Supported modalities: text."
    with pytest.raises(ValueError, match=message):
        ref.encode(image)
    with pytest.raises(ValueError, match=message + " Received: PIL.Image.Image."):
        ours.encode(image)
    with pytest.raises(ValueError, match=r"Modality 'image' .* Received: PIL\.Image\.Image\."):
        ours.encode([image, image])
    with pytest.raises(ValueError, match=r"Modality 'audio' .* Received: numpy\.ndarray\."):
        ours.encode([np.zeros(16000, dtype=np.float32)])
    with pytest.raises(ValueError, match="mixes multiple modalities .* does not support image"):
        ours.encode(["a text", image])
    with pytest.raises(ValueError, match="does not support chat-style 'message' inputs"):
        ours.encode([{"role": "user", "content": "hi"}])
    # Plain text still encodes, and unknown objects keep the text model's message.
    assert ours.encode(["a text"]).shape == (1, 32)
    with pytest.raises(InputTypeError, match=r"inputs\[0\] must be a str, got object"):
        ours.encode([object()])


def test_unknown_input_types_and_unsupported_modalities(clips: tuple[Any, Any]) -> None:
    ref, ours = clips
    for bad in (object(), [object()], ["a", object()]):
        with pytest.raises(ValueError, match="Unsupported input type: object"):
            ref.encode(bad)
        with pytest.raises(InputTypeError, match="Unsupported input type: object. Expected one of: str, dict"):
            ours.encode(bad)
    with pytest.raises(InputTypeError, match=r"\(inputs\[1\]\)"):
        ours.encode(["a", object()])
    wave = np.zeros(1600, dtype=np.float32)
    message = "Modality 'audio' is not supported by this SentenceTransformer model. Supported modalities: text, image."
    with pytest.raises(ValueError, match=message):
        ref.encode([wave])
    with pytest.raises(ValueError, match=message + r" Received: numpy\.ndarray\."):
        ours.encode([wave])
    with pytest.raises(ValueError, match="unrecognized modality keys"):
        ours.encode([{"text": "a", "picture": 1}])
    # The input module refuses what its modality config lacks, naming what it reads.
    with pytest.raises(ValueError, match="Modality 'audio' is not supported by this Transformer module"):
        ours[0].preprocess([wave])
    with pytest.raises(ValueError, match="modality_config names 'audio', but the processor .* does not read it"):
        sentrs.models.Transformer(
            ours[0].model.name_or_path,
            modality_config={"audio": {"method": "forward", "method_output_name": None}},
            module_output_name="sentence_embedding",
        )
    with pytest.raises(sentrs.exceptions.UnsupportedFeatureError, match="backend='onnx' runs text models only"):
        sentrs.SentenceTransformer(ours[0].model.name_or_path, backend="onnx")
    with pytest.raises(ValueError, match="modality_config key 'smell' is not a modality"):
        sentrs.models.Transformer(
            ours[0].model.name_or_path, modality_config={"smell": {}}, module_output_name="sentence_embedding"
        )
