"""MultiVectorEncoder against the reference: folders built with sentence-transformers 6.2 and loaded by both.

Tolerances: token embeddings 1e-5 absolute (float32, the same torch forward on the same ids; batches differ only
in composition, which moves single-ulp values), MaxSim scores 1e-4 (sums of up to ~40 token maxima of unit vectors).
Tokenized features (ids, masks, expansion positions) must be identical.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs

QUERIES = [
    "what is a cat?",
    "hello",
    "a much longer query with many many words in it that goes past the query length for sure, yes indeed",
    "Where do penguins live, and why?",
]
DOCUMENTS = [
    "A cat is a small domesticated carnivorous mammal; it purrs.",
    "Dogs bark!",
    "Penguins live almost exclusively in the southern hemisphere, especially in Antarctica.",
    "word " * 60,
    "",
]
ATOL = 1e-5


def _tiny_mve(tiny_bert_dir: str, out: Path, seed: int = 1, **settings: Any) -> str:
    """A reference-built MultiVectorEncoder folder: Transformer + Dense(128) + MultiVectorMask + Normalize."""
    import sentence_transformers as st
    from sentence_transformers.multi_vector_encoder.modules import MultiVectorMask

    torch.manual_seed(seed)
    ref = st.MultiVectorEncoder(tiny_bert_dir, device="cpu", prompts=settings.pop("prompts", None))
    for key in ("query_length", "document_length", "query_expansion"):
        if key in settings:
            setattr(ref[0], key, settings.pop(key))
    mask_kwargs = {
        k: settings.pop(k) for k in ("skiplist_words", "skiplist_tasks", "keep_only_token_ids") if k in settings
    }
    if mask_kwargs:
        ref._modules["2"] = MultiVectorMask(**mask_kwargs)
        ref._modules["2"].on_model_ready(ref)
    if "similarity_fn_name" in settings:
        ref.similarity_fn_name = settings.pop("similarity_fn_name")
    assert not settings, settings
    ref.save(str(out))
    return str(out)


@pytest.fixture(scope="module")
def plain_dir(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _tiny_mve(tiny_bert_dir, tmp_path_factory.mktemp("mve") / "plain")


@pytest.fixture(scope="module")
def colbert_dir(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Fixed query expansion to 12 tokens, documents cut at 20, punctuation skiplist."""
    return _tiny_mve(
        tiny_bert_dir,
        tmp_path_factory.mktemp("mve") / "colbert",
        query_expansion={"strategy": "fixed", "length": 12},
        document_length=20,
        skiplist_words=list(string.punctuation),
    )


def _load_both(path: str, **kwargs: Any) -> tuple[Any, Any]:
    import sentence_transformers as st

    return st.MultiVectorEncoder(path, device="cpu", **kwargs), sentrs.MultiVectorEncoder(path, device="cpu", **kwargs)


def _assert_same_embeddings(ref: list[Any], ours: list[Any], atol: float = ATOL) -> None:
    assert len(ref) == len(ours)
    for a, b in zip(ref, ours):
        a = torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a
        b = torch.as_tensor(np.asarray(b)) if not isinstance(b, torch.Tensor) else b
        assert tuple(a.shape) == tuple(b.shape)
        assert torch.allclose(a.float(), b.float(), atol=atol), float((a - b).abs().max())


def _assert_same_features(ref: dict[str, Any], ours: dict[str, Any]) -> None:
    for key in ("input_ids", "attention_mask", "token_type_ids", "query_expansion_positions"):
        assert (key in ref) == (key in ours), key
        if key in ref:
            assert torch.equal(ref[key].long(), ours[key].long()), key


# ---------------------------------------------------------------------------------------------------- encode
@pytest.mark.parametrize("folder", ["plain_dir", "colbert_dir"])
def test_encode_query_document_match_reference(folder: str, request: pytest.FixtureRequest, caplog: Any) -> None:
    ref, ours = _load_both(request.getfixturevalue(folder))
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    _assert_same_embeddings(ref.encode(DOCUMENTS), ours.encode(DOCUMENTS))
    _assert_same_embeddings(ref.encode(DOCUMENTS, batch_size=2), ours.encode(DOCUMENTS, batch_size=2))
    for task in ("query", "document"):
        _assert_same_features(ref.preprocess(QUERIES, task=task), ours.preprocess(QUERIES, task=task))


