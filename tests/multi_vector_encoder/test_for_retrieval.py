"""transformers ``*ForRetrieval`` checkpoints (ColPali, ColQwen2, ColModernVBert) as MultiVectorEncoders, against the
reference.

Each model is a tiny random one built here (1-layer vision and text towers, 16-wide retrieval head) with its real
processor around a character-level tokenizer made with the tokenizers library, saved as a plain transformers folder.

Tolerances: token embeddings 1e-5 absolute (float32; the same processor output goes through the same torch forward,
so they agree to the bit in practice); MaxSim scores 1e-5 relative (sentrs sums the token maxima in Rust, the
reference in torch: a different summation order). Processor outputs (ids, masks, prompt lengths) must be identical.
"""

from __future__ import annotations

import json
import logging
import os
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (the `fixtures` extra; the ColQwen2 image processor and transformers' video processors need it)

import sentrs

QUERIES = ["what is the chart about?", "cat", "a much longer question about the table on page two of the report"]
ATOL = 1e-5
RTOL_SCORES = 1e-5
EMBEDDING_DIM = 16
REFERENCE_LOGGER = "sentence_transformers.base.modules.transformer"


# ---------------------------------------------------------------------------------------------- building the models
def _colpali(out: Path) -> None:
    """ColPali: PaliGemma (SigLIP 28x28 -> 4 image tokens, Gemma) with a Gemma BPE tokenizer over single characters."""
    from transformers import (
        ColPaliConfig,
        ColPaliForRetrieval,
        ColPaliProcessor,
        GemmaTokenizer,
        PaliGemmaConfig,
        SiglipImageProcessor,
    )

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
    characters = list(string.ascii_letters + string.digits + string.punctuation + "\n▁")
    tokenizer = GemmaTokenizer(vocab={t: i for i, t in enumerate(specials + characters)}, merges=[])
    image_processor = SiglipImageProcessor(size={"height": 28, "width": 28}, image_seq_length=4)
    processor = ColPaliProcessor(image_processor=image_processor, tokenizer=tokenizer)  # adds <image>, <loc*>, <seg*>
    vocab_size = len(processor.tokenizer)
    torch.manual_seed(0)
    vlm = PaliGemmaConfig(
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 28,
            "patch_size": 14,
        },
        text_config={
            "model_type": "gemma",
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
        },
        projection_dim=32,
        image_token_index=processor.image_token_id,
        vocab_size=vocab_size,
    )
    ColPaliForRetrieval(ColPaliConfig(vlm_config=vlm, embedding_dim=EMBEDDING_DIM)).eval().save_pretrained(out)
    processor.save_pretrained(out)


