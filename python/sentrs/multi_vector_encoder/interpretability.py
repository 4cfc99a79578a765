"""Looking inside MaxSim: which query tokens are real, and per-query-token similarity maps.

:func:`real_query_token_slice` picks the query's own tokens out of ``encode_query``'s output (dropping the prompt,
special tokens and query-expansion tokens); :func:`maxsim_similarity_map` lays each query token's similarities to a
document's token embeddings out on a ``(rows, cols)`` grid. The reference also draws those maps over images
(:func:`maxsim_heatmap`, :func:`render_similarity_map_on_image`) and reads patch grids from image processors
(:func:`get_n_patches`); sentrs runs text models only, so those three raise
:class:`~sentrs.exceptions.UnsupportedFeatureError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NoReturn

import torch
from torch import Tensor

from sentrs.base.modules.transformer import Transformer
from sentrs.exceptions import UnsupportedFeatureError

if TYPE_CHECKING:
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
        ValueError: the (masked) document has another token count than the grid.
    """
    query = torch.as_tensor(query_embedding)
    document = torch.as_tensor(image_embedding)
    if image_mask is not None:
        document = document[torch.as_tensor(image_mask).bool()]
    n_cols, n_rows = n_patches
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


def _text_only(function: str, what: str) -> NoReturn:
    raise UnsupportedFeatureError(
        f"{function} {what}, and sentrs supports text models only; use sentence_transformers for image "
        "documents. For text, maxsim_similarity_map returns the per-query-token similarity maps as a tensor"
    )


def get_n_patches(model: MultiVectorEncoder, image_size: tuple[int, int]) -> tuple[int, int]:
    """The ``(n_cols, n_rows)`` image-patch grid of a vision model's processor. Not available in sentrs.

    Raises:
        UnsupportedFeatureError: always; the grid comes from an image processor, and sentrs loads text models only.
    """
    _text_only("get_n_patches", "reads the patch grid from a vision model's image processor")


def render_similarity_map_on_image(
    image: PILImage | str,
    similarity_map: Tensor,
    alpha: float = 0.5,
    normalization_range: tuple[float, float] | None = None,
) -> PILImage:
    """Draws a ``(n_rows, n_cols)`` similarity map over an image. Not available in sentrs.

    Raises:
        UnsupportedFeatureError: always; it draws over an image, and sentrs supports text models only.
    """
    _text_only("render_similarity_map_on_image", "draws a similarity map over an image")


def maxsim_heatmap(
    image: PILImage | str,
    query_embedding: Tensor,
    image_embedding: Tensor,
    n_patches: tuple[int, int],
    image_mask: Tensor | None = None,
    aggregate: Literal["sum", "amax", "none"] = "sum",
    alpha: float = 0.5,
) -> PILImage | list[PILImage]:
    """Draws a query's MaxSim similarity maps over an image document. Not available in sentrs.

    Raises:
        UnsupportedFeatureError: always; it draws over an image, and sentrs supports text models only.
    """
    _text_only("maxsim_heatmap", "draws similarity maps over an image document")