@pytest.mark.parametrize(
    "expansion",
    [
        {"strategy": "fixed", "length": 10, "attend": True},
        {"strategy": "min", "length": 10},
        {"strategy": "min", "length": 10, "attend": True, "token": "[unused5]"},
    ],
)
@pytest.mark.parametrize("query_length", [None, 16])
def test_query_expansion_strategies_match_reference(
    tiny_bert_dir: str, tmp_path: Path, expansion: dict[str, Any], query_length: int | None
) -> None:
    path = _tiny_mve(tiny_bert_dir, tmp_path / "m", query_expansion=expansion, query_length=query_length)
    ref, ours = _load_both(path)
    assert ours[0].query_expansion == ref[0].query_expansion
    assert ours[0].query_length == ref[0].query_length
    _assert_same_features(ref.preprocess(QUERIES, task="query"), ours.preprocess(QUERIES, task="query"))
    _assert_same_features(
        ref.preprocess(QUERIES, task="query", max_length=12), ours.preprocess(QUERIES, task="query", max_length=12)
    )
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))


def test_skiplist_and_allow_list_match_reference(tiny_bert_dir: str, tmp_path: Path) -> None:
    path = _tiny_mve(
        tiny_bert_dir,
        tmp_path / "m",
        skiplist_words=[",", ".", "?", "not-a-token"],
        skiplist_tasks=["query", "document"],
    )
    import logging

    ref, ours = _load_both(path)
    logging.getLogger().setLevel(logging.WARNING)
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    ids = ours.tokenizer.convert_tokens_to_ids(["cat", "penguins", "dogs"])
    ref[2].keep_only_token_ids = ids
    ours[2].keep_only_token_ids = ids
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))


def test_encode_options_match_reference(plain_dir: str) -> None:
    ref, ours = _load_both(plain_dir)
    one_ref, one_ours = ref.encode_query("what is a cat?"), ours.encode_query("what is a cat?")
    assert isinstance(one_ours, torch.Tensor) and one_ours.dim() == 2
    _assert_same_embeddings([one_ref], [one_ours])
    arrays = ours.encode_document(DOCUMENTS, convert_to_numpy=True)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in arrays)
    _assert_same_embeddings(ref.encode_document(DOCUMENTS, convert_to_numpy=True), arrays)
    _assert_same_embeddings(
        ref.encode_document(DOCUMENTS, normalize_embeddings=True),
        ours.encode_document(DOCUMENTS, normalize_embeddings=True),
    )
    _assert_same_embeddings(ref.encode(DOCUMENTS, prompt="query: "), ours.encode(DOCUMENTS, prompt="query: "))
    assert ours.encode([]) == [] and ref.encode([]) == []
    raw_ref = ref.encode(DOCUMENTS[:2], output_value=None, batch_size=8)
    raw_ours = ours.encode(DOCUMENTS[:2], output_value=None, batch_size=8)
    for a, b in zip(raw_ref, raw_ours):
        assert {"token_embeddings", "attention_mask", "input_ids"} <= set(b)
        assert set(a) - {"modality"} <= set(b) | {"prompt_length"}
        assert torch.allclose(a["token_embeddings"], b["token_embeddings"], atol=ATOL)
        assert torch.equal(a["attention_mask"].bool(), b["attention_mask"].bool())


def test_similarity_matches_reference(colbert_dir: str) -> None:
    ref, ours = _load_both(colbert_dir)
    q, d = ours.encode_query(QUERIES), ours.encode_document(DOCUMENTS[:4])
    assert torch.allclose(ours.similarity(q, d), ref.similarity(q, d), atol=1e-4)
    assert torch.allclose(ours.similarity_pairwise(q, d), ref.similarity_pairwise(q, d), atol=1e-4)
    ours.similarity_fn_name = "meanmaxsim"
    ref.similarity_fn_name = "meanmaxsim"
    assert torch.allclose(ours.similarity(q, d), ref.similarity(q, d), atol=1e-5)
    assert torch.allclose(ours.similarity_pairwise(q, d), ref.similarity_pairwise(q, d), atol=1e-5)


