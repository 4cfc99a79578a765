"""Parity sweep over encoder architectures beyond the BERT fixtures, on odd inputs.

Each architecture gets a tiny random model (hidden 32, 2 layers, 2 heads, seeded) and a tokenizer of the kind it
really uses, trained in the test with the `tokenizers` library and wrapped in its transformers tokenizer class (which
adds the architecture's own normalizer, pre-tokenizer, special tokens and post-processor template):

- WordPiece: BERT, DistilBERT, ELECTRA, MPNet (MPNet's ``<s> $A </s>`` RoBERTa-style template);
- byte-level BPE: RoBERTa; ModernBERT (a ``PreTrainedTokenizerFast`` with ``[CLS] $A [SEP]``, as its checkpoints);
- Unigram with the "▁" metaspace pre-tokenizer: XLM-RoBERTa, CamemBERT, ALBERT, DeBERTa-v2, T5 and mT5 (``$A </s>``).

Every test compares sentrs with the reference (sentence-transformers 6.2) on the same folder in the same test.
Tolerance: 1e-5 absolute on float32 outputs of a 2-layer model whose activations are O(1): both libraries run the
same torch modules on the same ids, so only summation order (batch composition, pooling on the host) differs, which
moves values by about 1e-7. Token ids, masks, active sparse dimensions and rank orders must be identical.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs

ATOL = 1e-5
MAX_SEQ_LENGTH = 24

# Odd texts: empty, whitespace only, unicode (accents, emoji, CJK), far longer than max_seq_length, mixed case,
# punctuation runs, one character.
ODD_TEXTS = [
    "Hello world, this is a test.",
    "",
    "   ",
    "\t\n  \u3000",
    "Café naïve résumé — Ünïcödé Ångström",
    "emoji 🤖🎉👍🏽 and CJK 日本語のテキスト 中文句子 한국어",
    "the quick brown fox jumps over the lazy dog " * 30,
    "MiXeD CaSe WoRdS AnD ACRONYMS like NASA",
    "!!!???...,,,;;;---***",
    "x",
    "tabs\tand\nnewlines\r\nhere",
    "numbers 3.14159 and 1,000,000 or 42%",
    "zero\u200bwidth, combining e\u0301, control\x00\x7f, ＦＵＬＬＷＩＤＴＨ, ﬁ ß İstanbul, \u00a0nbsp",
    "special tokens as text: [CLS] [SEP] [MASK] <s> </s> <pad> <mask> ##ing",
]

CORPUS_WORDS = (
    "the quick brown fox jumps over a lazy dog while hello world test this is sentence query document "
    "café naïve résumé mixed case words acronyms numbers tabs newlines here long short emoji and like"
).split()


def _corpus() -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(CORPUS_WORDS, size=10)) for _ in range(300)] + ODD_TEXTS


# ---------------------------------------------------------------------------------------------------------------------
# Tokenizers


def _wordpiece_vocab(specials: list[str]) -> dict[str, int]:
    from tokenizers import BertWordPieceTokenizer

    wp = BertWordPieceTokenizer(lowercase=True)
    wp.train_from_iterator(_corpus(), vocab_size=400, special_tokens=specials, min_frequency=1)
    return dict(wp.get_vocab())


def _unigram_vocab(specials: list[str], tail: tuple[str, ...] = ()) -> list[tuple[str, float]]:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    unk = next(t for t in specials if "unk" in t.lower())
    trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=specials, unk_token=unk)
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    trained = [(str(piece), float(score)) for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]]
    # The trainer orders pieces of equal score differently from run to run: sort them (as SentencePiece files are,
    # best first) so every run builds the same tokenizer. Scores keep 4 decimals, which every JSON parser reads back
    # exactly (test_unigram_scores_read_exactly covers full-precision scores).
    pieces = sorted(((p, round(v, 4)) for p, v in trained if p not in specials), key=lambda item: (-item[1], item[0]))
    return [(p, v) for p, v in trained if p in specials] + pieces + [(t, 0.0) for t in tail]


def _bytelevel_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_corpus(), vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    spec = json.loads(bpe._tokenizer.to_str())
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in spec["model"]["merges"]]
    return dict(spec["model"]["vocab"]), merges  # type: ignore[return-value]


def _modernbert_tokenizer() -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_corpus(), trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:0 [SEP]:0",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=True,
    )


def _build_tokenizer(arch: str) -> Any:
    import transformers as tf

    bert_specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    roberta_specials = ["<s>", "<pad>", "</s>", "<unk>"]
    if arch in ("bert", "electra"):
        cls = tf.BertTokenizerFast if arch == "bert" else tf.ElectraTokenizerFast
        return cls(vocab=_wordpiece_vocab(bert_specials))
    if arch == "distilbert":
        return tf.DistilBertTokenizerFast(vocab=_wordpiece_vocab(bert_specials))
    if arch == "mpnet":
        return tf.MPNetTokenizerFast(vocab=_wordpiece_vocab(["<s>", "<pad>", "</s>", "[UNK]", "<mask>"]))
    if arch == "roberta":
        vocab, merges = _bytelevel_bpe()
        return tf.RobertaTokenizerFast(vocab=vocab, merges=merges)
    if arch == "xlm-roberta":
        return tf.XLMRobertaTokenizerFast(vocab=_unigram_vocab(roberta_specials, tail=("<mask>",)))
    if arch == "camembert":
        specials = ["<s>NOTUSED", "<pad>", "</s>NOTUSED", "<unk>", "<unk>NOTUSED", "<s>", "</s>"]
        return tf.CamembertTokenizerFast(vocab=_unigram_vocab(specials, tail=("<mask>",)))
    if arch == "albert":
        return tf.AlbertTokenizerFast(vocab=_unigram_vocab(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"]))
    if arch == "deberta-v2":
        return tf.DebertaV2TokenizerFast(vocab=_unigram_vocab(bert_specials))
    if arch in ("t5", "mt5"):
        extra = 4
        vocab = _unigram_vocab(["<pad>", "</s>", "<unk>"], tail=tuple(f"<extra_id_{i}>" for i in range(extra)))
        return tf.T5TokenizerFast(vocab=vocab, extra_ids=extra)
    if arch == "modernbert":
        return _modernbert_tokenizer()
    raise AssertionError(arch)


# ---------------------------------------------------------------------------------------------------------------------
# Models

SMALL = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 32, "intermediate_size": 64}


def _config(arch: str, tok: Any, num_labels: int | None) -> Any:
    import transformers as tf

    vocab = len(tok)
    ids = {"pad_token_id": tok.pad_token_id}
    extra: dict[str, Any] = {} if num_labels is None else {"num_labels": num_labels}
    if arch in ("bert", "electra", "albert"):
        cls = {"bert": tf.BertConfig, "electra": tf.ElectraConfig, "albert": tf.AlbertConfig}[arch]
        emb = {} if arch == "bert" else {"embedding_size": 16}
        return cls(vocab_size=vocab, max_position_embeddings=64, **SMALL, **emb, **ids, **extra)
    if arch in ("roberta", "xlm-roberta", "camembert"):
        cls = {"roberta": tf.RobertaConfig, "xlm-roberta": tf.XLMRobertaConfig, "camembert": tf.CamembertConfig}[arch]
        return cls(
            vocab_size=vocab,
            max_position_embeddings=MAX_SEQ_LENGTH + 2 + 40,
            type_vocab_size=1,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **SMALL,
            **ids,
            **extra,
        )
    if arch == "distilbert":
        return tf.DistilBertConfig(
            vocab_size=vocab, dim=32, n_layers=2, n_heads=2, hidden_dim=64, max_position_embeddings=64, **ids, **extra
        )
    if arch == "mpnet":
        return tf.MPNetConfig(vocab_size=vocab, max_position_embeddings=66, **SMALL, **ids, **extra)
    if arch == "deberta-v2":
        # The DeBERTa-v3 layout: relative attention only, log buckets, shared keys.
        return tf.DebertaV2Config(
            vocab_size=vocab,
            max_position_embeddings=64,
            relative_attention=True,
            position_biased_input=False,
            pos_att_type=["p2c", "c2p"],
            position_buckets=16,
            max_relative_positions=-1,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            type_vocab_size=0,
            **SMALL,
            **ids,
            **extra,
        )
    if arch == "modernbert":
        return tf.ModernBertConfig(
            vocab_size=vocab,
            max_position_embeddings=64,
            local_attention=8,  # sliding-window layers see +-4 tokens, so long texts exercise them
            global_attn_every_n_layers=2,
            cls_token_id=tok.cls_token_id,
            sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id,
            eos_token_id=tok.sep_token_id,
            **SMALL,
            **ids,
            **extra,
        )
    if arch in ("t5", "mt5"):
        cls = tf.T5Config if arch == "t5" else tf.MT5Config
        return cls(
            vocab_size=vocab,
            d_model=32,
            d_kv=16,
            d_ff=64,
            num_layers=2,
            num_heads=2,
            relative_attention_num_buckets=8,
            relative_attention_max_distance=16,
            eos_token_id=tok.eos_token_id,
            decoder_start_token_id=tok.pad_token_id,
            **ids,
            **extra,
        )
    raise AssertionError(arch)


_AUTO = {"base": "AutoModel", "seqcls": "AutoModelForSequenceClassification", "mlm": "AutoModelForMaskedLM"}


def _build_folder(arch: str, head: str, tok: Any, out: Path) -> str:
    import transformers as tf

    num_labels = int(head[len("seqcls") :]) if head.startswith("seqcls") else None
    config = _config(arch, tok, num_labels)
    auto = getattr(tf, _AUTO["seqcls" if num_labels else head])
    torch.manual_seed(sum(map(ord, arch + head)))
    model = auto.from_config(config)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


ARCHS = [
    "bert",
    "distilbert",
    "roberta",
    "xlm-roberta",
    "camembert",
    "mpnet",
    "deberta-v2",
    "modernbert",
    "electra",
    "albert",
    "t5",
    "mt5",
]
# Architectures with a masked-language-model head (T5's is a decoder, not an MLM head).
MLM_ARCHS = [a for a in ARCHS if a not in ("t5", "mt5")]


@pytest.fixture(scope="session")
def arch_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], str]:
    """``arch_folder(arch, head)``: a plain transformers folder (head ``base``, ``seqcls1``, ``seqcls3``, ``mlm``),
    built once per session with the architecture's tokenizer (truncating at ``MAX_SEQ_LENGTH``)."""
    tokenizers: dict[str, Any] = {}
    folders: dict[tuple[str, str], str] = {}

    def get(arch: str, head: str) -> str:
        if (arch, head) not in folders:
            if arch not in tokenizers:
                tok = _build_tokenizer(arch)
                tok.model_max_length = MAX_SEQ_LENGTH
                tokenizers[arch] = tok
            out = tmp_path_factory.mktemp(f"{arch}-{head}")
            folders[(arch, head)] = _build_folder(arch, head, tokenizers[arch], out)
        return folders[(arch, head)]

    return get


