"""Looking inside MaxSim: which query tokens are real, and per-query-token similarity maps over image patches.

:func:`real_query_token_slice` picks the query's own tokens out of ``encode_query``'s output (dropping the prompt,
special tokens and query-expansion tokens); :func:`get_n_patches` reads the ``(n_cols, n_rows)`` patch grid a vision
model's processor makes of an image; :func:`maxsim_similarity_map` lays each query token's similarities to a
document's token embeddings out on that grid; :func:`render_similarity_map_on_image` draws one map over the page
(Pillow, no matplotlib) and :func:`maxsim_heatmap` does all of it for one (query, page) pair.

Typical use with a ``*ForRetrieval`` checkpoint (ColPali, ColQwen2)::

    query = model.encode_query([text])[0][real_query_token_slice(model, text)]
    page = model.encode_document([image])[0]
    features = model.preprocess([image], task="document")
    image_mask = features["input_ids"][0] == model.processor.image_token_id
    heatmap = maxsim_heatmap(image, query, page, get_n_patches(model, image.size), image_mask=image_mask)
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import Tensor

from sentrs.base.modules.transformer import Transformer
from sentrs.exceptions import InputTypeError

if TYPE_CHECKING:
    from types import ModuleType

    from PIL.Image import Image as PILImage

    from sentrs.multi_vector_encoder.model import MultiVectorEncoder

__all__ = [
    "get_n_patches",
    "maxsim_heatmap",
    "maxsim_similarity_map",
    "real_query_token_slice",
    "render_similarity_map_on_image",
]

#: Added to the range of a map before dividing by it, so a constant map normalizes to zeros instead of NaN.
_RANGE_EPS = 1e-10

#: Nine evenly spaced colours of seaborn's "mako" colormap (dark to light), the reference's heatmap colours:
#: interpolated to 256 levels they give its overlay pixel for pixel, without matplotlib or seaborn.
_MAKO_SAMPLES = (
    (11, 4, 5),
    (43, 28, 53),
    (62, 53, 107),
    (59, 86, 152),
    (53, 123, 163),
    (53, 159, 171),
    (75, 194, 173),
    (153, 221, 182),
    (222, 245, 229),
)

_AGGREGATES = ("sum", "amax", "none")


def real_query_token_slice(model: MultiVectorEncoder, query: str) -> slice:
    """The slice of ``model.encode_query([query])[0]`` that holds the query's own tokens.

    The rows around them (the ``query`` prompt, ``[CLS]``/``[SEP]``, query-expansion tokens) are dropped, e.g. to
    show a similarity map per real word: ``model.encode_query([query])[0][real_query_token_slice(model, query)]``.

    The start is the length of the prefix the query shares with an empty query under the same prompt. The length is
    the number of extra tokens the query adds over the empty query, or, when the Transformer expands queries (which
    pads both to the expansion length), the query's own token count, untruncated: as in the reference, the slice of a
    query longer than a ``fixed`` expansion runs past the embedding's last row.

    Args:
        model: a multi-vector model whose modules include a :class:`~sentrs.base.modules.Transformer`.
        query: one query text, as passed to ``encode_query``.

    Returns:
        ``slice(start, stop)`` over the query's token rows.

    Raises:
        ValueError: the model has no Transformer module to tokenize the query with.
    """
    transformer = next((module for module in model if isinstance(module, Transformer)), None)
    if transformer is None:
        raise ValueError(
            "real_query_token_slice tokenizes the query with the model's Transformer module, and this model has "
            f"none; its modules are {[type(module).__name__ for module in model]}"
        )
    # The prompt that encode_query puts before the query: the slice must skip its tokens too.
    prompt = model.prompts.get("query")
    empty_ids = _query_token_ids(transformer, "", prompt)
    query_ids = _query_token_ids(transformer, query, prompt)
    start = 0
    while start < min(len(empty_ids), len(query_ids)) and empty_ids[start] == query_ids[start]:
        start += 1
    if transformer.query_expansion is not None:
        # Expansion pads both renders to its length, so their difference is no measure of the query.
        length = len(transformer.tokenizer(query, add_special_tokens=False)["input_ids"])
    else:
        length = len(query_ids) - len(empty_ids)
    return slice(start, start + length)


def _query_token_ids(transformer: Transformer, text: str, prompt: str | None) -> list[int]:
    """The ids ``encode_query`` feeds the model for one text (prompt, expansion and truncation applied)."""
    features = transformer.preprocess([text], prompt=prompt, task="query")
    return [int(token_id) for token_id in features["input_ids"][0].tolist()]


def maxsim_similarity_map(
    query_embedding: Tensor,
    image_embedding: Tensor,
    n_patches: tuple[int, int],
    image_mask: Tensor | None = None,
    normalize: bool = False,
) -> Tensor:
    """Every query token's dot product with every document token, laid out on a row-major grid.

    Args:
        query_embedding: ``(query_tokens, dim)`` token embeddings of one query (a tensor or numpy array).
        image_embedding: ``(doc_tokens, dim)`` token embeddings of one document; after ``image_mask``, exactly
            ``n_cols * n_rows`` of them, in row-major order.
        n_patches: ``(n_cols, n_rows)``, the grid's width and height.
        image_mask: optional ``(doc_tokens,)`` mask, True for the tokens that belong on the grid.
        normalize: rescale each query token's map to ``[0, 1]`` (min to 0, max to 1).

    Returns:
        ``(query_tokens, n_rows, n_cols)`` float32 tensor, whatever the input dtype.

    Raises:
        ValueError: ``n_patches`` is not a pair of positive integers, or the (masked) document has another token
            count than the grid.
    """
    query = torch.as_tensor(query_embedding)
    document = torch.as_tensor(image_embedding)
    if image_mask is not None:
        document = document[torch.as_tensor(image_mask).bool()]
    n_cols, n_rows = _grid_shape(n_patches)
    cells = n_cols * n_rows
    if document.shape[0] != cells:
        raise ValueError(
            f"image_embedding has {document.shape[0]} tokens after masking, but n_patches={n_patches} is a grid of "
            f"{cells}; pass image_mask to keep only the tokens that belong on the grid"
        )
    # The product runs in the inputs' dtype; the maps are float32 so that summing them over query tokens is exact.
    scores = (query @ document.reshape(cells, -1).T).float()
    if normalize:
        low = scores.min(dim=-1, keepdim=True).values
        high = scores.max(dim=-1, keepdim=True).values
        scores = (scores - low) / (high - low + _RANGE_EPS)
    return scores.reshape(-1, n_rows, n_cols)


def _grid_shape(n_patches: Any) -> tuple[int, int]:
    """``n_patches`` as ``(n_cols, n_rows)`` Python ints, or a ValueError naming what was passed."""
    if (
        not isinstance(n_patches, (tuple, list))
        or len(n_patches) != 2
        or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in n_patches)
    ):
        raise ValueError(f"n_patches must be a pair of positive integers (n_cols, n_rows), got {n_patches!r}")
    return int(n_patches[0]), int(n_patches[1])


def get_n_patches(model: MultiVectorEncoder, image_size: tuple[int, int]) -> tuple[int, int]:
    """The ``(n_cols, n_rows)`` grid of image tokens that ``model``'s processor makes of an image of ``image_size``.

    The result is the ``n_patches`` argument of :func:`maxsim_similarity_map` and :func:`maxsim_heatmap`. Processors
    that size the grid to the image (Qwen2-VL and its successors: ColQwen2) are asked for the grid of a blank image of
    that size (their ``image_grid_thw``, in patches, over ``merge_size``); fixed-size ones (PaliGemma, Gemma 3:
    ColPali) give every image the square grid of ``processor.image_seq_length`` tokens.

    Args:
        model: a multi-vector model with an image processor, e.g. a loaded ``*ForRetrieval`` checkpoint.
        image_size: ``(width, height)`` of the image in pixels, as PIL's ``image.size``.

    Returns:
        ``(n_cols, n_rows)``: the grid's width and height in image tokens.

    Raises:
        ValueError: ``image_size`` is not two positive integers, or the processor has neither kind of grid (e.g. a
            text-only model).
        NotImplementedError: the processor tiles images (Idefics3, SmolVLM, ColModernVBert): their tokens come tile
            by tile, then a downscaled copy of the whole image, so no single row-major grid holds them.
    """
    if (
        not isinstance(image_size, (tuple, list))
        or len(image_size) != 2
        or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in image_size)
    ):
        raise ValueError(f"image_size must be (width, height) in pixels, two positive integers, got {image_size!r}")
    width, height = int(image_size[0]), int(image_size[1])
    processor = model.processor
    image_processor = getattr(processor, "image_processor", None)
    tiling = ("do_image_splitting", "max_image_size")
    if image_processor is not None and any(getattr(image_processor, name, None) is not None for name in tiling):
        raise NotImplementedError(
            f"get_n_patches cannot give a grid for {type(image_processor).__name__}: Idefics3-style processors "
            "(SmolVLM, ColModernVBert) emit an image's tokens tile by tile followed by a downscaled global view, not "
            "as one row-major (rows, cols) grid, so reshaping the embedding into a map would misplace its tokens. "
            "Reorder the image tokens into spatial order yourself and pass n_patches to maxsim_similarity_map"
        )
    merge_size = getattr(image_processor, "merge_size", None)
    if image_processor is not None and isinstance(merge_size, int) and merge_size > 0:
        image_module = _pil_image_module("get_n_patches")
        blank = image_module.new("RGB", (width, height))
        features = image_processor(images=[blank], return_tensors="pt")
        if "image_grid_thw" in features:
            _, patch_rows, patch_cols = (int(n) for n in features["image_grid_thw"][0])
            return patch_cols // merge_size, patch_rows // merge_size
    seq_length = getattr(processor, "image_seq_length", None)
    if isinstance(seq_length, int) and not isinstance(seq_length, bool) and seq_length > 0:
        side = math.isqrt(seq_length)
        if side * side == seq_length:
            return side, side
    raise ValueError(
        f"get_n_patches found no patch grid in {type(processor).__name__}: it reads either an image processor "
        "with a merge_size that reports image_grid_thw (Qwen2-VL style, e.g. ColQwen2) or a square "
        "processor.image_seq_length (PaliGemma / Gemma 3 style, e.g. ColPali). For other models pass n_patches to "
        "maxsim_similarity_map / maxsim_heatmap yourself"
    )


def render_similarity_map_on_image(
    image: PILImage | str,
    similarity_map: Tensor,
    alpha: float = 0.5,
    normalization_range: tuple[float, float] | None = None,
) -> PILImage:
    """Draws a ``(n_rows, n_cols)`` similarity map over an image, in seaborn's "mako" colours.

    The map is rescaled to ``[0, 1]`` over ``normalization_range`` (values outside it clipped), quantized to 256
    levels, stretched to the image's size (bicubic) and coloured, then laid over the image with constant opacity
    ``alpha``. Needs Pillow; not matplotlib.

    Args:
        image: a PIL image, or the path or URL of one (loaded with ``transformers.image_utils.load_image``).
        similarity_map: ``(n_rows, n_cols)`` scores, a tensor or numpy array, e.g. one query token's map from
            :func:`maxsim_similarity_map`.
        alpha: opacity of the heatmap over the image, in ``[0, 1]``.
        normalization_range: ``(low, high)`` scores drawn as the darkest and lightest colours. Defaults to the map's
            own minimum and maximum; pass one range to several maps to draw them on a common scale.

    Returns:
        A new RGBA PIL image of the input image's size.

    Raises:
        ValueError: the map is not 2D or is empty, ``alpha`` is outside ``[0, 1]``, or ``normalization_range`` is
            not ``(low, high)`` with ``low <= high``.
        InputTypeError: ``image`` is not a PIL image, path or URL.
        ModuleNotFoundError: Pillow is not installed.
    """
    image_module = _pil_image_module("render_similarity_map_on_image")
    scores = _score_grid(similarity_map)
    opacity = _overlay_opacity(alpha)
    if normalization_range is None:
        low, high = float(scores.min()), float(scores.max())
    else:
        low, high = _score_range(normalization_range)
    page = _load_page(image, image_module)
    return _draw_heatmap(page, scores, low, high, opacity, image_module)


def maxsim_heatmap(
    image: PILImage | str,
    query_embedding: Tensor,
    image_embedding: Tensor,
    n_patches: tuple[int, int],
    image_mask: Tensor | None = None,
    aggregate: Literal["sum", "amax", "none"] = "sum",
    alpha: float = 0.5,
) -> PILImage | list[PILImage]:
    """Draws a query's similarity to each patch of an image document over the image.

    Args:
        image: the document's PIL image, or its path or URL (loaded once).
        query_embedding: ``(query_tokens, dim)`` token embeddings of one query, e.g. ``encode_query``'s rows
            selected with :func:`real_query_token_slice`.
        image_embedding: ``(doc_tokens, dim)`` token embeddings of the image document.
        n_patches: ``(n_cols, n_rows)``, from :func:`get_n_patches` for this image's size.
        image_mask: optional ``(doc_tokens,)`` mask, True for the image-patch tokens (e.g. ``input_ids ==
            processor.image_token_id``); without it every document token must be a patch.
        aggregate: ``"sum"`` draws every query token's similarity summed per patch (an overall similarity map, not
            the MaxSim score's attribution, which counts only each token's best patch); ``"amax"`` the best single
            token's similarity per patch; ``"none"`` one image per query token, all on the scale of the full set of
            maps so that weak tokens stay dark.
        alpha: opacity of the heatmap over the image, in ``[0, 1]``.

    Returns:
        One RGBA PIL image, or for ``aggregate="none"`` a list of them, one per query token.

    Raises:
        ValueError: ``aggregate`` is not one of ``"sum"``, ``"amax"``, ``"none"``; the query has no tokens; the
            (masked) document's token count is not the grid's; or ``alpha`` is outside ``[0, 1]``.
        InputTypeError: ``image`` is not a PIL image, path or URL.
        ModuleNotFoundError: Pillow is not installed.
    """
    if aggregate not in _AGGREGATES:
        raise ValueError(f"aggregate must be one of {_AGGREGATES}, got {aggregate!r}")
    image_module = _pil_image_module("maxsim_heatmap")
    opacity = _overlay_opacity(alpha)
    maps = maxsim_similarity_map(query_embedding, image_embedding, n_patches, image_mask=image_mask)
    if maps.shape[0] == 0:
        raise ValueError("query_embedding has no tokens, so there is nothing to draw; expected (query_tokens, dim)")
    page = _load_page(image, image_module)
    if aggregate == "none":
        grids = maps.detach().cpu().numpy()
        low, high = float(grids.min()), float(grids.max())
        return [_draw_heatmap(page, grid, low, high, opacity, image_module) for grid in grids]
    combined = maps.sum(dim=0) if aggregate == "sum" else maps.amax(dim=0)
    grid = combined.detach().cpu().numpy()
    return _draw_heatmap(page, grid, float(grid.min()), float(grid.max()), opacity, image_module)


def _pil_image_module(function: str) -> ModuleType:
    """``PIL.Image``, or a ModuleNotFoundError that says which function needs Pillow and how to install it."""
    try:
        from PIL import Image
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"{function} needs Pillow to read and draw images, and it is not installed: pip install pillow",
            name="PIL",
        ) from error
    return Image


def _load_page(image: Any, image_module: ModuleType) -> PILImage:
    """The PIL image for ``image``: itself, or the file or URL it names (RGB, EXIF rotation applied)."""
    if isinstance(image, image_module.Image):
        return image
    if isinstance(image, (str, os.PathLike)):
        from transformers.image_utils import load_image

        return load_image(os.fspath(image))
    raise InputTypeError(f"image must be a PIL image or the path or URL of one, got {type(image).__name__}")


def _score_grid(similarity_map: Any) -> np.ndarray:
    """A similarity map as a non-empty ``(n_rows, n_cols)`` float32 numpy array."""
    if isinstance(similarity_map, Tensor):
        scores = similarity_map.detach().to(device="cpu", dtype=torch.float32).numpy()
    else:
        scores = np.asarray(similarity_map, dtype=np.float32)
    if scores.ndim != 2 or scores.size == 0:
        raise ValueError(
            f"similarity_map must be a non-empty 2D (n_rows, n_cols) grid, got shape {tuple(scores.shape)}; "
            "maxsim_similarity_map returns (query_tokens, n_rows, n_cols): pass one token's map or combine them"
        )
    return scores


def _overlay_opacity(alpha: Any) -> int:
    """``alpha`` in ``[0, 1]`` as the overlay's 8-bit alpha value."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be a number in [0, 1], got {alpha!r}")
    return int(alpha * 255)


