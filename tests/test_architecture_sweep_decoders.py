"""Parity sweep over decoder (LLM-style) architectures and their tokenizers: sentrs against the reference.

Every architecture is a tiny random model (2 layers, hidden 32, seeded) with a tokenizer trained here with the
`tokenizers` library in the style of its real checkpoints, wrapped in the transformers class they ship with:

- ``qwen2`` / ``qwen3``: byte-level BPE, no BOS, pad ``<|endoftext|>`` (Qwen2Tokenizer);
- ``qwen3-eos``: the same, with ``<|endoftext|>`` appended by the post-processor, as Qwen3-Embedding's tokenizer does
  (last-token pooling then reads that token, and the prompt length drops it);
- ``llama``: byte-level BPE (Llama 3 style) whose post-processor prepends ``<s>``, pad = eos (PreTrainedTokenizerFast);
- ``mistral``: SentencePiece-style BPE (Metaspace, byte fallback), BOS ``<s>``, pad = unk (LlamaTokenizer);
- ``gemma``: Gemma-style BPE (spaces replaced by ``▁``, byte fallback), BOS ``<bos>``, pad ``<pad>`` (GemmaTokenizer);
- ``phi3``: SentencePiece-style BPE, BOS ``<s>``, pad ``<|endoftext|>`` (LlamaTokenizer, as Phi-3 ships);
- ``gpt2``: byte-level BPE with no pad token at all (GPT2Tokenizer).

Each folder is saved twice, with ``padding_side`` "right" and "left" in its ``tokenizer_config.json`` (Qwen3-Embedding
pads on the left). Both libraries load the very same folder and run the same transformers model in torch on the same
ids, so embeddings and scores agree to atol 1e-5 (float32 rounding of one computation; in practice identical); ids,
masks and rankings must be identical.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sentence_transformers
import torch

import sentrs

ATOL = 1e-5

ARCHS = ["qwen2", "qwen3", "qwen3-eos", "llama", "mistral", "gemma", "phi3", "gpt2"]
PADDED_ARCHS = [a for a in ARCHS if a != "gpt2"]
SIDES = ["right", "left"]
MAX_POSITIONS = 48  # caps max_seq_length, so the long text below is truncated

LONG = "the quick brown fox jumps over the lazy dog while the river runs past the bank " * 12
ODD_TEXTS = [
    "",
    "   ",
    "\n\t",
    "🤖🎉 emoji only 👍🏽",
    "日本語のテキストと中文的句子",
    "café naïve résumé",
    LONG,
    "a",
    "What is the capital of France? Paris is the capital of France.",
]
PROMPTS = {"query": "Instruct: Given a question, retrieve passages that answer it\nQuery: ", "document": ""}
PAIRS = [
    ("what is the capital of france ?", "paris is the capital of france , a city on a river"),
    ("fox", "the quick brown fox jumps over the lazy dog"),
    ("", "an empty query"),
    ("日本語", "🤖 " + LONG),
    ("what is a bank", "money in the bank"),
]

_CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "what is the capital of france ? paris is the capital of france , a city on a river",
    "Instruct: Given a question, retrieve passages that answer it\nQuery: what is a bank",
    "money in the bank while the river runs past the bank",
    "café naïve résumé 🤖🎉👍🏽 日本語のテキストと中文的句子",
    "yes no relevant document query judge answer",
    "yes",
    "no",
]


def _train(tokenizer: Any, specials: list[str], vocab_size: int, alphabet: list[str] | None = None) -> None:
    from tokenizers import trainers

    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet or [])
    tokenizer.train_from_iterator(_CORPUS * 10, trainer=trainer)


def _byte_level(specials: list[str], bos: str | None, eos: str | None = None) -> Any:
    """A GPT-2/Qwen/Llama 3 style tokenizer: byte-level BPE; ``bos`` prepended or ``eos`` appended by the
    post-processor when given."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    _train(tok, specials, 400, pre_tokenizers.ByteLevel.alphabet())
    if eos is not None:
        eos_id = tok.token_to_id(eos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"$A {eos}", pair=f"$A {eos} $B:1 {eos}:1", special_tokens=[(eos, eos_id)]
        )
    elif bos is None:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    else:
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    return tok