def _colqwen2(out: Path) -> None:
    """ColQwen2: Qwen2-VL (14-pixel patches merged 2x2; 4 to 16 image tokens by image size) with a byte-level Qwen2
    tokenizer over single bytes plus its vision special tokens."""
    from tokenizers import AddedToken, pre_tokenizers
    from transformers import (
        ColQwen2Config,
        ColQwen2ForRetrieval,
        ColQwen2Processor,
        Qwen2Tokenizer,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
    )

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>"]
    specials += ["<|image_pad|>", "<|video_pad|>"]
    vocab = {t: i for i, t in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()) + specials)}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    image_processor = Qwen2VLImageProcessor(
        min_pixels=28 * 28 * 4, max_pixels=28 * 28 * 16, patch_size=14, merge_size=2, temporal_patch_size=2
    )
    processor = ColQwen2Processor(image_processor=image_processor, tokenizer=tokenizer)
    torch.manual_seed(0)
    vlm = Qwen2VLConfig(
        text_config={
            "vocab_size": len(processor.tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "rope_parameters": {"rope_type": "default", "mrope_section": [4, 2, 2], "rope_theta": 10000.0},
            "bos_token_id": vocab["<|endoftext|>"],
            "eos_token_id": vocab["<|im_end|>"],
        },
        vision_config={
            "depth": 1,
            "embed_dim": 32,
            "hidden_size": 32,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    ColQwen2ForRetrieval(ColQwen2Config(vlm_config=vlm, embedding_dim=EMBEDDING_DIM)).eval().save_pretrained(out)
    processor.save_pretrained(out)


def _colmodernvbert(out: Path) -> None:
    """ColModernVBert: ModernBERT + SigLIP (56x56, pixel shuffle 2 -> 4 image tokens) with a character-level WordLevel
    tokenizer holding the processor's image and row/column tokens."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import (
        ColModernVBertConfig,
        ColModernVBertForRetrieval,
        ColModernVBertProcessor,
        Idefics3ImageProcessor,
        ModernVBertConfig,
        PreTrainedTokenizerFast,
    )

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<|begin_of_text|>", "<fake_token_around_image>"]
    specials += ["<image>", "<end_of_utterance>", "<global-img>"]
    specials += [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
    vocab = {t: i for i, t in enumerate(specials + list(string.ascii_letters + string.digits + string.punctuation))}
    vocab.update({" ": len(vocab), "\n": len(vocab) + 1})
    raw = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    raw.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="<|begin_of_text|>",
    )
    image_processor = Idefics3ImageProcessor(
        size={"longest_edge": 56}, max_image_size={"longest_edge": 56}, do_image_splitting=False
    )
    processor = ColModernVBertProcessor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=4)
    torch.manual_seed(0)
    vlm = ModernVBertConfig(
        text_config={
            "model_type": "modernbert",
            "vocab_size": len(processor.tokenizer),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "pad_token_id": vocab["[PAD]"],
            "bos_token_id": vocab["[CLS]"],
            "eos_token_id": vocab["[SEP]"],
            "cls_token_id": vocab["[CLS]"],
            "sep_token_id": vocab["[SEP]"],
        },
        vision_config={
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 56,
            "patch_size": 14,
        },
        image_token_id=processor.image_token_id,
        pixel_shuffle_factor=2,
    )
    model = ColModernVBertForRetrieval(ColModernVBertConfig(vlm_config=vlm, embedding_dim=EMBEDDING_DIM))
    model.eval().save_pretrained(out)
    processor.save_pretrained(out)


BUILDERS: dict[str, Callable[[Path], None]] = {
    "colpali": _colpali,
    "colqwen2": _colqwen2,
    "colmodernvbert": _colmodernvbert,
}
ARCHITECTURES = {
    "colpali": "ColPaliForRetrieval",
    "colqwen2": "ColQwen2ForRetrieval",
    "colmodernvbert": "ColModernVBertForRetrieval",
}


@pytest.fixture(scope="module")
def retrieval_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folders = {}
    for name, build in BUILDERS.items():
        out = tmp_path_factory.mktemp(name)
        build(out)
        folders[name] = str(out)
    return folders


@pytest.fixture(scope="module")
def loaded(retrieval_dirs: dict[str, str]) -> dict[str, tuple[Any, Any]]:
    """``{name: (reference model, sentrs model)}`` for each folder, loaded once."""
    import sentence_transformers as st

    return {
        name: (st.MultiVectorEncoder(folder, device="cpu"), sentrs.MultiVectorEncoder(folder, device="cpu"))
        for name, folder in retrieval_dirs.items()
    }


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Three random RGB pages of different sizes (ColQwen2 gives them 6, 10 and 16 image tokens) and the path of a PNG
    holding the first one."""
    from PIL import Image

    rng = np.random.default_rng(0)
    pages = [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for height, width in ((40, 30), (56, 140), (112, 112))
    ]
    path = tmp_path_factory.mktemp("pages") / "page.png"
    pages[0].save(path)
    return [*pages, str(path)]


@pytest.fixture
def fresh_warnings() -> Iterator[None]:
    """Forgets which once-only warnings both libraries already logged, so each test sees its own."""
    from sentrs.base.modules import transformer as our_transformer

    logging.Logger.warning_once.cache_clear()  # type: ignore[attr-defined]  # transformers' lru-cached warning_once
    our_transformer._warned.clear()
    yield
    logging.Logger.warning_once.cache_clear()  # type: ignore[attr-defined]
    our_transformer._warned.clear()


def _assert_same_tokens(ours: list[Any], ref: list[Any]) -> None:
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert tuple(a.shape) == tuple(b.shape), (i, a.shape, b.shape)
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), atol=ATOL, rtol=0, msg=f"input {i}")


def _encode_both(ref: Any, ours: Any, method: str, inputs: Any, **kwargs: Any) -> tuple[Any, Any]:
    return getattr(ours, method)(inputs, **kwargs), getattr(ref, method)(inputs, **kwargs)


# ------------------------------------------------------------------------------------------------------------ loading
@pytest.mark.parametrize("name", list(BUILDERS))
def test_loads_as_retrieval_transformer_and_mask(loaded: dict[str, tuple[Any, Any]], name: str) -> None:
    ref, ours = loaded[name]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref] == ["Transformer", "MultiVectorMask"]
    assert ours[0].get_config_dict() == ref[0].get_config_dict()
    assert ours[0].get_config_dict()["transformer_task"] == "retrieval"
    assert ours[1].get_config_dict() == ref[1].get_config_dict()
    assert type(ours[0].auto_model).__name__ == type(ref[0].auto_model).__name__ == ARCHITECTURES[name]
    assert ours.modalities == ref.modalities == ["text", "image"]
    assert ours[0].get_embedding_dimension() == ref[0].get_embedding_dimension() == EMBEDDING_DIM
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == EMBEDDING_DIM


