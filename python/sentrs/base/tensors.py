"""Host/tensor bridging: conversions between lists, numpy arrays and torch tensors, and small tensor helpers.

The one place where sentrs decides whether data may go to the Rust core (:func:`host_float32`). Public through
:mod:`sentrs.util.tensor`; the model types and modules import it from here (layers point down).
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from sentrs import ops

__all__ = [
    "_convert_to_batch",
    "_convert_to_batch_tensor",
    "_convert_to_tensor",
    "_move_tensors_to_cpu",
    "batch_to_device",
    "cat_padded_token_embeddings",
    "compute_count_vector",
    "host_float32",
    "normalize_embeddings",
    "repad_flattened_features",
    "select_max_active_dims",
    "stack_padded_token_embeddings",
    "to_scipy_coo",
    "truncate_embeddings",
]


def _from_numpy(a: npt.NDArray[Any]) -> Tensor:
    """``torch.from_numpy`` without copying, also for read-only (memory-mapped) arrays: sentrs only reads the inputs
    it converts, so torch's "array is not writable" warning does not apply."""
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _convert_to_tensor(a: Any) -> Tensor:
    """Turns a list, numpy array or tensor into a tensor (no copy for arrays); fp16/bf16 become fp32."""
    if isinstance(a, Tensor):
        t = a
    elif isinstance(a, np.ndarray):
        if a.dtype.kind not in "fiub":
            raise TypeError(f"embeddings must hold numbers, got a numpy array of dtype {a.dtype}")
        t = _from_numpy(np.ascontiguousarray(a))
    elif isinstance(a, (list, tuple)):
        if len(a) and all(isinstance(x, Tensor) for x in a):
            t = torch.stack(list(a))
        else:
            try:
                t = torch.tensor(np.asarray(a, dtype=np.float32) if len(a) else a)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"embeddings must be numbers, a numpy array or a tensor, got {type(a[0])}") from exc
    else:
        raise TypeError(f"embeddings must be a list, numpy array or torch tensor, got {type(a).__name__}")
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t


def _convert_to_batch(a: Tensor) -> Tensor:
    """``a`` with a 1-D tensor promoted to one row (``(dim,)`` -> ``(1, dim)``); other shapes unchanged."""
    return a.unsqueeze(0) if a.dim() == 1 else a


def _convert_to_batch_tensor(a: Any) -> Tensor:
    """As :func:`_convert_to_tensor`, with a 1-D input promoted to one row."""
    t = _convert_to_tensor(a)
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return t


def host_float32(t: Tensor) -> npt.NDArray[np.float32] | None:
    """A zero-copy float32 numpy view of ``t`` when the Rust core may compute on it, else None.

    That is: a dense CPU float32 tensor that autograd does not track. CUDA tensors, tensors on the gradient path and
    code being traced by ``torch.compile`` (``model.compile()``: the Rust kernels are opaque to it) stay in torch.
    """
    if t.layout != torch.strided or t.device.type != "cpu" or t.dtype != torch.float32:
        return None
    if torch.compiler.is_compiling():
        return None
    if t.requires_grad and torch.is_grad_enabled():
        return None
    return t.detach().contiguous().numpy()


def normalize_embeddings(embeddings: Tensor) -> Tensor:
    """L2-normalises along the last dimension (``x / max(||x||, 1e-12)``)."""
    if not isinstance(embeddings, Tensor):
        embeddings = _convert_to_tensor(embeddings)
    if embeddings.is_sparse:
        embeddings = embeddings.coalesce()
        dense = embeddings.to_dense()
        return torch.nn.functional.normalize(dense, p=2, dim=-1).to_sparse()
    host = host_float32(embeddings) if embeddings.dim() == 2 else None
    if host is not None:
        return torch.from_numpy(ops.normalize(host))
    return torch.nn.functional.normalize(embeddings, p=2, dim=-1)


def truncate_embeddings(embeddings: Any, truncate_dim: int | None) -> Any:
    """Keeps the first ``truncate_dim`` dimensions (``embeddings[..., :truncate_dim]``); None keeps all."""
    return embeddings[..., :truncate_dim]


def batch_to_device(batch: dict[str, Any], target_device: torch.device | str) -> dict[str, Any]:
    """Moves every tensor of a feature dict to ``target_device``."""
    return {k: (v.to(target_device) if isinstance(v, Tensor) else v) for k, v in batch.items()}