# ---------------------------------------------------------------------------------------------------------------------
# Helpers


def _assert_features_equal(ours: dict[str, Any], ref: dict[str, Any]) -> None:
    """Token ids, attention masks and token type ids (where the reference makes them) identical."""
    keys = [k for k in ref if k in ("input_ids", "attention_mask", "token_type_ids")]
    assert "input_ids" in keys
    for key in keys:
        assert key in ours, f"sentrs makes no {key}"
        a, b = torch.as_tensor(ours[key]), torch.as_tensor(ref[key])
        assert a.shape == b.shape, f"{key}: shape {tuple(a.shape)} != reference {tuple(b.shape)}"
        rows = [i for i in range(len(a)) if not torch.equal(a[i], b[i])]
        assert not rows, f"{key} differ in rows {rows}; first: {a[rows[0]].tolist()} != {b[rows[0]].tolist()}"
    extra = {k for k in ours if k in ("token_type_ids",)} - set(keys)
    assert not extra, f"sentrs makes {extra} that the reference does not"


def _assert_token_embeddings_equal(ours: list[Any], ref: list[Any]) -> None:
    assert len(ours) == len(ref)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert tuple(a.shape) == tuple(b.shape), (i, a.shape, b.shape)
        np.testing.assert_allclose(np.asarray(a), b.numpy(), atol=ATOL, err_msg=f"text {i}")