def test_token_pooling_matches_reference(plain_dir: str) -> None:
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as RefPooling
    from sentence_transformers.multi_vector_encoder.modules import LambdaTokenPooling as RefLambda

    from sentrs.multi_vector_encoder.modules import HierarchicalTokenPooling, LambdaTokenPooling

    ref, ours = _load_both(plain_dir)
    for factor, protected, normalize in [(2, 1, True), (1.5, 0, False), (3, 2, True), (1.0, 1, True)]:
        ref_pool = RefPooling(factor, num_protected_tokens=protected, normalize_embeddings=normalize)
        our_pool = HierarchicalTokenPooling(factor, num_protected_tokens=protected, normalize_embeddings=normalize)
        _assert_same_embeddings(
            ref.encode_document(DOCUMENTS, token_pooling=ref_pool),
            ours.encode_document(DOCUMENTS, token_pooling=our_pool),
        )
        # queries are not pooled by default
        _assert_same_embeddings(
            ref.encode_query(QUERIES, token_pooling=ref_pool), ours.encode_query(QUERIES, token_pooling=our_pool)
        )
        encoded = ours.encode_document(DOCUMENTS[:3])
        padded = torch.nn.utils.rnn.pad_sequence(encoded, batch_first=True)
        mask = torch.nn.utils.rnn.pad_sequence(
            [torch.ones(len(e), dtype=torch.bool) for e in encoded], batch_first=True
        )
        assert torch.allclose(our_pool.pool(padded, attention_mask=mask), ref_pool.pool(padded, attention_mask=mask))
        assert torch.allclose(our_pool.pool(padded), ref_pool.pool(padded))
        assert torch.allclose(
            our_pool.pool(padded.flip(1), padding_side="left"), ref_pool.pool(padded.flip(1), padding_side="left")
        )

    def halve(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0] - x.shape[0] % 2
        return x[:n].view(n // 2, 2, -1).mean(dim=1)

    _assert_same_embeddings(
        ref.encode_document(DOCUMENTS[:4], token_pooling=RefLambda(halve)),
        ours.encode_document(DOCUMENTS[:4], token_pooling=LambdaTokenPooling(halve)),
    )
    with pytest.raises(NotImplementedError, match="cannot be saved"):
        LambdaTokenPooling(halve).save("unused")


def test_pooling_module_in_pipeline_round_trips(plain_dir: str, tmp_path: Path) -> None:
    import sentence_transformers as st
    from sentence_transformers.multi_vector_encoder.modules import HierarchicalTokenPooling as RefPooling

    ref = st.MultiVectorEncoder(plain_dir, device="cpu")
    ref.append(RefPooling(2.0))
    ref.save(str(tmp_path / "pooled"))
    ours = sentrs.MultiVectorEncoder(str(tmp_path / "pooled"), device="cpu")
    assert type(ours[-1]).__name__ == "HierarchicalTokenPooling"
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))
    ours.save(str(tmp_path / "again"))
    back = st.MultiVectorEncoder(str(tmp_path / "again"), device="cpu")
    _assert_same_embeddings(back.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))


