"""ColBERT (MaxSim) scoring for training multi-vector models: in-batch, pairwise and knowledge-distillation layouts.

Every function here scores through :func:`sentrs.base.maxsim.maxsim` / :func:`~sentrs.base.maxsim.maxsim_pairwise`,
so they share its masking rules: document tokens outside the mask never take part in the max, each query token's
maximum is weighted by its mask value, and a document without any token scores -1e9. Inputs that need gradients are
scored in torch and the scores are differentiable; float32 CPU inputs without gradients go to the Rust kernel.

The ``length_normalize`` variants (``mean_*``) divide each score by the query's real token count (MeanMaxSim).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs.base.maxsim import maxsim, maxsim_pairwise

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "colbert_kd_scores",
    "colbert_scores",
    "colbert_scores_pairwise",
    "mean_colbert_kd_scores",
    "mean_colbert_scores",
    "mean_colbert_scores_pairwise",
]


def colbert_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
) -> Tensor:
    """MaxSim of every query against every document of every query's document group (in-batch negatives).

    ``scores[i, j * N + n]`` is query ``i`` against document ``n`` of group ``j``; with one group per query, query
    ``i``'s positive (its group's first document) is column ``i * N``.

    Args:
        queries_embeddings: ``(Q, q_tokens, dim)`` (a list of same-shape ``(q_tokens, dim)`` tensors is stacked; one
            ``(q_tokens, dim)`` query is a batch of one).
        documents_embeddings: ``(Q_doc, N, d_tokens, dim)`` document groups.
        queries_mask: ``(Q, q_tokens)``, ``(1, q_tokens)`` or ``(q_tokens,)`` weights of the query tokens (a list of
            per-query masks is padded). Default: the non-zero query rows.
        documents_mask: ``(Q_doc, N, d_tokens)`` or ``(1, N, d_tokens)``; tokens with a 0 / False entry are left out
            of the max. Default: the non-zero document rows.
        chunk_elements: element budget of one scoring chunk (padded embeddings plus token scores), per group;
            default 100M. It bounds memory only: the scores do not depend on it.
        length_normalize: divide each row by its query's real token count (MeanMaxSim).

    Returns:
        ``(Q, Q_doc * N)`` scores, float32 (float64 with a float64 ``queries_mask``), on the documents' device.

    Raises:
        ValueError: ``documents_embeddings`` is not 4-D, or a mask does not match its embeddings' token count.
        RuntimeError: the two sides' dimensions differ, there is no document, or a mask's batch does not broadcast.
        IndexError: ``documents_mask`` has a different number of documents per group; or a 1-D ``queries_mask``
            with ``length_normalize`` (it cannot tell each query's token count).
        TypeError: ``documents_mask`` is a list.
    """
    import torch

    queries = _embeddings_tensor(queries_embeddings, "queries_embeddings")
    documents = _embeddings_tensor(documents_embeddings, "documents_embeddings")
    query_mask = _mask_tensor(queries_mask, "queries_mask")
    if queries.dim() == 2:  # one query
        queries = queries.unsqueeze(0)
        if query_mask is not None and query_mask.dim() == 1:
            query_mask = query_mask.unsqueeze(0)
    if queries.dim() != 3:
        raise RuntimeError(
            f"queries_embeddings must be (Q, q_tokens, dim) or one (q_tokens, dim) query, got shape "
            f"{tuple(queries.shape)}"
        )
    _check_document_groups(documents)
    groups, per_group = int(documents.shape[0]), int(documents.shape[1])
    query_mask = _query_mask_for_all_pairs(query_mask, queries, length_normalize)
    document_mask = _document_group_mask(documents_mask, documents, allow_list=False)
    _check_same_dim(queries, documents)
    if groups * per_group == 0:
        raise RuntimeError(f"documents_embeddings must hold at least one document, got shape {tuple(documents.shape)}")
    budget = _chunk_budget(chunk_elements)
    columns = [
        maxsim(
            queries,
            documents[:, n],
            a_mask=query_mask,
            b_mask=document_mask[:, n] if document_mask is not None else None,
            chunk_elements=budget,
            length_normalize=length_normalize,
        )
        for n in range(per_group)
    ]
    scores = torch.stack(columns, dim=2).reshape(len(queries), groups * per_group)
    return _promote_to_mask_dtype(scores, query_mask)


def colbert_scores_pairwise(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
) -> Tensor:
    """MaxSim of query ``i`` with document ``i``, for every ``i``.

    Args:
        queries_embeddings: ``(batch, q_tokens, dim)``, a list of ``(q_tokens_i, dim)`` (lengths may differ) or one
            ``(q_tokens, dim)`` query.
        documents_embeddings: ``(batch, d_tokens, dim)``, a list of ``(d_tokens_i, dim)`` or one ``(d_tokens, dim)``
            document.
        queries_mask: ``(batch, q_tokens)`` or ``(1, q_tokens)`` query token weights, or a list of per-query masks.
            Default: every real token (the list lengths, or the non-zero rows).
        documents_mask: ``(batch, d_tokens)`` or ``(1, d_tokens)`` document token mask, or a list of per-document
            masks.
        chunk_elements: element budget of one scoring chunk of pairs; default 100M. Memory only.
        length_normalize: divide each score by its query's real token count (MeanMaxSim).

    Returns:
        ``(batch,)`` scores, float32 (float64 with a float64 ``queries_mask``), on the documents' device.

    Raises:
        ValueError: the two sides hold different numbers of items, or a mask does not span its side's tokens.
        RuntimeError: the two sides' dimensions differ, a side is not a batch of ``(tokens, dim)`` matrices, or a
            mask has neither one row per pair nor a single row.
    """
    queries, query_mask, query_dim = _pairwise_side(queries_embeddings, queries_mask, "queries")
    documents, document_mask, document_dim = _pairwise_side(documents_embeddings, documents_mask, "documents")
    if len(queries) != len(documents):
        raise ValueError(
            "queries_embeddings and documents_embeddings must hold the same number of items to score as pairs, "
            f"got {len(queries)} and {len(documents)}"
        )
    if len(queries) and query_dim != document_dim:
        raise RuntimeError(
            "queries_embeddings and documents_embeddings must have the same token dimension, "
            f"got {query_dim} and {document_dim}"
        )
    query_mask = _pairwise_mask_rows(query_mask, len(queries), "queries_mask")
    document_mask = _pairwise_mask_rows(document_mask, len(documents), "documents_mask")
    scores = maxsim_pairwise(
        queries,
        documents,
        a_mask=query_mask,
        b_mask=document_mask,
        chunk_elements=_chunk_budget(chunk_elements),
        length_normalize=length_normalize,
    )
    return _promote_to_mask_dtype(scores, query_mask)


def colbert_kd_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
) -> Tensor:
    """MaxSim of each query with each of its own ``n_ways`` documents, for distillation from a teacher's scores.

    Args:
        queries_embeddings: ``(batch, q_tokens, dim)`` (a list of same-shape tensors is stacked).
        documents_embeddings: ``(batch, n_ways, d_tokens, dim)``: the candidates (positive and negatives) of each
            query.
        queries_mask: ``(batch, q_tokens)`` or ``(1, q_tokens)`` query token weights. Default: the non-zero rows.
        documents_mask: ``(batch, n_ways, d_tokens)`` or ``(1, n_ways, d_tokens)`` document token mask.
        chunk_elements: element budget of one scoring chunk of pairs, per candidate column; default 100M. Memory
            only.
        length_normalize: divide each score by its query's real token count (MeanMaxSim).

    Returns:
        ``(batch, n_ways)`` scores, float32 (float64 with a float64 ``queries_mask``), on the documents' device.

    Raises:
        ValueError: an embeddings tensor has the wrong number of dimensions, the batches differ, or a mask does not
            match its embeddings.
        RuntimeError: the two sides' dimensions differ, ``n_ways`` is 0, a list of masks or embeddings is ragged, or
            a mask has neither one row per query nor a single row.
        IndexError: ``documents_mask`` has a different ``n_ways``.
    """
    import torch

    queries = _embeddings_tensor(queries_embeddings, "queries_embeddings")
    documents = _embeddings_tensor(documents_embeddings, "documents_embeddings")
    query_mask = None if queries_mask is None else _embeddings_tensor(queries_mask, "queries_mask")
    if queries.dim() == 2:  # one query
        queries = queries.unsqueeze(0)
        if query_mask is not None and query_mask.dim() == 1:
            query_mask = query_mask.unsqueeze(0)
    if queries.dim() != 3:
        raise ValueError(f"queries_embeddings must be (batch, q_tokens, dim), got shape {tuple(queries.shape)}")
    _check_document_groups(documents, layout="(batch, n_ways, d_tokens, dim)")
    if len(queries) != len(documents):
        raise ValueError(
            "queries_embeddings and documents_embeddings must hold the same batch to score each query's own "
            f"documents, got {len(queries)} and {len(documents)}"
        )
    if query_mask is not None:
        if query_mask.dim() != 2 or query_mask.shape[-1] != queries.shape[1]:
            raise ValueError(
                f"queries_mask must be (batch, q_tokens) = {tuple(queries.shape[:2])}, got {tuple(query_mask.shape)}"
            )
        query_mask = _pairwise_mask_rows(query_mask, len(queries), "queries_mask")
    document_mask = _document_group_mask(documents_mask, documents, allow_list=True)
    if document_mask is not None:
        document_mask = document_mask.expand(len(documents), -1, -1)
    _check_same_dim(queries, documents)
    n_ways = int(documents.shape[1])
    if n_ways == 0:
        raise RuntimeError(
            f"documents_embeddings must hold at least one document per query, got shape {tuple(documents.shape)}"
        )
    budget = _chunk_budget(chunk_elements)
    columns = [
        maxsim_pairwise(
            queries,
            documents[:, n],
            a_mask=query_mask,
            b_mask=document_mask[:, n] if document_mask is not None else None,
            chunk_elements=budget,
            length_normalize=length_normalize,
        )
        for n in range(n_ways)
    ]
    return _promote_to_mask_dtype(torch.stack(columns, dim=1), query_mask)


def mean_colbert_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
) -> Tensor:
    """:func:`colbert_scores` divided by each query's real token count (MeanMaxSim): ``(Q, Q_doc * N)``.

    Train with it alongside ``similarity_fn_name = "meanmaxsim"`` so that evaluation scores as training did;
    ``length_normalize=False`` gives plain :func:`colbert_scores`.
    """
    return colbert_scores(
        queries_embeddings, documents_embeddings, queries_mask, documents_mask, chunk_elements, length_normalize
    )


def mean_colbert_scores_pairwise(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
) -> Tensor:
    """:func:`colbert_scores_pairwise` divided by each query's real token count: ``(batch,)``."""
    return colbert_scores_pairwise(
        queries_embeddings, documents_embeddings, queries_mask, documents_mask, chunk_elements, length_normalize
    )


def mean_colbert_kd_scores(
    queries_embeddings: list[Any] | np.ndarray | Tensor,
    documents_embeddings: list[Any] | np.ndarray | Tensor,
    queries_mask: Tensor | None = None,
    documents_mask: Tensor | None = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
) -> Tensor:
    """:func:`colbert_kd_scores` divided by each query's real token count: ``(batch, n_ways)``."""
    return colbert_kd_scores(
        queries_embeddings, documents_embeddings, queries_mask, documents_mask, chunk_elements, length_normalize
    )


# ------------------------------------------------------------------ inputs (shared with .xtr)


def _embeddings_tensor(x: Any, name: str) -> Tensor:
    """``x`` as one tensor, in its own dtype: a list of same-shape tensors or arrays is stacked, an array is viewed
    (copied when read-only), nested lists of numbers are read by ``torch.tensor``."""
    import torch

    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return _from_numpy(x, name)
    if isinstance(x, (list, tuple)):
        if x and all(isinstance(item, torch.Tensor) for item in x):
            items = list(x)
        elif x and all(isinstance(item, np.ndarray) for item in x):
            items = [_from_numpy(item, f"{name}[{i}]") for i, item in enumerate(x)]
        else:
            try:
                return torch.tensor(x)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{name} must be a tensor, an array or nested lists of numbers: {error}") from error
        shapes = [tuple(item.shape) for item in items]
        if len(set(shapes)) > 1:
            raise RuntimeError(
                f"{name} must be a padded tensor or a list of same-shape tensors (pad ragged ones and pass a mask), "
                f"got shapes {shapes}"
            )
        return torch.stack(items)
    raise TypeError(f"{name} must be a tensor, an array or a list of them, got {type(x).__name__}")


def _from_numpy(array: np.ndarray, name: str) -> Tensor:
    import torch

    if array.dtype.kind not in "fiub":
        raise TypeError(f"{name} must hold numbers, got a numpy array of dtype {array.dtype}")
    return torch.from_numpy(array if array.flags.writeable else array.copy())


def _mask_tensor(mask: Any, name: str) -> Tensor | None:
    """A MaxSim mask as one tensor: a list of per-item masks is padded with zeros to the longest."""
    import torch

    if mask is None or isinstance(mask, torch.Tensor):
        return mask
    if isinstance(mask, np.ndarray):
        return _from_numpy(mask, name)
    if isinstance(mask, (list, tuple)):
        rows = [_embeddings_tensor(row, f"{name}[{i}]") for i, row in enumerate(mask)]
        return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True)
    raise TypeError(f"{name} must be a tensor, an array or a list of per-item masks, got {type(mask).__name__}")


