"""The interpretability helpers on image documents, against the reference, with the tiny random ``*ForRetrieval``
models of test_for_retrieval.py (ColPali: a fixed 2x2 grid; ColQwen2: a grid sized to the image; ColModernVBert:
tiled images, which neither library maps).

Tolerances: patch grids, image-token masks and rendered pixels must be identical (the same float32 scaling of the
same map to 256 levels, the same Pillow resize and blend). Similarity maps 1e-5 absolute: sentrs' and the reference's
token embeddings agree to 1e-5 (test_for_retrieval.py) and the maps are their dot products; given the same
embeddings the maps must be equal to 1e-6 (the same float32 products, possibly summed in another order).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision  # noqa: F401  (the `fixtures` extra; the ColQwen2 image processor needs it)
from PIL import Image

import sentrs
from sentrs.exceptions import InputTypeError
from sentrs.multi_vector_encoder import interpretability
from tests.multi_vector_encoder.test_for_retrieval import BUILDERS

ATOL_MAPS = 1e-5
ATOL_SAME_INPUTS = 1e-6
QUERY = "what is the chart about?"
#: (width, height) of the test pages: ColQwen2 gives them 2x3, 5x2 and 4x4 grids, ColPali always 2x2.
PAGE_SIZES = [(30, 40), (140, 56), (112, 112)]
AGGREGATES = ["sum", "amax", "none"]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    """``{name: (reference model, sentrs model)}`` for the three tiny retrieval checkpoints."""
    import sentence_transformers as st

    models = {}
    for name, build in BUILDERS.items():
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        path = str(folder)
        models[name] = (st.MultiVectorEncoder(path, device="cpu"), sentrs.MultiVectorEncoder(path, device="cpu"))
    return models


@pytest.fixture(scope="module")
def pages() -> list[Any]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for w, h in PAGE_SIZES]


def _ref_module() -> Any:
    from sentence_transformers.multi_vector_encoder import interpretability as ref_interpretability

    return ref_interpretability


def _pixels(image: Any) -> np.ndarray:
    assert image.mode == "RGBA"
    return np.asarray(image)


def _image_mask(model: Any, page: Any) -> torch.Tensor:
    """True for the document's image-patch tokens: its processor's image token in the preprocessed ids."""
    features = model.preprocess([page], task="document")
    return features["input_ids"][0] == model.processor.image_token_id


def _query_and_page(model: Any, module: Any, page: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One library's (real query tokens, page tokens, image mask) for ``page``."""
    query = torch.as_tensor(model.encode_query([QUERY])[0][module.real_query_token_slice(model, QUERY)])
    document = torch.as_tensor(model.encode_document([page])[0])
    return query, document, _image_mask(model, page)