def _encode_both(ours: Any, ref: Any, texts: list[str], **kwargs: Any) -> None:
    got = ours.encode(texts, batch_size=4, **kwargs)
    want = ref.encode(texts, batch_size=4, **kwargs)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=ATOL)


# ---------------------------------------------------------------------------------------------------------------------
# SentenceTransformer


@pytest.mark.parametrize("arch", ARCHS)
def test_dense_default_modules(arch_folder: Callable[[str, str], str], arch: str) -> None:
    """A plain transformers folder: both build Transformer + mean Pooling; ids, embeddings and tokens agree."""
    import sentence_transformers

    folder = arch_folder(arch, "base")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    assert ours.max_seq_length == ref.max_seq_length == MAX_SEQ_LENGTH
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    _assert_features_equal(ours.tokenize(ODD_TEXTS), ref.tokenize(ODD_TEXTS))
    _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
    _encode_both(ours, ref, ODD_TEXTS)
    _encode_both(ours, ref, ODD_TEXTS, prompt="query: ")
    got = ours.encode(ODD_TEXTS, batch_size=4, output_value="token_embeddings")
    want = ref.encode(ODD_TEXTS, batch_size=4, output_value="token_embeddings")
    _assert_token_embeddings_equal(got, want)
    # A shorter max_seq_length set after loading: the tokenizer cuts there (special tokens kept).
    ours.max_seq_length = ref.max_seq_length = 6
    _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
    _encode_both(ours, ref, ODD_TEXTS)