def _chunk_budget(chunk_elements: Any) -> int | None:
    """``chunk_elements`` as the positive budget MaxSim takes: a budget below one pair still scores one per chunk."""
    if chunk_elements is None:
        return None
    if not isinstance(chunk_elements, numbers.Real):
        raise TypeError(f"chunk_elements must be a number of elements or None, got {type(chunk_elements).__name__}")
    return max(1, int(float(chunk_elements)))


def _check_document_groups(documents: Tensor, layout: str = "(Q_doc, N, d_tokens, dim)") -> None:
    if documents.dim() != 4:
        raise ValueError(f"documents_embeddings must be {layout}, got shape {tuple(documents.shape)}")


def _check_same_dim(queries: Tensor, documents: Tensor) -> None:
    if queries.shape[-1] != documents.shape[-1]:
        raise RuntimeError(
            "queries_embeddings and documents_embeddings must have the same token dimension, "
            f"got {queries.shape[-1]} and {documents.shape[-1]}"
        )


def _query_mask_for_all_pairs(mask: Tensor | None, queries: Tensor, length_normalize: bool) -> Tensor | None:
    """The query mask of an all-pairs scoring as ``(Q, q_tokens)``: one row, or a 1-D mask, applies to every query."""
    if mask is None:
        return None
    if mask.shape[-1:] != queries.shape[1:2]:
        raise ValueError(
            f"queries_mask covers {mask.shape[-1] if mask.dim() else 0} tokens, but queries_embeddings has "
            f"{queries.shape[1]}"
        )
    if mask.dim() > 2 or (mask.dim() == 2 and mask.shape[0] not in (1, len(queries))):
        raise RuntimeError(
            f"queries_mask must be (Q, q_tokens) = {tuple(queries.shape[:2])}, (1, q_tokens) or (q_tokens,), got "
            f"{tuple(mask.shape)}"
        )
    if mask.dim() == 1 and length_normalize:
        raise IndexError(
            "queries_mask must be (Q, q_tokens) with length_normalize, to count each query's tokens; got the 1-D "
            f"shape {tuple(mask.shape)}"
        )
    return mask.expand(len(queries), -1)