# ---------------------------------------------------------------------------------------------------- folders
def test_our_save_loads_in_reference(colbert_dir: str, tmp_path: Path) -> None:
    import sentence_transformers as st

    ours = sentrs.MultiVectorEncoder(colbert_dir, device="cpu", similarity_fn_name="meanmaxsim")
    ours.prompts = {"query": "query: ", "document": ""}
    ours.save(str(tmp_path / "saved"))
    config = json.loads((tmp_path / "saved" / "config_sentence_transformers.json").read_text())
    assert config["model_type"] == "MultiVectorEncoder"
    assert config["similarity_fn_name"] == "meanmaxsim"
    modules = json.loads((tmp_path / "saved" / "modules.json").read_text())
    ref_modules = json.loads((Path(colbert_dir) / "modules.json").read_text())
    assert [m["type"] for m in modules] == [m["type"] for m in ref_modules]
    for sub in ("sentence_bert_config.json", "2_MultiVectorMask/config.json", "1_Dense/config.json"):
        assert json.loads((tmp_path / "saved" / sub).read_text()) == json.loads((Path(colbert_dir) / sub).read_text())
    back = st.MultiVectorEncoder(str(tmp_path / "saved"), device="cpu")
    assert back.similarity_fn_name == "meanmaxsim"
    assert back.prompts["query"] == "query: "
    _assert_same_embeddings(back.encode_query(QUERIES), ours.encode_query(QUERIES))
    _assert_same_embeddings(back.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    assert "MultiVectorEncoder" in (tmp_path / "saved" / "README.md").read_text()


def test_default_modules_for_a_plain_transformers_folder(tiny_bert_dir: str) -> None:
    ours = sentrs.MultiVectorEncoder(tiny_bert_dir, device="cpu")
    assert [type(m).__name__ for m in ours] == ["Transformer", "Dense", "MultiVectorMask", "Normalize"]
    assert ours[1].out_features == 128 and ours[1].module_input_name == "token_embeddings"
    assert ours.get_embedding_dimension() == 128
    assert ours.similarity_fn_name == "maxsim"
    embeddings = ours.encode_document(["a cat"])
    assert torch.allclose(embeddings[0].norm(dim=-1), torch.ones(len(embeddings[0])), atol=1e-5)


def test_converts_a_sentence_transformer_folder(make_tiny_st: Any) -> None:
    import sentence_transformers as st

    path = make_tiny_st(dense=True, normalize=True)
    ref, ours = _load_both(path)
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    assert ours[1].module_input_name == "token_embeddings" and ours[1].module_output_name == "token_embeddings"
    assert ours.similarity_fn_name == "maxsim"
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))
    # without a Dense head, a new 128-wide projection is added (random: compare after copying it)
    plain = make_tiny_st()
    ref2, ours2 = st.MultiVectorEncoder(plain, device="cpu"), sentrs.MultiVectorEncoder(plain, device="cpu")
    assert [type(m).__name__ for m in ours2] == [type(m).__name__ for m in ref2]
    ours2[1].load_state_dict(ref2[1].state_dict())
    _assert_same_embeddings(ref2.encode_document(DOCUMENTS), ours2.encode_document(DOCUMENTS))


def test_loads_a_pylate_folder(plain_dir: str, tmp_path: Path) -> None:
    """PyLate <= 3: model_type "ColBERT", prefixes and lengths at the top of the config, [Transformer, Dense]."""
    folder = tmp_path / "pylate"
    shutil.copytree(plain_dir, folder)
    modules = json.loads((folder / "modules.json").read_text())[:2]
    modules[1]["type"] = "pylate.models.Dense.Dense"
    (folder / "modules.json").write_text(json.dumps(modules))
    shutil.rmtree(folder / "2_MultiVectorMask")
    shutil.rmtree(folder / "3_Normalize")
    dense_config = json.loads((folder / "1_Dense/config.json").read_text())
    dense_config.pop("module_input_name")
    dense_config.pop("module_output_name")
    (folder / "1_Dense/config.json").write_text(json.dumps(dense_config))
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    config.update(
        model_type="ColBERT",
        query_prefix="[unused0]",
        document_prefix="[unused1]",
        query_length=16,
        document_length=24,
        attend_to_expansion_tokens=False,
        similarity_fn_name="cosine",
    )
    config.pop("prompts", None)
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    ref, ours = _load_both(str(folder))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    assert ours.prompts == ref.prompts
    assert ours[0].query_expansion == ref[0].query_expansion and ours[0].document_length == 24
    assert ours.similarity_fn_name == "maxsim"
    _assert_same_features(
        ref.preprocess(QUERIES, prompt=ref.prompts["query"], task="query"),
        ours.preprocess(QUERIES, prompt=ours.prompts["query"], task="query"),
    )
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))