def _sentencepiece_style(specials: list[str], bos: str, gemma: bool) -> Any:
    """A Llama 2/Mistral (Metaspace) or Gemma (spaces as ``▁``) style BPE with byte fallback, ``bos`` first."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    if gemma:
        tok.normalizer = normalizers.Replace(" ", "▁")
        tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    else:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    _train(tok, specials + [f"<0x{i:02X}>" for i in range(256)], 600)
    bos_id = tok.token_to_id(bos)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
    )
    return tok


def _tokenizer(arch: str, padding_side: str) -> Any:
    """The arch's tokenizer in the transformers class its real checkpoints ship with."""
    import transformers

    if arch in ("qwen2", "qwen3", "qwen3-eos"):
        eos = "<|endoftext|>" if arch == "qwen3-eos" else None
        tok = _byte_level(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], bos=None, eos=eos)
        return transformers.Qwen2Tokenizer(
            tokenizer_object=tok,
            pad_token="<|endoftext|>",
            eos_token="<|im_end|>",
            unk_token=None,
            bos_token=None,
            padding_side=padding_side,
        )
    if arch == "llama":
        tok = _byte_level(["<unk>", "<s>", "</s>"], bos="<s>")
        return transformers.PreTrainedTokenizerFast(
            tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>", padding_side=padding_side
        )
    if arch == "mistral":
        tok = _sentencepiece_style(["<unk>", "<s>", "</s>"], "<s>", gemma=False)
        return transformers.LlamaTokenizer(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="</s>",
            unk_token="<unk>",
            pad_token="<unk>",
            padding_side=padding_side,
        )
    if arch == "phi3":
        tok = _sentencepiece_style(["<unk>", "<s>", "</s>", "<|endoftext|>"], "<s>", gemma=False)
        return transformers.LlamaTokenizer(
            tokenizer_object=tok,
            bos_token="<s>",
            eos_token="<|endoftext|>",
            unk_token="<unk>",
            pad_token="<|endoftext|>",
            padding_side=padding_side,
        )
    if arch == "gemma":
        tok = _sentencepiece_style(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], "<bos>", gemma=True)
        return transformers.GemmaTokenizer(tokenizer_object=tok, padding_side=padding_side)
    if arch == "gpt2":
        tok = _byte_level(["<|endoftext|>"], bos=None)
        return transformers.GPT2Tokenizer(tokenizer_object=tok, padding_side=padding_side)
    raise AssertionError(arch)


def _config(arch: str, tokenizer: Any) -> Any:
    import transformers

    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if arch == "gpt2":
        return transformers.GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=MAX_POSITIONS, **common)
    common.update(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
    )
    classes = {
        "qwen2": transformers.Qwen2Config,
        "qwen3": transformers.Qwen3Config,
        "llama": transformers.LlamaConfig,
        "mistral": transformers.MistralConfig,
        "gemma": transformers.GemmaConfig,
        "phi3": transformers.Phi3Config,
    }
    model_type = arch.split("-")[0]
    if model_type in ("qwen3", "gemma"):
        common["head_dim"] = 8
    return classes[model_type](**common)


