"""MaxSim (late-interaction) scoring with the reference's names, inputs and outputs.

Each side is a batch of multi-vector embeddings: a list of ``(tokens_i, dim)`` arrays or tensors, a padded
``(batch, tokens, dim)`` array or tensor, or one ``(tokens, dim)`` matrix (a batch of one). Masks mark the real
tokens: document tokens outside the mask never take part in the max, and the query mask weighs each query token's
maximum. Without a mask, a list's tokens are its rows and a padded tensor's all-zero rows are padding.

float32 data on the CPU is scored by the Rust core over ragged buffers (no padding, no ``queries x documents x
tokens x tokens`` tensor); other dtypes, other devices and inputs that need gradients are scored in torch, one
budget-sized chunk of documents at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sentrs import ops

if TYPE_CHECKING:
    import torch
    from torch import Tensor

__all__ = ["maxsim", "maxsim_pairwise", "mean_maxsim", "mean_maxsim_pairwise"]

logger = logging.getLogger(__name__)

#: Score of a document without any token to take a maximum over (below every real score, and finite).
EMPTY_DOCUMENT_SCORE = -1e9
#: Elements of padded embeddings and token scores per torch chunk when ``chunk_elements`` is not given.
DEFAULT_CHUNK_ELEMENTS = 100_000_000

_warned_empty = False


def maxsim(
    a: list[Any] | np.ndarray | Tensor,
    b: list[Any] | np.ndarray | Tensor,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> Tensor:
    """MaxSim of every query in ``a`` with every document in ``b``: ``res[i][j] = sum_s max_t (a_i[s] . b_j[t])``.

    Args:
        a: queries (see the module docstring for the accepted layouts).
        b: documents.
        a_mask: query token mask, ``(batch_a, tokens)``, ``(tokens,)`` beside a single query, or a list of per-query
            masks; each token's maximum is multiplied by its mask value. Default: every real token.
        b_mask: document token mask; tokens with a 0 / False entry are left out of the max.
        chunk_elements: element budget of one torch chunk (padded embeddings plus token scores); default 100M.
        length_normalize: divide each row by its query's real token count (MeanMaxSim).
        device: where torch scoring runs (chunk by chunk); the scores come back to the documents' device.

    Returns:
        ``(batch_a, batch_b)`` float32 scores on the documents' device (the CPU for numpy). A document without any
        token scores -1e9 (before ``length_normalize``), below every real document.

    Raises:
        ValueError: a mask does not cover the padded token width, or the two sides' dimensions differ.
        TypeError: a mask is not a tensor, an array or a list of per-item masks.
    """
    return _score(a, b, a_mask, b_mask, chunk_elements, length_normalize, device, pairwise=False)


def maxsim_pairwise(
    a: list[Any] | np.ndarray | Tensor,
    b: list[Any] | np.ndarray | Tensor,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = False,
    device: str | torch.device | None = None,
) -> Tensor:
    """MaxSim of query ``a[i]`` with document ``b[i]`` for every ``i``: a ``(batch,)`` float32 tensor.

    Arguments as :func:`maxsim`. Raises ``ValueError`` when the two sides hold different numbers of items.
    """
    return _score(a, b, a_mask, b_mask, chunk_elements, length_normalize, device, pairwise=True)


def mean_maxsim(
    a: list[Any] | np.ndarray | Tensor,
    b: list[Any] | np.ndarray | Tensor,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
    device: str | torch.device | None = None,
) -> Tensor:
    """:func:`maxsim` divided by each query's real token count (``length_normalize=False`` gives plain MaxSim)."""
    return maxsim(a, b, a_mask, b_mask, chunk_elements, length_normalize, device)


def mean_maxsim_pairwise(
    a: list[Any] | np.ndarray | Tensor,
    b: list[Any] | np.ndarray | Tensor,
    a_mask: Any = None,
    b_mask: Any = None,
    chunk_elements: int | None = None,
    length_normalize: bool = True,
    device: str | torch.device | None = None,
) -> Tensor:
    """:func:`maxsim_pairwise` divided by each query's real token count."""
    return maxsim_pairwise(a, b, a_mask, b_mask, chunk_elements, length_normalize, device)


