"""The classic modules (WordEmbeddings, WordWeights, BoW, CNN, LSTM, LayerNorm, Dropout, WeightedLayerPooling) and the
word tokenizers, against the reference.

Every pipeline is built twice from one builder, once from each library's module namespace (the constructors are the
same): the reference-built folder must load in sentrs with the same ``encode`` output, and the sentrs-built folder
must load in the reference, with the same ``modules.json``, config files and weight keys as the reference's own save.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

# Same float32 arithmetic on the same weights; only the order of a few reductions may differ (pooling, convolution),
# so outputs agree to ~1e-7. 1e-5 is far below what any real difference in the math would give.
ATOL = 1e-5

WORDS = (
    "the cat sat on mat dog chased quickly house red blue runs fast slow tree green New York city big apple "
    "Cat Dog river bank money"
).split()
DIM = 8

TEXTS = [
    "The cat sat on the mat.",
    "A dog chased the cat, quickly!",
    "",
    "   ",
    "unknown words only here",
    "CAT dog MAT",
    "the the the",
    "New York is a big city; the apple is red.",
    "(blue) [green] {tree} 'river' \"bank\" money...",
    "dog " * 30,
    "Tabs\tand\nnewlines\r\nred   house",
]


def _write_glove(path: Path, words: list[str], dim: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    lines = [word + " " + " ".join(f"{v:.6f}" for v in rng.standard_normal(dim)) for word in words]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def glove(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _write_glove(tmp_path_factory.mktemp("glove") / "glove.txt", WORDS, DIM)


def _ref_ns() -> Any:
    from sentence_transformers.sentence_transformer import modules

    return modules


def _our_ns() -> Any:
    from sentrs.sentence_transformer import modules

    return modules


def _tokenizers(ns: Any) -> Any:
    """The ``tokenizer`` package beside a module namespace."""
    return importlib.import_module(ns.__name__ + ".tokenizer")


def _idf(vocab: list[str]) -> dict[str, float]:
    return {word.lower(): 1.0 + (i % 5) * 0.4 for i, word in enumerate(vocab) if i % 3}


def _seeded(module: Any, seed: int) -> Any:
    """Gives every parameter of ``module`` seeded random values (LayerNorm starts at ones and zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    return module


# Builders: (module namespace, GloVe file) -> modules. Each builds the same pipeline from either library.
def _mean(ns: Any, glove: str) -> list[Any]:
    return [ns.WordEmbeddings.from_text_file(glove), ns.Pooling(DIM)]


def _lowercase_stop_words(ns: Any, glove: str) -> list[Any]:
    tokenizer = _tokenizers(ns).WhitespaceTokenizer(stop_words=["dog", "on"], do_lower_case=True)
    we = ns.WordEmbeddings.from_text_file(glove, tokenizer=tokenizer, update_embeddings=True)
    we.max_seq_length = 4
    return [we, ns.Pooling(DIM, pooling_mode=["mean", "max"])]


def _word_weights(ns: Any, glove: str) -> list[Any]:
    we = ns.WordEmbeddings.from_text_file(glove, max_vocab_size=20)
    vocab = list(we.tokenizer.get_vocab())
    return [we, ns.WordWeights(vocab, _idf(vocab), unknown_word_weight=0.5), ns.Pooling(DIM)]


def _cnn(ns: Any, glove: str) -> list[Any]:
    torch.manual_seed(3)
    cnn = ns.CNN(DIM, out_channels=4, kernel_sizes=[1, 3, 5])
    return [ns.WordEmbeddings.from_text_file(glove), cnn, ns.Pooling(12, pooling_mode="mean_sqrt_len_tokens")]


def _bilstm(ns: Any, glove: str) -> list[Any]:
    torch.manual_seed(4)
    lstm = ns.LSTM(DIM, hidden_dim=5)
    return [ns.WordEmbeddings.from_text_file(glove), lstm, ns.Pooling(10)]


def _lstm_two_layers(ns: Any, glove: str) -> list[Any]:
    torch.manual_seed(5)
    lstm = ns.LSTM(DIM, hidden_dim=6, num_layers=2, dropout=0.1, bidirectional=False)
    return [ns.WordEmbeddings.from_text_file(glove), lstm, ns.Pooling(6, pooling_mode="lasttoken")]


def _layer_norm_dropout(ns: Any, glove: str) -> list[Any]:
    we = ns.WordEmbeddings.from_text_file(glove)
    return [we, ns.Pooling(DIM), _seeded(ns.LayerNorm(DIM), 6), ns.Dropout(0.3)]


def _bow(ns: Any, glove: str) -> list[Any]:
    vocab = [*WORDS, "cat"]  # a repeat, which BoW drops
    return [ns.BoW(vocab, _idf(vocab), unknown_word_weight=0.25)]


def _bow_presence(ns: Any, glove: str) -> list[Any]:
    return [ns.BoW(WORDS, cumulative_term_frequency=False), ns.LayerNorm(len(WORDS))]


PIPELINES: dict[str, Callable[[Any, str], list[Any]]] = {
    "mean": _mean,
    "lowercase_stop_words": _lowercase_stop_words,
    "word_weights": _word_weights,
    "cnn": _cnn,
    "bilstm": _bilstm,
    "lstm_two_layers": _lstm_two_layers,
    "layer_norm_dropout": _layer_norm_dropout,
    "bow": _bow,
    "bow_presence": _bow_presence,
}

REF_PREFIX = "sentence_transformers.sentence_transformer.modules."
EXPECTED_TYPES = {
    "WordEmbeddings": REF_PREFIX + "word_embeddings.WordEmbeddings",
    "WordWeights": REF_PREFIX + "word_weights.WordWeights",
    "BoW": REF_PREFIX + "bow.BoW",
    "CNN": REF_PREFIX + "cnn.CNN",
    "LSTM": REF_PREFIX + "lstm.LSTM",
    "LayerNorm": REF_PREFIX + "layer_norm.LayerNorm",
    "Dropout": REF_PREFIX + "dropout.Dropout",
    "WeightedLayerPooling": REF_PREFIX + "weighted_layer_pooling.WeightedLayerPooling",
    "Pooling": REF_PREFIX + "pooling.Pooling",
    "Transformer": "sentence_transformers.base.modules.transformer.Transformer",
}


@pytest.fixture(scope="module")
def ref_folders(tmp_path_factory: pytest.TempPathFactory, glove: str) -> Callable[[str], str]:
    """Reference-built and reference-saved folder of a pipeline (built once per module)."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            import sentence_transformers

            model = sentence_transformers.SentenceTransformer(modules=PIPELINES[name](_ref_ns(), glove), device="cpu")
            out = tmp_path_factory.mktemp(f"ref_{name}")
            model.save(str(out))
            cache[name] = str(out)
        return cache[name]

    return get


def _encode_both(ref: Any, ours: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    return ref.encode(TEXTS, **kwargs), ours.encode(TEXTS, **kwargs)


def _config_files(folder: Path) -> dict[str, Any]:
    """Every JSON file of a saved folder but the version stamp, with stop word lists sorted (saved from a set)."""
    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*.json")):
        name = str(path.relative_to(folder))
        if name == "config_sentence_transformers.json":
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("stop_words"), list):
            data["stop_words"] = sorted(data["stop_words"])
        out[name] = data
    return out


def _weight_shapes(folder: Path) -> dict[str, dict[str, tuple[int, ...]]]:
    from safetensors import safe_open

    shapes: dict[str, dict[str, tuple[int, ...]]] = {}
    for path in sorted(folder.rglob("model.safetensors")):
        with safe_open(str(path), framework="pt") as f:
            shapes[str(path.relative_to(folder))] = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    return shapes


@pytest.mark.parametrize("name", list(PIPELINES))
def test_reference_folder_loads_in_sentrs(name: str, ref_folders: Callable[[str], str]) -> None:
    import sentence_transformers

    import sentrs

    folder = ref_folders(name)
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    a, b = _encode_both(ref, ours)
    assert b.dtype == np.float32 and b.shape == a.shape
    np.testing.assert_allclose(b, a, atol=ATOL)
    a, b = _encode_both(ref, ours, prompt="the cat ", batch_size=3)
    np.testing.assert_allclose(b, a, atol=ATOL)
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    assert ours.max_seq_length == ref.max_seq_length


@pytest.mark.parametrize("name", list(PIPELINES))
def test_sentrs_folder_loads_in_reference(
    name: str, tmp_path: Path, glove: str, ref_folders: Callable[[str], str]
) -> None:
    import sentence_transformers

    import sentrs

    ours = sentrs.SentenceTransformer(modules=PIPELINES[name](_our_ns(), glove), device="cpu")
    out = tmp_path / "ours"
    ours.save(str(out))
    ref = sentence_transformers.SentenceTransformer(str(out), device="cpu")
    a, b = _encode_both(ref, ours)
    np.testing.assert_allclose(b, a, atol=ATOL)

    ref_dir = Path(ref_folders(name))
    entries = json.loads((out / "modules.json").read_text())
    assert entries == json.loads((ref_dir / "modules.json").read_text())
    for entry, module in zip(entries, ours):
        assert entry["type"] == EXPECTED_TYPES[type(module).__name__]
    # same files, same config keys and values, same weight names and shapes as the reference's own save
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(
        p.relative_to(ref_dir) for p in ref_dir.rglob("*")
    )
    assert _config_files(out) == _config_files(ref_dir)
    assert _weight_shapes(out) == _weight_shapes(ref_dir)


def test_bow_saves_into_a_numbered_folder(ref_folders: Callable[[str], str]) -> None:
    from sentrs.sentence_transformer.modules import BoW, WordEmbeddings

    assert BoW.save_in_root is False and WordEmbeddings.save_in_root is True
    assert BoW.modalities == WordEmbeddings.modalities == ["text"]
    entries = json.loads((Path(ref_folders("bow")) / "modules.json").read_text())
    assert entries[0]["path"] == "0_BoW"
    we_entries = json.loads((Path(ref_folders("mean")) / "modules.json").read_text())
    assert we_entries[0]["path"] == ""


@pytest.fixture(scope="module")
def hidden_states_bert(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BERT (hidden 32) whose config asks for every layer's hidden states."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
        output_hidden_states=True,
    )
    out = tmp_path_factory.mktemp("bert_hidden_states")
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


def _weighted_layer_pooling(ns: Any, bert: str) -> list[Any]:
    weights = torch.nn.Parameter(torch.tensor([0.3, 2.0]))  # hidden states 1 and 2 of 0..2
    pooling = ns.WeightedLayerPooling(32, num_hidden_layers=2, layer_start=1, layer_weights=weights)
    return [ns.Transformer(bert), pooling, ns.Pooling(32)]


def test_weighted_layer_pooling_both_ways(tmp_path: Path, hidden_states_bert: str) -> None:
    import sentence_transformers

    import sentrs

    ref = sentence_transformers.SentenceTransformer(
        modules=_weighted_layer_pooling(_ref_ns(), hidden_states_bert), device="cpu"
    )
    ref.save(str(tmp_path / "ref"))
    ours = sentrs.SentenceTransformer(str(tmp_path / "ref"), device="cpu")
    a, b = _encode_both(ref, ours)
    np.testing.assert_allclose(b, a, atol=ATOL)
    # the layer weights matter: plain mean pooling of the last layer differs
    plain = sentence_transformers.SentenceTransformer(
        modules=[_ref_ns().Transformer(hidden_states_bert), _ref_ns().Pooling(32)], device="cpu"
    )
    assert np.abs(plain.encode(TEXTS) - a).max() > 1e-3

    ours_built = sentrs.SentenceTransformer(
        modules=_weighted_layer_pooling(_our_ns(), hidden_states_bert), device="cpu"
    )
    ours_built.save(str(tmp_path / "ours"))
    ref_loaded = sentence_transformers.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    np.testing.assert_allclose(ours_built.encode(TEXTS), ref_loaded.encode(TEXTS), atol=ATOL)
    np.testing.assert_allclose(ours_built.encode(TEXTS), a, atol=ATOL)
    entries = json.loads((tmp_path / "ours" / "modules.json").read_text())
    assert [e["type"] for e in entries] == [
        EXPECTED_TYPES["Transformer"],
        EXPECTED_TYPES["WeightedLayerPooling"],
        EXPECTED_TYPES["Pooling"],
    ]
    assert _config_files(tmp_path / "ours")["1_WeightedLayerPooling/config.json"] == {
        "embedding_dimension": 32,
        "layer_start": 1,
        "num_hidden_layers": 2,
    }
    assert _weight_shapes(tmp_path / "ours")["1_WeightedLayerPooling/model.safetensors"] == {"layer_weights": (2,)}


def test_weighted_layer_pooling_without_hidden_states_passes_through() -> None:
    from sentrs.sentence_transformer.modules import WeightedLayerPooling

    features = {"token_embeddings": torch.ones(1, 2, 4)}
    assert WeightedLayerPooling(4, num_hidden_layers=2, layer_start=0)(features) is features
    assert WeightedLayerPooling(4).layer_weights.shape == (9,)  # defaults: 12 layers from the 4th


# Training: loss values and gradients of every trainable parameter match the reference's on the same folder. Both
# models are in eval mode (no dropout masks); float32 sums in a different order give ~1e-7 differences.
@pytest.mark.parametrize("name", ["lowercase_stop_words", "word_weights", "cnn", "bilstm", "layer_norm_dropout"])
def test_training_gradients_match_reference(name: str, ref_folders: Callable[[str], str]) -> None:
    import sentence_transformers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss as RefLoss

    import sentrs
    from sentrs.sentence_transformer.losses import MultipleNegativesRankingLoss

    folder = ref_folders(name)
    anchors = ["the cat sat on the mat", "a dog runs fast", "green tree by the river", "big apple"]
    positives = ["cat on mat", "fast dog", "the river bank tree", "New York city"]
    results = []
    pairs: list[tuple[Any, Any]] = [
        (sentence_transformers.SentenceTransformer(folder, device="cpu"), RefLoss),
        (sentrs.SentenceTransformer(folder, device="cpu"), MultipleNegativesRankingLoss),
    ]
    for model, loss_cls in pairs:
        model.eval()
        loss = loss_cls(model)
        value = loss([model.preprocess(anchors), model.preprocess(positives)], None)
        value.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        results.append((value.item(), grads))
    (ref_value, ref_grads), (our_value, our_grads) = results
    assert np.isfinite(our_value)
    assert our_value == pytest.approx(ref_value, abs=ATOL)
    assert set(our_grads) == set(ref_grads) and our_grads
    for param_name, grad in our_grads.items():
        assert grad is not None and torch.isfinite(grad).all(), param_name
        torch.testing.assert_close(grad, ref_grads[param_name], atol=ATOL, rtol=1e-4, msg=param_name)


def test_frozen_word_embeddings_take_no_gradient(glove: str) -> None:
    from sentrs.sentence_transformer.modules import WordEmbeddings

    assert not WordEmbeddings.from_text_file(glove).emb_layer.weight.requires_grad
    assert WordEmbeddings.from_text_file(glove, update_embeddings=True).emb_layer.weight.requires_grad


# ---------------------------------------------------------------------------------------------------- GloVe files
def test_from_text_file_matches_reference_vocab_and_vectors(tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules import WordEmbeddings as RefWordEmbeddings

    from sentrs.sentence_transformer.modules import WordEmbeddings

    words = ["alpha", "beta", "gamma", "delta"]
    path = tmp_path / "w2v.txt"
    body = _write_glove(tmp_path / "body.txt", words, 3, seed=1)
    path.write_text("4 3\n" + Path(body).read_text() + "\n\n", encoding="utf-8")  # word2vec header, blank lines
    for max_vocab_size in (None, 2):
        ours = WordEmbeddings.from_text_file(str(path), max_vocab_size=max_vocab_size)
        ref = RefWordEmbeddings.from_text_file(str(path), max_vocab_size=max_vocab_size)
        assert list(ours.tokenizer.get_vocab()) == list(ref.tokenizer.get_vocab())
        assert ours.tokenizer.get_vocab()[0] == "PADDING_TOKEN"
        torch.testing.assert_close(ours.emb_layer.weight, ref.emb_layer.weight, atol=0, rtol=0)


def test_from_text_file_reads_gzip_and_other_separators(tmp_path: Path) -> None:
    import gzip

    from sentrs.sentence_transformer.modules import WordEmbeddings

    with gzip.open(tmp_path / "e.txt.gz", "wt", encoding="utf8") as f:
        f.write("cat\t1.0\t2.0\ndog\t-1.5\t0.25\n")
    we = WordEmbeddings.from_text_file(str(tmp_path / "e.txt.gz"), item_separator="\t")
    assert list(we.tokenizer.get_vocab()) == ["PADDING_TOKEN", "cat", "dog"]
    torch.testing.assert_close(we.emb_layer.weight, torch.tensor([[0.0, 0.0], [1.0, 2.0], [-1.5, 0.25]]))


def test_from_text_file_ragged_rows_name_the_file_and_line(tmp_path: Path) -> None:
    from sentrs.sentence_transformer.modules import WordEmbeddings

    path = tmp_path / "ragged.txt"
    path.write_text("cat 0.1 0.2 0.3\ndog 0.4 0.5 0.6\nmat 0.7 0.8\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"ragged\.txt, line 3: expected a word and 3 values \(as on line 1\), got 2"):
        WordEmbeddings.from_text_file(str(path))


def test_from_text_file_bad_values_and_missing_files(tmp_path: Path) -> None:
    from sentrs.sentence_transformer.modules import WordEmbeddings

    path = tmp_path / "bad.txt"
    path.write_text("cat 0.1 0.2\ndog 0.4 zero\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt, line 2: the values after 'dog' are not all numbers"):
        WordEmbeddings.from_text_file(str(path))
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty\.txt holds no word vectors"):
        WordEmbeddings.from_text_file(str(tmp_path / "empty.txt"))
    with pytest.raises(ValueError, match="Embeddings file not found: .*missing.txt"):
        WordEmbeddings.from_text_file(str(tmp_path / "missing.txt"))


def test_word_embeddings_rejects_other_tokenizers() -> None:
    from sentrs.sentence_transformer.modules import WordEmbeddings

    with pytest.raises(ValueError, match="tokenizer must be a WordTokenizer or a Hugging Face tokenizer.*str"):
        WordEmbeddings("not a tokenizer", np.zeros((2, 3)))


def test_word_embeddings_preprocess_features(glove: str) -> None:
    from sentence_transformers.sentence_transformer.modules import WordEmbeddings as RefWordEmbeddings

    from sentrs.sentence_transformer.modules import WordEmbeddings

    ours, ref = WordEmbeddings.from_text_file(glove), RefWordEmbeddings.from_text_file(glove)
    for batch in (TEXTS, ["", "unknown"], ["cat"]):
        a, b = ref.preprocess(batch), ours.preprocess(batch)
        assert set(b) == {"input_ids", "attention_mask", "sentence_lengths"} == set(a)
        for key in a:
            assert b[key].dtype == torch.long
            assert torch.equal(b[key], a[key]), key
    features = ours(ours.preprocess(["cat sat", "dog"]))
    assert features["token_embeddings"].shape == (2, 2, DIM)


# ------------------------------------------------------------------------------------------- tokenizer class paths
LOADABLE_TOKENIZER_PATHS = [
    "sentence_transformers.sentence_transformer.modules.tokenizer.whitespace.WhitespaceTokenizer",
    "sentence_transformers.sentence_transformer.modules.tokenizer.WhitespaceTokenizer",
    "sentence_transformers.models.tokenizer.WhitespaceTokenizer.WhitespaceTokenizer",
    "sentence_transformers.models.tokenizer.WhitespaceTokenizer",
]


def _with_tokenizer_class(src: str, dst: Path, class_path: str) -> str:
    import shutil

    shutil.copytree(src, dst)
    config_path = dst / "wordembedding_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = class_path
    config_path.write_text(json.dumps(config))
    return str(dst)


@pytest.mark.parametrize("class_path", LOADABLE_TOKENIZER_PATHS)
def test_reference_tokenizer_paths_load(class_path: str, tmp_path: Path, ref_folders: Callable[[str], str]) -> None:
    import sentence_transformers

    import sentrs

    folder = _with_tokenizer_class(ref_folders("mean"), tmp_path / "m", class_path)
    ref = sentence_transformers.SentenceTransformer(folder, device="cpu")
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    a, b = _encode_both(ref, ours)
    np.testing.assert_allclose(b, a, atol=ATOL)


@pytest.mark.parametrize(
    ("class_path", "trust_remote_code", "message"),
    [
        ("my_package.tokenizers.CustomTokenizer", False, "not part of sentence-transformers.*trust_remote_code"),
        ("my_package.tokenizers.CustomTokenizer", True, "never runs custom code, even with trust_remote_code=True"),
        ("sentence_transformers.models.Dense", False, "not a word tokenizer sentrs implements"),
        ("sentence_transformers.models.tokenizer.WordTokenizer.WordTokenizer", False, "abstract tokenizer class"),
        ("sentence_transformers.models.tokenizer.phrase.WhitespaceTokenizer", False, "not a word tokenizer"),
    ],
)
def test_unknown_tokenizer_paths_raise(
    class_path: str, trust_remote_code: bool, message: str, tmp_path: Path, ref_folders: Callable[[str], str]
) -> None:
    import sentrs
    from sentrs.exceptions import ModuleTypeError

    folder = _with_tokenizer_class(ref_folders("mean"), tmp_path / "m", class_path)
    with pytest.raises(ModuleTypeError, match=message) as info:
        sentrs.SentenceTransformer(folder, device="cpu", trust_remote_code=trust_remote_code)
    assert class_path in str(info.value)
    assert isinstance(info.value, ValueError)  # as the reference's error for an untrusted class


# ------------------------------------------------------------------------------------------------------ tokenizers
def test_stop_words_are_the_reference_list() -> None:
    from sentence_transformers.sentence_transformer.modules.tokenizer import ENGLISH_STOP_WORDS as REF_STOP_WORDS

    from sentrs.sentence_transformer.modules import ENGLISH_STOP_WORDS
    from sentrs.sentence_transformer.modules.tokenizer.word import ENGLISH_STOP_WORDS as FROM_WORD

    assert ENGLISH_STOP_WORDS == REF_STOP_WORDS and FROM_WORD is ENGLISH_STOP_WORDS


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"do_lower_case": True}, {"stop_words": []}, {"stop_words": ["cat", "Dog"], "do_lower_case": True}],
)
def test_whitespace_tokenizer_matches_reference(kwargs: dict[str, Any], tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules.tokenizer import WhitespaceTokenizer as RefTokenizer

    from sentrs.sentence_transformer.modules import WhitespaceTokenizer, WordTokenizer

    vocab = [*WORDS, "the", "..."]  # a repeated word keeps its last index; a punctuation-only word
    ours, ref = WhitespaceTokenizer(vocab, **kwargs), RefTokenizer(vocab, **kwargs)
    assert isinstance(ours, WordTokenizer)
    for text in [*TEXTS, "...", "'The' THE the.", "New_York York"]:
        assert ours.tokenize(text) == ref.tokenize(text), text
    # the saved vocabulary lists each word once, so a repeated word's index changes on reload, in both libraries
    (tmp_path / "ours").mkdir()
    (tmp_path / "ref").mkdir()
    ours.save(str(tmp_path / "ours"))
    ref.save(str(tmp_path / "ref"))
    ref_again, ours_again = RefTokenizer.load(str(tmp_path / "ref")), WhitespaceTokenizer.load(str(tmp_path / "ref"))
    ref_from_ours = RefTokenizer.load(str(tmp_path / "ours"))
    for text in TEXTS:
        assert ref_from_ours.tokenize(text) == ref_again.tokenize(text) == ours_again.tokenize(text), text
    assert set(json.loads((tmp_path / "ours" / "whitespacetokenizer_config.json").read_text())) == {
        "vocab",
        "stop_words",
        "do_lower_case",
    }


def _fake_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stands in a regex word splitter for NLTK (not installed here), for both libraries' PhraseTokenizer."""

    def word_tokenize(text: str, preserve_line: bool = False) -> list[str]:
        return re.findall(r"\w+|[^\w\s]", text)

    fake = types.ModuleType("nltk")
    fake.word_tokenize = word_tokenize  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nltk", fake)
    import sentence_transformers.sentence_transformer.modules.tokenizer.phrase as ref_phrase

    monkeypatch.setattr(ref_phrase, "is_nltk_available", lambda: True)


def test_phrase_tokenizer_matches_reference(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sentence_transformers.sentence_transformer.modules.tokenizer import PhraseTokenizer as RefTokenizer

    from sentrs.sentence_transformer.modules import PhraseTokenizer

    _fake_nltk(monkeypatch)
    vocab = [*WORDS, "new_york", "New_York_City", "big_apple", "a__b", "x_y_z_u_v_w", "river_bank"]
    ours, ref = PhraseTokenizer(vocab, max_ngram_length=5), RefTokenizer(vocab, max_ngram_length=5)
    assert ours.ngram_lengths == ref.ngram_lengths and ours.ngram_lookup == ref.ngram_lookup
    for text in [*TEXTS, "New York City is a Big Apple", "the River bank, new york!", "x y z u v w"]:
        assert ours.tokenize(text) == ref.tokenize(text), text
    ours.save(str(tmp_path))
    again = RefTokenizer.load(str(tmp_path))
    assert again.tokenize("New York City") == ref.tokenize("New York City")
    assert set(json.loads((tmp_path / "phrasetokenizer_config.json").read_text())) == {
        "vocab",
        "stop_words",
        "do_lower_case",
        "ngram_separator",
        "max_ngram_length",
    }


def test_phrase_tokenizer_needs_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentrs.sentence_transformer.modules import PhraseTokenizer

    monkeypatch.setitem(sys.modules, "nltk", None)  # as if not installed
    with pytest.raises(ImportError, match="PhraseTokenizer needs NLTK.*pip install nltk"):
        PhraseTokenizer(["a"])


def test_word_embeddings_with_phrase_tokenizer_both_ways(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, glove: str
) -> None:
    import sentence_transformers

    import sentrs

    _fake_nltk(monkeypatch)
    models = {}
    for lib, ns in (("ref", _ref_ns()), ("ours", _our_ns())):
        tokenizer = _tokenizers(ns).PhraseTokenizer(do_lower_case=True)
        modules = [ns.WordEmbeddings.from_text_file(glove, tokenizer=tokenizer), ns.Pooling(DIM)]
        models[lib] = (sentence_transformers if lib == "ref" else sentrs).SentenceTransformer(
            modules=modules, device="cpu"
        )
        models[lib].save(str(tmp_path / lib))
    ours_from_ref = sentrs.SentenceTransformer(str(tmp_path / "ref"), device="cpu")
    ref_from_ours = sentence_transformers.SentenceTransformer(str(tmp_path / "ours"), device="cpu")
    expected = models["ref"].encode(TEXTS)
    np.testing.assert_allclose(ours_from_ref.encode(TEXTS), expected, atol=ATOL)
    np.testing.assert_allclose(ref_from_ours.encode(TEXTS), expected, atol=ATOL)
    config = json.loads((tmp_path / "ours" / "wordembedding_config.json").read_text())
    assert config["tokenizer_class"] == (
        "sentence_transformers.sentence_transformer.modules.tokenizer.phrase.PhraseTokenizer"
    )
    assert os.path.exists(tmp_path / "ours" / "phrasetokenizer_config.json")


def test_word_embeddings_over_a_hugging_face_tokenizer(tmp_path: Path, minilm_path: str) -> None:
    import sentence_transformers
    from transformers import AutoTokenizer

    import sentrs
    from sentrs.sentence_transformer.modules import Pooling, WordEmbeddings
    from sentrs.sentence_transformer.modules.tokenizer import TransformersTokenizerWrapper

    hf_tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    weights = torch.randn(hf_tokenizer.vocab_size, 4, generator=torch.Generator().manual_seed(7))
    we = WordEmbeddings(hf_tokenizer, weights)
    assert isinstance(we.tokenizer, TransformersTokenizerWrapper)
    ours = sentrs.SentenceTransformer(modules=[we, Pooling(4)], device="cpu")
    ours.save(str(tmp_path / "hf"))
    config = json.loads((tmp_path / "hf" / "wordembedding_config.json").read_text())
    assert config["tokenizer_class"].endswith("modules.tokenizer.word.TransformersTokenizerWrapper")
    ref = sentence_transformers.SentenceTransformer(str(tmp_path / "hf"), device="cpu")
    np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)
    again = sentrs.SentenceTransformer(str(tmp_path / "hf"), device="cpu")
    np.testing.assert_allclose(again.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)


# ---------------------------------------------------------------------------------------------- legacy config keys
def test_legacy_config_keys_and_keyword_names(tmp_path: Path, ref_folders: Callable[[str], str]) -> None:
    import shutil

    import sentence_transformers

    import sentrs
    from sentrs.sentence_transformer.modules import CNN, LSTM, WeightedLayerPooling

    for name, sub, file_name, new, old in (
        ("cnn", "1_CNN", "cnn_config.json", "in_embedding_dimension", "in_word_embedding_dimension"),
        ("bilstm", "1_LSTM", "lstm_config.json", "embedding_dimension", "word_embedding_dimension"),
    ):
        folder = tmp_path / name
        shutil.copytree(ref_folders(name), folder)
        config_path = folder / sub / file_name
        config = json.loads(config_path.read_text())
        config[old] = config.pop(new)
        config.pop("stride_sizes", None)  # absent before 6.2
        config_path.write_text(json.dumps(config))
        ref = sentence_transformers.SentenceTransformer(ref_folders(name), device="cpu")
        ours = sentrs.SentenceTransformer(str(folder), device="cpu")
        np.testing.assert_allclose(ours.encode(TEXTS), ref.encode(TEXTS), atol=ATOL)

    assert CNN(in_word_embedding_dimension=8).in_embedding_dimension == 8
    assert LSTM(word_embedding_dimension=8, hidden_dim=2).embedding_dimension == 8
    assert WeightedLayerPooling(word_embedding_dimension=8).embedding_dimension == 8
    assert CNN(8, kernel_sizes=[1, 3], stride_sizes=[1, 2]).stride_sizes == [1, 2]
    with pytest.raises(ValueError, match="one stride per kernel size, got 1 strides for 2 kernel sizes"):
        CNN(8, kernel_sizes=[1, 3], stride_sizes=[1])


def test_dropout_is_identity_in_eval_and_drops_in_training() -> None:
    from sentrs.sentence_transformer.modules import Dropout

    x = torch.ones(4, 64)
    dropout = Dropout(0.5).eval()
    assert torch.equal(dropout({"sentence_embedding": x})["sentence_embedding"], x)
    dropout.train()
    torch.manual_seed(0)
    out = dropout({"sentence_embedding": x})["sentence_embedding"]
    assert (out == 0).any() and set(out.unique().tolist()) <= {0.0, 2.0}