def _build(folder: Path, arch: str, padding_side: str, head: str) -> str:
    """Saves a seeded tiny ``arch`` model (``head``: "base", "seq-cls" or "causal-lm") with its tokenizer."""
    import transformers

    tokenizer = _tokenizer(arch, padding_side)
    config = _config(arch, tokenizer)
    config.initializer_range = 0.2  # wide weights: well-separated scores, so rankings do not hinge on rounding
    if head == "seq-cls":
        config.num_labels = 1
    model_class = {
        "base": transformers.AutoModel,
        "seq-cls": transformers.AutoModelForSequenceClassification,
        "causal-lm": transformers.AutoModelForCausalLM,
    }[head]
    torch.manual_seed(0)
    model_class.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def arch_folder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``arch_folder(arch, padding_side, head="base")``: a plain transformers folder, built once per session."""
    cache: dict[tuple[str, str, str], str] = {}

    def get(arch: str, padding_side: str, head: str = "base") -> str:
        key = (arch, padding_side, head)
        if key not in cache:
            cache[key] = _build(tmp_path_factory.mktemp(f"{arch}_{padding_side}_{head}"), arch, padding_side, head)
        return cache[key]

    return get


def _st_pair(
    folder: str, pooling_mode: str = "lasttoken", include_prompt: bool = True, **transformer_kwargs: Any
) -> tuple[Any, Any]:
    """The same explicit Transformer + Pooling + Normalize model in the reference and in sentrs."""
    from sentence_transformers.base.modules import Normalize as RefNormalize
    from sentence_transformers.base.modules import Transformer as RefTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling

    from sentrs.base.modules import Normalize, Transformer
    from sentrs.sentence_transformer.modules import Pooling

    ref_t = RefTransformer(folder, **transformer_kwargs)
    ref = sentence_transformers.SentenceTransformer(
        modules=[
            ref_t,
            RefPooling(ref_t.get_embedding_dimension(), pooling_mode, include_prompt=include_prompt),
            RefNormalize(),
        ],
        device="cpu",
        prompts=PROMPTS,
    )
    our_t = Transformer(folder, **transformer_kwargs)
    ours = sentrs.SentenceTransformer(
        modules=[
            our_t,
            Pooling(our_t.get_embedding_dimension(), pooling_mode, include_prompt=include_prompt),
            Normalize(),
        ],
        device="cpu",
        prompts=PROMPTS,
    )
    return ref, ours


def _assert_close(got: Any, expected: Any) -> None:
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=ATOL, rtol=0, equal_nan=True)


def _both_outcomes(call_ref: Any, call_ours: Any) -> tuple[Any, Any]:
    """Runs both calls; when the reference raises, sentrs must raise too (the same exception type family)."""
    try:
        expected = call_ref()
    except Exception as ref_error:
        with pytest.raises(Exception) as our_error:
            call_ours()
        assert isinstance(our_error.value, type(ref_error)) or isinstance(ref_error, type(our_error.value)), (
            f"reference raised {ref_error!r}, sentrs raised {our_error.value!r}"
        )
        return None, None
    return expected, call_ours()


@pytest.fixture(scope="session")
def st_pair(arch_folder: Any) -> Any:
    """``st_pair(arch, side, pooling_mode="lasttoken", include_prompt=True)``: (reference, sentrs), built once."""
    cache: dict[tuple[Any, ...], tuple[Any, Any]] = {}

    def get(arch: str, side: str, pooling_mode: str = "lasttoken", include_prompt: bool = True) -> tuple[Any, Any]:
        key = (arch, side, pooling_mode, include_prompt)
        if key not in cache:
            cache[key] = _st_pair(arch_folder(arch, side), pooling_mode, include_prompt)
        return cache[key]

    return get


# ------------------------------------------------------------------------------------------ SentenceTransformer
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_preprocess_ids_and_masks(st_pair: Any, arch: str, side: str) -> None:
    ref, ours = st_pair(arch, side)
    assert ours[0].tokenizer.padding_side == ref[0].tokenizer.padding_side == side
    assert ours.max_seq_length == ref.max_seq_length == MAX_POSITIONS
    for prompt in (None, PROMPTS["query"]):
        expected = ref.preprocess(ODD_TEXTS, prompt=prompt)
        got = ours.preprocess(ODD_TEXTS, prompt=prompt)
        assert got["input_ids"].tolist() == expected["input_ids"].tolist()
        assert got["attention_mask"].tolist() == expected["attention_mask"].tolist()
        assert got.get("prompt_length") == expected.get("prompt_length")


@pytest.mark.parametrize("pooling_mode", ["lasttoken", "mean"])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_encode_odd_texts(st_pair: Any, arch: str, side: str, pooling_mode: str) -> None:
    """Odd texts in one batch, in batches of 3 and one at a time, with and without the query prompt; atol 1e-5."""
    ref, ours = st_pair(arch, side, pooling_mode)
    for kwargs in ({}, {"prompt_name": "query"}, {"prompt": "Query: "}):
        _assert_close(ours.encode(ODD_TEXTS, **kwargs), ref.encode(ODD_TEXTS, **kwargs))
        _assert_close(ours.encode(ODD_TEXTS, batch_size=3, **kwargs), ref.encode(ODD_TEXTS, batch_size=3, **kwargs))
    _assert_close(ours.encode_query(ODD_TEXTS[3:6]), ref.encode_query(ODD_TEXTS[3:6]))
    _assert_close(ours.encode_document(ODD_TEXTS[3:6]), ref.encode_document(ODD_TEXTS[3:6]))
    for text in ODD_TEXTS:
        expected, got = _both_outcomes(lambda: ref.encode(text), lambda: ours.encode(text))  # noqa: B023
        if expected is not None:
            _assert_close(got, expected)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_encode_without_prompt_tokens_in_pooling(st_pair: Any, arch: str, side: str) -> None:
    """``Pooling(include_prompt=False)`` drops the prompt's tokens from mean pooling; atol 1e-5."""
    ref, ours = st_pair(arch, side, "mean", False)
    texts = [t for t in ODD_TEXTS if t]
    _assert_close(ours.encode(texts, prompt_name="query"), ref.encode(texts, prompt_name="query"))
    _assert_close(ours.encode(texts), ref.encode(texts))


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_token_embeddings(st_pair: Any, arch: str, side: str) -> None:
    ref, ours = st_pair(arch, side)
    expected = ref.encode(ODD_TEXTS, output_value="token_embeddings", prompt_name="query")
    got = ours.encode(ODD_TEXTS, output_value="token_embeddings", prompt_name="query")
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        _assert_close(g.numpy(), e.numpy())