def _random_map(rows: int, cols: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------------- patch grids
@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_get_n_patches_matches_reference(loaded: dict[str, tuple[Any, Any]], name: str) -> None:
    ref, ours = loaded[name]
    sizes = [*PAGE_SIZES, (28, 28), (500, 20), (20, 500), (1000, 1400), (1, 1)]
    for size in sizes:
        expected = _ref_module().get_n_patches(ref, size)
        assert interpretability.get_n_patches(ours, size) == expected, size
        assert interpretability.get_n_patches(ours, [np.int64(size[0]), np.int64(size[1])]) == expected
    grids = {interpretability.get_n_patches(ours, size) for size in PAGE_SIZES}
    assert grids == ({(2, 2)} if name == "colpali" else {(2, 3), (5, 2), (4, 4)})


@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_grid_holds_exactly_the_image_tokens(loaded: dict[str, tuple[Any, Any]], pages: list[Any], name: str) -> None:
    ref, ours = loaded[name]
    for page in pages:
        ours_mask, ref_mask = _image_mask(ours, page), _image_mask(ref, page)
        assert torch.equal(ours_mask, ref_mask)
        n_cols, n_rows = interpretability.get_n_patches(ours, page.size)
        assert int(ours_mask.sum()) == n_cols * n_rows
        assert ours_mask.shape[0] == ours.encode_document([page])[0].shape[0]  # the mask lines up with the tokens


def test_get_n_patches_of_tiling_processors_is_not_implemented(loaded: dict[str, tuple[Any, Any]]) -> None:
    ref, ours = loaded["colmodernvbert"]
    with pytest.raises(NotImplementedError, match="Idefics3 / SmolVLM"):
        _ref_module().get_n_patches(ref, (56, 56))
    with pytest.raises(NotImplementedError, match=r"Idefics3ImageProcessor.*tile by tile.*pass n_patches"):
        interpretability.get_n_patches(ours, (56, 56))


def test_get_n_patches_of_a_text_model_is_a_value_error(tiny_bert_dir: str) -> None:
    import sentence_transformers as st

    with pytest.raises(ValueError, match="Could not infer a patch grid"):
        _ref_module().get_n_patches(st.MultiVectorEncoder(tiny_bert_dir, device="cpu"), (64, 48))
    with pytest.raises(ValueError, match=r"found no patch grid in BertTokenizer.*pass n_patches"):
        interpretability.get_n_patches(sentrs.MultiVectorEncoder(tiny_bert_dir), (64, 48))


@pytest.mark.parametrize("size", [(0, 10), (10,), (10.0, 5), "64x48", (True, 4), None])
def test_get_n_patches_checks_the_size(loaded: dict[str, tuple[Any, Any]], size: Any) -> None:
    # The reference divides by zero on (0, 10) for ColQwen2 and gives ColPali's grid for any of these.
    with pytest.raises(ValueError, match=r"image_size must be \(width, height\) in pixels, two positive integers"):
        interpretability.get_n_patches(loaded["colqwen2"][1], size)


# --------------------------------------------------------------------------------------------------- similarity maps
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_similarity_maps_of_encoded_pages_match_reference(
    loaded: dict[str, tuple[Any, Any]], pages: list[Any], name: str, normalize: bool
) -> None:
    ref, ours = loaded[name]
    for page in pages:
        ref_query, ref_page, ref_mask = _query_and_page(ref, _ref_module(), page)
        our_query, our_page, our_mask = _query_and_page(ours, interpretability, page)
        n_patches = interpretability.get_n_patches(ours, page.size)
        expected = _ref_module().maxsim_similarity_map(ref_query, ref_page, n_patches, ref_mask, normalize)
        got = interpretability.maxsim_similarity_map(our_query, our_page, n_patches, our_mask, normalize)
        assert got.shape == expected.shape == (len(QUERY), n_patches[1], n_patches[0])
        assert got.dtype == expected.dtype == torch.float32
        torch.testing.assert_close(got, expected, atol=ATOL_MAPS, rtol=0)
        # On the same embeddings the two maps differ by float32 rounding at most.
        same = interpretability.maxsim_similarity_map(ref_query, ref_page, n_patches, ref_mask, normalize)
        torch.testing.assert_close(same, expected, atol=ATOL_SAME_INPUTS, rtol=0)


def test_maps_of_another_pages_grid_are_rejected(loaded: dict[str, tuple[Any, Any]], pages: list[Any]) -> None:
    """The grid of one page size does not fit the tokens of a page of another size."""
    ours = loaded["colqwen2"][1]
    query, document, mask = _query_and_page(ours, interpretability, pages[2])  # 4x4 = 16 image tokens
    wrong_grid = interpretability.get_n_patches(ours, pages[0].size)  # 2x3
    with pytest.raises(ValueError, match="has 16 tokens but n_patches=.*expects 6"):
        _ref_module().maxsim_similarity_map(query, document, wrong_grid, mask)
    with pytest.raises(ValueError, match=r"image_embedding has 16 tokens after masking, but n_patches=\(2, 3\)"):
        interpretability.maxsim_similarity_map(query, document, wrong_grid, mask)
    with pytest.raises(ValueError, match="has 16 tokens but n_patches"):
        _ref_module().maxsim_heatmap(pages[2], query, document, wrong_grid, mask)
    with pytest.raises(ValueError, match=r"image_embedding has 16 tokens after masking, but n_patches=\(2, 3\)"):
        interpretability.maxsim_heatmap(pages[2], query, document, wrong_grid, mask)


@pytest.mark.parametrize("n_patches", [(4,), (0, 3), (2.0, 3), "4x3", (True, 12)])
def test_similarity_map_checks_n_patches(n_patches: Any) -> None:
    with pytest.raises(ValueError, match=r"n_patches must be a pair of positive integers \(n_cols, n_rows\)"):
        interpretability.maxsim_similarity_map(torch.ones(2, 4), torch.ones(12, 4), n_patches)


# -------------------------------------------------------------------------------------------------------- rendering
def test_colormap_is_the_references() -> None:
    palette = np.array(interpretability._mako_palette(), dtype=np.uint8).reshape(256, 3)
    assert np.array_equal(palette, _ref_module()._MAKO_LUT)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("normalization_range", [None, (-1.0, 1.0), (0.5, 0.5), (0.0, 3.0)])
def test_render_matches_reference_pixels(
    pages: list[Any], alpha: float, normalization_range: tuple[float, float] | None
) -> None:
    for i, page in enumerate(pages):
        grid = _random_map(3 + i, 2 + 2 * i, seed=i)
        expected = _ref_module().render_similarity_map_on_image(page, grid, alpha, normalization_range)
        got = interpretability.render_similarity_map_on_image(page, grid, alpha, normalization_range)
        assert got.size == expected.size == page.size
        assert np.array_equal(_pixels(got), _pixels(expected))
        # A numpy map (the reference takes tensors only) draws the same.
        from_numpy = interpretability.render_similarity_map_on_image(page, grid.numpy(), alpha, normalization_range)
        assert np.array_equal(_pixels(from_numpy), _pixels(expected))


def test_render_matches_reference_on_other_image_modes_and_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    gray = Image.fromarray(rng.integers(0, 256, (33, 47), dtype=np.uint8))  # mode L
    translucent = Image.fromarray(rng.integers(0, 256, (20, 25, 4), dtype=np.uint8))  # mode RGBA
    path = tmp_path / "page.png"
    Image.fromarray(rng.integers(0, 256, (50, 40, 3), dtype=np.uint8)).save(path)
    grid = _random_map(3, 2, seed=7).half()  # a half-precision map is drawn from its float32 values
    for image in (gray, translucent, str(path)):
        expected = _ref_module().render_similarity_map_on_image(image, grid, alpha=0.6)
        got = interpretability.render_similarity_map_on_image(image, grid, alpha=0.6)
        assert np.array_equal(_pixels(got), _pixels(expected))
    from_path = interpretability.render_similarity_map_on_image(path, grid, alpha=0.6)  # a pathlib.Path too
    assert np.array_equal(_pixels(from_path), _pixels(expected))


def test_render_returns_a_new_image_and_keeps_the_page(pages: list[Any]) -> None:
    page = pages[0]
    before = np.asarray(page).copy()
    blank = interpretability.render_similarity_map_on_image(page, _random_map(3, 2, seed=0), alpha=0.0)
    assert np.array_equal(np.asarray(page), before)
    # Fully transparent: the page itself (opaque), colour for colour.
    assert np.array_equal(_pixels(blank)[..., :3], before)
    assert (_pixels(blank)[..., 3] == 255).all()


@pytest.mark.parametrize("aggregate", AGGREGATES)
@pytest.mark.parametrize("name", ["colpali", "colqwen2"])
def test_maxsim_heatmap_matches_reference_pixels(
    loaded: dict[str, tuple[Any, Any]], pages: list[Any], name: str, aggregate: str
) -> None:
    ref, ours = loaded[name]
    for page in pages[:2]:
        query, document, mask = _query_and_page(ref, _ref_module(), page)
        n_patches = _ref_module().get_n_patches(ref, page.size)
        expected = _ref_module().maxsim_heatmap(page, query, document, n_patches, mask, aggregate, alpha=0.4)
        got = interpretability.maxsim_heatmap(page, query, document, n_patches, mask, aggregate, alpha=0.4)
        if aggregate == "none":
            assert isinstance(got, list) and isinstance(expected, list)
            assert len(got) == len(expected) == len(QUERY)
        else:
            got, expected = [got], [expected]
        for ours_image, ref_image in zip(got, expected):
            assert np.array_equal(_pixels(ours_image), _pixels(ref_image))
        # sentrs' own encodings, mask and grid give the same picture (embeddings equal to 1e-5: no level changes).
        own_query, own_document, own_mask = _query_and_page(ours, interpretability, page)
        own = interpretability.maxsim_heatmap(
            page, own_query, own_document, interpretability.get_n_patches(ours, page.size), own_mask, aggregate, 0.4
        )
        for ours_image, ref_image in zip(own if isinstance(own, list) else [own], expected):
            assert np.array_equal(_pixels(ours_image), _pixels(ref_image))


# ------------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("shape", [(2, 3, 4), (6,), (1, 2, 3, 1)])
def test_render_rejects_maps_that_are_not_2d(pages: list[Any], shape: tuple[int, ...]) -> None:
    grid = torch.zeros(shape)
    with pytest.raises(ValueError, match="expects a 2D"):
        _ref_module().render_similarity_map_on_image(pages[0], grid)
    message = r"must be a non-empty 2D \(n_rows, n_cols\) grid, got shape " + re.escape(str(shape))
    with pytest.raises(ValueError, match=message):
        interpretability.render_similarity_map_on_image(pages[0], grid)


def test_render_rejects_an_empty_map(pages: list[Any]) -> None:
    with pytest.raises(ValueError, match="zero-size array"):
        _ref_module().render_similarity_map_on_image(pages[0], torch.zeros(0, 3))
    with pytest.raises(ValueError, match=r"non-empty 2D .* got shape \(0, 3\)"):
        interpretability.render_similarity_map_on_image(pages[0], torch.zeros(0, 3))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, "0.5", None, float("nan")])