WORDPIECE_VARIANTS = {
    "uncased": {},
    "cased": {"do_lower_case": False},
    "lowercase-keep-accents": {"strip_accents": False},
    "cased-strip-accents": {"do_lower_case": False, "strip_accents": True},
    "no-cjk-split": {"tokenize_chinese_chars": False},
}


@pytest.mark.parametrize("variant", list(WORDPIECE_VARIANTS))
def test_wordpiece_normalizer_variants(variant: str, tmp_path: Path) -> None:
    """BERT tokenizers with each BertNormalizer setting (lowercase, accents, CJK splitting): the same ids as the
    reference, so sentrs' fast WordPiece path follows every flag."""
    import sentence_transformers
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    kwargs = WORDPIECE_VARIANTS[variant]
    lowercase = kwargs.get("do_lower_case", True)
    trainer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=kwargs.get("strip_accents"))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    trainer.train_from_iterator(_corpus(), vocab_size=400, special_tokens=specials, min_frequency=1)
    tok = BertTokenizerFast(vocab=dict(trainer.get_vocab()), **kwargs)
    tok.model_max_length = MAX_SEQ_LENGTH
    tok.save_pretrained(tmp_path)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tok), max_position_embeddings=64, **{**SMALL, "num_hidden_layers": 1})
    BertModel(config).save_pretrained(tmp_path)
    ours = sentrs.SentenceTransformer(str(tmp_path), device="cpu")
    ref = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu")
    _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
    _encode_both(ours, ref, ODD_TEXTS)


# sentrs reads tokenizer.json through the tokenizers crate, whose serde_json must parse floats exactly
# (`float_roundtrip`, turned on in Cargo.toml): about a third of full-precision Unigram scores came back 1 ULP off
# without it, and runs like '...,,,!!!' over pieces '.', '..', ',', ',,' then split differently from the reference.