EDGE_BATCHES = {
    "special-token-text": ["hello <|endoftext|> world <s> </s> <bos> <pad>", "<|im_start|>user"],
    "control-characters": ["a\x00b\r\n\u200b\ufeffc", "\u0301", "e\u0301"],
    "only-empty": ["", ""],  # Qwen adds no special token: a batch of width 0, which its attention cannot reshape
    "one-huge-text": ["x" * 20000, "y"],
}


@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_encode_edge_inputs(st_pair: Any, arch: str) -> None:
    """Special-token strings inside texts, control characters, batches of empty strings only (both libraries raise
    the same error where the model cannot run a width-0 batch), a huge text; then a max_seq_length set below the
    prompt's length and left truncation. atol 1e-5; ids identical."""
    ref, ours = st_pair(arch, "left", "mean", False)
    for name, texts in EDGE_BATCHES.items():
        expected, got = _both_outcomes(lambda: ref.encode(texts), lambda: ours.encode(texts))  # noqa: B023
        if expected is not None:
            _assert_close(got, expected)
        elif name != "only-empty":
            raise AssertionError(f"the reference failed on {name}")
    ref, ours = _st_pair(ref[0].auto_model.name_or_path, "mean", include_prompt=False)
    for max_seq_length, truncation_side in ((5, "right"), (12, "left")):
        for model in (ref, ours):
            model.max_seq_length = max_seq_length
            model[0].tokenizer.truncation_side = truncation_side
        texts = [LONG, "hi fox", ""]
        expected_features = ref.preprocess(texts, prompt=PROMPTS["query"])
        got_features = ours.preprocess(texts, prompt=PROMPTS["query"])
        assert got_features["input_ids"].tolist() == expected_features["input_ids"].tolist()
        _assert_close(ours.encode(texts, prompt_name="query"), ref.encode(texts, prompt_name="query"))