# ---------------------------------------------------------------------------------------------------------- encoding
@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_queries_documents_and_scores_match_reference(
    loaded: dict[str, tuple[Any, Any]], images: list[Any], name: str
) -> None:
    ref, ours = loaded[name]
    ours_q, ref_q = _encode_both(ref, ours, "encode_query", QUERIES)
    _assert_same_tokens(ours_q, ref_q)
    ours_d, ref_d = _encode_both(ref, ours, "encode_document", images)  # PIL pages and a path to a PNG
    _assert_same_tokens(ours_d, ref_d)
    assert len({tuple(d.shape) for d in ours_d[:3]}) == (3 if name == "colqwen2" else 1)  # ColQwen2: per-size tokens
    _assert_same_tokens([ours_d[3]], [ours_d[0]])  # the path loads the same page
    torch.testing.assert_close(ours.similarity(ours_q, ours_d), ref.similarity(ref_q, ref_d), rtol=RTOL_SCORES, atol=0)
    torch.testing.assert_close(
        ours.similarity_pairwise(ours_q, ours_d[:3]),
        ref.similarity_pairwise(ref_q, ref_d[:3]),
        rtol=RTOL_SCORES,
        atol=0,
    )
    one_ours, one_ref = _encode_both(ref, ours, "encode_document", images[1], convert_to_numpy=True)
    assert isinstance(one_ours, np.ndarray)
    np.testing.assert_allclose(one_ours, one_ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_raw_features_and_prompt_match_reference(loaded: dict[str, tuple[Any, Any]], name: str) -> None:
    """output_value=None: the processor's features (query prefix, augmentation tokens, the prompt in front) and the
    prompt length the reference measures with the processor, for each query."""
    ref, ours = loaded[name]
    ours_f, ref_f = _encode_both(ref, ours, "encode_query", QUERIES, prompt="Find: ", output_value=None)
    for a, b in zip(ours_f, ref_f):
        assert set(a) == set(b)
        assert a["prompt_length"] == b["prompt_length"]
        for key in ("input_ids", "attention_mask"):
            assert torch.equal(a[key], b[key]), key
        torch.testing.assert_close(a["token_embeddings"], b["token_embeddings"], atol=ATOL, rtol=0)
    ours_q, ref_q = _encode_both(ref, ours, "encode_query", QUERIES, prompt="Find: ")
    _assert_same_tokens(ours_q, ref_q)


def test_colmodernvbert_queries_match_reference_and_documents_match_transformers(
    loaded: dict[str, tuple[Any, Any]], images: list[Any]
) -> None:
    """Queries as the reference. Pages go through the processor's process_images (which writes the visual prompt
    around the image tokens), checked against the model run directly on it: with transformers 5.24 the reference
    calls the processor itself on the pages, which returns pixels without any ids, and its model raises."""
    from PIL import Image

    ref, ours = loaded["colmodernvbert"]
    ours_q, ref_q = _encode_both(ref, ours, "encode_query", QUERIES)
    _assert_same_tokens(ours_q, ref_q)
    ours_d = ours.encode_document(images)
    processor, model = ours[0].processor, ours[0].auto_model
    pages = [image if not isinstance(image, str) else Image.open(image).convert("RGB") for image in images]
    expected = []
    with torch.inference_mode():
        for page in pages:
            inputs = processor.process_images([page], return_tensors="pt")
            embeddings = model(**inputs).embeddings[0]
            expected.append(embeddings[inputs["attention_mask"][0].bool()])
    _assert_same_tokens(ours_d, expected)
    try:
        ref_d = ref.encode_document(images)
    except TypeError:
        return  # the reference cannot encode these pages (see above)
    _assert_same_tokens(ours_d, ref_d)


@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
@pytest.mark.usefixtures("fresh_warnings")
def test_text_documents_warn_and_encode_as_queries_like_reference(
    loaded: dict[str, tuple[Any, Any]], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    ref, ours = loaded[name]
    with caplog.at_level(logging.WARNING):
        ours_q, ref_q = _encode_both(ref, ours, "encode_query", QUERIES[:2])
        ours_plain, ref_plain = _encode_both(ref, ours, "encode", QUERIES[:2])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # queries, or no task: no warning
    with caplog.at_level(logging.WARNING):
        ours_d, ref_d = _encode_both(ref, ours, "encode_document", QUERIES[:2])
    ref_warnings = [r for r in caplog.records if r.name == REFERENCE_LOGGER and r.levelno == logging.WARNING]
    our_warnings = [r for r in caplog.records if r.name.startswith("sentrs") and r.levelno == logging.WARNING]
    assert len(ref_warnings) == len(our_warnings) == 1
    assert "task='document'" in our_warnings[0].getMessage() and "as queries" in our_warnings[0].getMessage()
    for embeddings in (ours_d, ours_plain, ref_d, ref_plain):  # every text is rendered as a query
        _assert_same_tokens(embeddings, ours_q)
    _assert_same_tokens(ref_q, ours_q)


def test_transformer_task_retrieval_infers_the_reference_modality_config(retrieval_dirs: dict[str, str]) -> None:
    from sentence_transformers.base.modules.transformer import Transformer as RefTransformer

    from sentrs.base.modules.transformer import Transformer

    ours = Transformer(retrieval_dirs["colpali"], transformer_task="retrieval")
    ref = RefTransformer(retrieval_dirs["colpali"], transformer_task="retrieval")
    assert ours.get_config_dict() == ref.get_config_dict()
    assert ours.module_output_name == "token_embeddings"


# ---------------------------------------------------------------------------------------------------- saving/loading
def _saved_files(folder: str) -> dict[str, Any]:
    def read(name: str) -> Any:
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            return json.load(f)

    config = read("config_sentence_transformers.json")
    config.pop("__version__")
    mask_folder = read("modules.json")[1]["path"]
    return {
        "modules": read("modules.json"),
        "sentence_bert_config": read("sentence_bert_config.json"),
        "config_sentence_transformers": config,
        "mask_config": read(os.path.join(mask_folder, "config.json")),
    }


@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_saved_folders_load_both_ways(
    loaded: dict[str, tuple[Any, Any]], images: list[Any], tmp_path: Path, name: str
) -> None:
    import sentence_transformers as st

    ref, ours = loaded[name]
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "ref"))
    assert _saved_files(str(tmp_path / "ours")) == _saved_files(str(tmp_path / "ref"))
    assert _saved_files(str(tmp_path / "ours"))["sentence_bert_config"]["transformer_task"] == "retrieval"

    expected_q = ref.encode_query(QUERIES)
    expected_d = ref.encode_document(images[:3])
    for reloaded in (st.MultiVectorEncoder(str(tmp_path / "ours")), sentrs.MultiVectorEncoder(str(tmp_path / "ref"))):
        assert [type(m).__name__ for m in reloaded] == ["Transformer", "MultiVectorMask"]
        _assert_same_tokens(reloaded.encode_query(QUERIES), expected_q)
        _assert_same_tokens(reloaded.encode_document(images[:3]), expected_d)