def _move_tensors_to_cpu(value: Any) -> Any:
    """``value`` with every tensor inside it (nested in dicts, lists and tuples) moved to the CPU."""
    if isinstance(value, Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {key: _move_tensors_to_cpu(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_move_tensors_to_cpu(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_move_tensors_to_cpu(item) for item in value)
    return value


def select_max_active_dims(embeddings: Any, max_active_dims: int | None) -> Any:
    """Keeps the ``max_active_dims`` largest-magnitude values of each row (the rest become 0); None keeps all.

    Returns a new dense tensor (numpy input is converted); ties go to the lower dimension.
    """
    if max_active_dims is None:
        return embeddings
    if isinstance(max_active_dims, bool) or not isinstance(max_active_dims, int) or max_active_dims <= 0:
        raise ValueError(f"max_active_dims must be a positive integer or None, got {max_active_dims!r}")
    t = _convert_to_tensor(embeddings)
    if t.is_sparse:
        t = t.to_dense()
    single = t.dim() == 1
    rows = t.unsqueeze(0) if single else t
    host = host_float32(rows)
    if host is not None:
        indptr, indices, values = ops.dense_to_csr(host, max_active_dims)
        out = torch.zeros_like(rows)
        row_ids = torch.from_numpy(np.repeat(np.arange(rows.shape[0]), np.diff(indptr)))
        out[row_ids, torch.from_numpy(indices)] = torch.from_numpy(values)
    else:
        k = min(max_active_dims, rows.shape[-1])
        _, top = torch.topk(rows.abs(), k, dim=-1)
        out = torch.zeros_like(rows).scatter(-1, top, rows.gather(-1, top))
    return out[0] if single else out


def compute_count_vector(embeddings: Tensor) -> Tensor:
    """For each dimension, the number of rows where it is non-zero (int32, as the reference)."""
    t = embeddings.to_dense() if embeddings.is_sparse else embeddings
    if t.dim() == 1:
        t = t.unsqueeze(0)
    return (t != 0).sum(dim=0).to(torch.int32)


def to_scipy_coo(x: Tensor) -> Any:
    """A 2-D torch tensor (sparse or dense) as a ``scipy.sparse.coo_matrix``."""
    try:
        from scipy.sparse import coo_matrix
    except ImportError as exc:  # pragma: no cover - scipy ships with most installs
        raise ImportError("to_scipy_coo needs scipy: pip install scipy") from exc
    t = x.detach().cpu()
    if t.layout != torch.sparse_coo:
        t = t.to_sparse()
    t = t.coalesce()
    rows, cols = t.indices().numpy()
    return coo_matrix((t.values().numpy(), (rows, cols)), shape=tuple(t.shape))


# ------------------------------------------------------------------ padded token embeddings


def stack_padded_token_embeddings(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Stacks per-column token embeddings into one ``(batch, columns, tokens, dim)`` tensor.

    Each column (one document column of a multi-vector training batch, say) was padded to its own longest sequence;
    shorter columns are padded with zero rows (and their masks with zeros / False) up to the widest column first.
    The padded positions are outside the returned mask, which the MaxSim scoring honours.

    Args:
        embeddings: one ``(batch, tokens_i, dim)`` tensor per column, all with the same ``batch`` and ``dim``.
        masks: the matching ``(batch, tokens_i)`` token masks, one per column.

    Returns:
        ``(batch, columns, max tokens_i, dim)`` embeddings and the ``(batch, columns, max tokens_i)`` mask, in the
        inputs' dtypes. Differentiable with respect to the embeddings.

    Raises:
        ValueError: no column, a different number of masks and columns, a column that is not 3-D, or a mask whose
            shape is not its column's ``(batch, tokens_i)``.
        RuntimeError: the columns differ in ``batch`` or ``dim``.
    """
    padded, padded_masks = _pad_token_axis(embeddings, masks)
    _check_same_sizes(padded, dims=(0, 2), what="batch size and dimension")
    return torch.stack(padded, dim=1), torch.stack(padded_masks, dim=1)


def cat_padded_token_embeddings(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Concatenates chunks of token embeddings along the batch axis into one ``(sum batch_i, tokens, dim)`` tensor.

    The chunks (mini-batches encoded one at a time, whose token counts can differ) are padded with zero rows (and
    their masks with zeros / False) up to the widest chunk first.

    Args:
        embeddings: one ``(batch_i, tokens_i, dim)`` tensor per chunk, all with the same ``dim``.
        masks: the matching ``(batch_i, tokens_i)`` token masks, one per chunk.

    Returns:
        ``(sum batch_i, max tokens_i, dim)`` embeddings and the ``(sum batch_i, max tokens_i)`` mask (torch's type
        promotion decides the mask dtype when the chunks' masks differ). Differentiable with respect to the
        embeddings.

    Raises:
        ValueError: no chunk, a different number of masks and chunks, a chunk that is not 3-D, or a mask whose shape
            is not its chunk's ``(batch_i, tokens_i)``.
        RuntimeError: the chunks differ in ``dim``.
    """
    padded, padded_masks = _pad_token_axis(embeddings, masks)
    _check_same_sizes(padded, dims=(2,), what="dimension")
    return torch.cat(padded, dim=0), torch.cat(padded_masks, dim=0)


def _pad_token_axis(embeddings: list[Tensor], masks: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """The ``(batch, tokens, dim)`` tensors and their ``(batch, tokens)`` masks, padded at the end of the token axis
    to the widest of them; returned as given when they all have the same width."""
    if len(embeddings) == 0:
        raise ValueError("embeddings must hold at least one (batch, tokens, dim) tensor, got an empty list")
    if len(masks) != len(embeddings):
        raise ValueError(f"masks must hold one mask per embeddings tensor, got {len(masks)} and {len(embeddings)}")
    for i, (tokens, mask) in enumerate(zip(embeddings, masks)):
        if tokens.dim() != 3:
            raise ValueError(f"embeddings[{i}] must be a (batch, tokens, dim) tensor, got shape {tuple(tokens.shape)}")
        if tuple(mask.shape) != tuple(tokens.shape[:2]):
            raise ValueError(
                f"masks[{i}] must have the shape (batch, tokens) = {tuple(tokens.shape[:2])} of embeddings[{i}], "
                f"got {tuple(mask.shape)}"
            )
    width = max(int(tokens.shape[1]) for tokens in embeddings)
    if all(tokens.shape[1] == width for tokens in embeddings):
        return list(embeddings), list(masks)
    pad = torch.nn.functional.pad
    return (
        [pad(tokens, (0, 0, 0, width - tokens.shape[1])) for tokens in embeddings],
        [pad(mask, (0, width - mask.shape[1])) for mask in masks],
    )


def _check_same_sizes(embeddings: list[Tensor], dims: tuple[int, ...], what: str) -> None:
    """Raises ``RuntimeError`` (torch's error type for mismatched sizes) unless the tensors agree on ``dims``."""
    first = [embeddings[0].shape[d] for d in dims]
    for i, tensor in enumerate(embeddings[1:], start=1):
        if [tensor.shape[d] for d in dims] != first:
            raise RuntimeError(
                f"embeddings must all have the same {what}, got shapes {tuple(embeddings[0].shape[::2])} (batch, dim) "
                f"for embeddings[0] and {tuple(tensor.shape[::2])} for embeddings[{i}]"
            )


#: The keys of a flattened (FlashAttention-2 unpadded) batch that do not apply to a padded one.
_FLATTENING_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k", "seq_idx", "position_ids")


def repad_flattened_features(features: dict[str, Any]) -> dict[str, Any]:
    """Turns a flattened batch's model outputs back into a padded batch, in place.

    A batch flattened for FlashAttention-2 (``DataCollatorWithFlattening``) is one row of concatenated sequences:
    ``token_embeddings: (1, total_tokens, dim)`` and ``input_ids: (1, total_tokens)``, with the sequence boundaries
    in ``cu_seq_lens_q`` (``(sequences + 1,)`` cumulative lengths, starting at 0) and no ``attention_mask``. This
    splits them into ``token_embeddings: (sequences, longest, dim)`` (zero rows after each sequence) and
    ``input_ids: (sequences, longest)`` (0 after each sequence), writes the boolean ``attention_mask:
    (sequences, longest)``, and drops the keys that describe the flattening (``cu_seq_lens_q/k``,
    ``max_length_q/k``, ``seq_idx``, ``position_ids``). The caller checks that ``cu_seq_lens_q`` is present.

    Args:
        features: the flattened batch's features; changed in place. Other keys are kept as they are.

    Returns:
        ``features`` itself, padded. Differentiable with respect to ``token_embeddings``.

    Raises:
        KeyError: ``cu_seq_lens_q``, ``token_embeddings`` or ``input_ids`` is missing.
        RuntimeError: ``cu_seq_lens_q`` holds no sequence (fewer than two entries).
        ValueError: ``cu_seq_lens_q`` decreases, or ends past the flattened tokens.
    """
    bounds = [int(b) for b in torch.as_tensor(features["cu_seq_lens_q"]).reshape(-1).tolist()]
    flat_tokens = features["token_embeddings"][0]
    flat_ids = features["input_ids"][0]
    if len(bounds) < 2:
        raise RuntimeError(f"cu_seq_lens_q must hold at least one sequence (two boundaries), got {bounds}")
    lengths = [end - start for start, end in itertools.pairwise(bounds)]
    if min(lengths) < 0:
        raise ValueError(f"cu_seq_lens_q must not decrease, got {bounds}")
    if bounds[-1] > flat_tokens.shape[0]:
        raise ValueError(
            f"cu_seq_lens_q ends at token {bounds[-1]}, but the flattened batch holds {flat_tokens.shape[0]} tokens"
        )

    def split(flat: Tensor, padding_value: float) -> Tensor:
        pieces = [flat[start:end] for start, end in itertools.pairwise(bounds)]
        return torch.nn.utils.rnn.pad_sequence(pieces, batch_first=True, padding_value=padding_value)

    features["token_embeddings"] = split(flat_tokens, 0.0)
    features["input_ids"] = split(flat_ids, 0)
    longest = features["input_ids"].shape[1]
    positions = torch.arange(longest, device=flat_tokens.device)
    features["attention_mask"] = positions[None, :] < torch.tensor(lengths, device=flat_tokens.device)[:, None]
    for key in _FLATTENING_KEYS:
        features.pop(key, None)
    return features