def test_render_checks_alpha(pages: list[Any], alpha: Any) -> None:
    # The reference fails later, e.g. OverflowError for 1.5; sentrs names the argument.
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got"):
        interpretability.render_similarity_map_on_image(pages[0], torch.zeros(2, 2), alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha must be a number in \[0, 1\], got"):
        interpretability.maxsim_heatmap(pages[0], torch.ones(1, 4), torch.ones(4, 4), (2, 2), alpha=alpha)


@pytest.mark.parametrize("bounds", [(1.0, 0.0), (0.0,), "ab", (0.0, "x")])
def test_render_checks_the_normalization_range(pages: list[Any], bounds: Any) -> None:
    # The reference draws a reversed range as an inverted colour scale; sentrs asks for (low, high).
    with pytest.raises(ValueError, match=r"normalization_range must be (a pair of numbers|\(low, high\) with low <=)"):
        interpretability.render_similarity_map_on_image(pages[0], torch.zeros(2, 2), normalization_range=bounds)


@pytest.mark.parametrize("image", [np.zeros((8, 8, 3), dtype=np.uint8), 3, None])
def test_images_that_are_not_pil_images_or_paths_are_type_errors(image: Any) -> None:
    grid = torch.zeros(2, 2)
    with pytest.raises(TypeError):
        _ref_module().render_similarity_map_on_image(image, grid)
    with pytest.raises(InputTypeError, match="image must be a PIL image or the path or URL of one, got"):
        interpretability.render_similarity_map_on_image(image, grid)
    with pytest.raises(TypeError, match="image must be a PIL image"):
        interpretability.maxsim_heatmap(image, torch.ones(1, 4), torch.ones(4, 4), (2, 2))


def test_maxsim_heatmap_checks_aggregate(pages: list[Any]) -> None:
    args = (pages[0], torch.ones(2, 4), torch.ones(4, 4), (2, 2))
    with pytest.raises(ValueError, match="aggregate must be one of"):
        _ref_module().maxsim_heatmap(*args, aggregate="max")
    with pytest.raises(ValueError, match=r"aggregate must be one of \('sum', 'amax', 'none'\), got 'max'"):
        interpretability.maxsim_heatmap(*args, aggregate="max")  # type: ignore[arg-type]


@pytest.mark.parametrize("aggregate", AGGREGATES)
def test_maxsim_heatmap_of_an_empty_query_is_a_value_error(pages: list[Any], aggregate: Any) -> None:
    # The reference draws "sum" as a blank map and fails inside torch for the others.
    with pytest.raises(ValueError, match=r"query_embedding has no tokens.*\(query_tokens, dim\)"):
        interpretability.maxsim_heatmap(pages[0], torch.ones(0, 4), torch.ones(4, 4), (2, 2), aggregate=aggregate)


def test_drawing_without_pillow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, loaded: Any) -> None:
    page = Image.new("RGB", (8, 8))
    for module in ("PIL", "PIL.Image"):
        monkeypatch.setitem(sys.modules, module, None)  # import PIL now fails as if it were not installed
    with pytest.raises(ModuleNotFoundError):
        _ref_module().render_similarity_map_on_image(page, torch.zeros(2, 2))
    calls = {
        "render_similarity_map_on_image": lambda: interpretability.render_similarity_map_on_image(
            page, torch.zeros(2, 2)
        ),
        "maxsim_heatmap": lambda: interpretability.maxsim_heatmap(page, torch.ones(1, 4), torch.ones(4, 4), (2, 2)),
        "get_n_patches": lambda: interpretability.get_n_patches(loaded["colqwen2"][1], (8, 8)),
    }
    for name, call in calls.items():
        with pytest.raises(ModuleNotFoundError, match=rf"^{name} needs Pillow .*pip install pillow") as error:
            call()
        assert error.value.name == "PIL"