def test_saved_config_without_modality_config_loads_as_reference(
    loaded: dict[str, tuple[Any, Any]], images: list[Any], tmp_path: Path
) -> None:
    """A sentence_bert_config.json naming only the task gets the task's defaults (text and image through forward)."""
    import sentence_transformers as st

    ref, _ = loaded["colpali"]
    ref.save(str(tmp_path))
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"transformer_task": "retrieval"}))
    ours, reloaded_ref = sentrs.MultiVectorEncoder(str(tmp_path)), st.MultiVectorEncoder(str(tmp_path))
    assert ours[0].get_config_dict() == reloaded_ref[0].get_config_dict()
    _assert_same_tokens(ours.encode_document(images[:2]), reloaded_ref.encode_document(images[:2]))


# --------------------------------------------------------------------------------------------------------- bad input
def test_retrieval_task_on_a_plain_encoder_is_a_clear_error(tiny_bert_dir: str, tmp_path: Path) -> None:
    """A BERT folder is no retriever. The reference loads its BertModel and fails at the first encode for want of
    ``embeddings``; sentrs refuses when loading. A config naming no architecture is refused by both."""
    from sentence_transformers.base.modules.transformer import Transformer as RefTransformer
    from transformers import AutoConfig

    from sentrs.base.modules.transformer import Transformer

    with pytest.raises(ValueError, match=r"transformer_task='retrieval' needs a transformers \*ForRetrieval"):
        Transformer(tiny_bert_dir, transformer_task="retrieval")
    no_architecture = tmp_path / "bare"
    for file in os.listdir(tiny_bert_dir):
        (no_architecture / file).parent.mkdir(exist_ok=True)
        (no_architecture / file).write_bytes((Path(tiny_bert_dir) / file).read_bytes())
    config = AutoConfig.from_pretrained(tiny_bert_dir)
    config.architectures = None
    config.save_pretrained(no_architecture)
    with pytest.raises(ValueError, match="architectures=\\[\\]"):
        Transformer(str(no_architecture), transformer_task="retrieval")
    with pytest.raises(ValueError, match="Could not resolve a retrieval model class"):
        RefTransformer(str(no_architecture), transformer_task="retrieval")


@pytest.mark.parametrize("backend", ["onnx", "openvino"])
def test_non_torch_backend_is_a_clear_error(retrieval_dirs: dict[str, str], backend: str) -> None:
    """Neither library runs a *ForRetrieval model outside torch (the reference has no exporter task for it)."""
    from sentrs.base.modules.transformer import Transformer
    from sentrs.exceptions import UnsupportedFeatureError

    expected = rf"transformer_task='retrieval' .* backend='torch' only, got backend='{backend}'"
    with pytest.raises(UnsupportedFeatureError, match=expected):
        sentrs.MultiVectorEncoder(retrieval_dirs["colpali"], backend=backend)
    with pytest.raises(UnsupportedFeatureError, match=expected):
        Transformer(retrieval_dirs["colpali"], transformer_task="retrieval", backend=backend)