# ------------------------------------------------------------------ inputs


class _Side:
    """One side of a scoring call, canonicalised: items (a list, or a padded 3-D tensor) and a mask tensor."""

    def __init__(self, embeddings: Any, mask: Any, name: str) -> None:
        import torch

        self.name = name
        if isinstance(mask, (list, tuple)):
            mask = torch.nn.utils.rnn.pad_sequence([_as_tensor(m, f"{name}[{i}]") for i, m in enumerate(mask)], True)
        elif isinstance(mask, np.ndarray):
            mask = _as_tensor(mask, name)
        elif mask is not None and not isinstance(mask, torch.Tensor):
            raise TypeError(
                f"{name} must be a tensor, a numpy array or a list of per-item masks, got {type(mask).__name__}"
            )
        items: Any
        if isinstance(embeddings, (list, tuple)):
            items = [_as_tensor(x, f"{name[0]}[{i}]") for i, x in enumerate(embeddings)]
            items = [x if x.is_floating_point() else x.float() for x in items]
            for i, x in enumerate(items):
                if x.dim() != 2:
                    raise ValueError(f"{name[0]}[{i}] must be a (tokens, dim) matrix, got shape {tuple(x.shape)}")
        else:
            items = _as_tensor(embeddings, name[0])
            if not items.is_floating_point():
                items = items.float()
            if items.dim() == 2:  # one multi-vector embedding: a batch of one
                items = items.unsqueeze(0)
                if mask is not None and mask.dim() == 1:
                    mask = mask.unsqueeze(0)
            if items.dim() != 3:
                raise ValueError(
                    f"{name[0]} must be a list of (tokens, dim) matrices, a (batch, tokens, dim) array or one "
                    f"(tokens, dim) matrix, got shape {tuple(items.shape)}"
                )
        self.items = items
        self.mask = mask

    def __len__(self) -> int:
        return len(self.items)

    @property
    def widths(self) -> list[int]:
        if isinstance(self.items, list):
            return [int(x.shape[0]) for x in self.items]
        return [int(self.items.shape[1])] * len(self.items)

    @property
    def dim(self) -> int:
        if isinstance(self.items, list):
            return next((int(x.shape[1]) for x in self.items if x.shape[0]), int(self.items[0].shape[1]))
        return int(self.items.shape[-1])

    def device(self) -> torch.device | None:
        if isinstance(self.items, list):
            return self.items[0].device if self.items else None
        return self.items.device

    def fit_mask(self, expand: bool) -> None:
        """Checks that the mask spans the padded width (and broadcasts a one-row mask over the batch)."""
        if self.mask is None:
            return
        width = max(self.widths, default=0)
        if self.mask.shape[-1] != width:
            raise ValueError(
                f"{self.name} covers {self.mask.shape[-1]} tokens, but the padded embeddings have {width}"
            )
        if expand and self.mask.dim() == 2 and self.mask.shape[0] == 1 and len(self) > 1:
            self.mask = self.mask.expand(len(self), -1)

    def token_counts(self) -> Tensor:
        """Real query tokens per item (at least 1), for MeanMaxSim."""
        import torch

        if self.mask is not None:
            return self.mask.bool().sum(dim=-1).clamp(min=1)
        if isinstance(self.items, list):
            return torch.tensor([max(int(x.shape[0]), 1) for x in self.items])
        return self.items.any(dim=-1).sum(dim=-1).clamp(min=1)

    def padded(self, start: int, end: int) -> tuple[Tensor, Tensor]:
        """Items ``start:end`` padded to their own widest, with the mask narrowed to that width."""
        import torch

        if isinstance(self.items, list):
            chunk = self.items[start:end]
            lengths = torch.tensor([int(x.shape[0]) for x in chunk])
            padded = torch.nn.utils.rnn.pad_sequence(list(chunk), batch_first=True)
            if self.mask is None:
                positions = torch.arange(padded.shape[1], device=padded.device)
                mask = (positions[None, :] < lengths.to(padded.device)[:, None]).to(padded.dtype)
                return padded, mask
        else:
            padded = self.items[start:end]
            if self.mask is None:
                return padded, padded.any(dim=-1).to(padded.dtype)
        # A one-row mask (unexpanded, in pairwise scoring) applies to every item.
        mask = self.mask[start:end] if self.mask.shape[0] == len(self) else self.mask
        return padded, mask[..., : padded.shape[1]].to(padded.device)

    def host_ready(self) -> bool:
        """Whether the Rust kernel can score this side as the reference's float32 torch code would."""
        import torch

        tensors = self.items if isinstance(self.items, list) else [self.items]
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in tensors)
        return (
            not needs_grad
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and not t.is_sparse for t in tensors)
            and (self.mask is None or self.mask.device.type == "cpu")
        )

    def ragged(self, weighted: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(tokens, offsets, weights)``: the kept token rows of every item in one buffer. Document tokens outside
        the mask are dropped; query tokens keep their mask value as a weight (zero weights are dropped)."""
        if self.mask is None and isinstance(self.items, list):
            lengths = [int(x.shape[0]) for x in self.items]
            dim = self.dim
            data = (
                np.concatenate([x.detach().numpy().reshape(-1, dim) for x in self.items])
                if sum(lengths)
                else np.zeros((0, dim), dtype=np.float32)
            )
            return np.ascontiguousarray(data), _offsets(lengths), None
        padded, mask = self.padded(0, len(self))
        if mask.shape[0] != padded.shape[0]:  # a one-row mask applies to every item
            mask = mask.expand(padded.shape[0], -1)
        values = mask.detach().float()
        keep = values != 0
        data = padded.detach()[keep].numpy()
        offsets = _offsets(keep.sum(dim=1).tolist())
        weights = np.ascontiguousarray(values[keep].numpy()) if weighted else None
        return np.ascontiguousarray(data, dtype=np.float32), offsets, weights


def _offsets(lengths: Sequence[int]) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(np.asarray(lengths, dtype=np.int64), out=out[1:])
    return out


def _as_tensor(x: Any, name: str) -> Tensor:
    import torch

    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiub":
            raise TypeError(f"{name} must hold numbers, got a numpy array of dtype {x.dtype}")
        return torch.from_numpy(x if x.flags.writeable else x.copy())
    try:
        return torch.tensor(x)
    except (TypeError, ValueError, RuntimeError) as error:
        raise TypeError(f"{name} must be a tensor, a numpy array or a nested list of numbers ({error})") from error


# ------------------------------------------------------------------ scoring


def _score(
    a: Any,
    b: Any,
    a_mask: Any,
    b_mask: Any,
    chunk_elements: int | None,
    length_normalize: bool,
    device: Any,
    pairwise: bool,
) -> Tensor:
    import torch

    if chunk_elements is not None and (
        isinstance(chunk_elements, bool) or not isinstance(chunk_elements, int) or chunk_elements < 1
    ):
        raise ValueError(f"chunk_elements must be a positive integer or None, got {chunk_elements!r}")
    queries, documents = _Side(a, a_mask, "a_mask"), _Side(b, b_mask, "b_mask")
    if pairwise and len(queries) != len(documents):
        raise ValueError(
            f"a and b must hold the same number of items to score as pairs, got {len(queries)} and {len(documents)}"
        )
    result_device = documents.device() or queries.device() or torch.device("cpu")
    if len(queries) == 0 or len(documents) == 0:
        shape = (0,) if pairwise else (len(queries), len(documents))
        return torch.zeros(shape, dtype=torch.float32, device=result_device)
    if queries.dim != documents.dim:
        raise ValueError(
            f"query and document token vectors must have the same dimension, got {queries.dim} and {documents.dim}"
        )
    counts = queries.token_counts() if length_normalize else None
    queries.fit_mask(expand=not pairwise)
    documents.fit_mask(expand=not pairwise)
    scoring_device = torch.device(device) if device is not None else result_device
    if scoring_device.type == "cpu" and queries.host_ready() and documents.host_ready():
        scores = _host_scores(queries, documents, pairwise).to(result_device)
    else:
        scores = _torch_scores(queries, documents, pairwise, chunk_elements or DEFAULT_CHUNK_ELEMENTS, scoring_device)
        scores = scores.to(result_device)
    if counts is not None:
        counts = counts.to(device=scores.device, dtype=scores.dtype)
        scores = scores / (counts if pairwise else counts.unsqueeze(1))
    return scores


def _warn_empty() -> None:
    global _warned_empty
    if not _warned_empty:
        _warned_empty = True
        logger.warning(
            "Some documents have no token to score (every token masked, or a document with no token vectors): "
            "they score %.0e (before length normalisation), below every real document.",
            EMPTY_DOCUMENT_SCORE,
        )


def _host_scores(queries: _Side, documents: _Side, pairwise: bool) -> Tensor:
    import torch

    q_data, q_offsets, q_weights = queries.ragged(weighted=True)
    d_data, d_offsets, _ = documents.ragged(weighted=False)
    if np.any(d_offsets[1:] == d_offsets[:-1]):
        _warn_empty()
    kernel = ops.maxsim_pairwise if pairwise else ops.maxsim
    scores = kernel(q_data, q_offsets, d_data, d_offsets, q_weights, EMPTY_DOCUMENT_SCORE)
    return torch.from_numpy(scores)


def _torch_scores(queries: _Side, documents: _Side, pairwise: bool, budget: int, device: torch.device) -> Tensor:
    """Padded einsum scoring, one chunk of documents (pairs, when pairwise) at a time."""
    import torch

    dim = documents.dim
    q_width, d_widths = max(queries.widths, default=0), documents.widths
    all_queries = None if pairwise else queries.padded(0, len(queries))
    parts = []
    start = 0
    while start < len(documents):
        end, width = start + 1, d_widths[start]
        per_item = (q_width + dim) if pairwise else len(queries) * q_width
        while end < len(documents):
            wider = max(width, d_widths[end])
            if (end + 1 - start) * wider * (per_item + dim) > budget:
                break
            end, width = end + 1, wider
        docs, doc_mask = documents.padded(start, end)
        docs, doc_mask = docs.to(device), doc_mask.to(device)
        qs, q_mask = queries.padded(start, end) if pairwise else all_queries  # type: ignore[misc]
        qs, q_mask = qs.to(device), q_mask.to(device)
        parts.append(_chunk_scores(qs, q_mask, docs, doc_mask, pairwise))
        start = end
    scores = torch.cat(parts, dim=0 if pairwise else 1)
    return scores


def _chunk_scores(q: Tensor, q_mask: Tensor, d: Tensor, d_mask: Tensor, pairwise: bool) -> Tensor:
    import torch

    keep = d_mask.bool()
    empty = ~keep.any(dim=-1)
    if d.shape[1] == 0:
        shape = (d.shape[0],) if pairwise else (q.shape[0], d.shape[0])
        scores = torch.zeros(shape, dtype=torch.float32, device=d.device)
    else:
        if pairwise:
            tokens = torch.einsum("bsh,bth->bst", q, d)
            tokens = tokens.masked_fill(~keep.unsqueeze(1), torch.finfo(tokens.dtype).min)
        else:
            tokens = torch.einsum("ash,bth->abst", q, d)
            tokens = tokens.masked_fill(~keep[None, :, None, :], torch.finfo(tokens.dtype).min)
        best = tokens.max(dim=-1).values.float()
        weights = q_mask if pairwise else q_mask.unsqueeze(1)
        scores = (best * weights).sum(dim=-1)
    if empty.any():
        _warn_empty()
    return scores.masked_fill(empty if pairwise else empty.unsqueeze(0), EMPTY_DOCUMENT_SCORE)