def _document_group_mask(mask: Any, documents: Tensor, allow_list: bool) -> Tensor | None:
    """The ``(Q_doc or 1, N, d_tokens)`` mask of 4-D document groups."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)) and not allow_list:
        raise TypeError("documents_mask must be a (Q_doc, N, d_tokens) tensor or array, got a list")
    mask = _embeddings_tensor(mask, "documents_mask")
    groups, per_group, tokens = (int(size) for size in documents.shape[:3])
    if mask.dim() != 3 or mask.shape[2] != tokens:
        raise ValueError(
            f"documents_mask must be (Q_doc, N, d_tokens) = {(groups, per_group, tokens)}, got {tuple(mask.shape)}"
        )
    if mask.shape[1] != per_group:
        raise IndexError(
            f"documents_mask covers {mask.shape[1]} documents per group, documents_embeddings {per_group}"
        )
    if mask.shape[0] not in (1, groups):
        raise RuntimeError(
            f"documents_mask must be (Q_doc, N, d_tokens) = {(groups, per_group, tokens)} or (1, N, d_tokens), got "
            f"{tuple(mask.shape)}"
        )
    return mask


def _pairwise_side(embeddings: Any, mask: Any, side: str) -> tuple[Tensor | list[Tensor], Tensor | None, int]:
    """One side of a pairwise scoring: the items (a padded 3-D tensor or a list of ``(tokens, dim)`` tensors), the
    mask as one tensor, and the token dimension."""
    name, mask_name = f"{side}_embeddings", f"{side}_mask"
    mask = _mask_tensor(mask, mask_name)
    items: Tensor | list[Tensor]
    if isinstance(embeddings, (list, tuple)):
        items = [_embeddings_tensor(item, f"{name}[{i}]") for i, item in enumerate(embeddings)]
        for i, item in enumerate(items):
            if item.dim() != 2 or item.shape[1:] != items[0].shape[1:]:
                raise RuntimeError(
                    f"{name}[{i}] must be a (tokens, dim) matrix like {name}[0], got shape {tuple(item.shape)}"
                )
        width = max((int(item.shape[0]) for item in items), default=0)
        dim = int(items[0].shape[1]) if items else 0
    else:
        items = _embeddings_tensor(embeddings, name)
        if items.dim() == 2:  # one item
            items = items.unsqueeze(0)
            if mask is not None and mask.dim() == 1:
                mask = mask.unsqueeze(0)
        if items.dim() != 3:
            raise RuntimeError(
                f"{name} must be (batch, tokens, dim), a list of (tokens, dim) matrices or one (tokens, dim) "
                f"matrix, got shape {tuple(items.shape)}"
            )
        width, dim = int(items.shape[1]), int(items.shape[2])
    if mask is not None and (mask.dim() == 0 or mask.shape[-1] != width):
        covered = mask.shape[-1] if mask.dim() else 0
        raise ValueError(f"{mask_name} covers {covered} tokens, but {name} is padded to {width}")
    return items, mask, dim


def _pairwise_mask_rows(mask: Tensor | None, batch: int, name: str) -> Tensor | None:
    """A pairwise mask with one row per pair (a single row applies to every pair)."""
    if mask is None:
        return None
    if mask.dim() != 2 or mask.shape[0] not in (1, batch):
        raise RuntimeError(
            f"{name} must have one row per pair ({batch}) or a single row, got shape {tuple(mask.shape)}"
        )
    return mask.expand(batch, -1)


def _promote_to_mask_dtype(scores: Tensor, query_mask: Tensor | None) -> Tensor:
    """Scores in the dtype that weighting float32 maxima by ``query_mask`` gives (float64 for a float64 mask)."""
    import torch

    if query_mask is None:
        return scores
    return scores.to(torch.promote_types(scores.dtype, query_mask.dtype))