def test_text_that_is_not_utf8_names_its_input(st_pair: Any, arch_folder: Any) -> None:
    """A lone surrogate cannot reach a tokenizer: the reference fails with tokenizers' bare TypeError; sentrs names
    the input and the character (a ValueError, as UnicodeEncodeError is), for texts and pairs (chat-rendered rows:
    test_llm_reranker)."""
    ref, ours = st_pair("qwen3", "left")
    texts = ["fine", "bad \ud800 text"]
    with pytest.raises(TypeError):
        ref.encode(texts)
    with pytest.raises(ValueError, match=r"input 1 is not valid Unicode text: surrogates not allowed \('\\ud800' at "):
        ours.encode(texts)
    pairs = [("fine", "fine"), ("query", "bad \udfff document")]
    with pytest.raises(ValueError, match=r"input 1 is not valid Unicode text"):
        sentrs.CrossEncoder(arch_folder("qwen3", "left", "seq-cls"), device="cpu").predict(pairs)
    with pytest.raises(TypeError):
        sentence_transformers.CrossEncoder(arch_folder("qwen3", "left", "seq-cls"), device="cpu").predict(pairs)


@pytest.mark.parametrize("arch", ["qwen3", "mistral"])
def test_padding_side_from_processor_kwargs(arch_folder: Any, arch: str) -> None:
    """``processor_kwargs={"padding_side": "left"}`` on a right-padding folder pads on the left in both libraries."""
    ref, ours = _st_pair(arch_folder(arch, "right"), processor_kwargs={"padding_side": "left"})
    assert ours[0].tokenizer.padding_side == ref[0].tokenizer.padding_side == "left"
    expected = ref.preprocess(ODD_TEXTS)
    got = ours.preprocess(ODD_TEXTS)
    assert got["input_ids"].tolist() == expected["input_ids"].tolist()
    mask = got["attention_mask"]
    assert bool(mask[mask.sum(1) > 0, -1].all())  # every row with a token ends in one (Qwen's "" has none)
    _assert_close(ours.encode(ODD_TEXTS), ref.encode(ODD_TEXTS))


def test_gpt2_without_pad_token_fails_alike(arch_folder: Any) -> None:
    """GPT-2 ships without a pad token: the reference's padded tokenizer call refuses every batch, even one text, and
    so does sentrs (it used to pad with id 0). With ``pad_token = eos_token`` set on both, they agree (atol 1e-5)."""
    ref, ours = _st_pair(arch_folder("gpt2", "right"))
    assert ours[0].tokenizer.pad_token is None and ref[0].tokenizer.pad_token is None
    for texts in (["hello world"], ["hello world", "a much longer text than the first one"]):
        with pytest.raises(ValueError, match="pad"):
            ref.encode(texts)
        with pytest.raises(ValueError, match="has no pad token"):
            ours.encode(texts)
        with pytest.raises(ValueError, match="has no pad token"):
            ours.preprocess(texts)
    for model in (ref, ours):
        model[0].tokenizer.pad_token = model[0].tokenizer.eos_token
    _assert_close(ours.encode(ODD_TEXTS), ref.encode(ODD_TEXTS))

    ce_folder = arch_folder("gpt2", "right", "seq-cls")
    with pytest.raises(ValueError, match="pad"):
        sentence_transformers.CrossEncoder(ce_folder, device="cpu").predict(PAIRS[:1])
    with pytest.raises(ValueError, match="has no pad token"):
        sentrs.CrossEncoder(ce_folder, device="cpu").predict(PAIRS[:1])