def _score_range(normalization_range: Any) -> tuple[float, float]:
    """``normalization_range`` as ``(low, high)`` floats with ``low <= high``."""
    try:
        low, high = (float(bound) for bound in normalization_range)
    except (TypeError, ValueError):
        raise ValueError(
            f"normalization_range must be a pair of numbers (low, high), got {normalization_range!r}"
        ) from None
    if not low <= high:
        raise ValueError(f"normalization_range must be (low, high) with low <= high, got {normalization_range!r}")
    return low, high


@lru_cache(maxsize=1)
def _mako_palette() -> list[int]:
    """The 256-level mako colormap as a flat ``[r0, g0, b0, r1, ...]`` PIL palette (truncated to integers)."""
    samples = np.asarray(_MAKO_SAMPLES, dtype=np.float64)
    levels = np.arange(256) * (len(samples) - 1) / 255
    channels = [np.interp(levels, np.arange(len(samples)), samples[:, channel]) for channel in range(3)]
    return np.stack(channels, axis=1).astype(np.uint8).ravel().tolist()


def _draw_heatmap(
    page: PILImage, scores: np.ndarray, low: float, high: float, opacity: int, image_module: ModuleType
) -> PILImage:
    """``scores`` (float32) scaled from ``[low, high]`` to 256 colour levels, stretched over ``page``, blended in."""
    # float32 arithmetic, as the reference's, so the same scores fall on the same one of the 256 levels.
    unit = np.clip((scores - low) / (high - low + _RANGE_EPS), 0.0, 1.0)
    levels = image_module.fromarray((unit * 255).astype(np.uint8))  # mode L
    # Stretch the levels, not the colours, so every pixel keeps a colour of the map (between two colours of the
    # curve a per-channel blend would leave it).
    overlay = levels.resize(page.size, image_module.Resampling.BICUBIC)
    overlay.putpalette(_mako_palette())
    overlay = overlay.convert("RGBA")
    overlay.putalpha(opacity)
    return image_module.alpha_composite(page.convert("RGBA"), overlay)
