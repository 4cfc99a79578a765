"""Router, SparseStaticEmbedding and SparseAutoEncoder against the reference, on tiny random models built here.

Each model is built and saved by the reference, loaded by sentrs (and the reverse), and encoded by both.
Tolerance: 1e-5 absolute on values (same float32 weights and ops; observed ~1e-7), identical active dimensions.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import sentrs

ATOL = 1e-5
TEXTS = [
    "what causes heart disease",
    "The heart pumps blood through the body.",
    "",
    "a a a repeated repeated tokens",
    "Émoji 🤖 and café",
    "long text " * 100,
]


def _dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.is_sparse else x


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.is_sparse == b.is_sparse
    da, db = _dense(a).float(), _dense(b).float()
    assert torch.equal(da != 0, db != 0), "active dimensions differ"
    torch.testing.assert_close(da, db, atol=ATOL, rtol=0)


def _files(folder: str) -> set[str]:
    out = set()
    for root, _, names in os.walk(folder):
        for name in names:
            if name != "README.md":
                out.add(os.path.relpath(os.path.join(root, name), folder))
    return out


@pytest.fixture(scope="session")
def tiny_mlm_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """A random 2-layer BertForMaskedLM (hidden 32) with the MiniLM tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    torch.manual_seed(3)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    out = tmp_path_factory.mktemp("tiny_mlm")
    BertForMaskedLM(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(minilm_path).save_pretrained(out)
    return str(out)


@pytest.fixture(scope="session")
def ref_router_dir(tmp_path_factory: pytest.TempPathFactory, tiny_mlm_dir: str) -> str:
    """An inference-free SPLADE model saved by the reference: SparseStaticEmbedding queries, MLM documents."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import (
        Router,
        SparseStaticEmbedding,
        SpladePooling,
        Transformer,
    )

    torch.manual_seed(4)
    doc = Transformer(tiny_mlm_dir, transformer_task="fill-mask")
    weight = torch.rand(len(doc.tokenizer.get_vocab())) * 3
    weight[torch.rand_like(weight) < 0.3] = 0.0  # some tokens carry no weight at all
    query = SparseStaticEmbedding(tokenizer=doc.tokenizer, weight=weight, frozen=True)
    router = Router.for_query_document(
        query_modules=[query],
        document_modules=[doc, SpladePooling(pooling_strategy="max", activation_function="log1p_relu")],
    )
    model = SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")
    out = tmp_path_factory.mktemp("ref_router")
    model.save(str(out))
    return str(out)


@pytest.fixture(scope="session")
def router_pair(ref_router_dir: str) -> tuple[Any, Any]:
    import sentence_transformers

    return sentrs.SparseEncoder(ref_router_dir, device="cpu"), sentence_transformers.SparseEncoder(
        ref_router_dir, device="cpu"
    )


@pytest.mark.parametrize("method", ["encode_query", "encode_document", "encode"])
@pytest.mark.parametrize("max_active_dims", [None, 5])
def test_router_parity(router_pair: tuple[Any, Any], method: str, max_active_dims: int | None) -> None:
    ours, ref = router_pair
    for batch_size in (2, 32):
        a = getattr(ours, method)(TEXTS, batch_size=batch_size, max_active_dims=max_active_dims)
        b = getattr(ref, method)(TEXTS, max_active_dims=max_active_dims)
        _same(a, b)


def test_router_task_argument_and_single_text(router_pair: tuple[Any, Any]) -> None:
    ours, ref = router_pair
    _same(ours.encode(TEXTS, task="query"), ref.encode(TEXTS, task="query"))
    _same(ours.encode_query(TEXTS[0]), ref.encode_query(TEXTS[0]))
    q = ours.encode_query(TEXTS[:2])
    d = ours.encode_document(TEXTS[:2])
    torch.testing.assert_close(ours.similarity(q, d), ref.similarity(q, d), atol=1e-4, rtol=0)
    assert ours.decode(q[0], top_k=5) == ref.decode(q[0], top_k=5)


def test_router_structure_and_kwargs(router_pair: tuple[Any, Any]) -> None:
    ours, ref = router_pair
    router = ours[0]
    assert isinstance(router, sentrs.models.Router)
    assert router.default_route == "document"
    assert sorted(ours.get_model_kwargs()) == sorted(ref.get_model_kwargs())
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension()
    assert ours.max_seq_length == ref.max_seq_length
    assert ours.tokenizer.vocab_size == ref.tokenizer.vocab_size


def test_router_unknown_task_raises(router_pair: tuple[Any, Any]) -> None:
    ours, _ = router_pair
    with pytest.raises(ValueError, match="No route found for task 'passage'"):
        ours.encode(TEXTS, task="passage")
    with pytest.raises(ValueError, match="does not use"):
        ours.encode(TEXTS, colour="red")


def test_router_saves_like_the_reference(router_pair: tuple[Any, Any], ref_router_dir: str, tmp_path: Path) -> None:
    ours, ref = router_pair
    out = str(tmp_path / "ours")
    ours.save(out)
    assert _files(out) == _files(ref_router_dir)
    for name in ("router_config.json", "modules.json"):
        with open(os.path.join(out, name)) as f, open(os.path.join(ref_router_dir, name)) as g:
            assert json.load(f) == json.load(g), name
    import sentence_transformers

    back = sentence_transformers.SparseEncoder(out, device="cpu")
    _same(back.encode_query(TEXTS), ref.encode_query(TEXTS))
    _same(back.encode_document(TEXTS), ref.encode_document(TEXTS))
    again = sentrs.SparseEncoder(out, device="cpu")
    _same(again.encode_query(TEXTS), ours.encode_query(TEXTS))


def test_router_built_in_code_matches_reference(tiny_mlm_dir: str) -> None:
    """Router.for_query_document built with sentrs' own modules gives the reference's numbers."""
    import sentence_transformers
    from sentence_transformers.sparse_encoder import modules as ref_modules

    torch.manual_seed(5)
    ref_doc = ref_modules.Transformer(tiny_mlm_dir, transformer_task="fill-mask")
    weight = torch.rand(len(ref_doc.tokenizer.get_vocab()))
    ref = sentence_transformers.SparseEncoder(
        modules=[
            ref_modules.Router.for_query_document(
                [ref_modules.SparseStaticEmbedding(ref_doc.tokenizer, weight=weight.clone())],
                [ref_doc, ref_modules.SpladePooling("max")],
            )
        ],
        device="cpu",
    )
    doc = sentrs.sparse_encoder.modules.Transformer(tiny_mlm_dir, transformer_task="fill-mask")
    ours = sentrs.SparseEncoder(
        modules=[
            sentrs.sparse_encoder.modules.Router.for_query_document(
                [sentrs.SparseStaticEmbedding(doc.tokenizer, weight=weight.clone())],
                [doc, sentrs.SpladePooling("max")],
            )
        ],
        device="cpu",
    )
    _same(ours.encode_query(TEXTS), ref.encode_query(TEXTS))
    _same(ours.encode_document(TEXTS), ref.encode_document(TEXTS))


# ---------------------------------------------------------------------------------------- SparseStaticEmbedding
def test_sparse_static_embedding_from_json(tiny_mlm_dir: str, tmp_path: Path) -> None:
    from sentence_transformers.sparse_encoder.modules import SparseStaticEmbedding as RefSSE
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    idf = {"heart": 4.5, "disease": 3.25, "the": 0.1, "##s": 1.0, "blood": 2.0}
    path = tmp_path / "idf.json"
    path.write_text(json.dumps(idf))
    ours = sentrs.SparseStaticEmbedding.from_json(str(path), tokenizer=tokenizer, frozen=True)
    ref = RefSSE.from_json(str(path), tokenizer=tokenizer, frozen=True)
    torch.testing.assert_close(ours.weight.detach(), ref.weight.detach(), atol=0, rtol=0)
    assert ours.frozen and not ours.weight.requires_grad
    import sentence_transformers

    a = sentrs.SparseEncoder(modules=[ours], device="cpu").encode(TEXTS, prompt="query: ")
    b = sentence_transformers.SparseEncoder(modules=[ref], device="cpu").encode(TEXTS, prompt="query: ")
    _same(a, b)


def test_sparse_static_embedding_errors(tiny_mlm_dir: str, tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm_dir)
    with pytest.raises(ValueError, match="weight must be a 1-D"):
        sentrs.SparseStaticEmbedding(tokenizer, weight=torch.ones(3, 3))
    with pytest.raises(TypeError, match="tokenizer must be a transformers tokenizer"):
        sentrs.SparseStaticEmbedding(None)
    small_sse = sentrs.SparseStaticEmbedding(tokenizer, weight=torch.ones(10))
    small = sentrs.SparseEncoder(modules=[small_sse], device="cpu")
    with pytest.raises(ValueError, match="outside the 10 static weights"):
        small.encode(["heart disease"])
    with pytest.raises(ValueError, match="json_path must be a JSON file"):
        sentrs.SparseStaticEmbedding.from_json(str(tmp_path / "missing" / "idf.json"), tokenizer=tokenizer)


# ---------------------------------------------------------------------------------------- SparseAutoEncoder
@pytest.fixture(scope="session")
def make_ref_csr(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: str) -> Any:
    cache: dict[bool, str] = {}

    def build(normalize: bool) -> str:
        if normalize in cache:
            return cache[normalize]
        from sentence_transformers import SparseEncoder
        from sentence_transformers.models import Pooling
        from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder, Transformer

        torch.manual_seed(6)
        sae = SparseAutoEncoder(input_dim=32, hidden_dim=128, k=12, k_aux=24, normalize=normalize)
        with torch.no_grad():  # non-zero biases so every term of the formula matters
            sae.pre_bias.normal_(0, 0.1)
            sae.latent_bias.normal_(0, 0.1)
        model = SparseEncoder(
            modules=[Transformer(tiny_bert_dir), Pooling(32, pooling_mode="mean"), sae], device="cpu"
        )
        out = tmp_path_factory.mktemp("ref_csr")
        model.save(str(out))
        cache[normalize] = str(out)
        return str(out)

    return build


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("max_active_dims", [None, 4, 200])
def test_sparse_auto_encoder_parity(make_ref_csr: Any, normalize: bool, max_active_dims: int | None) -> None:
    import sentence_transformers

    folder = make_ref_csr(normalize)
    ours = sentrs.SparseEncoder(folder, device="cpu")
    ref = sentence_transformers.SparseEncoder(folder, device="cpu")
    assert ours.max_active_dims == ref.max_active_dims == 12
    assert ours.get_embedding_dimension() == ref.get_embedding_dimension() == 128
    if max_active_dims == 200:  # more than hidden_dim: the reference's torch.topk fails; sentrs keeps them all
        out = ours.encode(TEXTS, max_active_dims=max_active_dims)
        assert out.shape == (len(TEXTS), 128)
        return
    for batch_size in (2, 32):
        a = ours.encode(TEXTS, batch_size=batch_size, max_active_dims=max_active_dims)
        b = ref.encode(TEXTS, max_active_dims=max_active_dims)
        _same(a, b)
        assert int((_dense(a) != 0).sum(dim=1).max()) <= (max_active_dims or 12)


def test_sparse_auto_encoder_save_both_ways(make_ref_csr: Any, tmp_path: Path) -> None:
    import sentence_transformers
    from safetensors import safe_open

    folder = make_ref_csr(False)
    ours = sentrs.SparseEncoder(folder, device="cpu")
    out = str(tmp_path / "ours")
    ours.save(out)
    assert _files(out) == _files(folder)
    sae_dir = "2_SparseAutoEncoder"
    with (
        safe_open(os.path.join(out, sae_dir, "model.safetensors"), "pt") as f,
        safe_open(os.path.join(folder, sae_dir, "model.safetensors"), "pt") as g,
    ):
        assert sorted(f.keys()) == sorted(g.keys())
        assert f.metadata() == g.metadata()
    with open(os.path.join(out, sae_dir, "config.json")) as f, open(os.path.join(folder, sae_dir, "config.json")) as g:
        assert json.load(f) == json.load(g)
    ref_back = sentence_transformers.SparseEncoder(out, device="cpu")
    _same(ours.encode(TEXTS), ref_back.encode(TEXTS))


def test_sparse_auto_encoder_training_outputs(make_ref_csr: Any) -> None:
    """Outside inference mode both return the same auxiliary latents and reconstructions (used by CSR losses)."""
    import sentence_transformers

    folder = make_ref_csr(True)
    ours = sentrs.SparseEncoder(folder, device="cpu")
    ref = sentence_transformers.SparseEncoder(folder, device="cpu")
    x = torch.randn(4, 32, generator=torch.Generator().manual_seed(0))
    a = ours[-1]({"sentence_embedding": x.clone()})
    b = ref[-1]({"sentence_embedding": x.clone()})
    assert set(a) == set(b)
    for key in b:
        if isinstance(b[key], torch.Tensor):
            torch.testing.assert_close(a[key], b[key], atol=ATOL, rtol=0, msg=key)


def test_default_csr_head_for_non_mlm_folder(tiny_bert_dir: str) -> None:
    import sentence_transformers

    ours = sentrs.SparseEncoder(tiny_bert_dir, device="cpu")
    ref = sentence_transformers.SparseEncoder(tiny_bert_dir, device="cpu")
    assert (
        [type(m).__name__ for m in ours]
        == [type(m).__name__ for m in ref]
        == [
            "Transformer",
            "Pooling",
            "SparseAutoEncoder",
        ]
    )
    assert ours[-1].get_config_dict() == ref[-1].get_config_dict()
    assert ours.max_active_dims == ref.max_active_dims


def test_sentence_transformer_folder_converts_to_csr(make_tiny_st: Any, copy_dir: Any) -> None:
    import sentence_transformers

    folder = make_tiny_st(dense=True)
    ours = sentrs.SparseEncoder(folder, device="cpu")
    ref = sentence_transformers.SparseEncoder(folder, device="cpu")
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in ref]
    assert ours[-1].get_config_dict() == ref[-1].get_config_dict()
    assert ours.max_active_dims == ref.max_active_dims == 4
    # The converted head is untrained: copy the reference's weights into ours and compare numbers.
    ours[-1].load_state_dict(ref[-1].state_dict())
    _same(ours.encode(TEXTS), ref.encode(TEXTS))


# ---------------------------------------------------------------------------------------- Router in dense models
def test_sentence_transformer_router_and_legacy_asym(tiny_bert_dir: str, tmp_path: Path) -> None:
    import sentence_transformers
    from sentence_transformers.sentence_transformer import modules as m

    torch.manual_seed(7)
    router = m.Router.for_query_document(
        query_modules=[m.Transformer(tiny_bert_dir), m.Pooling(32, pooling_mode="mean")],
        document_modules=[m.Transformer(tiny_bert_dir), m.Pooling(32, pooling_mode="cls"), m.Dense(32, 8)],
    )
    ref = sentence_transformers.SentenceTransformer(modules=[router, m.Normalize()], device="cpu")
    folder = str(tmp_path / "st_router")
    ref.save(folder)
    ours = sentrs.SentenceTransformer(folder, device="cpu")
    for method in ("encode_query", "encode_document", "encode"):
        if method == "encode_query":
            # The query route has no Dense, so its width differs: compare within the route only.
            a, b = ours.encode_query(TEXTS), ref.encode_query(TEXTS)
        else:
            a, b = getattr(ours, method)(TEXTS), getattr(ref, method)(TEXTS)
        torch.testing.assert_close(torch.as_tensor(a), torch.as_tensor(b), atol=ATOL, rtol=0)

    # A legacy Asym folder: config.json instead of router_config.json and the old type string.
    legacy = str(tmp_path / "asym")
    shutil.copytree(folder, legacy)
    os.replace(os.path.join(legacy, "router_config.json"), os.path.join(legacy, "config.json"))
    with open(os.path.join(legacy, "modules.json")) as f:
        entries = json.load(f)
    entries[0]["type"] = "sentence_transformers.models.Asym"
    with open(os.path.join(legacy, "modules.json"), "w") as f:
        json.dump(entries, f)
    old = sentrs.SentenceTransformer(legacy, device="cpu")
    torch.testing.assert_close(
        torch.as_tensor(old.encode_document(TEXTS)), torch.as_tensor(ref.encode_document(TEXTS)), atol=ATOL, rtol=0
    )


def test_router_constructor_errors() -> None:
    norm = sentrs.Normalize()
    with pytest.raises(ValueError, match="sub_modules must be a non-empty dict"):
        sentrs.models.Router({})
    with pytest.raises(ValueError, match="default_route 'x' is not one of the routes"):
        sentrs.models.Router({"a": [norm]}, default_route="x")
    with pytest.raises(ValueError, match="route_mappings maps"):
        sentrs.models.Router({"a": [norm]}, route_mappings={("query", None): "b"})
    with pytest.raises(ValueError, match="route 'a' must hold a non-empty list"):
        sentrs.models.Router({"a": []})
    router = sentrs.models.Router({"a": [norm], "b": [norm]}, allow_empty_key=False)
    with pytest.raises(ValueError, match="no default route"):
        router.resolve_route(None, "text")
    assert router.resolve_route("b", "text") == "b"
    mappings: dict[Any, str] = {("query", "text"): "b", (None, None): "a"}
    mapped = sentrs.models.Router({"a": [norm], "b": [norm]}, route_mappings=mappings)
    assert mapped.resolve_route("query", "text") == "b"
    assert mapped.resolve_route("document", "text") == "a"


def test_router_config_without_types(tmp_path: Path) -> None:
    (tmp_path / "router_config.json").write_text(json.dumps({"structure": {}}))
    with pytest.raises(ValueError, match="no valid router_config.json"):
        sentrs.models.Router.load(str(tmp_path))
    (tmp_path / "router_config.json").write_text(
        json.dumps({"types": {"../evil": "sentence_transformers.models.Normalize"}, "structure": {}})
    )
    with pytest.raises(ValueError, match="relative folder name"):
        sentrs.models.Router.load(str(tmp_path))