@pytest.mark.parametrize("arch", ["qwen3", "gemma", "llama"])
def test_bfloat16_weights(arch_folder: Any, arch: str) -> None:
    """bf16 weights (``model_kwargs={"dtype": torch.bfloat16}``): pooled in float32 as the reference (6.2) pools; the
    same bf16 forward pass, so atol 1e-5 still holds."""
    for pooling_mode in ("lasttoken", "mean", "weightedmean"):
        ref, ours = _st_pair(arch_folder(arch, "left"), pooling_mode, model_kwargs={"dtype": torch.bfloat16})
        expected = ref.encode(ODD_TEXTS, prompt_name="query")
        got = ours.encode(ODD_TEXTS, prompt_name="query")
        assert got.dtype == expected.dtype == np.float32
        _assert_close(got, expected)


@pytest.mark.parametrize("arch", ["llama", "gemma", "gpt2"])
def test_torch_free_tokenizer(arch_folder: Any, arch: str) -> None:
    """The exported-model engine's own tokenizer (no transformers) gives the reference's ids for the folders it takes;
    a tokenizer without a pad token goes to the torch path (which raises the reference's error) instead of padding
    with id 0."""
    from sentrs.base.engine.tokenizer import FolderTokenizer, NeedsTorch

    for side in SIDES:
        folder = arch_folder(arch, side)
        if arch == "gpt2":
            with pytest.raises(NeedsTorch, match="no pad token"):
                FolderTokenizer(folder, max_position_embeddings=MAX_POSITIONS)
            continue
        tokenizer = FolderTokenizer(folder, max_position_embeddings=MAX_POSITIONS)
        ref, _ = _st_pair(folder)
        for prompt in ("", PROMPTS["query"]):
            input_ids, attention_mask, _ = tokenizer.encode([prompt + text for text in ODD_TEXTS]).pad(None)
            expected = ref.preprocess(ODD_TEXTS, prompt=prompt or None)
            assert input_ids.tolist() == expected["input_ids"].tolist()
            assert attention_mask.tolist() == expected["attention_mask"].tolist()


# ------------------------------------------------------------------------------------------ saved folders
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_folders_load_both_ways(arch_folder: Any, tmp_path: Path, arch: str) -> None:
    """A folder saved by either library loads in the other with the same outputs (atol 1e-5)."""
    ref, ours = _st_pair(arch_folder(arch, "left"), "lasttoken")
    ref.save(str(tmp_path / "by_ref"))
    ours.save(str(tmp_path / "by_ours"))
    texts = ODD_TEXTS[1:]
    for folder in ("by_ref", "by_ours"):
        ref_loaded = sentence_transformers.SentenceTransformer(str(tmp_path / folder), device="cpu")
        ours_loaded = sentrs.SentenceTransformer(str(tmp_path / folder), device="cpu")
        assert ours_loaded[0].tokenizer.padding_side == ref_loaded[0].tokenizer.padding_side == "left"
        assert ours_loaded.prompts == ref_loaded.prompts == PROMPTS
        expected = ref.encode(texts, prompt_name="query")
        _assert_close(ref_loaded.encode(texts, prompt_name="query"), expected)
        _assert_close(ours_loaded.encode(texts, prompt_name="query"), expected)


QWEN3_EMBEDDING_PROMPTS = {
    "query": "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:",
    "document": "",
}


