"""The interpretability helpers against the reference, on tiny MultiVectorEncoder folders built by the reference (text;
image documents: test_interpretability_images.py).

Tolerances: query-token slices must be identical. Similarity maps 1e-6 absolute for float32 inputs (the same dot
products of unit vectors, summed in a possibly different order) and 2e-3 for half-precision inputs (the product runs
in the inputs' dtype, whose spacing near 1.0 is 1e-3 for float16).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import sentrs
from sentrs.multi_vector_encoder import interpretability

QUERIES = [
    "what is a cat?",
    "hello",
    "",
    "   ",
    "Émoji 🤖 and accents: café",
    "a much longer query with many many words in it that goes well past the expansion length, yes indeed",
]
DOCUMENT = "A cat is a small domesticated carnivorous mammal; it purrs and sleeps most of the day."
ATOL = 1e-6
HALF_ATOL = 2e-3

FOLDERS: dict[str, dict[str, Any]] = {
    "plain": {},
    "expansion": {"query_expansion": {"strategy": "fixed", "length": 12}},
    "prompts": {"prompts": {"query": "query: ", "document": "passage: "}},
    "expansion_prompt": {"query_expansion": {"strategy": "fixed", "length": 12}, "prompts": {"query": "[Q] "}},
    "min_expansion_prompt": {"query_expansion": {"strategy": "min", "length": 12}, "prompts": {"query": "[Q] "}},
}


def _tiny_mve(tiny_bert_dir: str, out: Path, settings: dict[str, Any]) -> str:
    """A reference-built MultiVectorEncoder folder (Transformer + Dense(128) + MultiVectorMask + Normalize)."""
    import sentence_transformers as st

    torch.manual_seed(1)
    ref = st.MultiVectorEncoder(tiny_bert_dir, device="cpu", prompts=settings.get("prompts"))
    if "query_expansion" in settings:
        ref[0].query_expansion = settings["query_expansion"]
    ref.save(str(out))
    return str(out)


@pytest.fixture(scope="module")
def folders(tiny_bert_dir: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("mve_interpretability")
    return {name: _tiny_mve(tiny_bert_dir, root / name, settings) for name, settings in FOLDERS.items()}


@pytest.fixture(scope="module")
def loaded(folders: dict[str, str]) -> dict[str, tuple[Any, Any]]:
    """Each folder loaded by the reference and by sentrs."""
    import sentence_transformers as st

    return {
        name: (st.MultiVectorEncoder(path, device="cpu"), sentrs.MultiVectorEncoder(path, device="cpu"))
        for name, path in folders.items()
    }


# ---------------------------------------------------------------------------------------------------- query slices
@pytest.mark.parametrize("folder", list(FOLDERS))
def test_real_query_token_slice_matches_reference(folder: str, loaded: dict[str, tuple[Any, Any]]) -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    ref, ours = loaded[folder]
    for query in QUERIES:
        expected = ref_interpretability.real_query_token_slice(ref, query)
        got = interpretability.real_query_token_slice(ours, query)
        assert got == expected, (folder, query)


@pytest.mark.parametrize("folder", ["expansion", "prompts"])
def test_real_query_token_slice_selects_the_same_embeddings(folder: str, loaded: dict[str, tuple[Any, Any]]) -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    ref, ours = loaded[folder]
    query = "what is a cat?"
    expected = ref.encode_query([query])[0][ref_interpretability.real_query_token_slice(ref, query)]
    got = ours.encode_query([query])[0][interpretability.real_query_token_slice(ours, query)]
    # "what is a cat?" is five word pieces: the slice keeps exactly them.
    assert got.shape == expected.shape == (5, 128)
    assert torch.allclose(torch.as_tensor(got), expected, atol=1e-5)


def test_real_query_token_slice_skips_prompt_and_expansion(loaded: dict[str, tuple[Any, Any]]) -> None:
    ours = loaded["expansion_prompt"][1]
    transformer = ours[0]
    query = "what is a cat?"
    ids = transformer.preprocess([query], prompt=ours.prompts["query"], task="query")["input_ids"][0].tolist()
    words = transformer.tokenizer(query, add_special_tokens=False)["input_ids"]
    assert ids[interpretability.real_query_token_slice(ours, query)] == words


def test_real_query_token_slice_needs_a_transformer() -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    modules = [torch.nn.Identity()]
    with pytest.raises(ValueError, match="needs a Transformer module"):
        ref_interpretability.real_query_token_slice(modules, "q")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"with the model's Transformer module, and this model has none.*Identity"):
        interpretability.real_query_token_slice(modules, "q")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------- similarity maps
def _random_unit(rows: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=generator), dim=-1)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_maxsim_similarity_map_matches_reference(normalize: bool, masked: bool, dtype: torch.dtype) -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    query = _random_unit(7, 16, seed=0).to(dtype)
    n_patches = (4, 3)  # 4 columns, 3 rows
    document = _random_unit(12 + (5 if masked else 0), 16, seed=1).to(dtype)
    mask = None
    if masked:
        mask = torch.ones(17, dtype=torch.bool)
        mask[[0, 1, 8, 15, 16]] = False  # e.g. special tokens around and inside the grid's tokens
    kwargs: dict[str, Any] = {"n_patches": n_patches, "image_mask": mask, "normalize": normalize}
    expected = ref_interpretability.maxsim_similarity_map(query, document, **kwargs)
    got = interpretability.maxsim_similarity_map(query, document, **kwargs)
    assert got.dtype == expected.dtype == torch.float32
    assert got.shape == expected.shape == (7, 3, 4)
    atol = ATOL if dtype == torch.float32 else HALF_ATOL
    assert torch.allclose(got, expected, atol=atol), float((got - expected).abs().max())


def test_maxsim_similarity_map_on_encoded_text(loaded: dict[str, tuple[Any, Any]]) -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    ref, ours = loaded["expansion"]
    query = "what is a cat?"
    ref_query = ref.encode_query([query])[0][ref_interpretability.real_query_token_slice(ref, query)]
    our_query = ours.encode_query([query])[0][interpretability.real_query_token_slice(ours, query)]
    ref_document = ref.encode_document([DOCUMENT])[0]
    our_document = ours.encode_document([DOCUMENT])[0]
    n_tokens = int(ref_document.shape[0])
    assert our_document.shape[0] == n_tokens
    # Text has no grid: lay the document's tokens out as one row.
    expected = ref_interpretability.maxsim_similarity_map(ref_query, ref_document, (n_tokens, 1), normalize=True)
    got = interpretability.maxsim_similarity_map(our_query, our_document, (n_tokens, 1), normalize=True)
    assert got.shape == expected.shape == (5, 1, n_tokens)
    # Encoded embeddings agree to 1e-5 (see test_model.py), so their normalized dot products do to about 1e-4.
    assert torch.allclose(got, expected, atol=1e-4), float((got - expected).abs().max())
    # Summed over the row, each query token's best score is its MaxSim contribution.
    maxsim = float(ours.similarity([our_query], [our_document])[0, 0])
    raw = interpretability.maxsim_similarity_map(our_query, our_document, (n_tokens, 1))
    assert raw.amax(dim=(1, 2)).sum().item() == pytest.approx(maxsim, abs=1e-4)


def test_maxsim_similarity_map_takes_numpy_arrays() -> None:
    query = _random_unit(3, 8, seed=2)
    document = _random_unit(6, 8, seed=3)
    mask = torch.tensor([True, True, False, True, True, True])
    expected = interpretability.maxsim_similarity_map(query, document, (5, 1), image_mask=mask)
    got = interpretability.maxsim_similarity_map(query.numpy(), document.numpy(), (5, 1), image_mask=mask.numpy())
    assert isinstance(got, torch.Tensor)
    assert torch.allclose(got, expected, atol=0.0)


def test_maxsim_similarity_map_constant_map_normalizes_to_zeros() -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    query = torch.ones(2, 4)
    document = torch.ones(6, 4)
    expected = ref_interpretability.maxsim_similarity_map(query, document, (3, 2), normalize=True)
    got = interpretability.maxsim_similarity_map(query, document, (3, 2), normalize=True)
    assert torch.equal(got, expected)
    assert torch.equal(got, torch.zeros(2, 2, 3))


def test_maxsim_similarity_map_checks_the_grid() -> None:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    query = _random_unit(2, 8, seed=4)
    document = _random_unit(10, 8, seed=5)
    with pytest.raises(ValueError, match="has 10 tokens but n_patches"):
        ref_interpretability.maxsim_similarity_map(query, document, (3, 3))
    with pytest.raises(ValueError, match=r"image_embedding has 10 tokens after masking, but n_patches=\(3, 3\)"):
        interpretability.maxsim_similarity_map(query, document, (3, 3))


# ------------------------------------------------------------------------------------------------------- the API
def test_signatures_match_reference() -> None:
    import inspect

    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    assert sorted(interpretability.__all__) == sorted(ref_interpretability.__all__)
    for name in ref_interpretability.__all__:
        ref_parameters = inspect.signature(getattr(ref_interpretability, name)).parameters
        our_parameters = inspect.signature(getattr(interpretability, name)).parameters
        assert [(p.name, p.kind, p.default) for p in our_parameters.values()] == [
            (p.name, p.kind, p.default) for p in ref_parameters.values()
        ], name


def test_maxsim_similarity_map_is_the_grid_of_dot_products() -> None:
    query = _random_unit(2, 4, seed=8)
    out = interpretability.maxsim_similarity_map(query, query, (2, 1))
    assert out.device == query.device
    assert np.allclose(out.numpy()[:, 0, :], (query @ query.T).numpy(), atol=ATOL)