def test_unigram_scores_read_exactly(tmp_path: Path) -> None:
    """An XLM-R style Unigram tokenizer with full-precision scores: the same ids as the reference on a near-tie."""
    import sentence_transformers
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    scores = {
        ".": -5.010669552997041,
        "..": -6.346166788712731,
        ",": -7.3408118346375115,
        ",,": -6.67591172130171,
        "!": -9.461795807905101,
        "!!": -7.650536492261661,
    }
    specials = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab = [*specials, ("▁", -2.0), *scores.items(), ("<mask>", 0.0)]
    tok = XLMRobertaTokenizerFast(vocab=vocab)
    tok.save_pretrained(tmp_path)
    config = XLMRobertaConfig(
        vocab_size=len(tok), max_position_embeddings=64, type_vocab_size=1, pad_token_id=1, **SMALL
    )
    XLMRobertaModel(config).save_pretrained(tmp_path)
    ours = sentrs.SentenceTransformer(str(tmp_path), device="cpu")
    ref = sentence_transformers.SentenceTransformer(str(tmp_path), device="cpu")
    _assert_features_equal(ours.preprocess(["...,,,!!!"]), ref.preprocess(["...,,,!!!"]))


POOLING_MODES = ("cls", "max", "lasttoken")


@pytest.mark.parametrize("arch", ["bert", "xlm-roberta", "modernbert", "t5"])
def test_dense_left_truncation_and_padding(arch_folder: Callable[[str, str], str], arch: str, tmp_path: Path) -> None:
    """A tokenizer saved with ``truncation_side`` and ``padding_side`` "left": the same ids and masks as the reference,
    and the same embeddings in batches of one (with left padding and absolute positions a text's embedding depends
    on its batch's padding, in the reference too)."""
    import shutil

    import sentence_transformers

    folder = tmp_path / "left"
    shutil.copytree(arch_folder(arch, "base"), folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.update(truncation_side="left", padding_side="left")
    config_path.write_text(json.dumps(config), encoding="utf-8")
    ours = sentrs.SentenceTransformer(str(folder), device="cpu")
    ref = sentence_transformers.SentenceTransformer(str(folder), device="cpu")
    assert ref.tokenizer.truncation_side == ref.tokenizer.padding_side == "left"
    _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
    np.testing.assert_allclose(ours.encode(ODD_TEXTS, batch_size=1), ref.encode(ODD_TEXTS, batch_size=1), atol=ATOL)


def _explicit(lib: Any, transformer: Any, mode: str) -> Any:
    modules = lib.sentence_transformer.modules
    pooling = modules.Pooling(transformer.get_embedding_dimension(), pooling_mode=mode)
    return lib.SentenceTransformer(modules=[transformer, pooling, modules.Normalize()], device="cpu")


@pytest.mark.parametrize("arch", ARCHS)
def test_dense_explicit_pooling_and_save(arch_folder: Callable[[str, str], str], arch: str, tmp_path: Path) -> None:
    """Transformer + Pooling (cls, max, lasttoken) + Normalize built by hand in each library: the same ids and
    embeddings; each library's saved folder loads in the other with the same embeddings."""
    import sentence_transformers

    folder = arch_folder(arch, "base")
    our_transformer = sentrs.sentence_transformer.modules.Transformer(folder)
    ref_transformer = sentence_transformers.sentence_transformer.modules.Transformer(folder)
    for mode in POOLING_MODES:
        ours = _explicit(sentrs, our_transformer, mode)
        ref = _explicit(sentence_transformers, ref_transformer, mode)
        if mode == POOLING_MODES[0]:
            _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
        got = ours.encode(ODD_TEXTS, batch_size=4)
        want = ref.encode(ODD_TEXTS, batch_size=4)
        np.testing.assert_allclose(got, want, atol=ATOL, err_msg=mode)
        np.testing.assert_allclose(np.linalg.norm(want, axis=1), 1.0, atol=1e-5)

        ours.save(str(tmp_path / mode / "ours"))
        ref.save(str(tmp_path / mode / "ref"))
        ref_from_ours = sentence_transformers.SentenceTransformer(str(tmp_path / mode / "ours"), device="cpu")
        ours_from_ref = sentrs.SentenceTransformer(str(tmp_path / mode / "ref"), device="cpu")
        assert [type(m).__name__ for m in ours_from_ref] == ["Transformer", "Pooling", "Normalize"]
        np.testing.assert_allclose(ref_from_ours.encode(ODD_TEXTS, batch_size=4), want, atol=ATOL, err_msg=mode)
        np.testing.assert_allclose(ours_from_ref.encode(ODD_TEXTS, batch_size=4), want, atol=ATOL, err_msg=mode)
    _assert_features_equal(ours_from_ref.preprocess(ODD_TEXTS), ref_from_ours.preprocess(ODD_TEXTS))


# ---------------------------------------------------------------------------------------------------------------------
# CrossEncoder

LONG = "the quick brown fox jumps over the lazy dog " * 20
QUERY = "quick brown fox"
DOCS = [t for t in ODD_TEXTS if t != LONG.strip()] + ["a lazy dog", "quick brown fox jumps", LONG]
# At most one side of a pair is longer than max_seq_length here (the case where both are is
# test_pair_truncation_both_sides_over_max_length).
PAIRS = [
    (QUERY, "the quick brown fox"),
    ("", "empty query"),
    ("empty document", ""),
    ("   ", "\t\n"),
    ("Café naïve?", "emoji 🤖 and CJK 日本語"),
    (LONG, "long query"),
    ("long document", LONG),
    (LONG, LONG),  # both cut to half the budget (equal lengths)
    ("x", "!!!???..."),
    ("MiXeD CaSe", "mixed case"),
]


@pytest.mark.parametrize("num_labels", [1, 3])
@pytest.mark.parametrize("arch", ARCHS)
def test_cross_encoder_predict_and_rank(arch_folder: Callable[[str, str], str], arch: str, num_labels: int) -> None:
    """A ``*ForSequenceClassification`` folder: pair features, scores and rank order equal to the reference."""
    import sentence_transformers

    folder = arch_folder(arch, f"seqcls{num_labels}")
    ours = sentrs.CrossEncoder(folder, device="cpu")
    ref = sentence_transformers.CrossEncoder(folder, device="cpu")
    assert ours.num_labels == ref.num_labels == num_labels
    _assert_features_equal(ours.preprocess(PAIRS), ref.preprocess(PAIRS))
    got = ours.predict(PAIRS, batch_size=4)
    want = ref.predict(PAIRS, batch_size=4)
    assert got.shape == want.shape == ((len(PAIRS),) if num_labels == 1 else (len(PAIRS), num_labels))
    np.testing.assert_allclose(got, want, atol=ATOL)
    if num_labels == 1:
        got_rank = ours.rank(QUERY, DOCS, batch_size=4, return_documents=True)
        want_rank = ref.rank(QUERY, DOCS, batch_size=4, return_documents=True)
        # The same order, up to documents whose scores tie within the tolerance (whitespace-only documents give the
        # same ids, so equal scores up to the batch's float noise): each rank's document has the reference's score
        # of that rank.
        assert sorted(h["corpus_id"] for h in got_rank) == list(range(len(DOCS)))
        ref_scores = {h["corpus_id"]: h["score"] for h in want_rank}
        np.testing.assert_allclose(
            [ref_scores[h["corpus_id"]] for h in got_rank], [h["score"] for h in want_rank], atol=ATOL
        )
        np.testing.assert_allclose([h["score"] for h in got_rank], [h["score"] for h in want_rank], atol=ATOL)
        assert all(h["text"] == DOCS[h["corpus_id"]] for h in got_rank)
    else:
        with pytest.raises(ValueError) as ref_error:
            ref.rank(QUERY, DOCS)
        with pytest.raises(ValueError) as our_error:
            ours.rank(QUERY, DOCS)
        assert "num_labels" in str(ref_error.value) and "num_labels" in str(our_error.value)


# The tokenizers crate 0.23.2 cuts each text of a pair to max_length tokens before longest_first compares their
# lengths, which gave the odd token of the budget to the second text when both were over max_length and the first was
# the longer; sentrs tokenizes such pairs in full first (rust/src/tokenize.rs, encode_pair_longest_first).


@pytest.mark.parametrize("arch", ARCHS)
def test_pair_truncation_both_sides_over_max_length(arch_folder: Callable[[str, str], str], arch: str) -> None:
    """longest_first truncation of a pair whose two texts are both longer than max_length (the first the longer).

    max_length leaves an odd budget for the two texts (21 tokens besides the template's special tokens), so the
    tie-break of longest_first decides which text keeps the 11th token.
    """
    import sentence_transformers

    folder = arch_folder(arch, "seqcls1")
    ref = sentence_transformers.CrossEncoder(folder, device="cpu")
    max_length = 21 + ref.tokenizer.num_special_tokens_to_add(pair=True)
    ref = sentence_transformers.CrossEncoder(folder, device="cpu", max_length=max_length)
    ours = sentrs.CrossEncoder(folder, device="cpu", max_length=max_length)
    second = "quick brown fox jumps " * 8  # 32 words: more than max_length tokens in every tokenizer here
    pairs = [(LONG, second), (second, LONG)]
    _assert_features_equal(ours.preprocess(pairs), ref.preprocess(pairs))


# ---------------------------------------------------------------------------------------------------------------------
# SparseEncoder


def _dense(embeddings: Any) -> np.ndarray:
    return np.asarray(embeddings.to_dense().cpu().numpy() if embeddings.is_sparse else embeddings.cpu().numpy())


@pytest.mark.parametrize("arch", MLM_ARCHS)
def test_sparse_encoder_from_mlm_folder(
    arch_folder: Callable[[str, str], str], arch: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``*ForMaskedLM`` folder: a fill-mask Transformer + SpladePooling in both; the same active dims and values.

    sentrs runs three ways: its default (the fused SPLADE head, through the AMX kernel where the CPU has it), the
    fused head's fp32 blocks, and the plain logits path (``SENTRS_FUSED_SPLADE=0``).
    """
    import sentence_transformers

    from sentrs import ops
    from sentrs.sparse_encoder._fused_head import FusedSpladeHead

    folder = arch_folder(arch, "mlm")
    ours = sentrs.SparseEncoder(folder, device="cpu")
    ref = sentence_transformers.SparseEncoder(folder, device="cpu")
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref] == ["Transformer", "SpladePooling"]
    # Every MLM head here is a plain float32 nn.Linear decoder, so the fused head must apply (else the fused runs
    # below would test the plain path twice).
    assert FusedSpladeHead.for_modules(list(ours)) is not None
    _assert_features_equal(ours.preprocess(ODD_TEXTS), ref.preprocess(ODD_TEXTS))
    want = _dense(ref.encode(ODD_TEXTS, batch_size=4))
    want_pruned = _dense(ref.encode(ODD_TEXTS, batch_size=4, max_active_dims=5))
    paths = ["fused-amx", "fused-fp32", "unfused"] if ops.maxsim_amx_supported() else ["fused-fp32", "unfused"]
    for path in paths:
        with monkeypatch.context() as patch:
            if path == "fused-fp32":
                patch.setattr(FusedSpladeHead, "use_amx", False)
            elif path == "unfused":
                patch.setenv("SENTRS_FUSED_SPLADE", "0")
            got = _dense(ours.encode(ODD_TEXTS, batch_size=4))
            assert got.shape == want.shape
            for row, (a, b) in enumerate(zip(got, want)):
                assert np.array_equal(np.flatnonzero(a), np.flatnonzero(b)), f"{path}, text {row}: active dims differ"
            np.testing.assert_allclose(got, want, atol=ATOL, err_msg=path)
            got = _dense(ours.encode(ODD_TEXTS, batch_size=4, max_active_dims=5))
            np.testing.assert_allclose(got, want_pruned, atol=ATOL, err_msg=f"{path}, max_active_dims=5")