@pytest.mark.parametrize("side", SIDES)
def test_qwen3_embedding_like_folder(arch_folder: Any, tmp_path: Path, side: str) -> None:
    """A Qwen3-Embedding-shaped folder (Transformer + lasttoken Pooling + Normalize, prompts in
    config_sentence_transformers.json, the tokenizer's padding_side saved) written by the reference loads in sentrs
    with identical outputs (atol 1e-5), and the one sentrs writes from it loads in the reference; both write the same
    configuration files."""
    from sentence_transformers.base.modules import Normalize as RefNormalize
    from sentence_transformers.base.modules import Transformer as RefTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling as RefPooling

    transformer = RefTransformer(arch_folder("qwen3-eos", side))
    ref = sentence_transformers.SentenceTransformer(
        modules=[transformer, RefPooling(transformer.get_embedding_dimension(), "lasttoken"), RefNormalize()],
        prompts=QWEN3_EMBEDDING_PROMPTS,
        similarity_fn_name="cosine",
        device="cpu",
    )
    ref.save(str(tmp_path / "by_ref"))
    assert json.loads((tmp_path / "by_ref" / "tokenizer_config.json").read_text())["padding_side"] == side

    ours = sentrs.SentenceTransformer(str(tmp_path / "by_ref"), device="cpu")
    assert ours.prompts == ref.prompts
    assert [type(m).__name__ for m in ours] == ["Transformer", "Pooling", "Normalize"]
    queries = ["What is the capital of China?", "Explain gravity", "", "🤖 日本語"]
    documents = ["The capital of China is Beijing.", LONG, "   "]
    q_ref, d_ref = ref.encode_query(queries), ref.encode_document(documents)
    q_ours, d_ours = ours.encode_query(queries), ours.encode_document(documents)
    _assert_close(q_ours, q_ref)
    _assert_close(d_ours, d_ref)
    _assert_close(ours.similarity(q_ours, d_ours).numpy(), ref.similarity(q_ref, d_ref).numpy())

    ours.save(str(tmp_path / "by_ours"))
    back = sentence_transformers.SentenceTransformer(str(tmp_path / "by_ours"), device="cpu")
    assert back[0].tokenizer.padding_side == side
    _assert_close(back.encode_query(queries), q_ref)
    _assert_close(back.encode_document(documents), d_ref)
    for name in ("modules.json", "sentence_bert_config.json", "1_Pooling/config.json", "tokenizer_config.json"):
        assert json.loads((tmp_path / "by_ours" / name).read_text()) == json.loads(
            (tmp_path / "by_ref" / name).read_text()
        ), name
    ref_config = json.loads((tmp_path / "by_ref" / "config_sentence_transformers.json").read_text())
    our_config = json.loads((tmp_path / "by_ours" / "config_sentence_transformers.json").read_text())
    for key in ("prompts", "default_prompt_name", "similarity_fn_name", "model_type"):
        assert our_config.get(key) == ref_config.get(key), key


# ------------------------------------------------------------------------------------------ CrossEncoder
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", PADDED_ARCHS)
def test_cross_encoder_sequence_classification(arch_folder: Any, arch: str, side: str) -> None:
    """A ``*ForSequenceClassification`` head (num_labels 1, pad_token_id in the config): predict and rank agree
    (scores atol 1e-5, identical ranking), in one batch and in batches of 2."""
    folder = arch_folder(arch, side, "seq-cls")
    ref = sentence_transformers.CrossEncoder(folder, device="cpu")
    ours = sentrs.CrossEncoder(folder, device="cpu")
    assert ours[0].tokenizer.padding_side == ref[0].tokenizer.padding_side
    expected = ref.preprocess(PAIRS)
    got = ours.preprocess(PAIRS)
    assert got["input_ids"].tolist() == expected["input_ids"].tolist()
    assert got["attention_mask"].tolist() == expected["attention_mask"].tolist()
    _assert_close(ours.predict(PAIRS), ref.predict(PAIRS))
    _assert_close(ours.predict(PAIRS, batch_size=2), ref.predict(PAIRS, batch_size=2))
    _assert_close(ours.predict(PAIRS[0]), ref.predict(PAIRS[0]))
    query, documents = "what is the capital of france ?", [doc for _, doc in PAIRS]
    expected_rank = ref.rank(query, documents, return_documents=True)
    got_rank = ours.rank(query, documents, return_documents=True)
    assert [h["corpus_id"] for h in got_rank] == [h["corpus_id"] for h in expected_rank]
    _assert_close([h["score"] for h in got_rank], [h["score"] for h in expected_rank])