def test_loads_a_stanford_colbert_folder(tiny_bert_dir: str, tmp_path: Path) -> None:
    """Stanford ColBERT: HF_ColBERT architecture, ``linear.weight`` beside the encoder, ``artifact.metadata``."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "stanford"
    shutil.copytree(tiny_bert_dir, folder)
    weights = load_file(str(folder / "model.safetensors"))
    torch.manual_seed(3)
    weights["linear.weight"] = torch.randn(24, 32)
    save_file(weights, str(folder / "model.safetensors"))
    config = json.loads((folder / "config.json").read_text())
    config["architectures"] = ["HF_ColBERT"]
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "artifact.metadata").write_text(
        json.dumps({"query_maxlen": 12, "doc_maxlen": 20, "attend_to_mask_tokens": False, "mask_punctuation": True})
    )
    import logging

    logging.getLogger("transformers").setLevel(logging.ERROR)
    ref, ours = _load_both(str(folder))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    assert ours.get_embedding_dimension() == 24
    assert ours.prompts == ref.prompts
    assert ours[0].query_expansion == ref[0].query_expansion
    _assert_same_embeddings(ref.encode_query(QUERIES), ours.encode_query(QUERIES))
    _assert_same_embeddings(ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS))


# ---------------------------------------------------------------------------------------------------- errors
def test_bad_input_gives_clear_errors(plain_dir: str, tiny_bert_dir: str) -> None:
    ours = sentrs.MultiVectorEncoder(plain_dir, device="cpu")
    with pytest.raises(ValueError, match="output_value must be 'token_embeddings' or None"):
        ours.encode(["a"], output_value="sentence_embedding")
    with pytest.raises(ValueError, match="no convert_to_tensor"):
        ours.encode(["a"], convert_to_tensor=True)
    with pytest.raises(ValueError, match="does not use: \\['bogus'\\]"):
        ours.encode(["a"], bogus=1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        ours.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="token_pooling must be a BaseTokenPooling"):
        ours.encode(["a"], token_pooling="ward")
    with pytest.raises(ValueError, match="'maxsim' or 'meanmaxsim'"):
        sentrs.MultiVectorEncoder(plain_dir, device="cpu", similarity_fn_name="cosine")
    with pytest.raises(ValueError, match="training-time scoring"):
        ours.similarity_fn_name = "xtr"
    with pytest.raises(ValueError, match="unknown keys"):
        ours[0].query_expansion = {"strategy": "fixed", "length": 8, "pad": 1}
    with pytest.raises(ValueError, match="strategy"):
        ours[0].query_expansion = {"strategy": "max", "length": 8}
    with pytest.raises(ValueError, match="length"):
        ours[0].query_expansion = {"strategy": "fixed"}
    with pytest.raises(ValueError, match="not a token of this tokenizer"):
        ours[0].query_expansion = {"strategy": "fixed", "length": 8, "token": "<no such token>"}
    ours[0].query_length = 4
    with pytest.raises(ValueError, match="query_length=4 is smaller"):
        ours[0].query_expansion = {"strategy": "fixed", "length": 8}
    with pytest.raises(ValueError, match="query_length must be a positive integer"):
        sentrs.models.Transformer(tiny_bert_dir, query_length=0)
    from sentrs.multi_vector_encoder.modules import HierarchicalTokenPooling, MultiVectorMask

    with pytest.raises(ValueError, match="pool_factor must be a number >= 1"):
        HierarchicalTokenPooling(0.5)
    with pytest.raises(ValueError, match="skiplist_words must be a list of str"):
        MultiVectorMask(skiplist_words=",.")
    with pytest.raises(ValueError, match="embeddings must be a"):
        HierarchicalTokenPooling(2).pool(torch.zeros(3, 4))


def test_top_level_import_and_module_registry() -> None:
    from sentrs.base.registry import module_class_for_type

    assert sentrs.MultiVectorEncoder is sentrs.multi_vector_encoder.MultiVectorEncoder
    ref_type = "sentence_transformers.multi_vector_encoder.modules.multi_vector_mask.MultiVectorMask"
    assert module_class_for_type(ref_type).__name__ == "MultiVectorMask"
    assert module_class_for_type("pylate.models.Dense.Dense").__module__ == "sentrs.base.modules.dense"


def test_minilm_multi_vector_model_matches_reference(minilm_path: str, tmp_path: Path) -> None:
    """The real MiniLM as a multi-vector model (the reference converts the folder and adds a seeded projection;
    both libraries load the saved result), with query expansion: token embeddings 1e-5, MaxSim 1e-4."""
    import sentence_transformers as st

    torch.manual_seed(0)
    ref = st.MultiVectorEncoder(minilm_path, device="cpu")
    ref[0].query_expansion = {"strategy": "fixed", "length": 16}
    ref.save(str(tmp_path / "minilm-mv"))
    ref, ours = _load_both(str(tmp_path / "minilm-mv"))
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    q_ref, q_ours = ref.encode_query(QUERIES), ours.encode_query(QUERIES)
    d_ref, d_ours = ref.encode_document(DOCUMENTS), ours.encode_document(DOCUMENTS)
    _assert_same_embeddings(q_ref, q_ours)
    _assert_same_embeddings(d_ref, d_ours)
    assert torch.allclose(ours.similarity(q_ours, d_ours), ref.similarity(q_ref, d_ref), atol=1e-4)