@pytest.mark.parametrize("arch", ["qwen3", "gemma", "mistral"])
def test_cross_encoder_truncation_and_prompt(arch_folder: Any, arch: str) -> None:
    """``max_length`` 8 and 16 cut the pairs longest-first around the BOS/EOS template; with a prompt too. Ids
    identical, scores atol 1e-5."""
    folder = arch_folder(arch, "left", "seq-cls")
    for max_length in (8, 16):
        ref = sentence_transformers.CrossEncoder(folder, device="cpu", max_length=max_length)
        ours = sentrs.CrossEncoder(folder, device="cpu", max_length=max_length)
        for prompt in (None, "Judge: "):
            expected = ref.preprocess(PAIRS, prompt=prompt)
            got = ours.preprocess(PAIRS, prompt=prompt)
            assert got["input_ids"].tolist() == expected["input_ids"].tolist()
            _assert_close(ours.predict(PAIRS, prompt=prompt), ref.predict(PAIRS, prompt=prompt))


QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "<|im_start|>assistant\n"
)


@pytest.mark.parametrize("chat_template", [False, True], ids=["plain", "chat"])
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("arch", ["qwen3", "gemma"])
def test_llm_reranker(arch_folder: Any, tmp_path: Path, arch: str, side: str, chat_template: bool) -> None:
    """A causal LM scored by LogitScore ("yes" minus "no" at the last position, left padding forced on load): scores
    atol 1e-5 and rankings identical, with and without a prompt, plain pairs or through a chat template."""
    import shutil

    folder = arch_folder(arch, side, "causal-lm")
    if chat_template:
        folder = shutil.copytree(folder, tmp_path / "chat")
        config = json.loads((folder / "tokenizer_config.json").read_text())
        config["chat_template"] = QWEN_CHAT_TEMPLATE
        (folder / "tokenizer_config.json").write_text(json.dumps(config))
        folder = str(folder)
    ref = sentence_transformers.CrossEncoder(folder, device="cpu")
    ours = sentrs.CrossEncoder(folder, device="cpu")
    assert [type(m).__name__ for m in ours] == ["Transformer", "LogitScore"]
    if chat_template:  # a cut row gets the template's closing tokens written back over its end
        short_ref = sentence_transformers.CrossEncoder(folder, device="cpu", max_length=12)
        short_ours = sentrs.CrossEncoder(folder, device="cpu", max_length=12)
        expected = short_ref.preprocess(PAIRS, prompt="Judge: ")
        assert short_ours.preprocess(PAIRS, prompt="Judge: ")["input_ids"].tolist() == expected["input_ids"].tolist()
        _assert_close(short_ours.predict(PAIRS, prompt="Judge: "), short_ref.predict(PAIRS, prompt="Judge: "))
        with pytest.raises(ValueError, match=r"input 1 is not valid Unicode text"):
            ours.predict([("fine", "fine"), ("query", "bad \udfff document")])
    assert ours[1].get_config_dict() == ref[1].get_config_dict()
    assert ours[0].tokenizer.padding_side == ref[0].tokenizer.padding_side == "left"
    for prompt in (None, "Judge whether the document answers the query. "):
        expected = ref.preprocess(PAIRS, prompt=prompt)
        got = ours.preprocess(PAIRS, prompt=prompt)
        assert got["input_ids"].tolist() == expected["input_ids"].tolist()
        assert got["attention_mask"].tolist() == expected["attention_mask"].tolist()
        _assert_close(ours.predict(PAIRS, prompt=prompt), ref.predict(PAIRS, prompt=prompt))
        _assert_close(
            ours.predict(PAIRS, prompt=prompt, batch_size=2), ref.predict(PAIRS, prompt=prompt, batch_size=2)
        )
    query, documents = "what is a bank", [doc for _, doc in PAIRS]
    expected_rank = ref.rank(query, documents)
    got_rank = ours.rank(query, documents)
    assert [h["corpus_id"] for h in got_rank] == [h["corpus_id"] for h in expected_rank]
    _assert_close([h["score"] for h in got_rank], [h["score"] for h in expected_rank])
